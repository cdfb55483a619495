"""The Drive Editor: the drawn shape's description, the paths artists already draw (coordinates), the node,
and the page's mirror of the maths (``web/drive_model.js``, run under node) against the library's."""
from __future__ import annotations

import json
import math
import random
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import torch

from interdyn.data.shapes import parse_shape, rasterize_shape, shape_mask
from interdyn.data.trajectory import (animate_mask, fit_keyframes, interpolate_keyframes, mask_pivot, parse_coordinates,
                                     read_keyframes, resample_track)
from interdyn.support.validation import InputError
from test_nodes import import_pack

REPO = Path(__file__).resolve().parents[1]
NODE = shutil.which("node")


def centroid(m: torch.Tensor) -> tuple[float, float]:
    """Mass centre of a mask in the pixel-centre convention (pixel j covers [j, j+1): centre j + 0.5)."""
    h, w = m.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    total = float(m.sum())
    return float((m * xs).sum()) / total, float((m * ys).sum()) / total


def shape_text(*shapes, size=None) -> str:
    return json.dumps({"size": size, "shapes": list(shapes)} if size else list(shapes))


# ---------------------------------------------------------------------------- the shape description
def test_a_rectangle_covers_exactly_the_pixels_whose_centres_it_holds():
    m = rasterize_shape(parse_shape(shape_text({"type": "rect", "x": 10, "y": 20, "w": 5, "h": 3})), 40, 40)
    expected = torch.zeros(40, 40)
    expected[20:23, 10:15] = 1  # centres 10.5..14.5 and 20.5..22.5 lie in [10, 15] x [20, 23]
    assert torch.equal(m, expected), "a rectangle from (10, 20), 5 wide, 3 high, is columns 10-14 and rows 20-22"


def test_a_brush_stroke_is_a_capsule_and_a_dot_is_a_disc():
    m = rasterize_shape(parse_shape(shape_text({"type": "brush", "radius": 2, "points": [[10, 10], [30, 10]]})), 40, 40)
    rows = torch.nonzero(m.any(dim=1)).flatten().tolist()
    cols = torch.nonzero(m[9]).flatten().tolist()  # row 9: centre 9.5, 0.5 from the stroke
    assert rows == [8, 9, 10, 11], "centres within 2 px of y = 10: rows 8..11"
    assert cols == list(range(8, 32)), "the round caps reach sqrt(4 - 0.25) = 1.94 px past both ends"
    dot = rasterize_shape(parse_shape(shape_text({"type": "brush", "radius": 3, "points": [[20, 20]]})), 40, 40)
    disc = rasterize_shape(parse_shape(shape_text({"type": "ellipse", "cx": 20, "cy": 20, "rx": 3, "ry": 3})), 40, 40)
    assert torch.equal(dot, disc), "a one-point stroke is a disc of the brush's radius"


def test_an_ellipse_has_its_area_and_its_centre():
    m = rasterize_shape(parse_shape(shape_text({"type": "ellipse", "cx": 32, "cy": 20, "rx": 12, "ry": 6})), 40, 64)
    assert float(m.sum()) == pytest.approx(math.pi * 12 * 6, rel=0.05), "pi * rx * ry pixels"
    assert mask_pivot(m) == (32.0, 20.0) and centroid(m) == pytest.approx((32.0, 20.0), abs=1e-6)


def test_subtract_removes_and_order_matters():
    ring = rasterize_shape(parse_shape(shape_text({"type": "ellipse", "cx": 20, "cy": 20, "rx": 10, "ry": 10},
                                                  {"type": "ellipse", "cx": 20, "cy": 20, "rx": 5, "ry": 5,
                                                   "subtract": True})), 40, 40)
    assert ring[20, 20] == 0 and ring[20, 27] == 1, "the inner disc is cut out of the outer one"
    nothing = rasterize_shape(parse_shape(shape_text({"type": "rect", "x": 0, "y": 0, "w": 5, "h": 5, "subtract": True},
                                                     {"type": "rect", "x": 0, "y": 0, "w": 5, "h": 5})), 40, 40)
    assert nothing.sum() == 25, "a subtraction before the shape removes nothing from it (5x5 centres in [0, 5])"


def test_size_scales_the_description_to_the_image_it_is_applied_to():
    small = rasterize_shape(parse_shape(shape_text({"type": "rect", "x": 10, "y": 10, "w": 20, "h": 10},
                                                   size=[100, 100])), 50, 200)
    assert mask_pivot(small) == (40.0, 7.5), "x scales by 200/100, y by 50/100: centre (20, 15) -> (40, 7.5)"


