"""InterDyn Drive Editor: draw the driver and its path on the picture -> the driving masks.

The page's canvas (``web/drive_editor.js``) writes everything it edits into the ``shape`` and
``keyframes`` text widgets, so a saved workflow and the API format stay plain JSON and run
headless, without the page. The node sends the first frame and the driver's mask back to the page
after each run, for the canvas background when the image does not come from a Load Image node.
"""
from __future__ import annotations

from ..interdyn.shapes import preview_pixels, shape_mask
from ..interdyn.trajectory import EASINGS, animate_mask, mask_pivot
from ..interdyn.validation import InputError, check_count
from . import convert, host

DEFAULT_SHAPE = '{"size": [100, 100], "shapes": [{"type": "ellipse", "cx": 30, "cy": 50, "rx": 8, "ry": 8}]}'
DEFAULT_KEYFRAMES = ('[{"frame": 0, "x": 0, "y": 0, "scale": 1, "rotation": 0, "easing": "ease_in_out"},\n'
                     ' {"frame": 13, "x": 60, "y": 0, "scale": 1, "rotation": 0}]')


class InterDynDriveEditor:
    DESCRIPTION = ("Draw the driving motion on the picture: in the canvas, draw the hand/object (ellipse, "
                   "rectangle, brush) or connect its mask, click on the picture to add keyframes of its path, drag "
                   "them, set their frames, scale, rotation and easing in the timeline, and scrub to see the mask "
                   "at any frame. Outputs one mask per frame for InterDyn Control From Masks (source_fps = "
                   "target_fps). A path from the KJNodes Spline Editor (coordinates) can drive it too.")
    CATEGORY = "InterDyn"
    FUNCTION = "drive"
    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("masks",)
    OUTPUT_TOOLTIPS = ("The driver's mask at every frame [frames, H, W], the size of the image.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The first frame of the scene: the canvas shows it, and the masks "
                                               "have its size (only the first image of a batch is used)."}),
                "shape": ("STRING", {"multiline": True, "default": DEFAULT_SHAPE,
                                     "tooltip": "The driver's shape as drawn in the canvas (JSON, written by the "
                                                "editor): {\"size\": [W, H], \"shapes\": [ellipse {cx, cy, rx, ry}, "
                                                "rect {x, y, w, h}, brush {radius, points}, each optionally "
                                                "\"subtract\": true]}. Ignored when a mask is connected."}),
                "keyframes": ("STRING", {"multiline": True, "default": DEFAULT_KEYFRAMES,
                                         "tooltip": "The path as drawn in the canvas (JSON, written by the editor): "
                                                    "a list of {frame, x, y, scale, rotation, easing}; x, y move "
                                                    "the driver's centre in pixels of the image (x right, y down), "
                                                    "rotation in degrees clockwise, easing towards the next "
                                                    "keyframe: " + ", ".join(EASINGS) + "."}),
                "frames": ("INT", {"default": 14, "min": 1, "max": 1024,
                                   "tooltip": "Number of output masks (frames 0 .. frames-1): the video's length."}),
                "interpolation": (["bilinear", "nearest"], {"default": "bilinear",
                                                            "tooltip": "bilinear: soft edges; nearest: stays binary."}),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "The driver's mask on the first frame (e.g. from SAM2 or Load Image "
                                             "as Mask), the image's size. When connected it replaces the drawn "
                                             "shape."}),
                "coordinates": ("STRING", {"forceInput": True,
                                           "tooltip": "A drawn path: the KJNodes Spline Editor's coordinates (or "
                                                      "ComfyUI's Wan tracks), pixels of this image. The driver "
                                                      "follows the track starting nearest to it, resampled to "
                                                      "frames; it replaces the keyframes' x, y."}),
            },
        }

    def drive(self, image, shape, keyframes, frames, interpolation, mask=None, coordinates=None):
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
