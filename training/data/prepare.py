"""Prepare real datasets in the folder layout of :mod:`training.data.folder`.

::

    python -m training.data.prepare ssv2    --help   # Something-Something-v2 + Something-Else boxes, SAM2 masks
    python -m training.data.prepare clevrer --help   # CLEVRER videos + annotations + mask proposals
    python -m training.data.prepare dexycb  --help   # DexYCB colour frames + seg label maps
    python -m training.data.prepare synthetic --help # the synthetic collision world (no download, no model)

Every preparer writes ``OUT/<id>/video.mp4`` (lossy), ``mask_hand.mp4`` and ``mask_<object>.mp4``
(lossless), ``meta.json`` and ``label.txt``; CLEVRER also ``control.mp4``. Clips are filtered by
small pure functions that return a reason string (or ``None`` to keep); the counts per reason are
printed and written to ``OUT/summary.json``. See docs/datasets.md.

Under ``torchrun --nproc_per_node N`` / ``accelerate launch`` each process prepares every N-th source video
(SAM2 on its own GPU), every clip folder is written atomically and skipped when already there, and rank 0
writes the one merged ``summary.json`` (:class:`training.data.clip_writer.PreparedRun`; docs/scale.md).
"""
from __future__ import annotations

import argparse
import re
import sys

import torch

from interdyn.support.safe_output import check_output_path, storage_message_or_raise
from interdyn.support.validation import (InputError, SAMPLING_BOUNDS, check_count, check_input_path, check_range,
                                         check_seed, check_video_size)

from . import clevrer, dexycb, ssv2, synthetic_clips
from .clip_writer import Summary, claim_prepared_folder, safe_name, unique_names, write_clip_folder

__all__ = ["Summary", "claim_prepared_folder", "safe_name", "unique_names", "write_clip_folder", "build_parser",
           "main"]


def plain_text(text: str) -> str:
    """Docstring text for --help: Sphinx roles (:mod:`x`) and double backquotes removed."""
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text).replace("``", "")


def _common(p: argparse.ArgumentParser, *, fps: float | None, frames: int, height: int, width: int) -> None:
    p.add_argument("--out", required=True, help="output folder (one <id>/ sub-folder per kept clip + summary.json)")
    p.add_argument("--fps", type=float, default=fps,
                   help=f"target frame rate of the written clips (default {fps if fps else 'the source rate'})")
    p.add_argument("--num-frames", type=int, default=frames, help=f"frames per written clip (default {frames})")
    p.add_argument("--height", type=int, default=height, help=f"output height (default {height})")
    p.add_argument("--width", type=int, default=width, help=f"output width (default {width})")
    p.add_argument("--limit", type=int, default=None, help="process at most this many videos")
    p.add_argument("--overwrite", action="store_true", help="redo clips whose folder already has meta.json")


def build_parser(prog: str = "python -m training.data.prepare") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=plain_text(__doc__.split("\n\n")[0]))
    sub = parser.add_subparsers(dest="dataset", required=True)

    p = sub.add_parser("ssv2", help="Something-Something-v2 videos + Something-Else boxes -> SAM2 masks")
    p.add_argument("--videos", required=True, help="folder of SSv2 videos <id>.webm")
    p.add_argument("--labels", required=True, nargs="+", help="SSv2 labels JSON file(s) (train.json, validation.json)")
    p.add_argument("--boxes", required=True, nargs="+", help="Something-Else bounding_box_smthsmth_part*.json file(s)")
    p.add_argument("--sam2-checkpoint", default=None, help="SAM2 checkpoint (.pt/.safetensors); required unless "
                                                           "--sam2-random")
    p.add_argument("--sam2-config", default=None, help="SAM2 config (default: matches the checkpoint name)")
    p.add_argument("--sam2-image-size", type=int, default=None, help="SAM2 input resolution (default 1024)")
    p.add_argument("--sam2-random", action="store_true", help="random-weight tiny SAM2 (tests / smoke runs only)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--box-frame-offset", type=int, default=1,
                   help="number of the first annotated frame file (Something-Else: 0001.jpg -> 1)")
    p.add_argument("--start-zero", action="store_true",
                   help="only try start frame 0 (default: the earliest start where hand and objects are boxed on "
                        "every sampled frame)")
    p.add_argument("--min-height", type=int, default=240,
                   help="drop sources lower than this (default 240: SSv2 webm are 240 px high; they are upscaled)")
    p.add_argument("--min-width", type=int, default=320, help="drop sources narrower than this (default 320)")
    _common(p, fps=7.0, frames=14, height=256, width=384)

    p = sub.add_parser("clevrer", help="CLEVRER videos + annotations + mask proposals -> entering-object control")
    p.add_argument("--videos", required=True, help="folder searched recursively for video_XXXXX.mp4")
    p.add_argument("--annotations", required=True, help="folder searched recursively for annotation_XXXXX.json")
    p.add_argument("--proposals", required=True, help="folder searched recursively for sim_XXXXX.json (derender_proposals) or "
                        "proposal_XXXXX.json")
    p.add_argument("--seed", type=int, default=0, help="seed of the start-frame choice")
    p.add_argument("--crop", default="center", choices=("center", "mask"), help="crop of the 320x448 fit")
    _common(p, fps=None, frames=14, height=320, width=448)

    p = sub.add_parser("dexycb", help="DexYCB colour frames + seg maps -> hand/object masks")
    p.add_argument("--root", required=True, help="DexYCB root (<subject>/<sequence>/<camera serial>/color_*.jpg)")
    p.add_argument("--occlusion", default="visible", choices=("visible", "amodal"),
                   help="visible: hand = seg==255 only (occluded hand pixels missing); amodal: plus the "
                        "object pixels inside the hand's convex hull (where the object covers the hand)")
    p.add_argument("--source-fps", type=float, default=30.0, help="DexYCB capture rate (30)")
    p.add_argument("--cameras", nargs="*", default=None, help="only these camera serials (default all)")
    p.add_argument("--crop", default="mask", choices=("center", "mask"))
    _common(p, fps=7.0, frames=14, height=256, width=384)

    p = sub.add_parser("synthetic", help="scenes of the synthetic collision world (no download, no model): "
                                         "try evaluation on a CPU")
    p.add_argument("--num-clips", type=int, default=16, help="number of scenes (default 16)")
    p.add_argument("--seed", type=int, default=1_000_000,
                   help="first scene seed (default 1000000: held out from the built-in model's training)")
    p.add_argument("--preset", default="push", choices=("push", "random", "chain", "hit", "miss"),
                   help="scene generator (default push: a driven disc pushes a free disc)")
    p.add_argument("--world", default="toy", choices=("toy", "full"),
                   help="toy: the built-in model's world (one background, four colours, discs); full: every "
                        "background, colour and shape")
    _common(p, fps=6.0, frames=8, height=64, width=64)
    return parser


