"""Writing one prepared clip folder (the layout :mod:`training.data.folder` reads) and counting what
a preparer kept and dropped. Shared by the preparers (:mod:`training.data.ssv2`,
:mod:`training.data.clevrer`, :mod:`training.data.dexycb`); the command line that dispatches to them
is :mod:`training.data.prepare`. This module imports no preparer (one direction, no import circle).
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import torch

from interdyn.safe_output import claim_output_folder, write_text_atomic
from interdyn.video_io import write_video

#: files only a preparer of ours writes at the top of its output folder (older outputs have no marker)
PREPARED_LEGACY = ("summary.json",)


def claim_prepared_folder(out_dir) -> Path:
    """The preparers' ``--out``: new, empty, or a prepared-data folder of ours; checked before any work."""
    return claim_output_folder(out_dir, what="--out", legacy=PREPARED_LEGACY)

__all__ = ["Summary", "safe_name", "unique_names", "write_clip_folder"]


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
