"""Control frames from masks or renders -> INTERDYN_CONTROL (``[F, 3, H, W]`` in [0, 1]) + preview."""
from __future__ import annotations

from ..interdyn.control import CONTROL_PALETTE, fit_control, renders_to_control, resample_frames
from ..interdyn.validation import InputError, check_count, check_finite, check_frame_size, check_image_tensor
from . import convert

INTERDYN_CONTROL = "INTERDYN_CONTROL"
CROPS = ["center", "mask"]
_COLOURS = ["white", "red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple", "azure", "lime", "rose"]
assert len(_COLOURS) == len(CONTROL_PALETTE)


def check_size(width: int, height: int) -> None:
    """SVD needs multiples of 64; say so with a size that works, in the widgets' order."""
    check_frame_size(height, width, names=("height", "width"), width_first=True)


#: the library's names -> this node's widgets (in messages)
WIDGETS = {"num_frames": "frames", "target_fps": "target_fps", "start": "start_frame"}


def check_timing(frames: int, source_fps: float, target_fps: float, start_frame: int, source_frames: int,
                 source: str) -> None:
    """The timing widgets, named as on the node, before any resampling."""
    check_count(frames, "frames")
    for name, fps in (("source_fps", source_fps), ("target_fps", target_fps)):
        if check_finite(fps, name) <= 0:
            raise InputError(f"{name} must be > 0 (a frame rate), got {fps}")
    if not 0 <= start_frame < source_frames:
        raise InputError(f"start_frame must be a frame of {source}, which has {source_frames} frames (0 to "
                         f"{source_frames - 1}), got {start_frame}")


def _size_inputs() -> dict:
    return {
        "width": ("INT", {"default": 384, "min": 64, "max": 2048, "step": 64,
                          "tooltip": "Width of the video in pixels, a multiple of 64 (paper: 384). Use the same on the sampler."}),
        "height": ("INT", {"default": 256, "min": 64, "max": 2048, "step": 64,
                           "tooltip": "Height of the video in pixels, a multiple of 64 (paper: 256). Use the same on the sampler."}),
        "frames": ("INT", {"default": 14, "min": 1, "max": 128,
                           "tooltip": "Number of control frames = frames of the generated video (SVD: 14)."}),
        "source_fps": ("FLOAT", {"default": 7.0, "min": 0.01, "max": 1000.0, "step": 0.01,
                                 "tooltip": "Frame rate of the incoming masks/renders (e.g. the fps output of Get "
                                            "Video Components). Equal to target_fps: no resampling."}),
        "target_fps": ("FLOAT", {"default": 7.0, "min": 0.01, "max": 1000.0, "step": 0.01,
                                 "tooltip": "Frame rate of the generated video (paper: 7). Frames are picked from the "
                                            "source nearest in time, never blended."}),
        "crop": (CROPS, {"default": "center",
                         "tooltip": "How the frames are cropped to the aspect ratio after scaling: center, or around "
                                    "the masks' bounding box over all frames (mask). With 'mask', connect the first "
                                    "frame to 'image' so it gets the same crop."}),
        "start_frame": ("INT", {"default": 0, "min": 0, "max": 100000,
                                "tooltip": "First source frame used (skip a lead-in)."}),
    }


_IMAGE_INPUT = ("IMAGE", {"tooltip": "Optional first frame (same size as the masks/renders' source video). It is "
                                     "returned resized and cropped exactly like the control: connect that output "
                                     "to the sampler's image."})
_OUTPUT_TOOLTIPS = ("Control frames [frames, 3, height, width] in [0, 1] for the InterDyn Sampler.",
                    "The control frames as an IMAGE batch, to preview or save.",
                    "The optional first frame, scaled and cropped like the control (empty if not connected).")


def _check_image_size(image, size: tuple[int, int], what: str) -> None:
    """The optional first frame (the ``image`` input) has the size of the source video of ``what``."""
    if image is None:
        return
    frame = convert.image_to_frames(image, "image")
    if tuple(frame.shape[-2:]) != tuple(size):
        raise InputError(f"image is {frame.shape[-1]}x{frame.shape[-2]} but {what} are {size[1]}x{size[0]}: connect "
                         f"the first frame of the video {what} come from")


def _fit_and_output(image, height, width, crop, frames, *, masks=None, renders=None):
    """Fit the resampled masks or renders jointly with the optional first frame, then build the outputs."""
    video = None
    if image is not None:
        first = convert.image_to_frames(image)[:1]
        video = first.expand(frames, *first.shape[1:])
    video, control, _ = fit_control(video, masks=masks, renders=renders, height=height, width=width, crop=crop,
                                    multiple_of=64)
    fitted_image = None if video is None else convert.frames_to_image(video[:1])
    return control, convert.frames_to_image(control), fitted_image


