"""SAM2 Video Masks: track objects prompted by boxes/points through IMAGE frames -> MASK frames."""
from __future__ import annotations

import torch

from ..interdyn.data.segmentation import ObjectPrompt, load_sam2_video_predictor, parse_prompts, segment_video
from . import convert, host, models

DEFAULT_PROMPTS = '[{"box": [40, 60, 200, 220]}]'
_CACHE: dict[tuple, object] = {}


def _boxes(bbox, prompt_frame: int, num_frames: int) -> list[ObjectPrompt]:
    """A BBOX input -> one box prompt per box. Accepts ``[x0, y0, x1, y1]``, a list of them, a tensor
    ``[N, 4]``, or one list per frame (then the prompt frame's list, or the first when lengths differ)."""
    if bbox is None:
        return []
    if isinstance(bbox, torch.Tensor):
        bbox = bbox.tolist()
    if isinstance(bbox, dict) and "boxes" in bbox:
        bbox = bbox["boxes"]
    if not isinstance(bbox, (list, tuple)) or not bbox:
        raise ValueError(f"bbox must be [x0, y0, x1, y1] or a list of such boxes, got {bbox!r}")
    if all(isinstance(v, (int, float)) for v in bbox):
        bbox = [bbox]
    elif all(isinstance(v, (list, tuple)) and v and isinstance(v[0], (list, tuple)) for v in bbox):
        bbox = bbox[prompt_frame] if len(bbox) == num_frames else bbox[0]
    return [ObjectPrompt.from_dict({"box": list(b)}, f"bbox {i}") for i, b in enumerate(bbox)]


def _predictor(path, device, resolution):
    key = (str(path), path.stat().st_mtime_ns, str(device), resolution)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_sam2_video_predictor(path, device=host.offload_device(), image_size=resolution,
                                                name="sam2_model")
    return _CACHE[key]


def segment(images, sam2_model, prompts, prompt_frame, device, resolution, bbox=None):
    """SAM2 Video Masks: prompts on one frame -> (masks, object_masks, object_count)."""
    frames = convert.image_to_frames(images, "images")
    objects = parse_prompts(prompts) if prompts and prompts.strip() else []
    objects += _boxes(bbox, prompt_frame, frames.shape[0])
    if not objects:
        raise ValueError("no objects to track: write prompts (e.g. " + DEFAULT_PROMPTS + ") or connect bbox")
    path = models.resolve_sam2(sam2_model)
    compute = host.torch_device() if device == "auto" else torch.device("cpu")
    predictor = _predictor(path, compute, resolution)
    total = frames.shape[0] + (prompt_frame + 1 if prompt_frame > 0 else 0)
    pbar = host.progress_bar(total)

    def on_frame(done, total):
        host.throw_if_interrupted()
        pbar.update_absolute(done, total)

    host.throw_if_interrupted()
    predictor.to(compute)
    try:
        masks = segment_video(predictor, frames, objects, prompt_frame, layout="FCHW", progress=on_frame,
                              offload_video_to_cpu=compute.type != "cpu")
    finally:
        predictor.to(host.offload_device())
    merged = masks.any(dim=0)
    return merged.float(), masks.flatten(0, 1).float(), int(masks.shape[0])
