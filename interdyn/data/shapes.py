"""A driver's shape drawn on the picture, as compact JSON, and its mask.

The Drive Editor (the ComfyUI page's canvas on the ``InterDyn Drive Editor`` node) stores the shape the
artist drew in a text widget, so that saved workflows and the API format stay plain JSON and run
headless. :func:`parse_shape` reads that text, :func:`rasterize_shape` turns it into the driver's
mask on the first frame; :func:`interdyn.data.trajectory.animate_mask` then moves it along the path.

Format (pixels of the image the shape was drawn on; x to the right, y down)::

    {"size": [W, H],
     "shapes": [{"type": "ellipse", "cx": 120, "cy": 80, "rx": 20, "ry": 14},
                {"type": "rect", "x": 10, "y": 20, "w": 30, "h": 40},
                {"type": "brush", "radius": 6, "points": [[50, 50], [60, 52], [70, 58]]},
                {"type": "ellipse", "cx": 120, "cy": 80, "rx": 5, "ry": 5, "subtract": true}]}

* ``size``: the image size the coordinates refer to. When the image the node receives has another
  size, every coordinate is scaled by the ratio of the widths (x) and of the heights (y), radii
  and brush widths by their mean. Without ``size`` (or for a bare list of shapes) the coordinates
  are pixels of the image the node receives.
* shapes are applied in order: each one adds its pixels, or removes them with ``"subtract": true``.
* ``ellipse``: centre ``cx, cy`` and radii ``rx, ry`` (> 0; a circle when equal);
  ``rect``: top-left ``x, y``, width and height ``w, h`` (> 0);
  ``brush``: a stroke of the given ``radius`` (> 0) through ``points`` (one point: a dot).

A pixel ``(i, j)`` belongs to a shape when its centre ``(j + 0.5, i + 0.5)`` does (on the edge
included): the page's editor uses the same rule, so the mask it shows is the mask the node makes.
"""
from __future__ import annotations

import json
import math

import torch

from ..support.validation import InputError

__all__ = ["SHAPE_TYPES", "parse_shape", "rasterize_shape", "shape_mask", "preview_pixels"]

SHAPE_TYPES = ("ellipse", "rect", "brush")
MAX_SHAPES = 1000
MAX_POINTS = 100_000  # brush points over all strokes
_FIELDS = {"ellipse": ("cx", "cy", "rx", "ry"), "rect": ("x", "y", "w", "h"), "brush": ("radius", "points")}
_EXAMPLE = '{"size": [256, 256], "shapes": [{"type": "ellipse", "cx": 120, "cy": 80, "rx": 20, "ry": 14}]}'