class InterDynControlFromMasks:
    DESCRIPTION = ("Builds InterDyn control frames from mask sequences: each object is drawn in its own colour "
                   "(mask_1's first object white, then " + ", ".join(_COLOURS[1:5]) + ", ...) on black; later "
                   "objects cover earlier ones. Resamples from source_fps to target_fps, scales and crops to "
                   "width x height.")
    CATEGORY = "InterDyn"
    FUNCTION = "build"
    RETURN_TYPES = (INTERDYN_CONTROL, "IMAGE", "IMAGE")
    RETURN_NAMES = ("control", "preview", "image")
    OUTPUT_TOOLTIPS = _OUTPUT_TOOLTIPS

    @classmethod
    def INPUT_TYPES(cls):
        mask_tip = ("Optional masks of another object over time (MASK batch, same size and frame count as mask_1), "
                    "drawn in the next palette colour ({colour} when mask_1 holds one object).")
        return {
            "required": {
                "mask_1": ("MASK", {"tooltip": "Masks of the driving hand/object over time (MASK batch, one mask per "
                                               "source frame), drawn in white. Can hold several objects one after "
                                               "another: see objects_in_mask_1."}),
                **_size_inputs(),
                "objects_in_mask_1": ("INT", {"default": 1, "min": 1, "max": len(CONTROL_PALETTE),
                                              "tooltip": "How many objects mask_1 holds one after another (connect "
                                                         "SAM2 Video Masks' object_count with its object_masks); "
                                                         "each gets its own colour."}),
            },
            "optional": {
                **{f"mask_{n}": ("MASK", {"tooltip": mask_tip.format(colour=_COLOURS[n - 1])})
                   for n in (2, 3, 4)},
                "image": _IMAGE_INPUT,
            },
        }

    def build(self, mask_1, width, height, frames, source_fps, target_fps, crop, start_frame, objects_in_mask_1=1,
              mask_2=None, mask_3=None, mask_4=None, image=None):
        check_size(width, height)
        masks = {f"mask_{n}": convert.mask_frames(m, f"mask_{n}")
                 for n, m in ((1, mask_1), (2, mask_2), (3, mask_3), (4, mask_4)) if m is not None}
        for name, m in masks.items():
            check_image_tensor(m, name, what="mask values in [0, 1]")
        check_count(objects_in_mask_1, "objects_in_mask_1")
        objects = convert.split_objects(masks.pop("mask_1"), objects_in_mask_1, "mask_1")
        check_timing(frames, source_fps, target_fps, start_frame, objects[0].shape[0],
                     "mask_1" + (f" (per object: {objects_in_mask_1} objects)" if objects_in_mask_1 > 1 else ""))
        size = tuple(objects[0].shape[-2:])
        for name, m in masks.items():  # each optional mask named as its input, before any resampling
            if tuple(m.shape[-2:]) != size:
                raise InputError(f"{name} is {m.shape[-1]}x{m.shape[-2]} but mask_1 is {size[1]}x{size[0]}: every "
                                 "mask input comes from the same source video")
            check_timing(frames, source_fps, target_fps, start_frame, m.shape[0], name)
        _check_image_size(image, size, "the masks")
        inputs = ["mask_1"] * len(objects) + list(masks)
        objects += list(masks.values())
        objects = [resample_frames(m, source_fps, target_fps, frames, start_frame, names=dict(WIDGETS, source=name))
                   for m, name in zip(objects, inputs)]
        return _fit_and_output(image, height, width, crop, frames, masks=objects)


class InterDynControlFromRenders:
    DESCRIPTION = ("Uses RGB frames as InterDyn control frames as they are (e.g. renders of coloured object masks, "
                   "or a mask video loaded as images): resamples from source_fps to target_fps, scales and crops "
                   "to width x height.")
    CATEGORY = "InterDyn"
    FUNCTION = "build"
    RETURN_TYPES = (INTERDYN_CONTROL, "IMAGE", "IMAGE")
    RETURN_NAMES = ("control", "preview", "image")
    OUTPUT_TOOLTIPS = _OUTPUT_TOOLTIPS

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "renders": ("IMAGE", {"tooltip": "Control frames as an IMAGE batch (one image per source frame), "
                                                 "black background."}),
                **_size_inputs(),
            },
            "optional": {"image": _IMAGE_INPUT},
        }

    def build(self, renders, width, height, frames, source_fps, target_fps, crop, start_frame, image=None):
        check_size(width, height)
        r = convert.image_to_frames(renders, "renders")
        check_image_tensor(r, "renders", what="IMAGE values in [0, 1]")
        check_timing(frames, source_fps, target_fps, start_frame, r.shape[0], "renders")
        _check_image_size(image, tuple(r.shape[-2:]), "the renders")
        r = renders_to_control(r)
        r = resample_frames(r, source_fps, target_fps, frames, start_frame, names=dict(WIDGETS, source="renders"))
        return _fit_and_output(image, height, width, crop, frames, renders=r)
