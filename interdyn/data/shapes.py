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
  size, the drawing is fitted to it (:func:`fit_shape`): the centre of the drawing's bounding box (of the
  shapes that add pixels) keeps its place in the picture (x scaled by the ratio of the widths, y by the ratio
  of the heights), and the drawing is scaled about it by one factor, the geometric mean of the two ratios, so
  that it keeps its proportions (a circle stays a circle) and its share of the picture's area. With the same
  aspect ratio this is plain scaling by the ratio. The keyframes of the path are fitted alike
  (:func:`interdyn.data.trajectory.fit_keyframes`). Without ``size`` (or for a bare list of shapes) the
  coordinates are pixels of the image the node receives.
* shapes are applied in order: each one adds its pixels, or removes them with ``"subtract": true``.
* ``ellipse``: centre ``cx, cy`` and radii ``rx, ry`` (> 0; a circle when equal);
  ``rect``: top-left ``x, y``, width and height ``w, h`` (> 0);
  ``brush``: a stroke of the given ``radius`` (> 0) through ``points`` (one point: a dot).
  Every number is at most 10^6 in size (pixels).

A pixel ``(i, j)`` belongs to a shape when its centre ``(j + 0.5, i + 0.5)`` does (on the edge
included): the page's editor uses the same rule, so the mask it shows is the mask the node makes.