#: the input options of the preparers (files and folders read): each must be a regular file or a folder
INPUT_OPTIONS = ("videos", "labels", "boxes", "sam2_checkpoint", "sam2_config", "annotations", "proposals", "root")
#: synthetic clips one run may ask for (10 million 8-frame clips are about a terabyte)
MAX_CLIPS = 10_000_000


def check_options(args: argparse.Namespace) -> None:
    """Every numeric option of every dataset, before any input is read or any folder made: finite, in range, a
    clip size within the memory budget; messages name the option as typed (``--num-frames``)."""
    check_output_path(args.out, "--out", folder=True)
    for dest in INPUT_OPTIONS:  # a FIFO or device as an input would block (or never end) the first read
        values = getattr(args, dest, None)
        for value in values if isinstance(values, list) else [values]:
            if value is not None:
                check_input_path(value, f"--{dest.replace('_', '-')}", contents=True)
    for dest in ("fps", "source_fps"):
        value = getattr(args, dest, None)
        if value is not None and check_range(value, f"--{dest.replace('_', '-')}", 0, SAMPLING_BOUNDS["fps"]) <= 0:
            raise InputError(f"--{dest.replace('_', '-')} must be > 0 frames per second, got {value}")
    for dest in ("num_frames", "height", "width", "limit", "num_clips", "sam2_image_size"):
        value = getattr(args, dest, None)
        if value is not None:
            check_count(value, f"--{dest.replace('_', '-')}")
    for dest in ("height", "width"):  # video encoders (libx264) stop far below what memory allows
        if getattr(args, dest) > 8192:
            raise InputError(f"--{dest} must be at most 8192 pixels (the clips are encoded as video), got "
                             f"{getattr(args, dest)}")
    for dest in ("min_height", "min_width", "box_frame_offset"):
        value = getattr(args, dest, None)
        if value is not None:
            check_count(value, f"--{dest.replace('_', '-')}", minimum=0)
    if getattr(args, "num_clips", None) is not None:
        check_count(args.num_clips, "--num-clips", maximum=MAX_CLIPS)
    if getattr(args, "seed", None) is not None:  # the synthetic scenes use seed, seed + 1, ...
        check_seed(args.seed, "--seed", span=getattr(args, "num_clips", None) or 1)
    check_video_size(args.num_frames, args.height, args.width, names=("--num-frames", "--height", "--width"),
                     what="one clip")


def main(argv=None, prog: str = "python -m training.data.prepare") -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        check_options(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    run = {"ssv2": ssv2.prepare_ssv2_from_args, "clevrer": clevrer.prepare_clevrer_from_args,
           "dexycb": dexycb.prepare_dexycb_from_args,
           "synthetic": synthetic_clips.prepare_synthetic_from_args}[args.dataset]
    try:
        run(args)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:  # OutputError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - a full or read-only disk: one line; the clips written are whole
        print(f"error: {storage_message_or_raise(err, args.out)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
