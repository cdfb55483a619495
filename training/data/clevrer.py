"""CLEVRER -> folder layout with the entering objects as control.

Inputs (the released CLEVRER files, see docs/datasets.md):

* videos ``video_XXXXX.mp4`` (480x320, 128 frames);
* ``annotation_XXXXX.json``: ``{"scene_index", "video_filename", "object_property": [{"object_id", "color",
  "material", "shape"}], "motion_trajectory": [...], "collision": [{"object_ids": [a, b], "frame_id": f}]}``;
* mask proposals (``derender_proposals/sim_XXXXX.json``; ``proposal_XXXXX.json`` also accepted):
  ``{"video_name": "sim_XXXXX", "frames": [{"frame_index": i, "objects": [{"mask": {"size": [h, w],
  "counts": <COCO RLE string or list>}, "color", "material", "shape", "score"}]}]}``; a proposal is
  matched to an annotated object by (colour, material, shape).

Per video: a start frame drawn (seeded) among the frames before the first collision, such that an
object *enters* within the clip (no mask on the first sampled frame, a mask later); the entering
objects are the control (``control.mp4``, ``CONTROL_PALETTE`` colours in object-id order) and their
union is ``mask_hand.mp4``; the other (stationary or later-hit) objects are ``mask_<name>.mp4`` and not
controlled. Video, control and masks are fitted jointly to 320x448.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from interdyn.core.control import CONTROL_PALETTE, fit_control, resample_frame_indices
from interdyn.data.video_io import VideoReadError, read_video

from .clip_writer import PreparedRun, safe_name, unique_names, write_clip_folder
from .samples import item_rng

__all__ = ["rle_decode", "rle_encode", "object_masks", "entering_objects", "candidate_starts", "prepare_clevrer",
           "prepare_clevrer_from_args"]

REASON_MISSING = "missing annotation or proposals"
REASON_NO_VIDEO = "video missing or unreadable"
REASON_SHORT = "too short"
REASON_NO_START = "no start before a collision"
REASON_NO_ENTERING = "no entering object"
REASON_TOO_MANY = "more entering objects than palette colours"


# ----------------------------------------------------------------------------- COCO RLE (no pycocotools)
def _counts_from_string(s: str) -> list[int]:
    """COCO's compressed RLE string -> run lengths (pycocotools ``rleFrString``)."""
    counts, p, m = [], 0, 0
    data = s.encode("ascii") if isinstance(s, str) else bytes(s)
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if m > 2:
            x += counts[m - 2]
        counts.append(x)
        m += 1
    return counts


