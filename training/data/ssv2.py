"""Something-Something-v2 + Something-Else boxes -> folder layout with SAM2 masks.

Inputs (assumed formats, see docs/datasets.md):

* SSv2 videos ``<videos>/<id>.webm`` (12 fps, height 240).
* SSv2 labels JSON: a list of ``{"id": "78687", "label": "holding potato next to vicks vaporub bottle",
  "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks vaporub bottle"]}``
  (``train.json`` / ``validation.json``).
* Something-Else ``bounding_box_smthsmth_part*.json``: ``{"<id>": [frame, ...]}`` with one entry per
  annotated frame: ``{"name": "<id>/0001.jpg", "labels": [{"box2d": {"x1", "y1", "x2", "y2"},
  "category": "hand" | "<object text>", "standard_category": "hand" | "0000" | "0001", ...}], ...}``.
  Frame files are numbered from 1 (``0001.jpg`` = video frame 0; ``box_frame_offset``). A label is a
  hand when ``category`` or ``standard_category`` is ``"hand"``; other labels are objects, keyed by
  ``standard_category`` (``"0000"`` = first placeholder, ...) and named after ``category``.

Per video: template filter -> read video -> size filter -> length filter (``num_frames`` at ``fps``) ->
continuity filter: the earliest start frame whose sampled frames all have a hand box and a box of every
object (``search_start=False``: start 0 only) -> SAM2 prompted with each box on the first sampled frame ->
crop centred on the object
masks -> write ``video.mp4``, ``mask_hand.mp4`` (union of hands), ``mask_<object>.mp4``, ``meta.json``.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from interdyn.core.control import fit_to_size, resample_frame_indices
from interdyn.data.segmentation import build_sam2_video_predictor_random, load_sam2_video_predictor, segment_video
from interdyn.data.video_io import VideoReadError, read_video
from interdyn.support.distributed import rank_device

from .clip_writer import PreparedRun, claim_prepared_folder, safe_name, unique_names, write_clip_folder

__all__ = ["load_labels", "load_boxes", "frame_boxes", "template_reason", "size_reason", "length_reason",
           "visibility_reason", "first_visible_start", "prepare_ssv2", "prepare_ssv2_from_args"]

REASON_PRETENDING = "pretending class"
REASON_BEHIND = "behind class"
REASON_NO_LABEL = "no label entry"
REASON_NO_BOXES = "no Something-Else boxes"
REASON_NO_VIDEO = "video missing or unreadable"
REASON_SHORT = "too short"
REASON_SMALL = "too small"
REASON_HAND = "hand not continuously visible"
REASON_OBJECT = "object not continuously visible"
REASON_NO_OBJECT = "no object box"


def load_labels(paths) -> dict[str, dict]:
    """SSv2 label files -> ``{id: entry}`` (entries keep label/template/placeholders)."""
    out = {}
    for p in [paths] if isinstance(paths, (str, Path)) else paths:
        for e in json.loads(Path(p).read_text()):
            out[str(e["id"])] = e
    return out


def load_boxes(paths) -> dict[str, list]:
    """Something-Else box files -> ``{id: [frame entries]}``."""
    out = {}
    for p in [paths] if isinstance(paths, (str, Path)) else paths:
        out.update({str(k): v for k, v in json.loads(Path(p).read_text()).items()})
    return out


def _is_hand(lab: dict) -> bool:
    return str(lab.get("category", "")).lower() == "hand" or str(lab.get("standard_category", "")).lower() == "hand"


def frame_boxes(frames: list, offset: int = 1) -> tuple[dict[int, list], dict[int, dict], dict[str, str]]:
    """``(hands, objects, names)``: ``hands[frame] = [box, ...]``, ``objects[frame] = {key: box}``,
    ``names[key] = category text``; frame = number in the file name minus ``offset``; box = (x0, y0, x1, y1)."""
    hands, objects, names = {}, {}, {}
    for fr in frames:
        nums = re.findall(r"\d+", Path(str(fr["name"])).stem)
        if not nums:
            continue
        idx = int(nums[-1]) - int(offset)
        for lab in fr.get("labels", []):
            b = lab["box2d"]
            box = (float(b["x1"]), float(b["y1"]), float(b["x2"]), float(b["y2"]))
            if _is_hand(lab):
                hands.setdefault(idx, []).append(box)
            else:
                key = str(lab.get("standard_category", lab.get("gt_annotation", lab.get("category"))))
                names.setdefault(key, str(lab.get("category", key)))
                objects.setdefault(idx, {})[key] = box
    return hands, objects, names


# ----------------------------------------------------------------------------- filters (pure)
def template_reason(template: str) -> str | None:
    """Drop the "Pretending ..." classes and the classes with "behind" in the template."""
    t = str(template).lower()
    if "pretend" in t:
        return REASON_PRETENDING
    if re.search(r"\bbehind\b", t):
        return REASON_BEHIND
    return None


def size_reason(height: int, width: int, min_height: int, min_width: int) -> str | None:
    return REASON_SMALL if height < min_height or width < min_width else None


def length_reason(num_source: int, source_fps: float, fps: float, num_frames: int) -> str | None:
    try:
        resample_frame_indices(int(num_source), source_fps, fps, int(num_frames), 0)
    except ValueError:
        return REASON_SHORT
    return None


def _valid(box, height, width) -> bool:
    x0, y0, x1, y1 = box
    return x1 > x0 and y1 > y0 and x1 > 0 and y1 > 0 and x0 < width and y0 < height


def visibility_reason(indices, hands: dict, objects: dict, object_keys, height: int = 10**9,
                      width: int = 10**9) -> str | None:
    """A hand box and a box of every object on every sampled frame; at least one object."""
    if not object_keys:
        return REASON_NO_OBJECT
    for i in indices:
        if not any(_valid(b, height, width) for b in hands.get(i, [])):
            return REASON_HAND
    for i in indices:
        fr = objects.get(i, {})
        if any(k not in fr or not _valid(fr[k], height, width) for k in object_keys):
            return REASON_OBJECT
    return None


def first_visible_start(num_source: int, offsets, hands: dict, objects: dict, object_keys, height: int = 10**9,
                        width: int = 10**9, search: bool = True) -> tuple[int, str | None]:
    """``(start, None)`` for the earliest start whose sampled frames pass :func:`visibility_reason`
    (only start 0 when ``search`` is false), else ``(0, reason at start 0)``."""
    first = None
    for start in range(0, num_source - offsets[-1] if search else 1):
        reason = visibility_reason([start + o for o in offsets], hands, objects, object_keys, height, width)
        if reason is None:
            return start, None
        first = first or reason
    return 0, first


def _clip_box(box, height, width):
    x0, y0, x1, y1 = box
    x0, x1 = max(0.0, x0), min(float(width - 1), x1)
    y0, y1 = max(0.0, y0), min(float(height - 1), y1)
    return (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1))


# ----------------------------------------------------------------------------- driver
def prepare_ssv2(videos_dir, labels: dict, boxes: dict, out_dir, predictor, *, fps: float = 7.0, num_frames: int = 14,
                 height: int = 256, width: int = 384, min_height: int | None = None, min_width: int | None = None,
                 box_frame_offset: int = 1, search_start: bool = True, ids=None, limit: int | None = None,
                 overwrite: bool = False) -> dict:
    """Prepare the videos of ``ids`` (default: every id with boxes); returns the summary dict."""
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    min_height = height if min_height is None else min_height
    min_width = width if min_width is None else min_width
    ids = sorted(boxes) if ids is None else [str(i) for i in ids]
    if limit is not None:
        ids = ids[:limit]
    # before any work: never write into someone else's folder; one run at a time; each rank every N-th video
    with PreparedRun(out_dir, "ssv2", order=ids) as run:
        _prepare_ssv2_videos(run, run.shard(ids), videos_dir, labels, boxes, out_dir, predictor, fps=fps,
                             num_frames=num_frames, height=height, width=width, min_height=min_height,
                             min_width=min_width, box_frame_offset=box_frame_offset, search_start=search_start,
                             overwrite=overwrite)
        return run.report()


def _prepare_ssv2_videos(run, ids, videos_dir, labels, boxes, out_dir, predictor, *, fps, num_frames, height, width,
                         min_height, min_width, box_frame_offset, search_start, overwrite) -> None:
    summary = run.summary
    for vid in ids:
        entry = labels.get(vid)
        if entry is None:
            summary.drop(REASON_NO_LABEL, vid)
            continue
        reason = template_reason(entry.get("template", entry.get("label", "")))
        if reason:
            summary.drop(reason, vid)
            continue
        if vid not in boxes:
            summary.drop(REASON_NO_BOXES, vid)
            continue
        if (out_dir / vid / "meta.json").is_file() and not overwrite:
            summary.keep()
            continue
        path = next((p for p in (videos_dir / f"{vid}.webm", videos_dir / f"{vid}.mp4") if p.is_file()), None)
        try:
            if path is None:
                raise FileNotFoundError(vid)
            frames, src_fps = read_video(path)
        except (VideoReadError, FileNotFoundError):
            summary.drop(REASON_NO_VIDEO, vid)
            continue
        count, h, w = frames.shape[:3]
        reason = size_reason(h, w, min_height, min_width) or length_reason(count, src_fps, fps, num_frames)
        if reason:
            summary.drop(reason, vid)
            continue
        offsets = resample_frame_indices(count, src_fps, fps, num_frames, 0)
        hands, objects, names = frame_boxes(boxes[vid], box_frame_offset)
        keys = sorted({k for fr in objects.values() for k in fr})
        start, reason = first_visible_start(count, offsets, hands, objects, keys, h, w, search_start)
        if reason:
            summary.drop(reason, vid)
            continue
        indices = [start + o for o in offsets]
        clip = frames[indices]
        hand_boxes = [_clip_box(b, h, w) for b in hands[indices[0]] if _valid(b, h, w)]
        obj_boxes = [_clip_box(objects[indices[0]][k], h, w) for k in keys]
        prompts = [{"box": list(b)} for b in hand_boxes + obj_boxes]
        masks = segment_video(predictor, clip, prompts, 0, layout="FHWC")
        hand = masks[: len(hand_boxes)].any(0)
        objs = masks[len(hand_boxes):]
        video = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2).float() / 255.0
        hand3 = hand[:, None].float().expand(-1, 3, -1, -1)
        crop_masks = objs if bool(objs.any()) else hand[None]
        video, hand3, objs_fit = fit_to_size(video, control=hand3, masks=crop_masks, height=height, width=width,
                                             crop="mask", control_interpolation="nearest")
        if crop_masks is not objs:  # objects empty: crop on the hand, refit the (empty) object masks
            objs_fit = fit_to_size(masks=objs, height=height, width=width, crop="center")[2]
        obj_names = unique_names([safe_name(names.get(k, k)) for k in keys])
        placeholders = entry.get("placeholders", [])
        meta = {"source": vid, "dataset": "ssv2", "label": entry.get("label", ""),
                "template": entry.get("template", ""),
                "placeholders": placeholders, "fps": float(fps), "source_fps": float(src_fps),
                "source_frames": [int(i) for i in indices], "start_frame": int(indices[0]),
                "source_size": [int(h), int(w)],
                "object_keys": dict(zip(obj_names, keys))}
        write_clip_folder(out_dir / vid, video, fps, hand3[:, 0] > 0.5, dict(zip(obj_names, objs_fit)), meta)
        summary.keep()


def prepare_ssv2_from_args(args) -> dict:
    claim_prepared_folder(args.out)  # before loading SAM2
    args.device = rank_device(args.device)  # one GPU per process under torchrun / accelerate launch
    if args.sam2_random:
        predictor = build_sam2_video_predictor_random(device=args.device, image_size=args.sam2_image_size or 256)
    elif args.sam2_checkpoint:
        predictor = load_sam2_video_predictor(args.sam2_checkpoint, args.sam2_config, device=args.device,
                                              image_size=args.sam2_image_size)
    else:
        raise SystemExit("ssv2 needs --sam2-checkpoint PATH (or --sam2-random for a smoke test)")
    return prepare_ssv2(args.videos, load_labels(args.labels), load_boxes(args.boxes), args.out, predictor,
                        fps=args.fps, num_frames=args.num_frames, height=args.height, width=args.width,
                        min_height=args.min_height, min_width=args.min_width, box_frame_offset=args.box_frame_offset,
                        search_start=not args.start_zero,
                        limit=args.limit, overwrite=args.overwrite)
