"""Writing one prepared clip folder (the layout :mod:`training.data.folder` reads) and counting what
a preparer kept and dropped. Shared by the preparers (:mod:`training.data.ssv2`,
:mod:`training.data.clevrer`, :mod:`training.data.dexycb`); the command line that dispatches to them
is :mod:`training.data.prepare`. This module imports no preparer (one direction, no import circle).
"""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import torch

from interdyn.support import distributed
from interdyn.support.safe_output import atomic_folder, claim_output_folder, write_text_atomic
from interdyn.data.video_io import write_video

#: files only a preparer of ours writes at the top of its output folder: a folder holding one is a dataset of ours
#: even without our marker (older versions)
DATASET_SIGNATURE_FILES = ("summary.json",)
#: files only a preparer writes in a clip folder: a folder holding one is a clip of ours (clips carry no marker)
CLIP_SIGNATURE_FILES = ("meta.json", "video.mp4", "mask_hand.mp4")
#: every name a clip folder holds: a clip folder holding anything else is never replaced (--overwrite included)
CLIP_CONTENTS = r"meta\.json|label\.txt|video\.mp4|control\.mp4|mask_[^/]+\.mp4"


def claim_prepared_folder(out_dir) -> Path:
    """The preparers' ``--out``: new, empty, or a prepared-data folder of ours; checked before any work."""
    return claim_output_folder(out_dir, what="--out", kind="dataset", signature_files=DATASET_SIGNATURE_FILES)

__all__ = ["Summary", "PreparedRun", "safe_name", "unique_names", "write_clip_folder"]


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

    @classmethod
    def merged(cls, dataset: str, parts: list[dict], order=()) -> "Summary":
        """One summary from the ranks' :meth:`as_dict` parts; examples are the first five in ``order`` (the
        ids as the preparer lists them), as one process would have kept them."""
        position = {str(k): i for i, k in enumerate(order)}
        out = cls(dataset)
        examples: dict[str, list[str]] = {}
        for part in parts:
            out.kept += int(part["kept"])
            out.dropped.update({k: int(v) for k, v in part["dropped_by_reason"].items()})
            for reason, ids in part["examples"].items():
                examples.setdefault(reason, []).extend(ids)
        for reason, ids in sorted(examples.items()):  # by reason, as dropped_by_reason
            out.examples[reason] = sorted(ids, key=lambda i: (position.get(i, len(position)), i))[:5]
        return out

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "kept": self.kept, "dropped": sum(self.dropped.values()),
                "dropped_by_reason": dict(sorted(self.dropped.items())), "examples": self.examples}

    def report(self, out_dir) -> dict:
        d = self.as_dict()
        out = claim_output_folder(out_dir, what="--out", kind="dataset", signature_files=DATASET_SIGNATURE_FILES)
        write_text_atomic(out / "summary.json", json.dumps(d, indent=2) + "\n")
        if not distributed.context().is_main:
            return d
        print(f"[{self.dataset}] kept {d['kept']}, dropped {d['dropped']}")
        for reason, n in d["dropped_by_reason"].items():
            print(f"  dropped {n:6d}  {reason}")
        print(f"  summary written to {out / 'summary.json'}")
        return d


class PreparedRun:
    """A preparer's run over one or several torchrun / accelerate processes::

        with PreparedRun(out_dir, "ssv2", order=ids) as run:
            for vid in run.shard(ids):
                ...  run.summary.keep() / run.summary.drop(reason, vid)
            return run.report()

    Rank 0 claims ``out_dir`` (new, empty or ours) and locks it against a second run
    (:class:`interdyn.support.distributed.OutputLock`); each rank prepares every N-th item; :meth:`report` gathers
    the ranks' counts through small files, and rank 0 writes the one ``summary.json`` (the same as one
    process would write: ``order`` decides which example ids are kept). Every rank returns it.
    """

    def __init__(self, out_dir, dataset: str, order=()):
        self.out_dir, self.dataset, self.order = Path(out_dir), dataset, [str(o) for o in order]
        self.ctx = distributed.init()
        self.summary = Summary(dataset)
        self.lock = distributed.OutputLock(self.out_dir, what="--out", claim=claim_prepared_folder, ctx=self.ctx)

    def __enter__(self) -> "PreparedRun":
        self.lock.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.lock.__exit__(*exc)

    def shard(self, items) -> list:
        return distributed.shard(items, self.ctx)

    def report(self) -> dict:
        if self.ctx.world_size == 1:
            return Summary.merged(self.dataset, [self.summary.as_dict()], self.order).report(self.out_dir)
        parts = self.out_dir / ".interdyn-parts" / self.lock.run_id
        write_text_atomic(parts / f"rank-{self.ctx.rank}.json", json.dumps(self.summary.as_dict()))
        distributed.barrier()  # every rank's clips and counts are on disk
        if self.ctx.is_main:
            found = [json.loads(p.read_text()) for p in sorted(parts.glob("rank-*.json"))]
            if len(found) != self.ctx.world_size:
                raise RuntimeError(f"{parts}: {len(found)} of {self.ctx.world_size} ranks reported their counts")
            summary = Summary.merged(self.dataset, found, self.order).report(self.out_dir)
            shutil.rmtree(parts, ignore_errors=True)
            try:
                parts.parent.rmdir()
            except OSError:
                pass
            distributed.barrier()
            return summary
        distributed.barrier()  # rank 0 wrote summary.json
        return json.loads((self.out_dir / "summary.json").read_text())


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
    """Write one clip folder atomically (into a hidden temporary folder, then renamed into place): ``video`` ``[F, 3, H, W]`` float [0, 1], ``hand`` ``[F, H, W]`` bool, ``objects``
    ``{name: [F, H, W] bool}``, optional ``control`` ``[F, 3, H, W]`` float; plus meta.json / label.txt."""
    folder = Path(folder)
    # hidden temporary folder (FolderClips skips it); an existing folder is replaced only when it is a clip of ours
    # (--overwrite, or a partial folder of an older version); a new clip gets no marker file
    with atomic_folder(folder, what="clip folder", kind="dataset-clip", signature_files=CLIP_SIGNATURE_FILES,
                       contents=CLIP_CONTENTS, mark=False) as tmp:
        write_video(tmp / "video.mp4", (video.clamp(0, 1) * 255).round().to(torch.uint8), fps, crf=crf, layout="FCHW")
        write_video(tmp / "mask_hand.mp4", hand.to(torch.bool).numpy(), fps, lossless=True)
        for name, m in (objects or {}).items():
            write_video(tmp / f"mask_{name}.mp4", m.to(torch.bool).numpy(), fps, lossless=True)
        if control is not None:
            write_video(tmp / "control.mp4", (control.clamp(0, 1) * 255).round().to(torch.uint8), fps,
                        lossless=True, layout="FCHW")
        meta = dict(meta or {})
        meta.setdefault("fps", float(fps))
        meta["objects"] = list((objects or {}).keys())
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / "label.txt").write_text(str(meta.get("label", "")) + "\n")
    return folder