def _number(value, where: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise InputError(f"{where} must be > 0, got {value!r}")
    return float(value)


def _one_shape(d, where: str, name: str) -> dict:
    if not isinstance(d, dict):
        raise InputError(f"{name}: {where} must be an object like "
                         '{"type": "ellipse", "cx": 120, "cy": 80, "rx": 20, "ry": 14}, got ' f"{d!r:.80}")
    kind = d.get("type")
    if kind not in SHAPE_TYPES:
        raise InputError(f"{name}: {where}.type must be one of {', '.join(SHAPE_TYPES)}, got {kind!r}")
    allowed = {"type", "subtract", *_FIELDS[kind]}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise InputError(f"{name}: {where} ({kind}) has unknown key(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
    missing = [k for k in _FIELDS[kind] if k not in d]
    if missing:
        raise InputError(f"{name}: {where} ({kind}) needs {', '.join(missing)}")
    subtract = d.get("subtract", False)
    if not isinstance(subtract, bool):
        raise InputError(f"{name}: {where}.subtract must be true or false, got {subtract!r}")
    out = {"type": kind, "subtract": subtract}
    if kind == "ellipse":
        out.update(cx=_number(d["cx"], f"{name}: {where}.cx"), cy=_number(d["cy"], f"{name}: {where}.cy"),
                   rx=_number(d["rx"], f"{name}: {where}.rx", True), ry=_number(d["ry"], f"{name}: {where}.ry", True))
    elif kind == "rect":
        out.update(x=_number(d["x"], f"{name}: {where}.x"), y=_number(d["y"], f"{name}: {where}.y"),
                   w=_number(d["w"], f"{name}: {where}.w", True), h=_number(d["h"], f"{name}: {where}.h", True))
    else:
        points = d["points"]
        if not isinstance(points, list) or not points:
            raise InputError(f"{name}: {where}.points must be a non-empty list of [x, y] pairs, got {points!r:.80}")
        pts = []
        for i, p in enumerate(points):
            if not isinstance(p, (list, tuple)) or len(p) != 2:
                raise InputError(f"{name}: {where}.points[{i}] must be an [x, y] pair, got {p!r:.80}")
            pts.append((_number(p[0], f"{name}: {where}.points[{i}][0]"),
                        _number(p[1], f"{name}: {where}.points[{i}][1]")))
        out.update(radius=_number(d["radius"], f"{name}: {where}.radius", True), points=pts)
    return out


def parse_shape(text, name: str = "shape") -> dict:
    """The shape description from JSON text (or an already parsed object) -> ``{"size": [W, H] | None,
    "shapes": [...]}`` with every value checked; messages name the input ``name``."""
    data = text
    if isinstance(text, str):
        if not text.strip():
            raise InputError(f"{name} is empty: draw the driver's shape in the Drive Editor (or connect a mask). "
                             f"Format: {_EXAMPLE}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{name} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno}). "
                             f"Format: {_EXAMPLE}") from None
        except RecursionError:
            raise InputError(f"{name} nests too deeply to be a shape description. Format: {_EXAMPLE}") from None
    size = None
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"size", "shapes"})
        if unknown or "shapes" not in data:
            raise InputError(f"{name} must be {{\"size\": [W, H], \"shapes\": [...]}} (or a list of shapes), got "
                             f"keys {sorted(data)}. Format: {_EXAMPLE}")
        if data.get("size") is not None:
            size = data["size"]
            if (not isinstance(size, list) or len(size) != 2
                    or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0
                           for v in size)):
                raise InputError(f"{name}: size must be [width, height] in pixels (> 0), got {size!r:.80}")
            size = [float(size[0]), float(size[1])]
        data = data["shapes"]
    if not isinstance(data, list):
        raise InputError(f"{name} must hold a list of shapes, got {type(data).__name__}. Format: {_EXAMPLE}")
    if len(data) > MAX_SHAPES:
        raise InputError(f"{name} holds {len(data)} shapes; at most {MAX_SHAPES}")
    shapes = [_one_shape(d, f"shape {i}", name) for i, d in enumerate(data)]
    if sum(len(s.get("points", ())) for s in shapes) > MAX_POINTS:
        raise InputError(f"{name}: the brush strokes hold more than {MAX_POINTS} points; draw fewer, longer strokes")
    return {"size": size, "shapes": shapes}


