"""Benchmark: clips per second of ``interdyn generate --manifest`` on 1 vs N processes (torchrun), tiny models.

Not a test. Writes tiny random models (interdyn.core.tiny) and a manifest of ``--clips`` rows (one first frame,
one control video, a seed per row) in a temporary folder, then runs the same manifest twice into fresh
output folders: once as one process (``python -m interdyn``) and once under ``python -m torch.distributed.run
--nproc_per_node N --standalone``. It prints, for each, the wall time of the whole command (Python and model
start included) and the throughput the run itself reports (rows written / seconds of the run, read from
``--report``), and the ratios N-process / 1-process. Outputs of the two runs are compared (they must be equal).

    python bench/scale.py [--clips 8] [--processes 2] [--size 64x64] [--frames 4] [--steps 4] [--threads 1]
                          [--batch-size 4]

With ``--batch-size B`` (default 4) a third run, one process with B rows per sampler call, is compared with
the one-process run (``interdyn generate --manifest ... --batch-size B``).

On a machine with K free cores expect the run ratio to approach min(N, K / threads); the command ratio is
lower for short runs (each process starts Python and loads the models).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], threads: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="manifest rows (default %(default)s)")
    parser.add_argument("--processes", type=int, default=2, help="processes of the second run (default %(default)s)")
    parser.add_argument("--size", default="64x64", help="HxW, multiples of 64 (default %(default)s)")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="OMP threads per process (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="also run 1 process with rows batched this many per sampler call (1: skip; default "
                             "%(default)s)")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))

    from PIL import Image

    from interdyn.core.tiny import write_tiny_models
    from interdyn.data.video_io import read_video, write_video

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = write_tiny_models(tmp / "models", seed=0)
        Image.fromarray(np.full((height, width, 3), 120, np.uint8)).save(tmp / "image.png")
        control = np.zeros((args.frames, height, width, 3), np.uint8)
        control[:, height // 4: height // 2, width // 4: width // 2] = 255
        write_video(tmp / "control.mp4", control, 7)
        base = [sys.executable, "-m", "interdyn", "generate", "--svd", str(models["svd"]), "--interdyn",
                str(models["interdyn"]), "--frames", str(args.frames), "--height", str(height), "--width", str(width),
                "--steps", str(args.steps), "--device", "cpu"]
        results = {}
        for n in (1, args.processes):
            rows = [f"image.png,control.mp4,out{n}/clip{k:03d}.mp4,{k}" for k in range(args.clips)]
            (tmp / f"rows{n}.csv").write_text("image,control,out,seed\n" + "\n".join(rows) + "\n")
            cmd = base + ["--manifest", str(tmp / f"rows{n}.csv"), "--report", str(tmp / f"report{n}.json")]
            if n > 1:
                cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n), "--standalone",
                       "-m"] + cmd[2:]
            wall = run(cmd, args.threads)
            report = json.loads((tmp / f"report{n}.json").read_text())
            written = report["counts"]["written"]
            results[n] = (wall, written / wall, written / report["seconds"])
            print(f"{n} process(es): {written} clips, command {wall:.1f}s = {written / wall:.3f} clips/s, "
                  f"run {report['seconds']:.1f}s = {written / report['seconds']:.3f} clips/s", flush=True)
        for k in range(args.clips):
            a = read_video(tmp / "out1" / f"clip{k:03d}.mp4")[0]
            b = read_video(tmp / f"out{args.processes}" / f"clip{k:03d}.mp4")[0]
            assert np.array_equal(a, b), f"clip {k}: {args.processes} processes wrote another video than 1"
        one, many = results[1], results[args.processes]
        print(f"ratio {args.processes} processes / 1 process: command {many[1] / one[1]:.2f}x, run "
              f"{many[2] / one[2]:.2f}x ({args.clips} clips {height}x{width}x{args.frames}, {args.steps} steps, "
              f"{args.threads} thread(s) per process, {os.cpu_count()} cores); outputs identical")
        if args.batch_size > 1:  # one process, rows batched per sampler call, against the one-process run above
            rows = [f"image.png,control.mp4,outb/clip{k:03d}.mp4,{k}" for k in range(args.clips)]
            (tmp / "rowsb.csv").write_text("image,control,out,seed\n" + "\n".join(rows) + "\n")
            wall = run(base + ["--manifest", str(tmp / "rowsb.csv"), "--report", str(tmp / "reportb.json"),
                               "--batch-size", str(args.batch_size)], args.threads)
            report = json.loads((tmp / "reportb.json").read_text())
            written = report["counts"]["written"]
            worst = max(int(np.abs(read_video(tmp / "out1" / f"clip{k:03d}.mp4")[0].astype(int)
                                   - read_video(tmp / "outb" / f"clip{k:03d}.mp4")[0].astype(int)).max())
                        for k in range(args.clips))
            print(f"1 process, --batch-size {args.batch_size}: command {wall:.1f}s = {written / wall:.3f} clips/s, run "
                  f"{report['seconds']:.1f}s = {written / report['seconds']:.3f} clips/s; ratio to --batch-size 1: "
                  f"command {written / wall / one[1]:.2f}x, run {written / report['seconds'] / one[2]:.2f}x; largest "
                  f"frame difference to the one-by-one videos {worst}/255 (float rounding of batched products)")


if __name__ == "__main__":
    main()