def test_on_a_picture_of_another_aspect_the_drawing_keeps_its_place_and_its_proportions():
    """Issue 36 item 1: a circle drawn on 320x192 became a 14x24 ellipse on 256x256. Its bounding box's centre now
    keeps its place in the picture (per axis) and the drawing scales by one factor, sqrt(sx * sy)."""
    circle = shape_text({"type": "ellipse", "cx": 80, "cy": 96, "rx": 10, "ry": 10}, size=[320, 192])
    m = rasterize_shape(parse_shape(circle), 256, 256)
    s = math.sqrt(256 / 320 * 256 / 192)
    assert mask_pivot(m) == pytest.approx((80 * 256 / 320, 96 * 256 / 192), abs=0.5), "the centre keeps its place"
    rows, cols = m.any(dim=1).nonzero().flatten(), m.any(dim=0).nonzero().flatten()
    assert abs(len(rows) - len(cols)) <= 1, f"a circle stays a circle: {len(cols)}x{len(rows)}"
    assert float(m.sum()) == pytest.approx(math.pi * (10 * s) ** 2, rel=0.08), "its radius scales by sqrt(sx * sy)"


def test_fitting_moves_the_whole_drawing_together_and_is_plain_scaling_at_the_same_aspect():
    from interdyn.data.shapes import fit_shape

    two = parse_shape(shape_text({"type": "rect", "x": 10, "y": 10, "w": 10, "h": 10},
                                 {"type": "brush", "radius": 2, "points": [[30, 15], [40, 15]]}, size=[100, 50]))
    fitted = fit_shape(two, 100, 100)  # sx = 1, sy = 2, s = sqrt(2); box (10, 10)-(42, 20), centre (26, 15)
    rect, brush = fitted["shapes"]
    s = math.sqrt(2)
    assert (rect["x"], rect["y"], rect["w"]) == pytest.approx((26 + s * (10 - 26), 30 + s * (10 - 15), 10 * s))
    assert brush["points"][0] == pytest.approx((26 + s * 4, 30)) and brush["radius"] == pytest.approx(2 * s), \
        "every part scales about the drawing's centre, which goes to (26 * 1, 15 * 2)"
    same = fit_shape(two, 200, 100)["shapes"]
    assert same[0]["x"] == 20 and same[0]["w"] == 20 and same[1]["radius"] == 4, "the same aspect: times the ratio"
    assert fit_shape(two, 100, 50)["shapes"] == two["shapes"], "its own size: unchanged"


def _brute_force_stroke(points, radius, h, w):
    """The definition: pixels whose centres lie within radius of a segment of the stroke."""
    py, px = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                            indexing="ij")
    inside = torch.zeros(h, w, dtype=torch.bool)
    pts = points if len(points) > 1 else points * 2
    for (ax, ay), (bx, by) in zip(pts, pts[1:]):
        dx, dy = bx - ax, by - ay
        l2 = dx * dx + dy * dy
        t = (((px - ax) * dx + (py - ay) * dy) / l2).clamp(0, 1) if l2 else torch.zeros_like(px)
        inside |= torch.hypot(px - ax - t * dx, py - ay - t * dy) <= radius
    return inside.float()


def test_a_stroke_drawn_row_by_row_covers_exactly_the_pixels_within_its_radius():
    """Issue 34 item 9: strokes are now drawn one span per (segment, row); the pixels are those of the definition
    (random strokes, off the picture too; no point on a pixel centre's exact distance)."""
    rng = random.Random(11)
    for case in range(60):
        h, w = rng.choice([(40, 40), (31, 57), (64, 20)])
        n = rng.choice([1, 2, 5, 30])
        points = [[rng.uniform(-8, w + 8), rng.uniform(-8, h + 8)] for _ in range(n)]
        if case % 3 == 0:  # a dense stroke, as the page records it
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            points = [[x + 0.7 * k + rng.uniform(-0.2, 0.2), y + rng.uniform(-0.5, 0.5)] for k in range(n)]
        radius = rng.uniform(0.3, 9)
        shape = {"type": "brush", "radius": radius, "points": points}
        got = rasterize_shape(parse_shape(json.dumps([shape])), h, w)
        assert torch.equal(got, _brute_force_stroke(points, radius, h, w)), f"case {case}: {shape}"


