"""InterDyn Mask Trajectory: one mask moved along keyframes -> a MASK sequence (motion without a video)."""
from __future__ import annotations

import logging

from ..interdyn.data.trajectory import animate_drive
from ..interdyn.support.validation import check_count
from . import convert
from .results import Outputs, readable_errors

DEFAULT_KEYFRAMES = ('[{"frame": 0, "x": 0, "y": 0, "scale": 1.0, "rotation": 0, "easing": "ease_in_out"},\n'
                     ' {"frame": 13, "x": 120, "y": 0, "scale": 1.0, "rotation": 0}]')
log = logging.getLogger("InterDyn")


@readable_errors
def animate(mask, keyframes, frames, interpolation, coordinates=None):
    """InterDyn Mask Trajectory: one mask moved along keyframes -> (masks,); warnings (keyframes past the last
    frame, a mask pushed out of the picture) in the log and in ``.ui``."""
    frames = check_count(frames, "frames")
    first = convert.mask_frames(mask)[0]
    made = animate_drive(first, keyframes, frames, interpolation, coordinates, names={"num_frames": "frames"})
    for text in made.warnings:
        log.warning("InterDyn Mask Trajectory: %s", text)
    return Outputs((made.masks,), ui={"interdyn_warnings": made.warnings} if made.warnings else None)
