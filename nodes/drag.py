"""Cut and Drag Reference: the first frame and the dragged object's masks -> the reference video and its region,
for the InterDyn Sampler's training-free dragging (dual-clock denoising, :mod:`interdyn.core.dual_clock`)."""
from __future__ import annotations

from ..interdyn.data.cut_and_drag import composite_reference, cut_and_drag
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
        video, region = composite_reference(first, convert.image_to_frames(appearance, "appearance"), frames,
                                            names=("image", "appearance", "masks"))
    return convert.frames_to_image(video), region
