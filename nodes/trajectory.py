"""InterDyn Mask Trajectory: one mask moved along keyframes -> a MASK sequence (motion without a video)."""
from __future__ import annotations

from ..interdyn.trajectory import EASINGS, animate_mask
from ..interdyn.validation import check_count
from . import convert

DEFAULT_KEYFRAMES = ('[{"frame": 0, "x": 0, "y": 0, "scale": 1.0, "rotation": 0, "easing": "ease_in_out"},\n'
                     ' {"frame": 13, "x": 120, "y": 0, "scale": 1.0, "rotation": 0}]')


class InterDynMaskTrajectory:
    DESCRIPTION = ("Authors a driving motion without a video: moves one mask (the first of the batch) along "
                   "keyframes of position, scale and rotation with easing, one mask per output frame. Feed the "
                   "result to InterDyn Control From Masks with source_fps = target_fps.")
    CATEGORY = "InterDyn"
    FUNCTION = "animate"
    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("masks",)
    OUTPUT_TOOLTIPS = ("The moved mask, one per frame [frames, H, W], same size as the input mask.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "mask": ("MASK", {"tooltip": "The hand/object mask drawn on the first frame (only the first mask of a "
                                         "batch is used)."}),
            "keyframes": ("STRING", {"multiline": True, "default": DEFAULT_KEYFRAMES,
                                     "tooltip": "JSON list of {frame, x, y, scale, rotation, easing}: x, y offset in "
                                                "pixels of the mask (x right, y down), scale about the mask's centre, "
                                                "rotation in degrees clockwise, easing towards the next keyframe: "
                                                + ", ".join(EASINGS) + ". Missing values: no offset, scale 1, "
                                                "rotation 0, linear."}),
            "frames": ("INT", {"default": 14, "min": 1, "max": 1024,
                               "tooltip": "Number of output masks (frames 0 .. frames-1)."}),
            "interpolation": (["bilinear", "nearest"], {"default": "bilinear",
                                                        "tooltip": "bilinear: soft edges; nearest: stays binary."}),
        }, "optional": {
            "coordinates": ("STRING", {"forceInput": True,
                                       "tooltip": "A drawn path: the KJNodes Spline Editor's coordinates (or "
                                                  "ComfyUI's Wan tracks), pixels of the mask. The mask follows the "
                                                  "track starting nearest to it, resampled to frames; it replaces "
                                                  "the keyframes' x, y."}),
        }}

    def animate(self, mask, keyframes, frames, interpolation, coordinates=None):
        check_count(frames, "frames")
        first = convert.mask_frames(mask)[0]
        return (animate_mask(first, keyframes, frames, interpolation=interpolation, coordinates=coordinates),)
