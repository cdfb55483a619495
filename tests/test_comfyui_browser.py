"""Every shipped workflow in ComfyUI's real web page, as an artist sees it; the toy workflow from the Run button.

Starts a real ComfyUI as tests/test_comfyui_integration.py does (``COMFYUI_PATH``, ``COMFYUI_PYTHON``, the
same server helpers), with the test's tiny models placed under the names the workflows use, opens its page in
headless Chromium driven by puppeteer-core (``tests/comfyui_browser.js``), loads each workflow with
``app.loadGraphData`` and checks what the frontend built: no missing node types, every widget value inside its
range or combo list, every node inside the opening view at the saved zoom (which is a readable one) with no two
nodes overlapping, the Notes first in reading order. A screenshot of each lands in ``INTERDYN_SCREENSHOTS``
(default: the test's temporary folder). Then it presses Run (``app.queuePrompt(0, 1)``) on the toy workflow,
waits for the outputs and checks the Save nodes wrote their files and show their previews. Last, the Drive Editor
by hand (``InterDyn draw the drive on the picture.json``), with real mouse events: the JSON widgets folded and shown,
an ellipse drawn, keyframes clicked, dragged, typed, eased, Ctrl+Z, save and reload, a text edit, and Run, whose
masks must follow what was drawn; then the picture switched to another size (the drive fitted, run again), a key
dragged in time on the timeline, refusals that stay on screen, Shift-, Ctrl- and right-click, Delete, the menu,
handles at every edge, a key off the picture, fewer frames, a connected track (run: drawn, warnings shown) and a
node error in the error panel. No console warning or error, and no deprecated frontend API, may come from the
pack's files.

Skipped, with the reason, unless all of these are there: ``COMFYUI_PATH``; Chromium (``INTERDYN_CHROMIUM``,
default ``/usr/bin/chromium``; Debian's ``chromium`` package); ``node``; the npm module ``puppeteer-core``
(found through ``NODE_PATH``, ``INTERDYN_NODE_MODULES`` or ``.browser/node_modules`` in the repository, where
``.ci/run`` installs it).

Example::

    COMFYUI_PATH=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/venv/bin/python \\
        INTERDYN_NODE_MODULES=/path/to/node_modules python -m pytest tests/test_comfyui_browser.py -v
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from test_comfyui_integration import COMFYUI, REPO, SVD_TINY, Server, _write_inputs, _write_models

CHROMIUM = os.environ.get("INTERDYN_CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")
SCRIPT = Path(__file__).with_name("comfyui_browser.js")
PACK_FOLDER = "ComfyUI-InterDyn"  # the README's clone name
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
RUN = "InterDyn toy physics - no downloads.json"  # needs no model files: runs from the Run button as shipped
DRAG_RUN = "InterDyn drag without training - no downloads.json"  # the same, with no InterDyn branch at all
RUN_TIMEOUT = 900
# the Drive Editor by hand: its runs' SaveImage prefixes, a second picture of another size, a track that pushes the
# driver off the bottom of that picture (pixels of the 128x128 picture)
DRIVE = {"workflow": "InterDyn draw the drive on the picture.json", "prefix": "interdyn_drive/run",
         "prefixes": {"square": "interdyn_drive/square", "track": "interdyn_drive/track", "error": "interdyn_drive/error"},
         "square_image": "scene_square.png", "track": json.dumps([{"x": 37, "y": 20}, {"x": 37, "y": 128}])}
# a full-HD desktop browser window; the saved zoom must keep node text drawn (the frontend switches to
# low-quality rendering, titles and widgets without text, below 0.6)
VIEWPORT = {"width": 1920, "height": 1080}
MIN_SCALE = 0.7
NOTE_TYPES = {"Note", "MarkdownNote"}


def _node_modules() -> list[str]:
    candidates = [*os.environ.get("NODE_PATH", "").split(os.pathsep), os.environ.get("INTERDYN_NODE_MODULES", ""),
                  str(REPO / ".browser" / "node_modules")]
    return [c for c in candidates if c and (Path(c) / "puppeteer-core" / "package.json").is_file()]


def _skip_reason() -> str | None:
    if not COMFYUI or not (Path(COMFYUI) / "main.py").is_file():
        return "set COMFYUI_PATH to a ComfyUI checkout with its requirements installed to run the browser test"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set INTERDYN_CHROMIUM)"
    if not NODE:
        return "node is not installed (needed to drive Chromium with puppeteer-core)"
    if not _node_modules():
        return ("the npm module puppeteer-core was not found (npm install --prefix .browser puppeteer-core, or set "
                "INTERDYN_NODE_MODULES to the node_modules folder holding it)")
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def _place_models_under_workflow_names(root: Path):
    """The workflows name the real models; give the tiny ones those names so the combos hold real entries."""
    from interdyn.core.tiny import build_tiny_backbone, build_tiny_control_branch

    shutil.copytree(root / "diffusers" / "svd_tiny", root / "diffusers" / "stable-video-diffusion-img2vid")
    build_tiny_control_branch(build_tiny_backbone(0), 0).save_pretrained(root / "interdyn" / "InterDyn")
    if (SVD_TINY / "tiny_svd.safetensors").is_file():  # the native workflow's checkpoint combo (loaded, not run)
        os.symlink(SVD_TINY / "tiny_svd.safetensors", root / "checkpoints" / "svd.safetensors")


def _write_square_picture(path: Path):
    """A 128x128 picture: the Drive Editor's image after the artist switched the Load Image."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:128, 0:128]
    Image.fromarray(np.stack([x * 2, y * 2, 255 - x - y // 2], -1).clip(0, 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Start ComfyUI, drive its page through every workflow and the toy run; the page's report."""
    base = tmp_path_factory.mktemp("comfy_browser")
    (base / "custom_nodes").mkdir()
    os.symlink(REPO, base / "custom_nodes" / PACK_FOLDER, target_is_directory=True)
    _write_inputs(base / "input")
    _write_square_picture(base / "input" / DRIVE["square_image"])
    models = tmp_path_factory.mktemp("models")
    yaml = _write_models(models)
    _place_models_under_workflow_names(models)
    shots = Path(os.environ.get("INTERDYN_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    srv = Server(base, yaml, base / "comfyui.log")
    try:
        t0 = time.time()
        srv.wait_ready()
        config = {"url": srv.url, "chromium": CHROMIUM, "viewport": VIEWPORT, "screenshots": str(shots),
                  "workflows": [{"name": p.name, "path": str(p)} for p in WORKFLOWS], "run": [RUN, DRAG_RUN],
                  "run_timeout_s": RUN_TIMEOUT, "drive": DRIVE}
        (base / "browser.json").write_text(json.dumps(config))
        env = {**os.environ, "NODE_PATH": os.pathsep.join(_node_modules())}
        done = subprocess.run([NODE, str(SCRIPT), str(base / "browser.json")], capture_output=True, text=True,
                              env=env, timeout=RUN_TIMEOUT + 600)
        assert done.returncode == 0, f"the browser script failed:\n{done.stderr[-4000:]}\n{srv.log_text()[-3000:]}"
        result = json.loads(done.stdout)
        (shots / "report.json").write_text(json.dumps(result, indent=1))
        result["server"], result["seconds"], result["screenshots"] = srv, time.time() - t0, str(shots)
        print(f"\nfrontend {result['frontend']}: page ready in {result['page_ready_s']:.1f}s, "
              f"toy run {result['run'].get('seconds', float('nan')):.1f}s, all {result['seconds']:.1f}s; "
              f"screenshots in {shots}")
        yield result
    finally:
        srv.stop()


def _visible_area(info):
    """The part of the canvas no menu or side bar covers, (left, top, right, bottom) in page pixels, and the
    panels floating over it (minimap, zoom controls) as [x, y, w, h]."""
    c = info["canvas"]
    left, top, right, bottom = c["x"], c["y"], c["x"] + c["w"], c["y"] + c["h"]
    floating = []
    for r in info["covers"]:
        if r["h"] >= 0.5 * c["h"] and r["x"] <= left + 1 and r["w"] < 0.3 * c["w"]:  # a bar along the left edge
            left = max(left, r["x"] + r["w"])
        elif r["w"] >= 0.5 * c["w"] and r["y"] <= top + 1 and r["h"] < 0.3 * c["h"]:  # a bar along the top
            top = max(top, r["y"] + r["h"])
        elif r["w"] < 0.5 * c["w"] and r["h"] < 0.5 * c["h"] and _overlap([r["x"], r["y"], r["w"], r["h"]],
                                                                            [c["x"], c["y"], c["w"], c["h"]]):
            floating.append([r["x"], r["y"], r["w"], r["h"]])
    return (left, top, right, bottom), floating


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize("name", [p.name for p in WORKFLOWS])
def test_workflow_loads_with_every_node_type_known(report, name):
    info = report["workflows"][name]
    assert info["load_error"] is None, f"{name}: loadGraphData failed: {info['load_error']}"
    missing = [n["type"] for n in info["nodes"] if not n["registered"]]
    assert not missing, f"{name}: the frontend does not know the node types {missing}"
    assert not info["missing_dialog"], f"{name}: a missing-nodes/models dialog opened: {info['missing_dialog']}"


@pytest.mark.parametrize("name", [p.name for p in WORKFLOWS])
def test_every_widget_value_is_valid_as_the_frontend_built_it(report, name):
    problems = []
    for node in report["workflows"][name]["nodes"]:
        for w in node["widgets"]:  # fields the page left undefined are absent
            value, where = w.get("value"), f"node {node['id']} {node['type']}.{w['name']} = {w.get('value')!r}"
            if w["name"] == "control_after_generate":
                if value not in ("fixed", "increment", "decrement", "randomize"):
                    problems.append(f"{where}: not a control mode (a value slid into the wrong widget)")
            elif w.get("type") == "combo" and w.get("values") is not None:
                if value not in w["values"]:
                    problems.append(f"{where}: not in its list {w['values'][:10]}")
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and w.get("min") is not None:
                if not w["min"] <= value <= w.get("max", float("inf")):
                    problems.append(f"{where}: outside [{w['min']}, {w.get('max')}]")
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", [p.name for p in WORKFLOWS])
def test_every_node_is_in_the_opening_view_at_a_readable_zoom_without_overlaps(report, name):
    info = report["workflows"][name]
    assert info["scale"] >= MIN_SCALE, f"{name}: saved zoom {info['scale']} < {MIN_SCALE}: text is hard to read"
    (left, top, right, bottom), floating = _visible_area(info)
    outside = [f"{n['id']} {n['title']!r} at {[round(v) for v in n['screen']]}" for n in info["nodes"]
               if n["screen"][0] < left or n["screen"][1] < top or n["screen"][0] + n["screen"][2] > right
               or n["screen"][1] + n["screen"][3] > bottom]
    assert not outside, (f"{name}: nodes outside the opening view {[round(v) for v in (left, top, right, bottom)]} "
                         f"of a {VIEWPORT['width']}x{VIEWPORT['height']} window: {outside}")
    hidden = [f"{n['id']} {n['title']!r}" for n in info["nodes"] for f in floating if _overlap(n["screen"], f)]
    assert not hidden, f"{name}: nodes under the minimap or zoom controls: {hidden}"
    nodes = info["nodes"]
    overlaps = [f"{a['id']} {a['title']!r} / {b['id']} {b['title']!r}" for i, a in enumerate(nodes)
                for b in nodes[i + 1:] if _overlap(a["bounding"], b["bounding"])]
    assert not overlaps, f"{name}: overlapping nodes (title bars included): {overlaps}"


@pytest.mark.parametrize("name", [p.name for p in WORKFLOWS])
def test_the_notes_come_first_in_reading_order(report, name):
    nodes = report["workflows"][name]["nodes"]
    notes = [n for n in nodes if n["type"] in NOTE_TYPES]
    others = [n for n in nodes if n["type"] not in NOTE_TYPES]
    assert notes, f"{name}: a workflow explains itself in a Note"
    # reading order: column by column (left edge, 20 units of slack), top to bottom within a column
    before = [f"{o['id']} {o['title']!r} before the Note {n['title']!r}" for n in notes for o in others
              if o["bounding"][0] < n["bounding"][0] - 20
              or (abs(o["bounding"][0] - n["bounding"][0]) <= 20 and o["bounding"][1] < n["bounding"][1])]
    assert not before, f"{name}: the Notes must be read first (left column, top): {before}"


@pytest.mark.parametrize("name", [p.stem for p in WORKFLOWS])
def test_the_template_browser_lists_the_workflow_with_its_card_image(report, name):
    server = report["server"]
    assert name in server.request("/workflow_templates").get(PACK_FOLDER, []), f"{name} is not served as a template"
    url = f"{server.url}/api/workflow_templates/{PACK_FOLDER}/{urllib.parse.quote(name)}.jpg"  # titles hold spaces
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.headers.get_content_type() == "image/jpeg", f"{name}.jpg: the card image must be served"


def test_the_toy_workflow_runs_from_the_run_button(report):
    run = report["run"]
    assert run["queued"]["ok"], f"the Run button failed: {run['queued']}"
    assert "dialog" not in run, f"the page refused the run: {run.get('dialog')}"
    assert run["status"] == "success", f"the run failed: {json.dumps(run.get('messages'))[:3000]}"
    server = report["server"]
    written = sorted(p.name for p in (server.output / "interdyn").glob("toy_physics*") if p.stat().st_size > 0)
    assert any(n.startswith("toy_physics_0") for n in written) and any("ground_truth" in n for n in written), \
        f"the generated and the simulated videos must be saved, got {written}"
    saved = {str(k) for k, v in run["outputs"].items() if v.get("images")}
    shown = {str(p["id"]) for p in run.get("previews", [])}
    assert saved and saved <= shown, f"the Save nodes {saved} must show their previews on the page, shown: {shown}"
    print(f"\ntoy workflow from the Run button: {run['seconds']:.1f}s, wrote {written}")


def test_the_drag_without_training_workflow_runs_from_the_run_button(report):
    """Training-free dragging on the toy prior with interdyn = none: the page's Run button, saved video and the
    reference's preview shown."""
    run = report["runs"][DRAG_RUN]
    assert run["queued"]["ok"], f"the Run button failed: {run['queued']}"
    assert "dialog" not in run, f"the page refused the run: {run.get('dialog')}"
    assert run["status"] == "success", f"the run failed: {json.dumps(run.get('messages'))[:3000]}"
    server = report["server"]
    written = sorted(p.name for p in (server.output / "interdyn").glob("drag_without_training*") if p.stat().st_size > 0)
    assert written, "the dragged video is saved"
    shown = {p["type"] for p in run.get("previews", [])}
    assert {"SaveAnimatedWEBP", "PreviewImage"} <= shown, f"the video and the reference are shown on the page: {shown}"
    print(f"\ndrag workflow from the Run button: {run['seconds']:.1f}s, wrote {written}")


def test_no_node_overlaps_another_after_the_run_shows_its_previews(report):
    """Previews grow the nodes that show them (ComfyUI draws images inside the node): a layout that was clear on
    load can cover the next node after a run."""
    run = report["run"]
    assert run.get("status") == "success" and run.get("after"), "the toy run must succeed first"
    nodes = run["after"]["nodes"]
    overlaps = [f"{a['id']} {a['title']!r} / {b['id']} {b['title']!r}" for i, a in enumerate(nodes)
                for b in nodes[i + 1:] if _overlap(a["bounding"], b["bounding"])]
    assert not overlaps, f"{RUN} after a run: overlapping nodes: {overlaps}"


# ---------------------------------------------------------------------------- the Drive Editor by hand
def _centre(info, key):
    return info["pivot"][0] + key["x"], info["pivot"][1] + key["y"]


def _frames_of(keys):
    return [k["frame"] for k in keys]


def _mask_centroid(m):
    import torch

    h, w = m.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return float((m * xs).sum() / m.sum()), float((m * ys).sum() / m.sum())


def _saved_masks(report, prefix):
    """The masks a run saved through MaskToImage -> SaveImage, in frame order."""
    import re

    import numpy as np
    import torch
    from PIL import Image

    folder, stem = prefix.split("/")
    files = sorted(f for f in (report["server"].output / folder).glob(f"{stem}_*.png")
                   if re.fullmatch(rf"{stem}_\d{{5}}_\.png", f.name))
    return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("L"), dtype=np.float32) / 255)
                        for f in files]) if files else torch.zeros(0)


def _headless(report, image_name, widgets, **optional):
    """The node run in Python on the same picture and widget values."""
    import numpy as np
    import torch
    from PIL import Image

    from test_nodes import import_pack

    pack = sys.modules.get("drive_headless_pack") or import_pack("drive_headless_pack")
    image = torch.from_numpy(np.asarray(Image.open(report["server"].base / "input" / image_name).convert("RGB"),
                                        dtype=np.float32) / 255)[None]
    return pack.nodes.FUNCTIONS["InterDynDriveEditor"](image, widgets["shape"], widgets["keyframes"], widgets["frames"],
                                                       "bilinear", **optional)


def _same_as_saved(headless, saved):
    # SaveImage stores floor(255 * value): the saved masks are the headless ones less under one 8-bit step
    diff = headless - saved
    return float(diff.min()) >= -1e-6 and float(diff.max()) < 1 / 255 + 1e-6, (float(diff.min()), float(diff.max()))


def _inside(point, w, h):
    return 0 <= point[0] <= w and 0 <= point[1] <= h


def test_the_json_widgets_are_folded_by_default_and_a_toggle_shows_them(report):
    drive = report["drive"]
    assert drive["loaded"]["json"] == {"hidden": [True, True], "textareas_visible": [False, False]}, \
        f"the shape and keyframes text widgets are folded on load: {drive['loaded']['json']}"
    assert drive["steps"]["json_shown"] == {"hidden": [False, False], "textareas_visible": [True, True]}, \
        f"the JSON button shows them: {drive['steps']['json_shown']}"
    assert drive["steps"]["json_folded"]["hidden"] == [True, True], "and folds them again"


def test_the_picture_is_at_least_twice_as_large_at_the_default_node_size(report):
    """Issue 36: a 1024x576 picture was drawn 440x168 at the default node size (graph units = screen px at zoom 1)."""
    view = report["drive"]["default_node"]
    w, h = view["picture"]
    assert view["json_hidden"] == [True, True], "a new node folds its JSON widgets"
    assert w * h >= 2 * 440 * 168, f"a new node draws a 1024x576 picture {w:.0f}x{h:.0f} (node {view['size']})"


def test_the_drive_editor_draws_a_shape_and_a_path_with_the_mouse(report):
    import pytest as _pytest

    drive = report["drive"]
    loaded = drive["loaded"]
    assert (loaded["W"], loaded["H"]) == (96, 64), "the canvas shows the Load Image picture at its own size"
    shape = json.loads(drive["steps"]["ellipse"]["shape"])
    assert len(shape["shapes"]) == 1 and shape["size"] == [96, 64], f"one drawn ellipse, in the picture's pixels: {shape}"
    e = shape["shapes"][0]
    # a screen pixel is about a third of an image pixel here: the drawn box is (20, 24) - (36, 40) to half a pixel
    assert (e["type"], e["cx"], e["cy"], e["rx"], e["ry"]) == ("ellipse", _pytest.approx(28, abs=0.5),
                                                               _pytest.approx(32, abs=0.5), _pytest.approx(8, abs=0.5),
                                                               _pytest.approx(8, abs=0.5))
    clicked = drive["steps"]["clicked"]
    assert _frames_of(clicked["keys"]) == [0, 4, 8, 12], "each click adds a keyframe a third of the video on"
    assert clicked["canvas"] == drive["steps"]["cleared"]["canvas"], \
        "the picture does not move under the pointer as shapes, keys and messages come and go"
    info = drive["drawn"]
    for key, point in zip(clicked["keys"][1:], clicked["points"]):
        assert _centre(info, key) == _pytest.approx(point, abs=0.5), "the driver's centre goes where the click was"
    assert _frames_of(drive["steps"]["undone"]["keys"]) == [0, 4, 8], "Ctrl+Z takes the last click back"
    assert _centre(info, drive["steps"]["dragged"]["keys"][2]) == _pytest.approx(drive["steps"]["dragged"]["to"], abs=0.5), \
        "dragging a keyframe moves it"
    assert _frames_of(drive["steps"]["frame_typed"]["keys"]) == [0, 4, 8, 13], "the typed frame number"
    assert drive["steps"]["eased"]["keys"][0]["easing"] == "ease_in_out"
    saved = json.loads(info["widgets"]["keyframes"])
    assert saved["size"] == [96, 64], "the editor stores the picture size the path was drawn on"
    assert [(k["frame"], k["easing"]) for k in saved["keyframes"]] == [(0, "ease_in_out"), (4, "linear"), (8, "linear"),
                                                                      (13, "linear")], \
        "everything the editor did is in the keyframes widget"
    assert info["serialized_widgets"][:2] == [info["widgets"]["shape"], info["widgets"]["keyframes"]] \
        and info["serialized_widgets"][2:] == [14, "bilinear", False], \
        f"the workflow stores the five widgets, not the canvas: {info['serialized_widgets']}"
    assert not info["error"], info["error"]
    assert drive["steps"]["scrubbed"]["frame"] == 2, "a click on the timeline scrubs to that frame"
    zoomed = drive["steps"]["zoomed"]
    assert zoomed["canvas"]["w"] > zoomed["before"]["w"] * 1.1, "the zoom and the resize made the canvas larger"
    added = [k for k in zoomed["keys"] if k["frame"] not in (0, 4, 8, 13)]
    assert len(added) == 1 and added[0]["frame"] == 2 and _centre(zoomed, added[0]) == _pytest.approx(zoomed["point"], abs=0.5), \
        f"at another zoom and node size a click still lands where it points, at the scrubbed frame: {added}"
    assert _frames_of(info["keys"]) == [0, 4, 8, 13], "and Ctrl+Z took it back"


def test_the_drive_editor_shows_the_same_drive_after_save_and_reload_and_follows_the_text(report):
    drive = report["drive"]
    drawn, reloaded = drive["drawn"], drive["reloaded"]
    assert reloaded["widgets"] == drawn["widgets"], "the saved workflow holds the drive"
    assert reloaded["keys"] == drawn["keys"] and reloaded["pivot"] == drawn["pivot"], "and the editor shows it again"
    typed = drive["typed"]
    assert [(k["frame"], k["x"], k["y"]) for k in typed["keys"]] == [(0, 0, 0), (5, 7, 3)], \
        "an edit typed in the keyframes widget shows in the canvas"
    assert typed["restored"] == drawn["keys"]


def test_the_drive_editor_run_gives_masks_that_follow_the_drawn_points(report):
    """Run from the page: the output masks' centroids sit on the drawn keyframes within 1 px, in between on the
    easing (ease_in_out on the first segment: 4t^3 then 1 - (-2t + 2)^3 / 2; linear after), and the same widget
    values run headless in Python give the same masks."""
    drive = report["drive"]
    run = drive["run"]
    assert run["queued"]["ok"] and run["status"] == "success", json.dumps(run)[:2000]
    masks = _saved_masks(report, DRIVE["prefix"])
    assert len(masks) == 14, f"one mask per frame: {len(masks)}"
    info = drive["drawn"]
    keys = info["keys"]
    centres = [_centre(info, k) for k in keys]

    def expected(f):
        for (a, ca), (b, cb) in zip(zip(keys, centres), zip(keys[1:], centres[1:])):
            if a["frame"] <= f <= b["frame"]:
                t = (f - a["frame"]) / (b["frame"] - a["frame"])
                if a["easing"] == "ease_in_out":
                    t = 4 * t**3 if t < 0.5 else 1 - (-2 * t + 2) ** 3 / 2
                return ca[0] + t * (cb[0] - ca[0]), ca[1] + t * (cb[1] - ca[1])
        return centres[-1]

    for f in range(14):
        got, want = _mask_centroid(masks[f]), expected(f)
        assert abs(got[0] - want[0]) <= 1 and abs(got[1] - want[1]) <= 1, \
            f"frame {f}: the mask's centroid {got} is not within 1 px of the drawn path's {want}"
    ok, span = _same_as_saved(_headless(report, "scene.png", info["widgets"])[0], masks)
    assert ok, f"the page's run and the headless run give the same masks (difference {span})"
    assert drive["after_run"]["run_view"]["warnings"] == [] and drive["after_run"]["run_text"] == "", \
        "a drive inside the picture with every key in the video: no warning"


def test_a_new_picture_size_keeps_the_drive_in_place_and_in_proportion(report):
    """Issue 36 item 1: the Load Image switched from 96x64 to 128x128 after drawing. The drive is fitted: its centre
    and path keep their place in the picture (x * 128/96, y * 128/64), the drawn circle stays a circle, scaled by
    sqrt(128/96 * 128/64) in size; the editor says so; the run gives the masks the canvas shows (= headless)."""
    import math

    drive = report["drive"]
    resized, run = drive["resized"], drive["run_resized"]
    assert (resized["W"], resized["H"]) == (128, 128), "the canvas follows the new picture"
    assert "drawn on 96x64, fitted to this picture" in resized["status"], f"a visible notice: {resized['status']!r}"
    assert run["status"] == "success", json.dumps(run)[:2000]
    assert any("fitted to this 128x128 image" in n for n in run["after"]["run_view"]["notes"]), \
        f"the run says it fitted the drive: {run['after']['run_view']['notes']}"
    masks = _saved_masks(report, DRIVE["prefixes"]["square"])
    first = _saved_masks(report, DRIVE["prefix"])
    assert masks.shape == (14, 128, 128), masks.shape
    sx, sy, s = 128 / 96, 128 / 64, math.sqrt(128 / 96 * 128 / 64)
    drawn = drive["drawn"]
    m0 = masks[0] > 0.5
    rows, cols = m0.any(1).nonzero().flatten(), m0.any(0).nonzero().flatten()
    width, height = int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
    assert abs(width - height) <= 1, f"the circle stays round: {width}x{height} (it became a 14x24 ellipse before)"
    assert float(masks[0].sum()) / float(first[0].sum()) == pytest.approx(s * s, rel=0.06), "its area scales by s^2"
    for f, key in ((0, drawn["keys"][0]), (13, drawn["keys"][-1])):
        cx, cy = _centre(drawn, key)
        assert _mask_centroid(masks[f]) == pytest.approx((cx * sx, cy * sy), abs=1.0), \
            f"frame {f}: the driver keeps its place in the picture"
    areas = masks.sum(dim=(1, 2))
    assert float(areas.min()) >= 0.9 * float(areas[0]), "the whole path stays inside the picture"
    ok, span = _same_as_saved(_headless(report, DRIVE["square_image"], resized["widgets"])[0], masks)
    assert ok, f"the page's run is the headless node's on the same values (difference {span})"


def test_the_timeline_drags_keys_in_time_and_scrubs(report):
    steps = report["drive"]["steps"]
    assert _frames_of(steps["before_timeline"]["keys"]) == [0, 4, 8, 13]
    assert _frames_of(steps["timeline_dragged"]["keys"]) == [0, 6, 8, 13], "the second key's mark dragged to frame 6"
    assert steps["timeline_dragged"]["frame"] == 6, "the scrubber follows the dragged key"
    assert steps["timeline_scrubbed"]["frame"] == 10, "a click on the strip scrubs"


def test_refusals_stay_in_the_message_line_until_the_next_action(report):
    steps = report["drive"]["steps"]
    assert _frames_of(steps["no_free_frame"]["keys"]) == [0, 6, 8, 13], "no free frame: nothing added"
    assert "already has a keyframe" in steps["no_free_frame"]["message"], \
        f"and the reason stays on screen after the editor's redraws: {steps['no_free_frame']['message']!r}"
    assert _frames_of(steps["off_picture"]["keys"]) == [0, 6, 8, 13], \
        f"a click beside the picture adds nothing ({steps['off_picture_point']})"
    assert "click on the picture" in steps["off_picture"]["message"], steps["off_picture"]["message"]
    assert steps["next_action"]["message"] == "", "the next action clears it"


def test_the_path_tools_artists_know(report):
    """KJNodes' Spline Editor habits: right-click removes a key, Shift-click appends, Ctrl-click inserts between the
    two nearest keys, Delete removes the selected key; right-click off the keys opens the menu."""
    steps = report["drive"]["steps"]
    resized = report["drive"]["resized"]
    assert _frames_of(steps["right_clicked"]["keys"]) == [0, 6, 8], "right-click on the key at frame 13 removed it"
    shift = steps["shift_clicked"]
    assert _frames_of(shift["keys"]) == [0, 6, 8, 12], "Shift-click appends a third of the video after the last key"
    assert _centre(resized, shift["keys"][-1]) == pytest.approx(shift["point"], abs=0.5)
    ctrl = steps["ctrl_clicked"]
    assert _frames_of(ctrl["keys"]) == [0, 3, 6, 8, 12], "Ctrl-click near the first segment inserts at its middle frame"
    assert _centre(resized, ctrl["keys"][1]) == pytest.approx(ctrl["point"], abs=0.5)
    assert _frames_of(steps["deleted"]["keys"]) == [0, 3, 6, 12], "Delete removed the selected key (frame 8)"
    menu = steps["menu"]
    texts = [i["text"] for i in menu["items"]]
    assert menu["visible"] and "Reset path" in texts and "Clear shape" in texts, texts
    assert sum(t.lstrip("✓ ") in ("linear", "ease_in", "ease_out", "ease_in_out", "hold") for t in texts) == 5, texts
    eased = steps["menu_eased"]
    assert [(k["frame"], k["easing"]) for k in eased["keys"]][1] == (3, "ease_out") and not eased["menu_visible"], \
        "the menu set the selected segment's easing and closed"
    assert [(k["frame"], k["x"], k["y"]) for k in steps["menu_reset"]["keys"]] == [(0, 0, 0)], "the menu's Reset path"


def test_handles_stay_on_the_picture_at_every_edge_and_scale_and_rotate(report):
    """Issue 36 item 2: a key near the top edge had its rotation handle at y = -11, out of reach."""
    steps = report["drive"]["steps"]
    for edge, at in steps["edges"].items():
        h, w, hh = at["handles"], at["W"], at["H"]
        assert _inside(h["scale"], w, hh) and _inside(h["rotate"], w, hh), f"{edge} edge: handles {h} off the picture"
    scaled = steps["scaled"]
    assert scaled["scale"] == pytest.approx(2 * scaled["scale_before"], rel=0.15), "the square handle scales"
    rotated = steps["rotated"]
    turn = (rotated["rotation"] - rotated["rotation_before"]) % 360
    assert turn == pytest.approx(90, abs=8), f"a quarter turn of the circle handle turns the key 90 degrees: {turn}"


def test_a_key_off_the_picture_is_drawn_on_its_edge_and_dragged_back(report):
    steps = report["drive"]["steps"]
    off = steps["off_key"]
    key, pos = off["keys"][-1], off["key_pos"][-1]
    assert off["pivot"][0] + key["x"] == pytest.approx(-29.5, abs=0.01), "its centre is off the picture"
    assert _inside(pos, 128, 128) and pos[0] < 10, f"drawn on the picture's left edge: {pos}"
    dragged = steps["off_key_dragged"]
    assert _centre(dragged, dragged["keys"][-1]) == pytest.approx(dragged["to"], abs=0.5), "and dragged back in"


def test_fewer_frames_flag_the_keys_past_the_end_in_the_list_and_the_status(report):
    fewer = report["drive"]["steps"]["fewer_frames"]
    past = [k["frame"] for k in fewer["keys"] if k["frame"] > 7]
    assert past and sum(r["beyond"] for r in fewer["list_rows"]) == len(past), fewer["list_rows"]
    assert f"past the last frame (7)" in fewer["status"], fewer["status"]
    assert fewer["flags"]["beyond"] == past
    lines = (fewer["list_box"], fewer["message_box"], fewer["status_box"])
    assert all(a["y"] + a["h"] <= b["y"] + 0.5 for a, b in zip(lines, lines[1:])), \
        f"the list scrolls in its own box, above the message and status lines (issue 36 item 4): {lines}"


def test_a_connected_track_is_drawn_and_the_run_warns_in_the_node(report):
    """Issue 36 items 5 and 6: the track replaces the keys' x, y; the canvas draws it from the run; keys past the
    last frame and a driver pushed off the picture are warnings of the run (shown on the node), not errors."""
    drive = report["drive"]
    before, run = drive["track_before_run"], drive["run_track"]
    assert "a track is connected" in before["status"] and "run once" in before["status"], before["status"]
    assert run["status"] == "success", json.dumps(run)[:2000]
    after = run["after"]
    view = after["run_view"]
    assert view["track"] and after["track_path"] and len(view["path"]) == 8, "the canvas draws the run's track and path"
    warnings = " ".join(view["warnings"])
    assert "beyond the last frame" in warnings and "leaves the picture" in warnings, view["warnings"]
    assert "beyond the last frame" in after["run_text"] and "leaves the picture" in after["run_text"], after["run_text"]
    masks = _saved_masks(report, DRIVE["prefixes"]["track"])
    assert len(masks) == 8
    ok, span = _same_as_saved(_headless(report, DRIVE["square_image"], after["widgets"], coordinates=DRIVE["track"])[0],
                              masks)
    assert ok, f"the page's run is the headless node's (difference {span})"


def test_a_node_error_reads_well_in_the_error_panel(report):
    """Issue 34 item 8 and issue 36 item 8: "x": 1e308 is refused by the node naming its widget, and the report names
    the exception InterDyn.InputError (not a file path of the pack); the page shows the message."""
    err = report["drive"]["run_error"]
    assert err["status"] == "error", json.dumps(err)[:2000]
    execution = [m[1] for m in err["messages"] if m[0] == "execution_error"]
    assert execution, err["messages"]
    assert execution[0]["exception_type"] == "InterDyn.InputError", execution[0]["exception_type"]
    message = execution[0]["exception_message"].strip()
    assert message.startswith("keyframes: keyframe 0.x must be between -1e+06 and 1e+06 pixels"), message
    shown = "\n".join(t["text"] for t in err["texts"] + err["texts_details"])
    assert "keyframe 0.x must be between" in shown, f"the frontend shows the message: {shown[-3000:]}"
    assert "InterDyn.InputError" in shown or "InterDynDriveEditor" in shown, "and whose it is"
    assert "Last run failed: keyframes: keyframe 0.x must be between" in err["after"]["run_text"], \
        f"the node itself shows it too: {err['after']['run_text']!r}"
    assert "keyframes:" in err["after"]["status"], "and the canvas refuses the text before the run"
    assert PACK_FOLDER + "." not in shown and "custom_nodes/" + PACK_FOLDER + "." not in shown, \
        "no exception named by the pack's file path"


def test_no_console_warning_or_error_comes_from_the_pack(report):
    """Issue 36 item 8: on 1.58 the pack used widget.inputEl and input.link (deprecated). Every warning and error the
    page logged, and every deprecated API used (with its stack), must not come from the pack's files."""
    ours = f"/extensions/{PACK_FOLDER}/"
    bad = [c for c in report["console"] if any(ours in u for u in c["urls"])
           or (c["phase"] != "error_run" and (ours in c["text"] or "drive_editor.js" in c["text"]
                                              or "drive_model.js" in c["text"]))]
    assert not bad, f"console messages from the pack: {json.dumps(bad, indent=1)[:3000]}"
    deprecated = [d for d in report.get("deprecations", []) if ours in d["stack"]]
    assert not deprecated, f"deprecated frontend API used by the pack: {json.dumps(deprecated, indent=1)[:3000]}"
