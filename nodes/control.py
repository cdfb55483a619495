"""Control frames from masks or renders -> INTERDYN_CONTROL (``[F, 3, H, W]`` in [0, 1]) + preview."""
from __future__ import annotations

from ..interdyn.core.control import fit_control, renders_to_control, resample_frames
from ..interdyn.support.validation import InputError, check_count, check_finite, check_frame_size, check_image_tensor
from . import convert
from .results import readable_errors

CROPS = ["center", "mask"]


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


def _check_image_size(image, size: tuple[int, int], what: str) -> None:
    """The optional first frame (the ``image`` input) has the size of the source video of ``what``."""
    if image is None:
        return
    frame = convert.image_to_frames(image, "image")
    check_image_tensor(frame, "image")  # a NaN pixel would leave the node in the fitted image
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


@readable_errors
def from_masks(mask_1, width, height, frames, source_fps, target_fps, crop, start_frame, objects_in_mask_1=1,
               mask_2=None, mask_3=None, mask_4=None, image=None):
    """InterDyn Control From Masks: mask sequences -> (control, preview, image)."""
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


@readable_errors
def from_renders(renders, width, height, frames, source_fps, target_fps, crop, start_frame, image=None):
    """InterDyn Control From Renders: RGB control frames as they are -> (control, preview, image)."""
    check_size(width, height)
    r = convert.image_to_frames(renders, "renders")
    check_image_tensor(r, "renders", what="IMAGE values in [0, 1]")
    check_timing(frames, source_fps, target_fps, start_frame, r.shape[0], "renders")
    _check_image_size(image, tuple(r.shape[-2:]), "the renders")
    r = renders_to_control(r)
    r = resample_frames(r, source_fps, target_fps, frames, start_frame, names=dict(WIDGETS, source="renders"))
    return _fit_and_output(image, height, width, crop, frames, renders=r)