def test_a_strokes_work_is_its_box_plus_one_span_per_segment_and_row(monkeypatch):
    """The cost no longer multiplies points by the stroke's box: a 1000-point stroke on 1024x1024 computes one span
    per (segment, row its capsule crosses) (bench/drive_editor_strokes.py times it against the old method)."""
    import interdyn.data.shapes as shapes

    spans = []
    real = shapes._capsule_span
    monkeypatch.setattr(shapes, "_capsule_span", lambda a, b, r, y: spans.append(len(y)) or real(a, b, r, y))
    rng = random.Random(0)
    x, y, points = 300.0, 500.0, []
    for _ in range(1000):  # a pointer moved about 3 px per event
        x += rng.uniform(-3, 3)
        y += rng.uniform(-3, 3)
        points.append([round(x, 1), round(y, 1)])
    radius = 6
    rasterize_shape(parse_shape(json.dumps([{"type": "brush", "radius": radius, "points": points}])), 1024, 1024)
    bound = sum(abs(b[1] - a[1]) + 2 * radius + 2 for a, b in zip(points, points[1:]))
    assert sum(spans) <= bound, f"{sum(spans)} spans for a bound of {bound:.0f}"


@pytest.mark.parametrize("text, fragment", [
    ("", "shape is empty"),
    ("{\"shapes\": [", "shape is not valid JSON"),
    ('[{"type": "star"}]', "type must be one of ellipse, rect, brush"),
    ('[{"type": "ellipse", "cx": 1, "cy": 1, "rx": 0, "ry": 1}]', "rx must be > 0"),
    ('[{"type": "ellipse", "cx": NaN, "cy": 1, "rx": 1, "ry": 1}]', "cx must be a finite number"),
    ('[{"type": "rect", "x": 1, "y": 1, "w": 2}]', "needs h"),
    ('[{"type": "brush", "radius": 2, "points": []}]', "non-empty list"),
    ('[{"type": "brush", "radius": 2, "points": [[1, 2, 3]]}]', r"points\[0\] must be an \[x, y\] pair"),
    ('[{"type": "rect", "x": 1, "y": 1, "w": 2, "h": 2, "angle": 4}]', "unknown key"),
    ('{"size": [0, 10], "shapes": []}', "size must be"),
    ("[]", "holds no shape"),
    ('[{"type": "ellipse", "cx": 500, "cy": 500, "rx": 3, "ry": 3}]', "covers no pixel"),
    ('[{"type": "ellipse", "cx": 1e308, "cy": 1, "rx": 1, "ry": 1}]', "cx must be at most 1e\\+06 pixels"),
    ('[{"type": "brush", "radius": 1e-308, "points": [[1, 1]]}]', "covers no pixel"),
    ('{"size": [1e308, 10], "shapes": []}', "size must be"),
])
def test_bad_shapes_get_one_message_naming_the_widget(text, fragment):
    with pytest.raises(InputError, match=fragment) as err:
        shape_mask(text, 32, 32)
    assert str(err.value).startswith("shape"), "the message names the widget"


def test_a_huge_description_is_refused_before_drawing():
    text = json.dumps([{"type": "brush", "radius": 1, "points": [[1, 1]] * 60_000}] * 2)
    with pytest.raises(InputError, match="more than 100000 points"):
        shape_mask(text, 32, 32)


# ---------------------------------------------------------------------------- coordinates (Spline Editor, Wan tracks)
KJ_ONE = json.dumps([{"x": 10 + 4 * i, "y": 20} for i in range(6)])  # KJNodes: json.dumps of {x, y} dicts


def test_spline_editor_points_one_per_frame_move_the_drivers_centre_point_by_point():
    mask = torch.zeros(48, 64)
    mask[16:24, 6:14] = 1  # centre (10, 20): where the path starts
    out = animate_mask(mask, '[{"frame": 0}]', 6, coordinates=KJ_ONE)
    for f in range(6):
        assert centroid(out[f]) == pytest.approx((10 + 4 * f, 20), abs=1e-4), f"frame {f} sits on point {f}"


def test_every_supported_form_reads_the_same_track():
    want = torch.tensor([[10.0, 20.0], [14, 21], [18, 22]])
    pts = [{"x": float(x), "y": float(y)} for x, y in want.tolist()]
    forms = {"KJNodes, one track": json.dumps(pts), "several tracks": json.dumps([pts]),
             "[x, y] pairs": json.dumps(want.tolist()), "Python repr (WanTrackToVideo accepts it)": repr(pts)}
    for name, text in forms.items():
        tracks = parse_coordinates(text, 64, 48)
        assert len(tracks) == 1 and torch.equal(tracks[0], want.double()), name


