"""Every shipped workflow in ComfyUI's real web page, as an artist sees it; the toy workflow from the Run button.

Starts a real ComfyUI as tests/test_comfyui_integration.py does (``COMFYUI_PATH``, ``COMFYUI_PYTHON``, the
same server helpers), with the test's tiny models placed under the names the workflows use, opens its page in
headless Chromium driven by puppeteer-core (``tests/comfyui_browser.js``), loads each workflow with
``app.loadGraphData`` and checks what the frontend built: no missing node types, every widget value inside its
range or combo list, every node inside the opening view at the saved zoom (which is a readable one) with no two
nodes overlapping, the Notes first in reading order. A screenshot of each lands in ``INTERDYN_SCREENSHOTS``
(default: the test's temporary folder). Then it presses Run (``app.queuePrompt(0, 1)``) on the toy workflow,
waits for the outputs and checks the Save nodes wrote their files and show their previews. Last, the Drive Editor
by hand (``InterDyn draw the drive on the picture.json``): an ellipse drawn, three keyframes clicked, one dragged, one frame number
typed, an easing picked, Ctrl+Z, save and reload, a text edit, and Run, whose masks must follow what was drawn.

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
RUN_TIMEOUT = 900
DRIVE = {"workflow": "InterDyn draw the drive on the picture.json", "prefix": "interdyn_drive/run"}
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


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """Start ComfyUI, drive its page through every workflow and the toy run; the page's report."""
    base = tmp_path_factory.mktemp("comfy_browser")
    (base / "custom_nodes").mkdir()
    os.symlink(REPO, base / "custom_nodes" / PACK_FOLDER, target_is_directory=True)
    _write_inputs(base / "input")
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
                  "workflows": [{"name": p.name, "path": str(p)} for p in WORKFLOWS], "run": RUN,
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


def _mask_centroid(m):
    import torch

    h, w = m.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    return float((m * xs).sum() / m.sum()), float((m * ys).sum() / m.sum())


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
    assert [k["frame"] for k in clicked["keys"]] == [0, 4, 8, 12], "each click adds a keyframe a third of the video on"
    info = drive["drawn"]
    for key, point in zip(clicked["keys"][1:], clicked["points"]):
        assert _centre(info, key) == _pytest.approx(point, abs=0.5), "the driver's centre goes where the click was"
    assert [k["frame"] for k in drive["steps"]["undone"]["keys"]] == [0, 4, 8], "Ctrl+Z takes the last click back"
    assert _centre(info, drive["steps"]["dragged"]["keys"][2]) == _pytest.approx(drive["steps"]["dragged"]["to"], abs=0.5), \
        "dragging a keyframe moves it"
    assert [k["frame"] for k in drive["steps"]["frame_typed"]["keys"]] == [0, 4, 8, 13], "the typed frame number"
    assert drive["steps"]["eased"]["keys"][0]["easing"] == "ease_in_out"
    saved = json.loads(info["widgets"]["keyframes"])
    assert [(k["frame"], k["easing"]) for k in saved] == [(0, "ease_in_out"), (4, "linear"), (8, "linear"), (13, "linear")], \
        "everything the editor did is in the keyframes widget"
    assert info["serialized_widgets"][:2] == [info["widgets"]["shape"], info["widgets"]["keyframes"]] \
        and len(info["serialized_widgets"]) == 4, \
        f"the workflow stores the four widgets, not the canvas: {info['serialized_widgets']}"
    assert not info["error"], info["error"]
    zoomed = drive["steps"]["zoomed"]
    assert zoomed["canvas"]["w"] > zoomed["before"]["w"] * 1.1, "the zoom and the resize made the canvas larger"
    added = [k for k in zoomed["keys"] if k["frame"] not in (0, 4, 8, 13)]
    assert len(added) == 1 and _centre(zoomed, added[0]) == _pytest.approx(zoomed["point"], abs=0.5), \
        f"at another zoom and node size a click still lands where it points: {added}"
    assert [k["frame"] for k in info["keys"]] == [0, 4, 8, 13], "and Ctrl+Z took it back"


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
    import numpy as np
    import torch
    from PIL import Image

    drive = report["drive"]
    assert drive["queued"]["ok"] and drive["run"]["status"] == "success", json.dumps(drive["run"])[:2000]
    files = sorted((report["server"].output / "interdyn_drive").glob("run_*.png"))
    assert len(files) == 14, f"one mask per frame: {[f.name for f in files]}"
    masks = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("L"), dtype=np.float32) / 255) for f in files])
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
    # the same widget values, headless
    from test_nodes import import_pack

    pack = import_pack("drive_headless_pack")
    image = torch.from_numpy(np.asarray(Image.open(report["server"].base / "input" / "scene.png").convert("RGB"),
                                        dtype=np.float32) / 255)[None]
    w = info["widgets"]
    out = pack.nodes.FUNCTIONS["InterDynDriveEditor"](image, w["shape"], w["keyframes"], w["frames"],
                                                                   "bilinear")["result"][0]
    # SaveImage stores floor(255 * value): the saved masks are the headless ones less under one 8-bit step
    diff = out - masks
    assert float(diff.min()) >= -1e-6 and float(diff.max()) < 1 / 255 + 1e-6, \
        f"the page's run and the headless run give the same masks (difference {float(diff.min()):.2e}..{float(diff.max()):.2e})"