def _segment_distance(px, py, a, b):
    """Distance from pixel centres to the segment a-b (a point when a == b)."""
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0:
        return torch.hypot(px - ax, py - ay)
    t = (((px - ax) * dx + (py - ay) * dy) / length2).clamp(0.0, 1.0)
    return torch.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _paint(mask: torch.Tensor, shape: dict) -> None:
    """Set (or clear) the pixels of one scaled shape, looking only at its bounding box."""
    h, w = mask.shape
    if shape["type"] == "ellipse":
        box = (shape["cx"] - shape["rx"], shape["cy"] - shape["ry"], shape["cx"] + shape["rx"], shape["cy"] + shape["ry"])
    elif shape["type"] == "rect":
        box = (shape["x"], shape["y"], shape["x"] + shape["w"], shape["y"] + shape["h"])
    else:
        xs = [p[0] for p in shape["points"]]
        ys = [p[1] for p in shape["points"]]
        r = shape["radius"]
        box = (min(xs) - r, min(ys) - r, max(xs) + r, max(ys) + r)
    # pixel columns whose centres j + 0.5 can lie in [x0, x1]
    j0, j1 = max(0, math.floor(box[0] - 0.5)), min(w, math.ceil(box[2] + 0.5))
    i0, i1 = max(0, math.floor(box[1] - 0.5)), min(h, math.ceil(box[3] + 0.5))
    if j0 >= j1 or i0 >= i1:
        return
    py, px = torch.meshgrid(torch.arange(i0, i1, dtype=torch.float64) + 0.5,
                            torch.arange(j0, j1, dtype=torch.float64) + 0.5, indexing="ij")
    if shape["type"] == "ellipse":
        inside = ((px - shape["cx"]) / shape["rx"]) ** 2 + ((py - shape["cy"]) / shape["ry"]) ** 2 <= 1.0
    elif shape["type"] == "rect":
        inside = ((px >= shape["x"]) & (px <= shape["x"] + shape["w"])
                  & (py >= shape["y"]) & (py <= shape["y"] + shape["h"]))
    else:
        pts = shape["points"]
        inside = torch.zeros_like(px, dtype=torch.bool)
        for a, b in zip(pts, pts[1:] or pts):
            inside |= _segment_distance(px, py, a, b) <= shape["radius"]
    region = mask[i0:i1, j0:j1]
    region[inside] = 0.0 if shape["subtract"] else 1.0


def _scaled(shape: dict, sx: float, sy: float) -> dict:
    if sx == 1.0 and sy == 1.0:
        return shape
    s = (sx + sy) / 2
    out = dict(shape)
    if shape["type"] == "ellipse":
        out.update(cx=shape["cx"] * sx, cy=shape["cy"] * sy, rx=shape["rx"] * sx, ry=shape["ry"] * sy)
    elif shape["type"] == "rect":
        out.update(x=shape["x"] * sx, y=shape["y"] * sy, w=shape["w"] * sx, h=shape["h"] * sy)
    else:
        out.update(radius=shape["radius"] * s, points=[(x * sx, y * sy) for x, y in shape["points"]])
    return out


def rasterize_shape(shape: dict, height: int, width: int) -> torch.Tensor:
    """A parsed shape description -> the mask ``[height, width]`` float32 of 0/1 values."""
    mask = torch.zeros(height, width, dtype=torch.float32)
    sx = sy = 1.0
    if shape.get("size"):
        sx, sy = width / shape["size"][0], height / shape["size"][1]
    for s in shape["shapes"]:
        _paint(mask, _scaled(s, sx, sy))
    return mask


def shape_mask(text, height: int, width: int, name: str = "shape") -> torch.Tensor:
    """JSON shape text -> the driver's mask ``[height, width]``; refuses a shape with no pixel in the image."""
    shape = parse_shape(text, name)
    if not shape["shapes"]:
        raise InputError(f"{name} holds no shape: draw the driver (ellipse, rectangle or brush) in the Drive Editor, "
                         "or connect a mask")
    mask = rasterize_shape(shape, height, width)
    if not bool(mask.any()):
        raise InputError(f"{name}: the drawn shape covers no pixel of the {width}x{height} image (is it outside "
                         "the picture, or all subtracted?)")
    return mask


def preview_pixels(first_frame: torch.Tensor, driver: torch.Tensor):
    """What the page's Drive Editor shows after a run: the first frame ``[3, H, W]`` in [0, 1] as uint8
    ``[H, W, 3]`` and the driver mask ``[H, W]`` as a white uint8 ``[H, W, 4]`` image whose alpha is the mask."""
    rgb = (first_frame.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    alpha = (driver.clamp(0, 1) * 255).round().to(torch.uint8)
    rgba = torch.stack([torch.full_like(alpha, 255)] * 3 + [alpha], dim=-1).contiguous().numpy()
    return rgb, rgba
