"""SAM2 Video Masks: track objects prompted by boxes/points through IMAGE frames -> MASK frames."""
from __future__ import annotations

import torch

from ..interdyn.segmentation import ObjectPrompt, load_sam2_video_predictor, parse_prompts, segment_video
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
        _CACHE[key] = load_sam2_video_predictor(path, device=host.offload_device(), image_size=resolution)
    return _CACHE[key]


class SAM2VideoMasks:
    DESCRIPTION = ("Tracks objects through video frames with SAM2 (local checkpoint from models/sam2) from boxes "
                   "and/or points placed on one frame. Outputs the merged masks, every object's masks one object "
                   "after another, and the object count (connect both to InterDyn Control From Masks' mask_1 and "
                   "objects_in_mask_1 for one colour per object).")
    CATEGORY = "InterDyn"
    FUNCTION = "segment"
    RETURN_TYPES = ("MASK", "MASK", "INT")
    RETURN_NAMES = ("masks", "object_masks", "object_count")
    OUTPUT_TOOLTIPS = (
        "All objects merged: one mask per frame [frames, H, W] (white driving control).",
        "Each object's masks, object after object: [objects x frames, H, W], in prompt order (JSON prompts "
        "first, then bbox boxes).",
        "Number of tracked objects.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Video frames (IMAGE batch), e.g. from Get Video Components."}),
                "sam2_model": (models.list_sam2_checkpoints(), {
                    "tooltip": "SAM2 / SAM2.1 checkpoint (.pt or .safetensors) in models/sam2; the size (tiny, "
                               "small, base_plus, large) is read from the file name, e.g. sam2.1_hiera_tiny.pt."}),
                "prompts": ("STRING", {"multiline": True, "default": DEFAULT_PROMPTS,
                                       "tooltip": "JSON list, one entry per object: {\"box\": [x0, y0, x1, y1]} "
                                                  "and/or {\"points\": [[x, y], ...], \"labels\": [1, 0, ...]} "
                                                  "(1 on the object, 0 background), in pixels of the frames. May be "
                                                  "empty when bbox is connected."}),
                "prompt_frame": ("INT", {"default": 0, "min": 0, "max": 100000,
                                         "tooltip": "Frame the prompts are placed on; masks propagate forward and "
                                                    "back from it."}),
                "device": (["auto", "cpu"], {"default": "auto",
                                             "tooltip": "auto: ComfyUI's device (GPU if any); cpu: always the CPU."}),
                "resolution": ("INT", {"default": 1024, "min": 256, "max": 2048, "step": 32,
                                       "tooltip": "SAM2's input size (1024 as trained); 512 runs much faster on "
                                                  "the CPU with coarser masks."}),
            },
            "optional": {
                "bbox": ("BBOX", {"tooltip": "Optional boxes [x0, y0, x1, y1] from a detector node; each box is "
                                             "one more object, after the JSON prompts."}),
            },
        }

    def segment(self, images, sam2_model, prompts, prompt_frame, device, resolution, bbox=None):
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