def test_with_several_tracks_the_driver_follows_the_one_starting_on_it():
    mask = torch.zeros(48, 64)
    mask[36:44, 46:54] = 1  # centre (50, 40)
    tracks = json.dumps([[{"x": 10, "y": 10}, {"x": 20, "y": 10}], [{"x": 49, "y": 41}, {"x": 49, "y": 31}]])
    out = animate_mask(mask, '[{"frame": 0}]', 3, coordinates=tracks)
    assert centroid(out[-1]) == pytest.approx((50, 30), abs=1e-4), "the second track starts nearest: it moves up 10"
    assert centroid(out[0]) == pytest.approx((50, 40), abs=1e-4), "frame 0 keeps the driver where it is drawn"


def test_a_track_of_another_length_is_spread_over_the_video():
    track = torch.stack([torch.linspace(0, 120, 121), torch.zeros(121)], dim=1).double()  # a Wan track: 121 points
    path = resample_track(track, 14)
    assert path[:, 0].tolist() == pytest.approx([120 * f / 13 for f in range(14)]), "first to last, evenly in time"
    two = resample_track(torch.tensor([[0.0, 0.0], [30.0, 60.0]]).double(), 4)
    assert torch.allclose(two, torch.tensor([[0.0, 0], [10, 20], [20, 40], [30, 60]]).double()), "linear in between"


def test_keyframe_scale_and_rotation_still_apply_along_a_track():
    mask = torch.zeros(48, 64)
    mask[18:22, 8:12] = 1  # 4x4 at centre (10, 20)
    out = animate_mask(mask, '[{"frame": 0}, {"frame": 5, "x": 999, "scale": 2}]', 6, coordinates=KJ_ONE,
                       interpolation="nearest")
    assert centroid(out[5]) == pytest.approx((30, 20), abs=1e-4), "x comes from the track, not from the keyframes"
    assert float(out[5].sum()) == pytest.approx(64, abs=4), "scale 2 from the keyframes: 4x4 becomes 8x8"


@pytest.mark.parametrize("text, fragment", [
    ("", "coordinates is empty"),
    ("[]", "non-empty JSON list"),
    ("[{\"x\": 1, ", "not valid JSON"),
    ('[{"x": 1, "y": 2}]', "holds 1 point"),
    ('[{"x": NaN, "y": 2}, {"x": 1, "y": 2}]', "finite numbers"),
    ('[{"x": 1, "y": 2}, {"x": 70, "y": 2}]', r"point 1 \(70, 2\) lies outside the 64x48 image"),
    ('[{"x": 1}, {"x": 2, "y": 2}]', r"needs \"x\" and \"y\""),
    ('[[{"x": 1, "y": 2}, {"x": 2, "y": 2}], "oops"]', "track 1 must be a list of points"),
    ('[{"x": 1, "y": 2}, "oops"]', "point 1 must be"),
    ('{"x": 1, "y": 2}', "non-empty JSON list"),
])
def test_bad_coordinates_get_one_message_naming_the_input_before_any_compute(text, fragment, monkeypatch):
    import interdyn.data.trajectory as trajectory

    monkeypatch.setattr(trajectory, "warp_mask", lambda *a, **k: pytest.fail("computed before checking the input"))
    with pytest.raises(InputError, match=fragment) as err:
        animate_mask(torch.ones(48, 64), '[{"frame": 0}]', 4, coordinates=text)
    assert str(err.value).startswith("coordinates"), "the message names the input"