def _counts_to_string(counts) -> str:
    out = []
    for i, c in enumerate(counts):
        x = int(c) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = not ((ch & 0x10) == 0 and x == 0 or (ch & 0x10) != 0 and x == -1)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def rle_decode(rle: dict) -> np.ndarray:
    """``{"size": [h, w], "counts": str | list}`` -> bool ``[h, w]`` (column-major runs, first run = zeros)."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    counts = _counts_from_string(counts) if isinstance(counts, (str, bytes)) else [int(c) for c in counts]
    flat = np.zeros(h * w, dtype=bool)
    pos, val = 0, False
    for c in counts:
        if val:
            flat[pos:pos + c] = True
        pos += c
        val = not val
    return flat.reshape(w, h).T


def rle_encode(mask: np.ndarray) -> dict:
    """bool ``[h, w]`` -> compressed COCO RLE (as pycocotools ``encode``, counts as str)."""
    mask = np.asarray(mask, dtype=bool)
    flat = mask.T.reshape(-1)
    counts, val, run = [], False, 0
    for v in flat:
        if v != val:
            counts.append(run)
            run, val = 0, v
        run += 1
    counts.append(run)
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": _counts_to_string(counts)}


# ----------------------------------------------------------------------------- masks and choices (pure)
def _key(d: dict) -> tuple:
    return (str(d.get("color", "")).lower(), str(d.get("material", "")).lower(), str(d.get("shape", "")).lower())


def object_masks(annotation: dict, proposals: dict, num_frames: int, height: int, width: int) -> torch.Tensor:
    """``[O, F, H, W]`` bool masks of the annotated objects (order of ``object_property``) from the proposals."""
    props = annotation["object_property"]
    index = {}
    for k, o in enumerate(props):
        index.setdefault(_key(o), k)
    masks = torch.zeros(len(props), num_frames, height, width, dtype=torch.bool)
    for fr in proposals.get("frames", []):
        f = int(fr.get("frame_index", -1))
        if not 0 <= f < num_frames:
            continue
        for o in fr.get("objects", []):
            k = index.get(_key(o))
            if k is None:
                continue
            m = rle_decode(o["mask"])
            if m.shape != (height, width):
                m = torch.nn.functional.interpolate(torch.from_numpy(m)[None, None].float(), size=(height, width),
                                                    mode="nearest")[0, 0].numpy() > 0.5
            masks[k, f] |= torch.from_numpy(m)
    return masks


def entering_objects(masks: torch.Tensor, indices) -> list[int]:
    """Objects with no mask on the first sampled frame and a mask on a later sampled frame."""
    vis = masks[:, list(indices)].flatten(2).any(-1)  # [O, F]
    return [k for k in range(masks.shape[0]) if not bool(vis[k, 0]) and bool(vis[k, 1:].any())]


def first_collision(annotation: dict) -> int | None:
    frames = [int(c["frame_id"]) for c in annotation.get("collision", [])]
    return min(frames) if frames else None


def candidate_starts(num_source: int, offsets, collision: int | None) -> list[int]:
    """Start frames whose clip fits and which begin before the first collision."""
    last = num_source - 1 - offsets[-1]
    upper = last if collision is None else min(last, collision - 1)
    return list(range(0, upper + 1))


def _find(root: Path, *patterns: str) -> dict[str, Path]:
    out = {}
    for p in sorted(q for pattern in patterns for q in root.rglob(pattern)):
        m = re.search(r"(\d+)", p.stem)
        if m:
            out.setdefault(str(int(m.group(1))), p)
    return out


def prepare_clevrer(videos_dir, annotations_dir, proposals_dir, out_dir, *, fps: float | None = None,
                    num_frames: int = 14, height: int = 320, width: int = 448, crop: str = "center", seed: int = 0,
                    limit: int | None = None, overwrite: bool = False) -> dict:
    videos = _find(Path(videos_dir), "video_*.mp4")
    annots = _find(Path(annotations_dir), "annotation_*.json")
    props = _find(Path(proposals_dir), "sim_*.json", "proposal_*.json")
    out_dir = Path(out_dir)
    ids = sorted(videos, key=int)[: limit if limit else None]
    # before any work: never write into someone else's folder; one run at a time; each rank every N-th video
    with PreparedRun(out_dir, "clevrer", order=[f"video_{int(v):05d}" for v in ids]) as run:
        _prepare_clevrer_videos(run.summary, run.shard(ids), videos, annots, props, out_dir, fps=fps,
                                num_frames=num_frames, height=height, width=width, crop=crop, seed=seed,
                                overwrite=overwrite)
        return run.report()


def _prepare_clevrer_videos(summary, ids, videos, annots, props, out_dir, *, fps, num_frames, height, width, crop,
                            seed, overwrite) -> None:
    for vid in ids:
        name = f"video_{int(vid):05d}"
        if (out_dir / name / "meta.json").is_file() and not overwrite:
            summary.keep()
            continue
        if vid not in annots or vid not in props:
            summary.drop(REASON_MISSING, name)
            continue
        try:
            frames, src_fps = read_video(videos[vid])
        except (VideoReadError, FileNotFoundError):
            summary.drop(REASON_NO_VIDEO, name)
            continue
        count, h, w = frames.shape[:3]
        target = float(fps or src_fps)
        try:
            offsets = resample_frame_indices(count, src_fps, target, num_frames, 0)
        except ValueError:
            summary.drop(REASON_SHORT, name)
            continue
        annotation = json.loads(annots[vid].read_text())
        masks = object_masks(annotation, json.loads(props[vid].read_text()), count, h, w)
        starts = candidate_starts(count, offsets, first_collision(annotation))
        if not starts:
            summary.drop(REASON_NO_START, name)
            continue
        rng = item_rng(seed, 0, int(vid))
        chosen = None
        for s in rng.permutation(starts).tolist():
            entering = entering_objects(masks, [s + o for o in offsets])
            if entering:
                chosen = (int(s), entering)
                break
        if chosen is None:
            summary.drop(REASON_NO_ENTERING, name)
            continue
        start, entering = chosen
        if len(entering) > len(CONTROL_PALETTE):
            summary.drop(REASON_TOO_MANY, name)
            continue
        indices = [start + o for o in offsets]
        clip = torch.from_numpy(np.ascontiguousarray(frames[indices])).permute(0, 3, 1, 2).float() / 255.0
        m = masks[:, indices]
        video, control, m = fit_control(clip, masks=m, height=height, width=width, crop=crop, drivers=entering)
        prop = annotation["object_property"]
        names = unique_names([safe_name(f"{o.get('color', '')}_{o.get('material', '')}_{o.get('shape', '')}")
                              for o in prop])
        others = {names[k]: m[k] for k in range(len(prop)) if k not in entering}
        meta = {"source": name, "dataset": "clevrer", "label": "", "fps": target, "source_fps": float(src_fps),
                "source_frames": indices, "start_frame": start, "first_collision": first_collision(annotation),
                "controlled": [names[k] for k in entering], "control_colors": [list(c) for c in
                                                                               CONTROL_PALETTE[:len(entering)]]}
        write_clip_folder(out_dir / name, video, target, m[entering].any(0), others, meta, control=control)
        summary.keep()


def prepare_clevrer_from_args(args) -> dict:
    return prepare_clevrer(args.videos, args.annotations, args.proposals, args.out, fps=args.fps,
                           num_frames=args.num_frames, height=args.height, width=args.width, crop=args.crop,
                           seed=args.seed, limit=args.limit, overwrite=args.overwrite)
