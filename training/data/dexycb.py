"""DexYCB -> folder layout with hand masks from the ``seg`` label maps.

Input (the released DexYCB layout, see docs/datasets.md)::

    ROOT/<subject>/<sequence>/meta.yml                      optional: ycb_ids, ycb_grasp_ind
    ROOT/<subject>/<sequence>/<camera serial>/color_000000.jpg
    ROOT/<subject>/<sequence>/<camera serial>/labels_000000.npz   key "seg": 0 background,
                                                                  1..21 YCB object id, 255 hand

One clip per (sequence, camera): frames resampled from 30 fps to ``fps`` starting at frame 0.

Hand mask (``occlusion``):

* ``"visible"``: ``seg == 255`` — only the visible hand pixels; where the object occludes the hand
  the mask has holes.
* ``"amodal"``: the visible hand plus the object pixels that lie inside the convex hull of the visible
  hand pixels (and of ``joint_2d`` when the npz has it), i.e. an approximation of the full hand
  silhouette where the object covers it. Object pixels outside that hull stay object.

Objects: ``mask_<ycb name>.mp4`` for every YCB id of ``meta.yml`` (else every id seen in ``seg``),
with the grasped one named in ``meta.json`` (``grasped``).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from interdyn.core.control import fit_to_size, resample_frame_indices
from interdyn.support.safe_output import check_output_folder

from .clip_writer import DATASET_SIGNATURE_FILES, PreparedRun, write_clip_folder

__all__ = ["YCB_CLASSES", "HAND_LABEL", "hand_mask", "convex_hull_mask", "find_clips", "prepare_dexycb",
           "prepare_dexycb_from_args"]

HAND_LABEL = 255
YCB_CLASSES = {
    1: "002_master_chef_can", 2: "003_cracker_box", 3: "004_sugar_box", 4: "005_tomato_soup_can",
    5: "006_mustard_bottle", 6: "007_tuna_fish_can", 7: "008_pudding_box", 8: "009_gelatin_box",
    9: "010_potted_meat_can", 10: "011_banana", 11: "019_pitcher_base", 12: "021_bleach_cleanser", 13: "024_bowl",
    14: "025_mug", 15: "035_power_drill", 16: "036_wood_block", 17: "037_scissors", 18: "040_large_marker",
    19: "051_large_clamp", 20: "052_extra_large_clamp", 21: "061_foam_brick",
}
REASON_SHORT = "too short"
REASON_SMALL = "too small"
REASON_NO_LABELS = "labels npz missing"
REASON_NO_HAND = "hand not visible in any sampled frame"


def _hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull (monotone chain) of ``[N, 2]`` (x, y) points."""
    pts = sorted(set(map(tuple, points.tolist())))
    if len(pts) < 3:
        return np.asarray(pts, dtype=np.float64)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.asarray(lower[:-1] + upper[:-1], dtype=np.float64)


