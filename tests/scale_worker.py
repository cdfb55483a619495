"""Run by tests/test_scale.py under ``python -m torch.distributed.run --nproc_per_node N``: every rank runs the
same calls (evaluation or data preparation) on the test's tiny inputs; the library shards the work.

    python -m torch.distributed.run --nproc_per_node 2 --standalone tests/scale_worker.py JOB.json

``JOB.json``: ``{"evaluate": [{kwargs...}], "prepare": [[argv...]], "generate": [[interdyn argv...]]}``. Not a test module (no ``test_`` prefix).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[1:1] = [str(ROOT / "tests"), str(ROOT)]


def evaluation_networks():
    """The networks of tests/test_evaluate.py: random LPIPS (seed 0), fake Inception and I3D."""
    import warnings

    import lpips

    from test_evaluate import FakeI3D, FakeInception  # this script's folder is on sys.path

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    return dict(lpips_net=net, inception=FakeInception(), i3d=FakeI3D())


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    torch.set_num_threads(1)
    if job.get("evaluate"):
        from test_evaluate import SETTINGS
        from training import evaluate as E

        nets = evaluation_networks()
        for kwargs in job["evaluate"]:
            E.evaluate(settings=SETTINGS, progress=False, **nets, **kwargs)
    for argv in job.get("prepare", []):
        from training.data.prepare import main as prepare

        if prepare(argv) != 0:
            return 1
    for argv in job.get("generate", []):
        from interdyn.apps.cli import main as interdyn_main

        if interdyn_main(argv) != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
