"""InterDyn Mask Trajectory: one mask moved along keyframes -> a MASK sequence (motion without a video)."""
from __future__ import annotations

from ..interdyn.data.trajectory import animate_mask
from ..interdyn.support.validation import check_count
from . import convert

DEFAULT_KEYFRAMES = ('[{"frame": 0, "x": 0, "y": 0, "scale": 1.0, "rotation": 0, "easing": "ease_in_out"},\n'
                     ' {"frame": 13, "x": 120, "y": 0, "scale": 1.0, "rotation": 0}]')


def animate(mask, keyframes, frames, interpolation, coordinates=None):
    """InterDyn Mask Trajectory: one mask moved along keyframes -> (masks,)."""
    check_count(frames, "frames")
    first = convert.mask_frames(mask)[0]
    return (animate_mask(first, keyframes, frames, interpolation=interpolation, coordinates=coordinates),)
