"""InterDyn Drive Editor: draw the driver and its path on the picture -> the driving masks.

The page's canvas (``web/drive_editor.js``) writes everything it edits into the ``shape`` and
``keyframes`` text widgets, so a saved workflow and the API format stay plain JSON and run
headless, without the page. After each run the node sends the page what it made (its UI output):
the first frame and the driver's mask, for the canvas background when the image does not come from a
Load Image node; the driver's path per frame and the followed ``coordinates`` track, which the canvas
draws; and the run's warnings (keyframes past the last frame, a driver pushed out of the picture) and
notes (a drive fitted to a picture of another size), which the canvas shows in its message line.
"""
from __future__ import annotations

import logging

import torch

from ..interdyn.data.shapes import parse_shape, preview_pixels, shape_mask
from ..interdyn.data.trajectory import animate_drive
from ..interdyn.support.validation import check_count
from . import convert, host
from .results import InputError, Outputs, readable_errors

DEFAULT_SHAPE = '{"size": [100, 100], "shapes": [{"type": "ellipse", "cx": 30, "cy": 50, "rx": 8, "ry": 8}]}'
DEFAULT_KEYFRAMES = ('[{"frame": 0, "x": 0, "y": 0, "scale": 1, "rotation": 0, "easing": "ease_in_out"},\n'
                     ' {"frame": 13, "x": 60, "y": 0, "scale": 1, "rotation": 0}]')
#: at most this many points of a connected track go to the page (every k-th, and the last)
TRACK_POINTS_SHOWN = 2000
log = logging.getLogger("InterDyn")


@readable_errors
def drive(image, shape, keyframes, frames, interpolation, mask=None, coordinates=None, snap_to_track_start=False):
    """InterDyn Drive Editor: the drawn driver and its path -> (masks,), with the canvas's view as ``.ui``."""
    frames = check_count(frames, "frames")
    first = convert.image_to_frames(image, "image")[0]
    bad = int((~torch.isfinite(first)).sum())
    if bad:
        raise InputError(f"image holds {bad} NaN or infinite value{'s' if bad > 1 else ''}: connect a picture")
    height, width = first.shape[-2:]
    notes = []
    if mask is not None:
        driver = convert.mask_frames(mask, "mask")[0]
        if tuple(driver.shape) != (height, width):
            raise InputError(f"mask is {driver.shape[1]}x{driver.shape[0]} but image is {width}x{height}: the "
                             "driver's mask must be drawn on the image it moves in")
        driver = driver.clamp(0.0, 1.0)  # (NaN stays NaN: refused below, naming the mask)
    else:
        size = parse_shape(shape, "shape")["size"]
        driver = shape_mask(shape, height, width, "shape")
        if size is not None and size != [float(width), float(height)]:
            notes.append(f"shape was drawn on a {size[0]:g}x{size[1]:g} picture and is fitted to this {width}x{height} "
                         "image (its centre keeps its place in the picture, the shape its proportions)")
    names = {"num_frames": "frames", "mask": "mask" if mask is not None else "shape"}
    made = animate_drive(driver, keyframes, frames, interpolation, coordinates, bool(snap_to_track_start), names)
    for text in made.warnings:
        log.warning("InterDyn Drive Editor: %s", text)
    px, py = made.pivot
    track = None
    if made.track is not None:
        step = -(-len(made.track) // TRACK_POINTS_SHOWN)
        shown = made.track[::step].tolist() + ([made.track[-1].tolist()] if (len(made.track) - 1) % step else [])
        track = [[round(x, 2), round(y, 2)] for x, y in shown]
    rgb, rgba = preview_pixels(first, driver)
    view = {"size": [width, height], "pivot": [px, py], "from_mask": mask is not None, "frames": frames,
            "path": [[round(px + x, 2), round(py + y, 2)] for x, y in made.params[:, :2].tolist()],
            "track": track, "warnings": made.warnings, "notes": notes + made.notes,
            "background": host.save_temp_png(rgb, "interdyn_drive_bg"),
            "mask": host.save_temp_png(rgba, "interdyn_drive_mask")}
    return Outputs((made.masks,), ui={"interdyn_drive": [view]})
