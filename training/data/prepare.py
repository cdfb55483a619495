"""Prepare real datasets in the folder layout of :mod:`training.data.folder`.

::

    python -m training.data.prepare ssv2    --help   # Something-Something-v2 + Something-Else boxes, SAM2 masks
    python -m training.data.prepare clevrer --help   # CLEVRER videos + annotations + mask proposals
    python -m training.data.prepare dexycb  --help   # DexYCB colour frames + seg label maps

Every preparer writes ``OUT/<id>/video.mp4`` (lossy), ``mask_hand.mp4`` and ``mask_<object>.mp4``
(lossless), ``meta.json`` and ``label.txt``; CLEVRER also ``control.mp4``. Clips are filtered by
small pure functions that return a reason string (or ``None`` to keep); the counts per reason are
printed and written to ``OUT/summary.json``. See docs/datasets.md.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import torch

from interdyn.safe_output import claim_output_folder, write_text_atomic
from interdyn.video_io import write_video

#: files only a preparer of ours writes at the top of its output folder (older outputs have no marker)
PREPARED_LEGACY = ("summary.json",)

__all__ = ["Summary", "safe_name", "write_clip_folder", "claim_prepared_folder", "main"]


def claim_prepared_folder(out_dir) -> Path:
    """The preparers' ``--out``: new, empty, or a prepared-data folder of ours; checked before any work."""
    return claim_output_folder(out_dir, what="--out", legacy=PREPARED_LEGACY)


class Summary:
    """Counts of kept clips and dropped clips per reason (with a few example ids)."""

    def __init__(self, dataset: str):
        self.dataset, self.kept, self.dropped, self.examples = dataset, 0, Counter(), {}

    def keep(self) -> None:
        self.kept += 1

    def drop(self, reason: str, clip_id: str) -> None:
        self.dropped[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if len(ex) < 5:
            ex.append(str(clip_id))

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "kept": self.kept, "dropped": sum(self.dropped.values()),
                "dropped_by_reason": dict(sorted(self.dropped.items())), "examples": self.examples}

    def report(self, out_dir) -> dict:
        d = self.as_dict()
        out = claim_output_folder(out_dir, what="--out", legacy=PREPARED_LEGACY)
        write_text_atomic(out / "summary.json", json.dumps(d, indent=2) + "\n")
        print(f"[{self.dataset}] kept {d['kept']}, dropped {d['dropped']}")
        for reason, n in d["dropped_by_reason"].items():
            print(f"  dropped {n:6d}  {reason}")
        print(f"  summary written to {out / 'summary.json'}")
        return d


def safe_name(text: str, fallback: str = "object") -> str:
    """A file-name-safe object name (``mask_<name>.mp4``): lowercase, ``[a-z0-9_]``, never ``hand``."""
    name = re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_")[:40] or fallback
    return f"{name}_obj" if name == "hand" else name


def unique_names(names) -> list[str]:
    seen: Counter = Counter()
    out = []
    for n in names:
        seen[n] += 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def write_clip_folder(folder, video: torch.Tensor, fps: float, hand: torch.Tensor, objects: dict | None = None,
                      meta: dict | None = None, control: torch.Tensor | None = None, crf: int = 18) -> Path:
    """Write one clip: ``video`` ``[F, 3, H, W]`` float [0, 1], ``hand`` ``[F, H, W]`` bool, ``objects``
    ``{name: [F, H, W] bool}``, optional ``control`` ``[F, 3, H, W]`` float; plus meta.json / label.txt."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_video(folder / "video.mp4", (video.clamp(0, 1) * 255).round().to(torch.uint8), fps, crf=crf, layout="FCHW")
    write_video(folder / "mask_hand.mp4", hand.to(torch.bool).numpy(), fps, lossless=True)
    for name, m in (objects or {}).items():
        write_video(folder / f"mask_{name}.mp4", m.to(torch.bool).numpy(), fps, lossless=True)
    if control is not None:
        write_video(folder / "control.mp4", (control.clamp(0, 1) * 255).round().to(torch.uint8), fps,
                    lossless=True, layout="FCHW")
    meta = dict(meta or {})
    meta.setdefault("fps", float(fps))
    meta["objects"] = list((objects or {}).keys())
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    (folder / "label.txt").write_text(str(meta.get("label", "")) + "\n")
    return folder


def _common(p: argparse.ArgumentParser, *, fps: float | None, frames: int, height: int, width: int) -> None:
    p.add_argument("--out", required=True, help="output folder (one <id>/ sub-folder per kept clip + summary.json)")
    p.add_argument("--fps", type=float, default=fps,
                   help=f"target frame rate of the written clips (default {fps if fps else 'the source rate'})")
    p.add_argument("--num-frames", type=int, default=frames, help=f"frames per written clip (default {frames})")
    p.add_argument("--height", type=int, default=height, help=f"output height (default {height})")
    p.add_argument("--width", type=int, default=width, help=f"output width (default {width})")
    p.add_argument("--limit", type=int, default=None, help="process at most this many videos")
    p.add_argument("--overwrite", action="store_true", help="redo clips whose folder already has meta.json")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.data.prepare", description=__doc__.split("\n\n")[0])
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
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.dataset == "ssv2":
        from .ssv2 import prepare_ssv2_from_args as run
    elif args.dataset == "clevrer":
        from .clevrer import prepare_clevrer_from_args as run
    else:
        from .dexycb import prepare_dexycb_from_args as run
    try:
        run(args)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:  # OutputError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