def convex_hull_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool ``[H, W]``: pixels (centres) inside or on the convex hull of ``points`` (x, y)."""
    out = np.zeros((height, width), dtype=bool)
    if len(points) == 0:
        return out
    hull = _hull(np.asarray(points, dtype=np.float64))
    if len(hull) < 3:
        for x, y in hull:
            if 0 <= int(y) < height and 0 <= int(x) < width:
                out[int(y), int(x)] = True
        return out
    ys, xs = np.mgrid[0:height, 0:width]
    inside = np.ones((height, width), dtype=bool)
    for (x0, y0), (x1, y1) in zip(hull, np.roll(hull, -1, axis=0)):
        inside &= (x1 - x0) * (ys - y0) - (y1 - y0) * (xs - x0) >= -1e-9
    return inside


def hand_mask(seg: np.ndarray, occlusion: str = "visible", joints_2d: np.ndarray | None = None) -> np.ndarray:
    """bool ``[H, W]`` hand mask of one ``seg`` map (see the module docstring for ``occlusion``)."""
    seg = np.asarray(seg)
    visible = seg == HAND_LABEL
    if occlusion == "visible":
        return visible
    if occlusion != "amodal":
        raise ValueError(f"occlusion must be 'visible' or 'amodal', got {occlusion!r}")
    ys, xs = np.nonzero(visible)
    pts = np.stack([xs, ys], 1).astype(np.float64)
    if joints_2d is not None:
        j = np.asarray(joints_2d, dtype=np.float64).reshape(-1, 2)
        j = j[np.isfinite(j).all(1) & (j >= 0).all(1)]
        pts = np.concatenate([pts, j]) if len(pts) else j
    if len(pts) == 0:
        return visible
    objects = (seg > 0) & (seg != HAND_LABEL)
    return visible | (objects & convex_hull_mask(pts, *seg.shape))


def find_clips(root) -> list[Path]:
    """Camera folders holding ``color_*.jpg``."""
    return sorted({p.parent for p in Path(root).rglob("color_*.jpg")})


def _num(p: Path) -> int:
    return int(re.findall(r"\d+", p.stem)[-1])


def _load_meta(seq_dir: Path) -> dict:
    f = seq_dir / "meta.yml"
    if not f.is_file():
        return {}
    return yaml.safe_load(f.read_text()) or {}


def prepare_dexycb(root, out_dir, *, occlusion: str = "visible", fps: float = 7.0, source_fps: float = 30.0,
                   num_frames: int = 14, height: int = 256, width: int = 384, crop: str = "mask", cameras=None,
                   limit: int | None = None, overwrite: bool = False) -> dict:
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} is not a folder (the DexYCB root: <subject>/<sequence>/<camera>/)")
    clips = find_clips(root)
    if not clips:
        # a foreign --out is named first
        check_output_folder(out_dir, what="--out", kind="dataset", signature_files=DATASET_SIGNATURE_FILES)
        raise FileNotFoundError(f"--root {root} holds no DexYCB camera folder (color_*.jpg files)")
    if cameras:
        clips = [c for c in clips if c.name in set(cameras)]
    clips = clips[: limit if limit else None]
    # before any work: never write into someone else's folder; one run at a time; each rank every N-th camera
    with PreparedRun(out_dir, "dexycb", order=["__".join(c.relative_to(root).parts) for c in clips]) as run:
        _prepare_dexycb_clips(run.summary, run.shard(clips), root, out_dir, occlusion=occlusion, fps=fps,
                              source_fps=source_fps, num_frames=num_frames, height=height, width=width, crop=crop,
                              overwrite=overwrite)
        return run.report()


def _prepare_dexycb_clips(summary, clips, root, out_dir, *, occlusion, fps, source_fps, num_frames, height, width,
                          crop, overwrite) -> None:
    for cam in clips:
        rel = cam.relative_to(root)
        clip_id = "__".join(rel.parts)
        if (out_dir / clip_id / "meta.json").is_file() and not overwrite:
            summary.keep()
            continue
        colors = sorted(cam.glob("color_*.jpg"), key=_num)
        try:
            indices = resample_frame_indices(len(colors), source_fps, fps, num_frames, 0)
        except ValueError:
            summary.drop(REASON_SHORT, clip_id)
            continue
        chosen = [colors[i] for i in indices]
        labels = [cam / f"labels_{_num(p):06d}.npz" for p in chosen]
        if not all(p.is_file() for p in labels):
            summary.drop(REASON_NO_LABELS, clip_id)
            continue
        frames = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in chosen])
        h, w = frames.shape[1:3]
        if h < height or w < width:
            summary.drop(REASON_SMALL, clip_id)
            continue
        segs, hands = [], []
        for p in labels:
            with np.load(p) as z:
                seg = z["seg"]
                joints = z["joint_2d"] if "joint_2d" in z.files else None
            segs.append(seg)
            hands.append(hand_mask(seg, occlusion, joints))
        segs, hand = np.stack(segs), torch.from_numpy(np.stack(hands))
        if not bool(hand.any()):
            summary.drop(REASON_NO_HAND, clip_id)
            continue
        meta_yml = _load_meta(cam.parent)
        ids = [int(i) for i in meta_yml.get("ycb_ids", [])] or sorted(
            int(v) for v in np.unique(segs) if 0 < v < HAND_LABEL)
        names = [YCB_CLASSES.get(i, f"ycb_{i}") for i in ids]
        objs = torch.from_numpy(np.stack([segs == i for i in ids])) if ids else torch.zeros(0, *segs.shape,
                                                                                             dtype=torch.bool)
        grasp = meta_yml.get("ycb_grasp_ind")
        grasped = names[int(grasp)] if grasp is not None and int(grasp) < len(names) else None
        video = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
        all_masks = torch.cat([hand[None], objs])
        video, _, all_masks = fit_to_size(video, masks=all_masks, height=height, width=width, crop=crop)
        meta = {"source": str(rel), "dataset": "dexycb", "label": f"grasp {grasped}" if grasped else "",
                "fps": float(fps), "source_fps": float(source_fps), "source_frames": indices,
                "occlusion": occlusion, "grasped": grasped, "ycb_ids": ids}
        write_clip_folder(out_dir / clip_id, video, fps, all_masks[0], dict(zip(names, all_masks[1:])), meta)
        summary.keep()


def prepare_dexycb_from_args(args) -> dict:
    return prepare_dexycb(args.root, args.out, occlusion=args.occlusion, fps=args.fps, source_fps=args.source_fps,
                          num_frames=args.num_frames, height=args.height, width=args.width, crop=args.crop,
                          cameras=args.cameras, limit=args.limit, overwrite=args.overwrite)
