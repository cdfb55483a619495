"""InterDyn Drive Editor: draw the driver and its path on the picture -> the driving masks.

The page's canvas (``web/drive_editor.js``) writes everything it edits into the ``shape`` and
``keyframes`` text widgets, so a saved workflow and the API format stay plain JSON and run
headless, without the page. The node sends the first frame and the driver's mask back to the page
after each run, for the canvas background when the image does not come from a Load Image node.
"""
from __future__ import annotations

from ..interdyn.data.shapes import preview_pixels, shape_mask
from ..interdyn.data.trajectory import animate_mask, mask_pivot
from ..interdyn.support.validation import InputError, check_count
from . import convert, host

DEFAULT_SHAPE = '{"size": [100, 100], "shapes": [{"type": "ellipse", "cx": 30, "cy": 50, "rx": 8, "ry": 8}]}'
DEFAULT_KEYFRAMES = ('[{"frame": 0, "x": 0, "y": 0, "scale": 1, "rotation": 0, "easing": "ease_in_out"},\n'
                     ' {"frame": 13, "x": 60, "y": 0, "scale": 1, "rotation": 0}]')


def drive(image, shape, keyframes, frames, interpolation, mask=None, coordinates=None):
    """InterDyn Drive Editor: the drawn driver and its path -> {"ui": the canvas's view, "result": (masks,)}."""
    check_count(frames, "frames")
    first = convert.image_to_frames(image, "image")[0]
    height, width = first.shape[-2:]
    if mask is not None:
        driver = convert.mask_frames(mask, "mask")[0]
        if tuple(driver.shape) != (height, width):
            raise InputError(f"mask is {driver.shape[1]}x{driver.shape[0]} but image is {width}x{height}: the "
                             "driver's mask must be drawn on the image it moves in")
        driver = driver.clamp(0.0, 1.0)
    else:
        driver = shape_mask(shape, height, width, "shape")
    masks = animate_mask(driver, keyframes, frames, interpolation=interpolation, coordinates=coordinates)
    rgb, rgba = preview_pixels(first, driver)
    view = {"size": [width, height], "pivot": list(mask_pivot(driver)), "from_mask": mask is not None,
            "background": host.save_temp_png(rgb, "interdyn_drive_bg"),
            "mask": host.save_temp_png(rgba, "interdyn_drive_mask")}
    return {"ui": {"interdyn_drive": [view]}, "result": (masks,)}