Cost: an ellipse or a rectangle looks at the pixels of its bounding box. A brush stroke is drawn row by
row: for each segment between two points and each pixel row its capsule (the points within ``radius`` of
the segment) crosses, the capsule's span on that row is computed in closed form, and the spans are
filled at once through a running sum over the stroke's bounding box. The work is the bounding box plus
one span per (segment, row), so a stroke the page records, one point per pointer event a few pixels
apart, costs about as much as filling its box, however many points it has (``bench/drive_editor_strokes.py``:
1000 points on 1024x1024).
"""
from __future__ import annotations

import json
import math

import torch

from ..support.validation import InputError, is_finite_number

__all__ = ["SHAPE_TYPES", "parse_shape", "fit_shape", "rasterize_shape", "shape_mask", "preview_pixels"]

SHAPE_TYPES = ("ellipse", "rect", "brush")
MAX_SHAPES = 1000
MAX_POINTS = 100_000  # brush points over all strokes
MAX_COORD = 1e6  # pixels: any coordinate, radius, width or size
_SPAN_CHUNK = 1 << 18  # (segment, row) spans computed together
_FIELDS = {"ellipse": ("cx", "cy", "rx", "ry"), "rect": ("x", "y", "w", "h"), "brush": ("radius", "points")}
_EXAMPLE = '{"size": [256, 256], "shapes": [{"type": "ellipse", "cx": 120, "cy": 80, "rx": 20, "ry": 14}]}'


def _number(value, where: str, positive: bool = False) -> float:
    if not is_finite_number(value):
        raise InputError(f"{where} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise InputError(f"{where} must be > 0, got {value!r}")
    if abs(value) > MAX_COORD:
        raise InputError(f"{where} must be at most {MAX_COORD:g} pixels in size, got {value!r}")
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
                    or any(not is_finite_number(v) or v <= 0 or v > MAX_COORD for v in size)):
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


def _stroke_spans(points, radius: float, height: int):
    """For every pixel row that a segment's capsule (points within ``radius`` of the segment) crosses: the row and
    the ``[lo, hi]`` x-range of the capsule on the row's centre line, ``(rows, lo, hi)`` float64, chunk by chunk.
    A one-point stroke is one segment from the point to itself (a disc). Mirrored by web/drive_model.js."""
    pts = torch.tensor(points, dtype=torch.float64)
    a, b = (pts, pts) if len(pts) == 1 else (pts[:-1], pts[1:])
    r = radius
    top = torch.ceil(torch.minimum(a[:, 1], b[:, 1]) - r - 0.5).clamp(0, height)
    bottom = torch.floor(torch.maximum(a[:, 1], b[:, 1]) + r - 0.5).clamp(-1, height - 1)
    counts = (bottom - top + 1).clamp(min=0).long()
    ends = counts.cumsum(0)
    first = 0
    while first < len(counts):  # segments whose spans together stay under _SPAN_CHUNK (at least one)
        last = int(torch.searchsorted(ends, int(ends[first] - counts[first]) + _SPAN_CHUNK, right=True))
        last = max(last, first + 1)
        n = counts[first:last]
        total = int(n.sum())
        if total:
            seg = torch.repeat_interleave(torch.arange(first, last), n)
            start = torch.repeat_interleave(ends[first:last] - n, n)
            rows = top[seg] + (torch.arange(total) + int(ends[first] - counts[first]) - start).to(torch.float64)
            yield rows, *_capsule_span(a[seg], b[seg], r, rows + 0.5)
        first = last


def _capsule_span(a: torch.Tensor, b: torch.Tensor, r: float, y: torch.Tensor):
    """The x-range ``[lo, hi]`` of the capsule around segment a-b (radius r) on the line at height ``y`` (empty:
    lo > hi): the union of the discs at both ends and of the band along the segment, in closed form."""
    ax, ay, bx, by = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    inf = torch.full_like(y, math.inf)
    rr = r * r
    lo, hi = inf.clone(), -inf
    for cx, cy in ((ax, ay), (bx, by)):  # the end discs
        e = y - cy
        q = rr - e * e
        h = torch.sqrt(q.clamp(min=0))
        lo = torch.where(q >= 0, torch.minimum(lo, cx - h), lo)
        hi = torch.where(q >= 0, torch.maximum(hi, cx + h), hi)
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    rl = r * torch.sqrt(l2)
    e = y - ay
    # along: (x - ax) dx in [-e dy, l2 - e dy];  across: (x - ax) dy in [e dx - r l, e dx + r l]
    band_lo, band_hi = -inf, inf.clone()
    for k, c_lo, c_hi in ((dx, -(e * dy), l2 - e * dy), (dy, e * dx - rl, e * dx + rl)):
        p, q = ax + c_lo / k, ax + c_hi / k
        ok = (c_lo <= 0) & (0 <= c_hi)  # k == 0: every x or none
        band_lo = torch.where(k > 0, torch.maximum(band_lo, p), torch.where(k < 0, torch.maximum(band_lo, q),
                                                                            torch.where(ok, band_lo, inf)))
        band_hi = torch.where(k > 0, torch.minimum(band_hi, q), torch.where(k < 0, torch.minimum(band_hi, p),
                                                                            torch.where(ok, band_hi, -inf)))
    band = (l2 > 0) & (band_lo <= band_hi)
    lo = torch.where(band, torch.minimum(lo, band_lo), lo)
    hi = torch.where(band, torch.maximum(hi, band_hi), hi)
    return lo, hi


def _stroke_inside(shape: dict, height: int, width: int):
    """The pixels whose centres lie within ``radius`` of the stroke: ``(i0, j0, bool [rows, cols])`` over its box,
    or None when it misses the image."""
    rows, starts, stops = [], [], []
    for row, lo, hi in _stroke_spans(shape["points"], shape["radius"], height):
        j0 = torch.ceil(lo - 0.5).clamp(0, width)
        j1 = torch.floor(hi - 0.5).clamp(-1, width - 1)
        keep = j0 <= j1
        rows.append(row[keep].long())
        starts.append(j0[keep].long())
        stops.append(j1[keep].long())
    if not rows or sum(len(r) for r in rows) == 0:
        return None
    rows, starts, stops = torch.cat(rows), torch.cat(starts), torch.cat(stops)
    i0, j0 = int(rows.min()), int(starts.min())
    h, w = int(rows.max()) - i0 + 1, int(stops.max()) - j0 + 2
    diff = torch.zeros(h * w, dtype=torch.int32)
    ones = torch.ones(len(rows), dtype=torch.int32)
    diff.index_add_(0, (rows - i0) * w + (starts - j0), ones)
    diff.index_add_(0, (rows - i0) * w + (stops - j0 + 1), -ones)
    return i0, j0, diff.view(h, w).cumsum(dim=1)[:, :-1] > 0


def _paint(mask: torch.Tensor, shape: dict) -> None:
    """Set (or clear) the pixels of one fitted shape, looking only at its bounding box."""
    h, w = mask.shape
    value = 0.0 if shape["subtract"] else 1.0
    if shape["type"] == "brush":
        found = _stroke_inside(shape, h, w)
        if found is not None:
            i0, j0, inside = found
            mask[i0:i0 + inside.shape[0], j0:j0 + inside.shape[1]][inside] = value
        return
    if shape["type"] == "ellipse":
        box = (shape["cx"] - shape["rx"], shape["cy"] - shape["ry"], shape["cx"] + shape["rx"], shape["cy"] + shape["ry"])
    else:
        box = (shape["x"], shape["y"], shape["x"] + shape["w"], shape["y"] + shape["h"])
    # pixel columns whose centres j + 0.5 can lie in [x0, x1]
    j0, j1 = max(0, math.floor(box[0] - 0.5)), min(w, math.ceil(box[2] + 0.5))
    i0, i1 = max(0, math.floor(box[1] - 0.5)), min(h, math.ceil(box[3] + 0.5))
    if j0 >= j1 or i0 >= i1:
        return
    py, px = torch.meshgrid(torch.arange(i0, i1, dtype=torch.float64) + 0.5,
                            torch.arange(j0, j1, dtype=torch.float64) + 0.5, indexing="ij")
    if shape["type"] == "ellipse":
        inside = ((px - shape["cx"]) / shape["rx"]) ** 2 + ((py - shape["cy"]) / shape["ry"]) ** 2 <= 1.0
    else:
        inside = ((px >= shape["x"]) & (px <= shape["x"] + shape["w"])
                  & (py >= shape["y"]) & (py <= shape["y"] + shape["h"]))
    region = mask[i0:i1, j0:j1]
    region[inside] = value


def _extent(shapes: list) -> tuple[float, float, float, float] | None:
    """Bounding box ``(x0, y0, x1, y1)`` of the shapes that add pixels (None: there are none)."""
    boxes = []
    for s in shapes:
        if s["subtract"]:
            continue
        if s["type"] == "ellipse":
            boxes.append((s["cx"] - s["rx"], s["cy"] - s["ry"], s["cx"] + s["rx"], s["cy"] + s["ry"]))
        elif s["type"] == "rect":
            boxes.append((s["x"], s["y"], s["x"] + s["w"], s["y"] + s["h"]))
        else:
            xs, ys = [p[0] for p in s["points"]], [p[1] for p in s["points"]]
            boxes.append((min(xs) - s["radius"], min(ys) - s["radius"], max(xs) + s["radius"], max(ys) + s["radius"]))
    if not boxes:
        return None
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _scaled(shape: dict, sx: float, sy: float) -> dict:
    """The same aspect ratio (``sx == sy``): every coordinate and length times the ratio."""
    s = (sx + sy) / 2
    out = dict(shape)
    if shape["type"] == "ellipse":
        out.update(cx=shape["cx"] * sx, cy=shape["cy"] * sy, rx=shape["rx"] * sx, ry=shape["ry"] * sy)
    elif shape["type"] == "rect":
        out.update(x=shape["x"] * sx, y=shape["y"] * sy, w=shape["w"] * sx, h=shape["h"] * sy)
    else:
        out.update(radius=shape["radius"] * s, points=[(x * sx, y * sy) for x, y in shape["points"]])
    return out


def _anchored(shape: dict, anchor: tuple[float, float], to: tuple[float, float], s: float) -> dict:
    """Another aspect ratio: the point ``anchor`` goes to ``to`` and everything scales by ``s`` about it."""
    (ax, ay), (tx, ty) = anchor, to
    out = dict(shape)
    if shape["type"] == "ellipse":
        out.update(cx=tx + s * (shape["cx"] - ax), cy=ty + s * (shape["cy"] - ay), rx=shape["rx"] * s, ry=shape["ry"] * s)
    elif shape["type"] == "rect":
        out.update(x=tx + s * (shape["x"] - ax), y=ty + s * (shape["y"] - ay), w=shape["w"] * s, h=shape["h"] * s)
    else:
        out.update(radius=shape["radius"] * s,
                   points=[(tx + s * (x - ax), ty + s * (y - ay)) for x, y in shape["points"]])
    return out


def fit_shape(shape: dict, width: int, height: int) -> dict:
    """A parsed shape description -> the same drawing in pixels of a ``width`` x ``height`` image (``size`` set to
    it): unchanged without ``size`` or at that size; scaled by the ratio when the aspect ratio is the same; else its
    bounding box's centre keeps its place in the picture and the drawing scales about it by the geometric mean of
    the two ratios (see the module docstring). web/drive_model.js's ``fitShape`` is the same."""
    size = shape.get("size")
    out = {"size": [float(width), float(height)], "shapes": list(shape["shapes"])}
    if not size or (size[0] == width and size[1] == height):
        return out
    sx, sy = width / size[0], height / size[1]
    if sx == sy:
        out["shapes"] = [_scaled(s, sx, sy) for s in shape["shapes"]]
        return out
    box = _extent(shape["shapes"])
    anchor = (size[0] / 2, size[1] / 2) if box is None else ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    s = math.sqrt(sx * sy)
    out["shapes"] = [_anchored(x, anchor, (anchor[0] * sx, anchor[1] * sy), s) for x in shape["shapes"]]
    return out


def rasterize_shape(shape: dict, height: int, width: int) -> torch.Tensor:
    """A parsed shape description -> the mask ``[height, width]`` float32 of 0/1 values (fitted to that size)."""
    mask = torch.zeros(height, width, dtype=torch.float32)
    for s in fit_shape(shape, width, height)["shapes"]:
        _paint(mask, s)
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
