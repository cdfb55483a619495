"""Cut and Drag Reference: the first frame and the dragged object's masks -> the reference video and its region,
for the InterDyn Sampler's training-free dragging (dual-clock denoising, :mod:`interdyn.core.dual_clock`)."""
from __future__ import annotations

import torch

from ..interdyn.data.cut_and_drag import composite_reference, cut_and_drag
from ..interdyn.support.validation import InputError
from . import convert


def reference(image, masks, appearance=None):
    """The first image of ``image`` with the object under ``masks``' first frame cut out and moved with the masks
    (or, with ``appearance``, the pixels of ``appearance`` pasted under each frame's mask, for an object that enters
    the picture): ``(reference IMAGE [F, H, W, 3], region MASK [F, H, W])``."""
    first = convert.image_to_frames(image)[0]
    frames = convert.mask_frames(masks, "masks")
    if appearance is None:
        video, region = cut_and_drag(first, frames, names=("image", "masks"))
    else:
        look = convert.image_to_frames(appearance, "appearance")
        if look.shape[0] != frames.shape[0] or tuple(look.shape[-2:]) != tuple(frames.shape[-2:]):
            raise InputError(f"appearance is {look.shape[0]} frames of {look.shape[-1]}x{look.shape[-2]} but masks are "
                             f"{frames.shape[0]} frames of {frames.shape[-1]}x{frames.shape[-2]}: give one frame per mask, "
                             "at the same size")
        if tuple(first.shape[-2:]) != tuple(frames.shape[-2:]):
            raise InputError(f"masks are {frames.shape[-1]}x{frames.shape[-2]} but image is "
                             f"{first.shape[-1]}x{first.shape[-2]}: give masks of the picture's size")
        for tensor, name in ((look, "appearance"), (frames, "masks")):
            if not bool(torch.isfinite(tensor).all()):
                raise InputError(f"{name} holds NaN or infinite values")
        video, region = composite_reference(first, look, frames)
    return convert.frames_to_image(video), region
