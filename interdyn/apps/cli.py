"""Command line: ``interdyn generate``, ``interdyn demo``, ``interdyn probes``, ``interdyn make-tiny``, and the
commands other packages register (:mod:`interdyn.apps.plugins`): the training package's ``interdyn train``, ``export``,
``evaluate``, ``prepare`` and ``configs``."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import probes
from .batch import run_manifest
from .demo import DEMO_SEED, DEMO_SIGNATURE_FILES, check_zoom, run_demo
from .generation import (check_model_path, comparison_path, generate_clips, load_inputs, side_by_side,
                         validate_generate_args)
from .plugins import TRAINING_COMMAND_NAMES, missing_command_message, registered_commands
# the loaders through their module: tests replace loading.load_svd_backbone to prove no model loads before the checks
from ..core import loading
from ..core.builtin import TOY_SAMPLING, TOY_SIZE, is_builtin, toy_world
from ..core.dual_clock import add_level_flags, levels_from_flags
from ..core.sampling import DEFAULTS
from ..core.tiny import write_tiny_models
from ..data.video_io import VideoReadError, write_video
from ..support.errors import ModelLoadError
from ..support.safe_output import (OutputError, atomic_files, check_output_folder, check_output_path,
                                   claim_output_folder, clean_stale_temporaries, storage_message_or_raise)
from ..support.validation import SAMPLING_BOUNDS, InputError, check_count, check_seed


def _add_sampling_args(p: argparse.ArgumentParser, height=DEFAULTS["height"], width=DEFAULTS["width"],
                       frames=DEFAULTS["num_frames"], steps=DEFAULTS["num_steps"]) -> None:
    g = p.add_argument_group("sampling (defaults are the paper's)")
    g.add_argument("--height", type=int, default=height, help="output height, a multiple of 64 (default %(default)s)")
    g.add_argument("--width", type=int, default=width, help="output width, a multiple of 64 (default %(default)s)")
    g.add_argument("--frames", type=int, default=frames, help="number of frames (default %(default)s)")
    g.add_argument("--steps", type=int, default=steps, help="Euler steps (default %(default)s)")
    g.add_argument("--min-guidance", type=float, default=DEFAULTS["min_guidance"], help="CFG scale on the first frame")
    g.add_argument("--max-guidance", type=float, default=DEFAULTS["max_guidance"],
                   help="CFG scale on the last frame (1 turns guidance off: one pass per step)")
    g.add_argument("--fps", type=float, default=DEFAULTS["fps"],
                   help="frame rate, diffusers' convention: the model gets fps-1 (default %(default)s)")
    g.add_argument("--motion-bucket", type=float, default=DEFAULTS["motion_bucket_id"], help="SVD motion bucket id")
    g.add_argument("--noise-aug", type=float, default=DEFAULTS["noise_aug_strength"],
                   help="noise augmentation of the first frame")
    g.add_argument("--strength", type=float, default=1.0, help="control strength (0 = plain SVD)")
    g.add_argument("--control-start", type=float, default=0.0, help="first fraction of steps with control")
    g.add_argument("--control-end", type=float, default=1.0, help="fraction of steps where control stops")
    g.add_argument("--seed", type=int, default=42, help="random seed")
    g.add_argument("--decode-chunk", type=int, default=None, help="frames decoded at a time (default: all)")
    g.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                   help="model precision (auto: fp16/bf16 on CUDA, fp32 on CPU)")


def _progress(total: int, desc: str):
    bar = tqdm(total=total, desc=desc, unit="step")

    def callback(info):
        bar.update(1)
        if info.step + 1 == info.total:
            bar.close()

    return callback


def cmd_generate(args) -> int:
    if args.manifest is not None:
        return run_manifest(args)
    if args.batch_size != 1:
        raise InputError("--batch-size groups the rows of a --manifest; for one clip leave it at 1")
    for name in ("image", "out"):
        if getattr(args, name) is None:
            raise InputError(f"interdyn generate needs --{name} (or --manifest FILE for many clips)")
    validate_generate_args(args)
    out = Path(args.out)
    comparison = comparison_path(out)
    clean_stale_temporaries(out.parent, names=[out.name, comparison.name])  # left by a killed run
    images, controls = load_inputs([args])  # read before the models: a bad file fails fast
    t0 = time.time()
    backbone = loading.load_svd_backbone(args.svd, dtype=args.precision, device=args.device)
    branch = loading.load_control_branch(args.interdyn, dtype=backbone.dtype, device=args.device, backbone=backbone) \
        if args.interdyn else None
    print(f"loaded models in {time.time() - t0:.1f}s; sampling {args.frames} frames at {args.height}x{args.width}")
    video = generate_clips(backbone, branch, [args], images, controls, callback=_progress(args.steps, "sampling"),
                           write=False)[0]
    parts = [images[:1]] + ([controls[0]] if controls is not None else []) + [video]
    with atomic_files([out, comparison]) as (out_tmp, comparison_tmp):  # both replaced, or neither
        write_video(out_tmp, video, fps=args.fps)
        write_video(comparison_tmp, side_by_side(*parts), fps=args.fps)
    print(f"wrote {out} and {comparison} (input | control | output)")
    return 0


def _builtin_sampling(args) -> dict:
    sampling = dict(TOY_SAMPLING)
    if args.steps is not None:
        sampling["num_steps"] = args.steps
    return sampling


def cmd_demo(args) -> int:
    check_output_path(args.out, "--out", folder=True)
    check_zoom(args.zoom, "--zoom")
    check_seed(args.seed, "--seed")
    if args.steps is not None:
        check_count(args.steps, "--steps", maximum=SAMPLING_BOUNDS["num_steps"])
    check_output_folder(args.out, what="--out", kind="demo", signature_files=DEMO_SIGNATURE_FILES)
    run_demo(args.out, seed=args.seed, num_steps=args.steps, zoom=args.zoom)
    return 0


def _every_tenth(stage: str, done: int, total: int) -> None:
    """Progress of ``run_probes``: print every tenth scene and the last."""
    if done % 10 == 0 or done == total:
        print(f"  {stage} {done}/{total}", flush=True)


#: scenes a probe run may ask for (a few seconds each on a CPU: 100 000 is days)
MAX_SCENES = 100_000


def cmd_probes(args) -> int:
    check_output_path(args.out, "--out", folder=True)
    num_scenes = check_count(args.num_scenes, "--num-scenes", maximum=MAX_SCENES)
    check_seed(args.seed, "--seed", span=num_scenes)
    if args.steps is not None:
        check_count(args.steps, "--steps", maximum=SAMPLING_BOUNDS["num_steps"])
    for flag in ("svd", "interdyn"):
        check_model_path(getattr(args, flag), f"--{flag}")
    dual_clock = levels_from_flags(args.dual_clock, args.sigma_weak, args.sigma_strong)
    # before the minutes of sampling
    claim_output_folder(args.out, what="--out", kind="probes", signature_files=probes.PROBE_FILES)
    sampling = _builtin_sampling(args)
    world = args.world or (toy_world() if is_builtin(args.svd) else "full")
    backbone = loading.load_svd_backbone(args.svd)
    branch = loading.load_control_branch(args.interdyn, backbone=backbone)
    generate = probes.model_generator(backbone, branch, sampling)
    print(f"physics probes: {args.num_scenes} held-out scenes of the {world!r} world from seed {args.seed}, "
          f"model {args.svd} + {args.interdyn}", flush=True)
    report = probes.run_probes(generate, num_scenes=args.num_scenes, seed=args.seed,
                               size=TOY_SIZE, num_frames=sampling["num_frames"],
                               progress=_every_tenth, world=world, dual_clock=dual_clock,
                               settings={"svd": str(args.svd), "interdyn": str(args.interdyn), "sampling": sampling})
    json_path, md_path = probes.write_report(report, args.out)
    print(report.to_markdown())
    print(f"{report.seconds:.0f}s; wrote {json_path} and {md_path}")
    return 0


def cmd_make_tiny(args) -> int:
    check_output_path(args.out, "out", folder=True)
    check_seed(args.seed, "--seed")

    paths = write_tiny_models(args.out, seed=args.seed, residual_mode=args.residual_mode)
    print(f"tiny SVD folder: {paths['svd']}\ntiny control branch: {paths['interdyn']}")
    return 0


#: the commands this library defines; others come from the registry (:mod:`interdyn.apps.plugins`)
LIBRARY_COMMANDS = ("generate", "demo", "probes", "make-tiny")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interdyn", description="InterDyn: image + driving motion -> video")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="generate a video from an image and a control (mask) video")
    p.add_argument("--svd", required=True, help="SVD diffusers folder or single-file checkpoint (.safetensors), or "
                                                "builtin:toy-physics (the small model in the package: 64x64, 8 frames)")
    p.add_argument("--interdyn", help="InterDyn control branch: official `controlnet` folder, our .safetensors, or "
                                      "builtin:toy-physics")
    p.add_argument("--image", help="first frame (PNG/JPEG); required unless --manifest")
    p.add_argument("--control", help="control video (mask or render video, or a folder with mask_hand.*)")
    p.add_argument("--out", help="output video (.mp4, .webm or .gif); required unless --manifest")
    p.add_argument("--manifest", help="many clips: a .csv or .jsonl with columns image, out and optional control, "
                                      "seed and per-row sampling values (height, width, frames, steps, min_guidance, "
                                      "max_guidance, fps, motion_bucket, noise_aug, strength, control_start, "
                                      "control_end); relative paths are relative to the manifest. Every row is "
                                      "checked first; rows are shared out over torchrun/accelerate processes; "
                                      "existing outputs are skipped; a failed row does not stop the others")
    p.add_argument("--report", help="with --manifest: also write the per-row outcome to this JSON file")
    p.add_argument("--batch-size", type=int, default=1,
                   help="with --manifest: up to this many consecutive rows with the same size and sampling values "
                        "share one sampler call (faster where memory allows; each row keeps its own seed's noise; "
                        "default %(default)s)")
    _add_sampling_args(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("demo", help="the built-in toy-physics model on held-out scenes: a hit, a miss of the same "
                                    "first frame, and a chain (CPU, no files)")
    p.add_argument("--out", default="interdyn_demo", help="output folder (default %(default)s)")
    p.add_argument("--seed", type=int, default=DEMO_SEED,
                   help="scene and noise seed; seeds from 1000000 are held out from training (default %(default)s, "
                        "a validation scene)")
    p.add_argument("--steps", type=int, default=None, help="Euler steps (default: the built-in model's)")
    p.add_argument("--zoom", type=int, default=4, help="enlarge the written videos this many times (default 4)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("probes", help="physics probes (force propagation, counterfactual, IoU) on held-out scenes")
    p.add_argument("--svd", default="builtin:toy-physics", help="backbone (default %(default)s)")
    p.add_argument("--interdyn", default="builtin:toy-physics", help="control branch (default %(default)s)")
    p.add_argument("--num-scenes", type=int, default=50, help="scenes per probe (default %(default)s)")
    p.add_argument("--seed", type=int, default=1_000_000, help="first held-out scene seed (default %(default)s)")
    p.add_argument("--steps", type=int, default=None, help="Euler steps (default: the built-in model's)")
    p.add_argument("--out", default="probes", help="folder for probes.json and probes.md (default %(default)s)")
    add_level_flags(p, "also measure training-free dragging (Time-to-Move's dual-clock denoising), alone and "
                       "with the branch, on the same scenes and seeds")
    p.add_argument("--world", choices=["full", "toy"], default=None,
                   help="synthetic world of the probe scenes: the one the model was trained on (default: the "
                        "built-in model's for builtin:toy-physics, else full)")
    p.set_defaults(func=cmd_probes)

    p = sub.add_parser("make-tiny", help="write tiny random models in the real file formats (for tests)")
    p.add_argument("out", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--residual-mode", default="standard", choices=["standard", "official"])
    p.set_defaults(func=cmd_make_tiny)

    assert tuple(sub.choices) == LIBRARY_COMMANDS, "LIBRARY_COMMANDS lists the commands defined above"
    # registered commands (the training package's): their own parsers take the arguments (see main)
    for command, entry in registered_commands().items():
        if command not in LIBRARY_COMMANDS:
            sub.add_parser(command, help=entry.load().help + " (--help: its options)", add_help=False)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean "the input is wrong" (shown as one line) rather than a bug."""
    return (InputError, OutputError, ModelLoadError, VideoReadError, ValueError, FileNotFoundError,
            NotADirectoryError, IsADirectoryError, PermissionError)


def main(argv: list[str] | None = None) -> int:
    """Run one command. User errors print one line ``error: ...`` and exit 2; ``--debug`` (anywhere on the
    line) or ``INTERDYN_DEBUG=1`` shows the traceback instead."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("INTERDYN_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    registered = registered_commands()
    if argv and argv[0] in registered and argv[0] not in LIBRARY_COMMANDS:
        # every later argument, --help included, is the registered command's own
        return registered[argv[0]].load().run(argv[1:], prog=f"interdyn {argv[0]}")
    if argv and argv[0] in TRAINING_COMMAND_NAMES and argv[0] not in registered:
        print(f"error: {missing_command_message(argv[0])}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    if debug:
        return args.func(args)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _user_errors() as err:
        message = str(err) if not isinstance(err, (FileNotFoundError, PermissionError)) or not err.filename else \
            f"{err.strerror or err}: {err.filename}"
        print(f"error: {message} (run with --debug for the traceback)", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - a full or read-only disk is the user's to fix, not a bug
        message = storage_message_or_raise(err, getattr(args, "out", None))
        print(f"error: {message} (run with --debug for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
