"""Benchmark: how long `interdyn demo` takes on this machine (not a test).

Runs the demo in this process ``--repeats`` times into a temporary folder and prints the median wall
time, next to a reference run in the same process: one generation of the built-in model on the demo's
hit scene (load excluded; the demo makes six: three scenes, with and without control). The ratio says how many generations' worth of time the whole demo costs, which
stays meaningful on a loaded machine where the absolute seconds do not.

    python bench/demo.py [--repeats 3] [--steps N]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the built-in model's)")
    args = parser.parse_args()

    import torch

    from interdyn.apps import probes
    from interdyn.core.builtin import TOY_SAMPLING, TOY_SIZE
    from interdyn.core.loading import load_toy_physics
    from interdyn.apps.cli import main as cli_main
    from interdyn.apps.demo import DEMO_SEED, demo_scenes

    sampling = dict(TOY_SAMPLING)
    if args.steps is not None:
        sampling["num_steps"] = args.steps
    scene = demo_scenes(DEMO_SEED, TOY_SIZE, sampling["num_frames"])["hit"]
    generate = probes.model_generator(*load_toy_physics(), sampling)
    generate(scene.frames[0], scene.control, 1.0, DEMO_SEED)  # warm-up
    t = time.perf_counter()
    generate(scene.frames[0], scene.control, 1.0, DEMO_SEED)
    one = time.perf_counter() - t

    extra = [] if args.steps is None else ["--steps", str(args.steps)]
    times = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            t = time.perf_counter()
            cli_main(["demo", "--out", f"{tmp}/demo", *extra])
            times.append(time.perf_counter() - t)
    demo = statistics.median(times)
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"one generation (reference, model loaded): {one:.2f} s")
    print(f"interdyn demo, whole command (median of {args.repeats}): {demo:.2f} s = {demo / one:.1f} x one generation")


if __name__ == "__main__":
    main()
