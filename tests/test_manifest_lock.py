"""One ``generate --manifest`` run at a time per manifest: a second run started while the first is generating is
refused in one line (before the fix both generated every row). The lock is the one every output folder uses
(:class:`interdyn.support.distributed.OutputLock`), kept beside the manifest as ``.NAME.interdyn-lock``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def test_a_second_run_on_the_same_manifest_is_refused_while_the_first_generates(tmp_path, capsys):
    from interdyn.apps.cli import main
    from interdyn.data.video_io import write_video

    assert main(["make-tiny", str(tmp_path / "models")]) == 0
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "in.png")
    write_video(tmp_path / "mask_hand.mp4", np.zeros((4, 64, 64, 3), np.uint8), fps=7, lossless=True)
    rows = tmp_path / "rows.csv"
    rows.write_text("image,control,out,seed\n" + "".join(f"in.png,mask_hand.mp4,out/c{k}.mp4,{k}\n" for k in range(6)))
    m = tmp_path / "models"
    argv = ["generate", "--svd", str(m / "svd_tiny"), "--interdyn", str(m / "interdyn_tiny.safetensors"),
            "--manifest", str(rows), "--height", "64", "--width", "64", "--frames", "4", "--steps", "2"]
    first = subprocess.Popen([sys.executable, "-m", "interdyn", *argv, "--report", str(tmp_path / "first.json")],
                             cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / ".rows.csv.interdyn-lock"
        deadline = time.time() + 300
        while not lock.exists():
            assert first.poll() is None and time.time() < deadline, "the first run must start and take the lock"
            time.sleep(0.1)
        capsys.readouterr()
        code = main(argv + ["--report", str(tmp_path / "second.json")])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if "error" in line]
        assert code == 2 and len(lines) == 1 and "is being written by another run" in lines[0], err[-1000:]
        assert f"--manifest {rows}" in lines[0], f"it names the manifest: {lines[0]}"
        assert not (tmp_path / "second.json").exists(), "the second run stopped before generating anything"
    finally:
        out, err = first.communicate(timeout=900)
    assert first.returncode == 0, f"the first run is not disturbed:\n{err[-2000:]}"
    report = json.loads((tmp_path / "first.json").read_text())
    assert report["counts"] == {"written": 6, "skipped": 0, "failed": 0}, "the first run generated every row once"
    assert not lock.exists(), "the lock goes with the run"
    assert main(argv) == 0, "a later run works (and skips the rows already written)"