# ---------------------------------------------------------------------------- the node
@pytest.fixture(scope="module")
def pack():
    return import_pack(f"pack_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def node(pack):
    return pack.nodes.drive_editor


def image(h=48, w=64):
    return torch.rand(1, h, w, 3, generator=torch.Generator().manual_seed(0))


def test_node_draws_the_shape_and_moves_it_to_each_keyframe(node):
    shape = json.dumps({"size": [64, 48], "shapes": [{"type": "ellipse", "cx": 12, "cy": 24, "rx": 5, "ry": 5}]})
    keys = json.dumps([{"frame": 0, "easing": "ease_in_out"}, {"frame": 4, "x": 20, "y": -6},
                       {"frame": 7, "x": 40, "y": 10, "easing": "linear"}])
    out = node.drive(image(), shape, keys, 8, "bilinear")
    masks = out[0]
    assert masks.shape == (8, 48, 64)
    for frame, (x, y) in {0: (12, 24), 4: (32, 18), 7: (52, 34)}.items():
        assert centroid(masks[frame]) == pytest.approx((x, y), abs=0.05), f"keyframe at frame {frame}"
    w = 4 * 0.5**3  # ease_in_out halfway through frames 0..4 (frame 2): 0.5
    assert centroid(masks[2]) == pytest.approx((12 + 20 * w, 24 - 6 * w), abs=0.05), "in between: the easing"
    view = out.ui["interdyn_drive"][0]
    assert view["size"] == [64, 48] and view["pivot"] == [12.0, 24.0] and not view["from_mask"]


def test_a_connected_mask_replaces_the_drawn_shape(node):
    mask = torch.zeros(1, 48, 64)
    mask[0, 10:20, 30:40] = 1
    masks = node.drive(image(), "", '[{"frame": 0}, {"frame": 2, "x": 5}]', 3, "nearest", mask=mask)[0]
    assert torch.equal(masks[0], mask[0]) and centroid(masks[2]) == pytest.approx((40, 15))
    with pytest.raises(ValueError, match="mask is 64x48 but image is 32x32"):
        node.drive(image(32, 32), "", '[{"frame": 0}]', 3, "nearest", mask=mask)


def test_the_node_takes_spline_editor_coordinates(node):
    shape = json.dumps([{"type": "rect", "x": 6, "y": 16, "w": 8, "h": 8}])
    masks = node.drive(image(), shape, '[{"frame": 0}]', 6, "nearest", coordinates=KJ_ONE)[0]
    assert [round(centroid(m)[0], 3) for m in masks] == [10, 14, 18, 22, 26, 30]


def test_the_mask_trajectory_node_takes_coordinates_too():
    pack = import_pack(f"pack_{uuid.uuid4().hex[:8]}")
    mask = torch.zeros(1, 48, 64)
    mask[0, 16:24, 6:14] = 1
    (masks,) = pack.nodes.FUNCTIONS["InterDynMaskTrajectory"](mask, '[{"frame": 0}]', 6, "nearest",
                                                                             coordinates=KJ_ONE)
    assert centroid(masks[-1]) == pytest.approx((30, 20))


def test_node_errors_name_the_widget(node):
    with pytest.raises(ValueError, match="^shape is empty"):
        node.drive(image(), "", '[{"frame": 0}]', 3, "nearest")
    with pytest.raises(ValueError, match="keyframes are not valid JSON"):
        node.drive(image(), shape_text({"type": "rect", "x": 1, "y": 1, "w": 4, "h": 4}), "[", 3, "nearest")
    with pytest.raises(ValueError, match="^frames must be at least 1"):
        node.drive(image(), shape_text({"type": "rect", "x": 1, "y": 1, "w": 4, "h": 4}), '[{"frame": 0}]', 0, "nearest")


def test_the_node_returns_its_outputs_as_a_tuple_and_the_page_view_as_ui(node):
    """Issue 35: every node function returns a tuple; the Drive Editor's view travels as the tuple's ``ui``."""
    out = node.drive(image(), shape_text({"type": "rect", "x": 1, "y": 1, "w": 4, "h": 4}), '[{"frame": 0}]', 2, "nearest")
    assert isinstance(out, tuple) and len(out) == 1 and out[0].shape == (2, 48, 64)
    assert set(out.ui) == {"interdyn_drive"}


def test_node_errors_are_the_packs_input_error_named_readably(node, pack):
    """Issue 36 item 8: ComfyUI names an exception module.qualname, and imports the pack under its folder's path."""
    with pytest.raises(ValueError) as err:
        node.drive(image(), "", '[{"frame": 0}]', 3, "nearest")
    assert f"{type(err.value).__module__}.{type(err.value).__qualname__}" == "InterDyn.InputError"
    assert isinstance(err.value, pack.interdyn.support.validation.InputError), "still the pack's InputError"
    assert str(err.value).startswith("shape is empty")


@pytest.mark.parametrize("keys, fragment", [
    ('[{"frame": 0, "x": 1e308}]', "keyframes: keyframe 0.x must be between"),
    ('[{"frame": 0}, {"frame": 3, "scale": 1e-308}]', "keyframes: keyframe 1.scale must be between 0.001 and 1000"),
])
def test_extreme_keyframes_are_refused_by_both_drawing_nodes_naming_keyframes(node, pack, keys, fragment):
    """Issue 34 item 8: they gave NaN masks, which the next node blamed on itself."""
    shape = shape_text({"type": "rect", "x": 1, "y": 1, "w": 4, "h": 4})
    with pytest.raises(ValueError, match=re.escape(fragment)):
        node.drive(image(), shape, keys, 4, "bilinear")
    with pytest.raises(ValueError, match=re.escape(fragment)):
        pack.nodes.FUNCTIONS["InterDynMaskTrajectory"](torch.ones(1, 48, 64), keys, 4, "bilinear")


def _one_nan(shape):
    t = torch.rand(*shape, generator=torch.Generator().manual_seed(3))
    t.view(-1)[7] = float("nan")
    return t


def test_every_mask_input_refuses_a_nan_pixel_naming_itself(node, pack):
    """Issue 34 item 8: a connected mask with one NaN pixel gave NaN masks. Every node that takes a MASK (the Drive
    Editor, Mask Trajectory, Control From Masks' mask_1 to mask_4) refuses it in its own input's name."""
    keys = '[{"frame": 0}]'
    with pytest.raises(ValueError, match="^mask holds 1 NaN"):
        node.drive(image(), "", keys, 3, "nearest", mask=_one_nan((1, 48, 64)))
    with pytest.raises(ValueError, match="^image holds 1 NaN"):
        node.drive(_one_nan((1, 48, 64, 3)), shape_text({"type": "rect", "x": 1, "y": 1, "w": 4, "h": 4}), keys, 3,
                   "nearest")
    with pytest.raises(ValueError, match="^mask holds 1 NaN"):
        pack.nodes.FUNCTIONS["InterDynMaskTrajectory"](_one_nan((1, 48, 64)), keys, 3, "nearest")
    masks = pack.nodes.FUNCTIONS["InterDynControlFromMasks"]
    good = (torch.rand(4, 64, 64) > 0.5).float()
    for n in (1, 2, 3, 4):
        inputs = {"mask_1": good, **({f"mask_{n}": _one_nan((4, 64, 64))} if n > 1 else {"mask_1": _one_nan((4, 64, 64))})}
        with pytest.raises(ValueError, match=f"^mask_{n} holds 1 NaN") as err:
            masks(inputs.pop("mask_1"), 64, 64, 4, 7.0, 7.0, "center", 0, 1, **inputs)
        assert type(err.value).__module__ == "InterDyn", "named readably in ComfyUI's error report"


def test_the_run_view_warns_of_keys_past_the_end_and_a_driver_leaving_the_picture(node):
    """Issue 36 items 5, 6: warnings in the node's UI output (the canvas shows them), not errors."""
    shape = shape_text({"type": "rect", "x": 10, "y": 10, "w": 8, "h": 8})
    out = node.drive(image(), shape, '[{"frame": 0}, {"frame": 6, "y": 60}, {"frame": 12, "y": 60}]', 8, "nearest")
    view = out.ui["interdyn_drive"][0]
    assert len(out[0]) == 8 and len(view["warnings"]) == 2, view["warnings"]
    assert "keyframe at frame 12 lies beyond the last frame (7; frames = 8)" in view["warnings"][0]
    assert view["warnings"][1].startswith("the driver leaves the picture: at frames ")
    calm = node.drive(image(), shape, '[{"frame": 0}, {"frame": 7, "x": 5}]', 8, "nearest").ui["interdyn_drive"][0]
    assert calm["warnings"] == [] and calm["notes"] == []


def test_the_run_view_notes_a_drive_fitted_to_a_new_picture_size(node):
    shape = json.dumps({"size": [32, 24], "shapes": [{"type": "ellipse", "cx": 8, "cy": 12, "rx": 3, "ry": 3}]})
    keys = '{"size": [32, 24], "keyframes": [{"frame": 0}, {"frame": 3, "x": 10, "y": 4}]}'
    out = node.drive(image(48, 64), shape, keys, 4, "bilinear")
    notes = out.ui["interdyn_drive"][0]["notes"]
    assert len(notes) == 2 and notes[0].startswith("shape was drawn on a 32x24 picture and is fitted to this 64x48 image")
    assert notes[1].startswith("keyframes were drawn on a 32x24 picture and are fitted to this 64x48 image")
    assert centroid(out[0][3]) == pytest.approx((16 + 20, 24 + 8), abs=0.05), "the path keeps its place (x2, x2)"


def test_the_run_view_holds_the_track_and_the_path_and_snap_puts_the_driver_on_the_track(node):
    shape = json.dumps([{"type": "rect", "x": 6, "y": 16, "w": 8, "h": 8}])  # centre (10, 20)
    track = json.dumps([{"x": 30, "y": 30}, {"x": 40, "y": 30}, {"x": 40, "y": 40}])
    out = node.drive(image(), shape, '[{"frame": 0}]', 3, "nearest", coordinates=track)
    view = out.ui["interdyn_drive"][0]
    assert view["track"] == [[30, 30], [40, 30], [40, 40]] and view["path"] == [[10, 20], [20, 20], [20, 30]], \
        "the canvas draws the track and the path the driver follows (its drawn place + the track's displacement)"
    snapped = node.drive(image(), shape, '[{"frame": 0}]', 3, "nearest", coordinates=track, snap_to_track_start=True)
    assert snapped.ui["interdyn_drive"][0]["path"] == [[30, 30], [40, 30], [40, 40]]
    assert [centroid(m) for m in snapped[0]] == [(30, 30), (40, 30), (40, 40)], "snapped: on the track itself"
    assert torch.equal(node.drive(image(), shape, '[{"frame": 0}]', 3, "nearest", coordinates=track,
                                  snap_to_track_start=False)[0], out[0]), "off (the default): as before"


def test_the_mask_trajectory_node_returns_a_tuple_with_its_warnings_as_ui(pack):
    fn = pack.nodes.FUNCTIONS["InterDynMaskTrajectory"]
    mask = torch.zeros(1, 32, 32)
    mask[0, 8:16, 8:16] = 1
    quiet = fn(mask, '[{"frame": 0}, {"frame": 3, "x": 4}]', 4, "nearest")
    assert isinstance(quiet, tuple) and quiet.ui is None
    loud = fn(mask, '[{"frame": 0}, {"frame": 9, "x": 4}]', 4, "nearest")
    assert "beyond the last frame (3; frames = 4)" in loud.ui["interdyn_warnings"][0]


def test_the_pages_code_uses_no_api_the_newest_frontend_deprecates():
    """Issue 36 item 8: frontend 1.58 warns on widget.inputEl and input.link (and the others listed here). The browser
    test catches their use at run time; this catches it in code paths the browser test does not reach."""
    deprecated = {r"\.inputEl\b": "widget.inputEl", r"(?<!is)\.link\b(?!s)": "input.link", r"\.links\b": "output.links",
                  r"\bcaptureInput\b": "captureInput", r"\bselected_nodes\b": "selected_nodes",
                  r"\bbadgePosition\b": "badgePosition", r"\bonBeforeChange\b": "LGraph.onBeforeChange",
                  r"\brepositionNodesVueMode\b": "repositionNodesVueMode"}
    for path in sorted((REPO / "web").glob("*.js")):
        code = path.read_text()
        found = [name for pattern, name in deprecated.items() if re.search(pattern, code)]
        assert not found, f"{path.name} uses {found}"


def test_the_editor_widgets_keep_their_order_and_the_coordinates_input_is_optional(pack):
    from test_nodes import declared

    spec = declared(pack)["InterDynDriveEditor"].INPUT_TYPES()
    assert list(spec["required"]) == ["image", "shape", "keyframes", "frames", "interpolation"], \
        "saved workflows store widget values by position: shape, keyframes, frames, interpolation"
    assert spec["optional"]["coordinates"][1].get("forceInput"), "coordinates arrive from another node"
    assert list(spec["optional"]) == ["mask", "coordinates", "snap_to_track_start"], \
        "the new option comes last: saved workflows keep their widget values in place"
    assert spec["optional"]["snap_to_track_start"][1]["default"] is False, "off: old workflows keep their output"


# ---------------------------------------------------------------------------- the page's mirror of the maths
JS_RUNNER = """
import * as m from %s;
const cases = JSON.parse(await new Promise((r) => { let s = ""; process.stdin.on("data", (d) => s += d); process.stdin.on("end", () => r(s)); }));
const out = cases.map((c) => {
  const mask = m.rasterize(m.parseShape(c.shape), c.w, c.h);
  const read = m.readKeys(JSON.parse(c.keys));
  return { mask: Array.from(mask), pivot: m.pivotOf(mask, c.w, c.h),
           params: m.interpolate(m.fitKeys(read.keys, read.size, c.w, c.h), c.frames),
           roundtrip: m.keysText(read.keys, read.size) };
});
process.stdout.write(JSON.stringify(out));
"""


def _random_case(rng: random.Random) -> dict:
    w, h = rng.choice([(64, 48), (40, 40), (96, 32)])
    shapes = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["ellipse", "rect", "brush"])
        if kind == "ellipse":
            s = {"type": kind, "cx": rng.uniform(0, w), "cy": rng.uniform(0, h), "rx": rng.uniform(0.6, 15),
                 "ry": rng.uniform(0.6, 15)}
        elif kind == "rect":
            s = {"type": kind, "x": rng.uniform(-5, w), "y": rng.uniform(-5, h), "w": rng.uniform(1, 20),
                 "h": rng.uniform(1, 20)}
        elif rng.random() < 0.5:
            s = {"type": kind, "radius": rng.uniform(0.5, 5),
                 "points": [[rng.uniform(0, w), rng.uniform(0, h)] for _ in range(rng.randint(1, 5))]}
        else:  # a stroke as the page records it: many points close together, at 0.1 px
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            points = []
            for _ in range(rng.randint(10, 60)):
                x, y = x + rng.uniform(-1.5, 2), y + rng.uniform(-1.5, 1.5)
                points.append([round(x, 1), round(y, 1)])
            s = {"type": kind, "radius": round(rng.uniform(0.5, 5), 2), "points": points}
        if rng.random() < 0.25:
            s["subtract"] = True
        shapes.append(s)
    size = rng.choice([None, [w, h], [w * 2, h * 2], [100, 100]])
    frames = rng.randint(2, 16)
    keys, frame = [], 0
    while frame < frames and len(keys) < 4:
        keys.append({"frame": frame, "x": rng.uniform(-30, 30), "y": rng.uniform(-30, 30),
                     "scale": rng.uniform(0.3, 3), "rotation": rng.uniform(-180, 180),
                     "easing": rng.choice(["linear", "ease_in", "ease_out", "ease_in_out", "hold"])})
        frame += rng.randint(1, 6)
    shape = json.dumps({"size": size, "shapes": shapes}) if size else json.dumps(shapes)
    key_size = rng.choice([None, [w, h], [w * 1.5, h * 0.75]])
    text = json.dumps({"size": key_size, "keyframes": keys} if key_size else keys)
    return {"shape": shape, "keys": text, "w": w, "h": h, "frames": frames}


