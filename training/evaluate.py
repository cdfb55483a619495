"""Evaluate InterDyn and its baselines as the paper does (Table 1 and Table S3).

    python -m training.evaluate --data ROOT --svd SVD_DIR --interdyn WEIGHTS --out OUT \\
        --methods interdyn,no_control,copy_first_frame \\
        --lpips-alexnet DIR --inception DIR --i3d DIR [--cotracker-code DIR --cotracker-checkpoint FILE]

    python -m training.evaluate --data ROOT --generated NAME=DIR --out OUT ...   # score existing videos

``ROOT`` is the generic clip layout (``ROOT/<id>/video.mp4``, ``mask_hand.mp4``, ``mask_<object>.mp4``),
read through :class:`training.data.folder.FolderClips` with a deterministic start frame. Each method's
videos go to ``OUT/generated/<method>/<id>/generated.mp4`` (lossless, so metrics read back exactly what
was generated; the same layout ``--generated`` reads), each clip's scores and network features to
``OUT/features/<method>/<id>.npz``; a rerun skips every video and feature it finds (features are
keyed by a hash of the pixels they were computed from and of the network that computed them).
Results: ``OUT/results.json``, ``OUT/table1.md`` (methods x SSIM, PSNR, LPIPS, FID, KID, FVD, KVD, MF)
and ``OUT/table_s3.md`` (motion fidelity per action class). Every file is written atomically.

Several processes: launch the same command with ``torchrun --nproc_per_node N`` (or ``accelerate launch``,
``--nnodes`` for several machines; see docs/scale.md). Each rank generates and scores every N-th clip into the
same per-clip files, then rank 0 pools the whole set and writes the tables once; the results do not depend on N
(the sampling seed is the same for every clip, the motion-fidelity seed comes from the clip's place in the
sorted list). A killed run loses at most the clips in flight; rerun with any N to finish. A second run on the
same ``OUT`` at the same time is refused (:class:`interdyn.support.distributed.OutputLock`).

Metric protocol (see :mod:`interdyn.metrics`): frame metrics and FID/KID on frames 1..F-1, FVD/KVD
on whole clips (StyleGAN-V), all pooled over the whole set exactly as
:func:`interdyn.metrics.evaluate_videos` would on the stacked clips; motion fidelity on 100 points of
the first-frame object masks (union of the clip's ``mask_<object>``), LK tracker unless CoTracker is
given. A metric whose network is missing is reported as unavailable, with the reason.

Methods: ``interdyn`` (control branch at strength 1), ``no_control`` (the same sampler and seed with
control strength 0: plain SVD), ``copy_first_frame``, ``coshand_independent`` and
``coshand_autoregressive`` (:mod:`training.baselines`, around the ``--coshand`` transition model),
``dual_clock`` and ``interdyn_dual_clock`` (training-free dragging, Time-to-Move's dual-clock denoising, from
the first frame with the clip's driver pasted along its masks, alone and with the branch; ``--dual-clock`` adds
them, ``--sigma-weak`` / ``--sigma-strong`` set its two levels), plus any ``--generated`` folders.

The code is in :mod:`training.evaluation`, one idea per module (settings, networks, data, cache, pooling, tables,
generation, runner); this module is the command line and keeps the names importable from here.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from interdyn.core.dual_clock import add_level_flags, levels_from_flags
from interdyn.support import distributed
from interdyn.support.safe_output import check_output_path, storage_message_or_raise
from interdyn.support.validation import InputError, check_input_path

from .evaluation.cache import ClipCache, clip_scores, load_clip_record
from .evaluation.data import find_generated_video, open_dataset
from .evaluation.networks import MetricNetworks, resolve_networks
from .evaluation.pooling import per_class_motion_fidelity, pool_scores
from .evaluation.runner import check_evaluation_numbers, evaluate
from .evaluation.settings import (CACHE_VERSION, DEFAULT_METHODS, DISPLAY_NAMES, DUAL_CLOCK_METHODS, GENERATED_NAME,
                                  METHODS, METRICS, TABLE1_COLUMNS, GenerationSettings)
from .evaluation.tables import table1_markdown, table_s3_markdown

__all__ = ["evaluate", "main", "build_parser", "GenerationSettings", "MetricNetworks", "resolve_networks", "ClipCache",
           "clip_scores", "load_clip_record", "open_dataset", "find_generated_video", "pool_scores",
           "per_class_motion_fidelity", "table1_markdown", "table_s3_markdown", "METHODS", "DEFAULT_METHODS",
           "DISPLAY_NAMES", "METRICS", "TABLE1_COLUMNS", "GENERATED_NAME", "CACHE_VERSION"]


def _parse_generated(values: list[str]) -> dict:
    out = {}
    for v in values or []:
        name, sep, folder = v.partition("=")
        if not sep:
            name, folder = Path(v).name, v
        if not name or name in out:
            raise SystemExit(f"error: --generated {v!r}: give each folder a distinct NAME=DIR")
        out[name] = folder
    return out


def build_parser(prog: str = "python -m training.evaluate") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog,
                                description="Generate and score InterDyn and baselines (the paper's Table 1 and S3).")
    p.add_argument("--data", required=True, help="clips in the generic layout: ROOT/<id>/video.mp4, mask_hand.mp4, "
                                                 "mask_<object>.mp4")
    p.add_argument("--out", required=True, help="output folder (videos, feature cache, results.json, table1.md, "
                                                "table_s3.md); rerun with the same folder to resume")
    p.add_argument("--svd", help="SVD backbone: diffusers folder or single-file checkpoint")
    p.add_argument("--interdyn", help="InterDyn control branch: official controlnet folder or our .safetensors")
    p.add_argument("--methods", help=f"comma-separated, from {','.join(METHODS)} (default: "
                                     f"{','.join(DEFAULT_METHODS)}; none when only --generated is given)")
    p.add_argument("--generated", action="append", metavar="[NAME=]DIR",
                   help="score videos made elsewhere: DIR/<id>/generated.mp4 (repeatable; NAME defaults to DIR's name)")
    p.add_argument("--coshand", help="state transition model of the CosHand baselines, module:function or "
                                     "file.py:function, called as f(image, control_t, source_control=, t=, seed=)")
    p.add_argument("--limit", type=int, help="evaluate only the first N clips")
    g = p.add_argument_group("metric weights (never downloaded; default: $TORCH_HOME/hub/checkpoints)")
    g.add_argument("--lpips-alexnet", help="alexnet-owt-7be5be79.pth or its folder (LPIPS)")
    g.add_argument("--inception", help="weights-inception-2015-12-05-6726825d.pth or its folder (FID, KID)")
    g.add_argument("--i3d", help="i3d_torchscript.pt or its folder (FVD, KVD); loaded only if it is the published file "
                                 "(SHA-256 checked) unless --trust-i3d")
    g.add_argument("--trust-i3d", action="store_true",
                   help="load an --i3d TorchScript file whose SHA-256 is not the published one (it is code: only files "
                        "you trust)")
    g.add_argument("--cotracker-code", help="folder that makes `import cotracker` work (a co-tracker clone)")
    g.add_argument("--cotracker-checkpoint", help="CoTracker3 checkpoint, e.g. scaled_offline.pth (MF; default: "
                                                  "OpenCV Lucas-Kanade, no weights)")
    g.add_argument("--kid-subsets", type=int, default=100, help="KID/KVD subsets (default %(default)s)")
    g.add_argument("--kid-subset-size", type=int, default=1000, help="KID/KVD subset size (default %(default)s)")
    g.add_argument("--mf-points", type=int, default=100, help="MF query points per clip (default %(default)s)")
    d = GenerationSettings()
    s = p.add_argument_group("clips and sampling (defaults are the paper's)")
    s.add_argument("--frames", type=int, default=d.num_frames, help="frames per clip (default %(default)s)")
    s.add_argument("--height", type=int, default=d.height, help="height, multiple of 64 (default %(default)s)")
    s.add_argument("--width", type=int, default=d.width, help="width, multiple of 64 (default %(default)s)")
    s.add_argument("--clip-fps", type=float, default=d.clip_fps, help="real frame rate clips are resampled to "
                                                                       "(default %(default)s)")
    s.add_argument("--crop", default=d.crop, choices=["mask", "center"], help="spatial crop (default %(default)s)")
    s.add_argument("--steps", type=int, default=d.num_steps, help="Euler steps (default %(default)s)")
    s.add_argument("--min-guidance", type=float, default=d.min_guidance, help="CFG on the first frame")
    s.add_argument("--max-guidance", type=float, default=d.max_guidance, help="CFG on the last frame")
    s.add_argument("--fps", type=float, default=d.fps, help="conditioning fps, diffusers' convention (model gets fps-1)")
    s.add_argument("--motion-bucket", type=float, default=d.motion_bucket_id, help="SVD motion bucket id")
    s.add_argument("--noise-aug", type=float, default=d.noise_aug_strength, help="noise augmentation of frame 0")
    s.add_argument("--seed", type=int, default=d.seed, help="sampling seed, the same for every clip")
    add_level_flags(s, "also evaluate training-free dragging (Time-to-Move's dual-clock denoising from the "
                       "clip's driver pasted on the first frame): alone on plain SVD (dual_clock) and, with "
                       "--interdyn, with the branch (interdyn_dual_clock); on the same clips and seed")
    s.add_argument("--decode-chunk", type=int, default=None, help="frames decoded at a time (default: all)")
    s.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    s.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"], help="model precision")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


#: the command line's names for evaluate()'s arguments (messages use the caller's names)
CLI_NAMES = {"num_frames": "--frames", "num_steps": "--steps", "min_guidance": "--min-guidance",
             "max_guidance": "--max-guidance", "fps": "--fps", "motion_bucket_id": "--motion-bucket",
             "noise_aug_strength": "--noise-aug", "generator": "--seed", "decode_chunk_size": "--decode-chunk",
             "height": "--height", "width": "--width", "clip_fps": "--clip-fps", "kid_subsets": "--kid-subsets",
             "kid_subset_size": "--kid-subset-size", "mf_points": "--mf-points", "limit": "--limit",
             "sigma_weak": "--sigma-weak", "sigma_strong": "--sigma-strong"}
#: the options that name files or folders to read
INPUT_OPTIONS = ("data", "svd", "interdyn", "lpips_alexnet", "inception", "i3d", "cotracker_code",
                 "cotracker_checkpoint")


def check_options(args, settings: GenerationSettings, generated: dict) -> None:
    """The command line's paths and numbers, in its own names, before anything is read: ``--out`` a writable
    folder path (:func:`interdyn.support.safe_output.check_output_path`), every input a regular file or folder
    (never a FIFO or device), and so is every file inside an input folder (the loaders and readers open them by
    name: an SVD folder's weights, the clips' videos), named with the flag before any model loads; every number
    finite and in range."""
    check_output_path(args.out, "--out", folder=True)
    for dest in INPUT_OPTIONS:
        if getattr(args, dest) is not None:
            check_input_path(getattr(args, dest), f"--{dest.replace('_', '-')}", contents=True)
    for name, folder in generated.items():
        check_input_path(folder, f"--generated {name}", contents=True)
    check_evaluation_numbers(settings, kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size,
                             mf_points=args.mf_points, limit=args.limit, decode_chunk_size=args.decode_chunk,
                             names=CLI_NAMES)


def _dual_clock_request(args, methods: list[str] | None, generated: dict) -> tuple[list[str] | None, dict]:
    """The methods with ``--dual-clock``'s rows added (the drag alone; with ``--interdyn``, InterDyn + drag too) and
    the levels for :class:`GenerationSettings` (``--sigma-weak`` / ``--sigma-strong``, the probes' flags, read by
    :func:`interdyn.core.dual_clock.levels_from_flags`: they need ``--dual-clock`` or a dual-clock method in
    ``--methods``); nothing is read or loaded."""
    wanted = args.dual_clock or any(m in DUAL_CLOCK_METHODS for m in methods or ())
    levels = levels_from_flags(wanted, args.sigma_weak, args.sigma_strong)
    if levels is None:
        return methods, {}
    weak, strong = levels
    if args.dual_clock:
        methods = list(methods if methods is not None else ([] if generated else DEFAULT_METHODS))
        methods += [m for m in DUAL_CLOCK_METHODS if m not in methods and (m == "dual_clock" or args.interdyn)]
    return methods, {"sigma_weak": weak, "sigma_strong": strong}


def main(argv: list[str] | None = None, prog: str = "python -m training.evaluate") -> int:
    args = build_parser(prog).parse_args(argv)
    generated = _parse_generated(args.generated)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    try:
        methods, levels = _dual_clock_request(args, methods, generated)
        settings = GenerationSettings(num_frames=args.frames, height=args.height, width=args.width,
                                      num_steps=args.steps, min_guidance=args.min_guidance,
                                      max_guidance=args.max_guidance, fps=args.fps, motion_bucket_id=args.motion_bucket,
                                      noise_aug_strength=args.noise_aug, seed=args.seed, clip_fps=args.clip_fps,
                                      crop=args.crop, **levels)
        check_options(args, settings, generated)
        results = evaluate(args.data, methods, out_dir=args.out, svd=args.svd, interdyn=args.interdyn,
                           generated=generated, coshand=args.coshand, settings=settings, device=args.device,
                           precision=args.precision, decode_chunk_size=args.decode_chunk,
                           lpips_alexnet=args.lpips_alexnet, inception_weights=args.inception, i3d_weights=args.i3d,
                           cotracker_checkpoint=args.cotracker_checkpoint, cotracker_code=args.cotracker_code,
                           kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size,
                           mf_points=args.mf_points, limit=args.limit, progress=not args.no_progress,
                           trust_i3d=args.trust_i3d)
    except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - a full or read-only disk: one line; what was written is whole
        print(f"error: {storage_message_or_raise(err, args.out)}", file=sys.stderr)
        return 2
    if not distributed.context().is_main:
        return 0
    print(table1_markdown(results))
    print(table_s3_markdown(results))
    out = Path(args.out)
    print(f"wrote {out / 'results.json'}, {out / 'table1.md'}, {out / 'table_s3.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
