"""The Drive Editor: the drawn shape's description, the paths artists already draw (coordinates), the node,
and the page's mirror of the maths (``web/drive_model.js``, run under node) against the library's."""
from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import torch

from interdyn.data.shapes import parse_shape, rasterize_shape, shape_mask
from interdyn.data.trajectory import animate_mask, interpolate_keyframes, mask_pivot, parse_coordinates, resample_track
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
    masks = out["result"][0]
    assert masks.shape == (8, 48, 64)
    for frame, (x, y) in {0: (12, 24), 4: (32, 18), 7: (52, 34)}.items():
        assert centroid(masks[frame]) == pytest.approx((x, y), abs=0.05), f"keyframe at frame {frame}"
    w = 4 * 0.5**3  # ease_in_out halfway through frames 0..4 (frame 2): 0.5
    assert centroid(masks[2]) == pytest.approx((12 + 20 * w, 24 - 6 * w), abs=0.05), "in between: the easing"
    view = out["ui"]["interdyn_drive"][0]
    assert view["size"] == [64, 48] and view["pivot"] == [12.0, 24.0] and not view["from_mask"]


def test_a_connected_mask_replaces_the_drawn_shape(node):
    mask = torch.zeros(1, 48, 64)
    mask[0, 10:20, 30:40] = 1
    masks = node.drive(image(), "", '[{"frame": 0}, {"frame": 2, "x": 5}]', 3, "nearest", mask=mask)["result"][0]
    assert torch.equal(masks[0], mask[0]) and centroid(masks[2]) == pytest.approx((40, 15))
    with pytest.raises(ValueError, match="mask is 64x48 but image is 32x32"):
        node.drive(image(32, 32), "", '[{"frame": 0}]', 3, "nearest", mask=mask)


def test_the_node_takes_spline_editor_coordinates(node):
    shape = json.dumps([{"type": "rect", "x": 6, "y": 16, "w": 8, "h": 8}])
    masks = node.drive(image(), shape, '[{"frame": 0}]', 6, "nearest", coordinates=KJ_ONE)["result"][0]
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


def test_the_editor_widgets_keep_their_order_and_the_coordinates_input_is_optional(pack):
    from test_nodes import declared

    spec = declared(pack)["InterDynDriveEditor"].INPUT_TYPES()
    assert list(spec["required"]) == ["image", "shape", "keyframes", "frames", "interpolation"], \
        "saved workflows store widget values by position: shape, keyframes, frames, interpolation"
    assert spec["optional"]["coordinates"][1].get("forceInput"), "coordinates arrive from another node"


# ---------------------------------------------------------------------------- the page's mirror of the maths
JS_RUNNER = """
import * as m from %s;
const cases = JSON.parse(await new Promise((r) => { let s = ""; process.stdin.on("data", (d) => s += d); process.stdin.on("end", () => r(s)); }));
const out = cases.map((c) => {
  const mask = m.rasterize(m.parseShape(c.shape), c.w, c.h);
  return { mask: Array.from(mask), pivot: m.pivotOf(mask, c.w, c.h),
           params: m.interpolate(m.normaliseKeys(JSON.parse(c.keys)), c.frames),
           roundtrip: m.keysText(m.normaliseKeys(JSON.parse(c.keys))) };
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
        else:
            s = {"type": kind, "radius": rng.uniform(0.5, 5),
                 "points": [[rng.uniform(0, w), rng.uniform(0, h)] for _ in range(rng.randint(1, 5))]}
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
    return {"shape": shape, "keys": json.dumps(keys), "w": w, "h": h, "frames": frames}


@pytest.mark.skipif(NODE is None, reason="node is not installed (it runs the page's drive_model.js)")
def test_the_page_draws_the_same_mask_pivot_and_path_as_the_node(tmp_path):
    """What the artist sees in the canvas is what the node makes: 40 random shapes and paths, exactly equal masks,
    pivots and per-frame placements equal to 1e-9 (both sides compute in float64)."""
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
        params = interpolate_keyframes(case["keys"], case["frames"])
        assert torch.allclose(torch.tensor(js["params"], dtype=torch.float64), params, atol=1e-9, rtol=0), \
            f"case {i}: the path differs ({case['keys']})"
        again = interpolate_keyframes(js["roundtrip"], case["frames"])
        assert torch.allclose(again, params, atol=0.01), f"case {i}: the editor's keyframe text reads back the same"