@pytest.mark.skipif(NODE is None, reason="node is not installed (it runs the page's drive_model.js)")
def test_the_page_draws_the_same_mask_pivot_and_path_as_the_node(tmp_path):
    """What the artist sees in the canvas is what the node makes: 40 random shapes (strokes as the page records them
    among them) and paths (some drawn on a picture of another size, fitted), drawn on pictures of other sizes and
    aspects: exactly equal masks, pivots and per-frame placements equal to 1e-9 (both sides compute in float64)."""
    module = tmp_path / "drive_model.mjs"  # node 20 reads ES modules by their extension
    shutil.copy(REPO / "web" / "drive_model.js", module)
    runner = tmp_path / "run.mjs"
    runner.write_text(JS_RUNNER % json.dumps(module.as_uri()))
    rng = random.Random(7)
    cases = [_random_case(rng) for _ in range(40)]
    done = subprocess.run([NODE, str(runner)], input=json.dumps(cases), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for i, (case, js) in enumerate(zip(cases, json.loads(done.stdout))):
        mask = rasterize_shape(parse_shape(case["shape"]), case["h"], case["w"])
        assert torch.equal(torch.tensor(js["mask"], dtype=torch.float32).reshape(case["h"], case["w"]), mask), \
            f"case {i}: the page's mask differs from the node's ({case['shape'][:200]})"
        assert js["pivot"] == list(mask_pivot(mask)), f"case {i}: pivot"
        keys, key_size = read_keyframes(case["keys"])
        params = interpolate_keyframes(fit_keyframes(keys, key_size, case["w"], case["h"]), case["frames"])
        assert torch.allclose(torch.tensor(js["params"], dtype=torch.float64), params, atol=1e-9, rtol=0), \
            f"case {i}: the path differs ({case['keys']})"
        again_keys, again_size = read_keyframes(js["roundtrip"])
        again = interpolate_keyframes(fit_keyframes(again_keys, again_size, case["w"], case["h"]), case["frames"])
        assert again_size == key_size, f"case {i}: the editor keeps the size the keys were drawn on"
        assert torch.allclose(again, params, atol=0.02), f"case {i}: the editor's keyframe text reads back the same"
