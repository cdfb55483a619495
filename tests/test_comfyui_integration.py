"""The pack inside a real ComfyUI: it imports, and every example workflow runs on tiny models.

Skipped unless ``COMFYUI_PATH`` points at a ComfyUI checkout (the folder holding main.py) whose
requirements are installed for ``COMFYUI_PYTHON`` (default: this Python). The test starts
ComfyUI on 127.0.0.1 (CPU) with a temporary base directory whose custom_nodes/ holds only a
link to this repository under an arbitrary folder name, and model folders given by an
extra_model_paths.yaml; converts each workflow from the UI to the API format, points the model
and file widgets at tiny models and inputs it wrote, queues it with POST /prompt, waits for it,
checks that the video was written, and stops the server by its PID.

The native SVD workflows (``InterDyn in the core SVD graph - KSampler.json``, ``SVD drag without training - native
nodes.json``) start from ComfyUI's Image Only Checkpoint Loader, whose model detection refuses the tiny SVD checkpoint (it recognises SVD by its real widths);
the test swaps that one node for a test-only loader (a second custom node folder it writes) that
builds ComfyUI's own MODEL / CLIP_VISION / VAE objects from ``../shared/fixtures/svd_single_file_tiny``
(``tests/comfy_tiny_svd.py``). Everything after it is ComfyUI's and the pack's real nodes.

Example::

    COMFYUI_PATH=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/venv/bin/python \
        python -m pytest tests/test_comfyui_integration.py -v
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMFYUI = os.environ.get("COMFYUI_PATH")
PYTHON = os.environ.get("COMFYUI_PYTHON", sys.executable)
PACK_FOLDER = "interdyn pack-under.test"  # spaces, dashes and dots: relative imports must cope
START_TIMEOUT = int(os.environ.get("COMFYUI_START_TIMEOUT", "180"))  # seconds; raise it on a busy machine
RUN_TIMEOUT = 600
SVD_TINY = Path(os.environ.get("SVD_TINY_FIXTURE", Path(os.environ.get("INTERDYN_SHARED", REPO.parent / "shared")) / "fixtures"
                              / "svd_single_file_tiny"))
NATIVE = "InterDyn in the core SVD graph - KSampler.json"
NATIVE_DRAG = "SVD drag without training - native nodes.json"  # core nodes + Cut and Drag Reference, no branch
TINY_SVD_NODE = "InterDynTestTinySVDLoader"

pytestmark = pytest.mark.skipif(
    not COMFYUI or not (Path(COMFYUI) / "main.py").is_file(),
    reason="set COMFYUI_PATH to a ComfyUI checkout (folder with main.py) with its requirements installed "
           "(and COMFYUI_PYTHON to its Python if it is not this one) to run the ComfyUI integration test")

H, W, FRAMES = 64, 96, 6  # source video (14 fps) / images; the workflows generate 64x64, 3 frames at 7 fps
UI_ONLY = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}

# widget overrides per node type, applied where the input is not linked
FAST = {
    "InterDynModelLoader": {"svd": "svd_tiny", "interdyn": "interdyn_tiny.safetensors", "precision": "auto"},
    "InterDynControlFromMasks": {"width": 64, "height": 64, "frames": 3},
    "InterDynSampler": {"width": 64, "height": 64, "frames": 3, "steps": 2},
    "InterDynDecode": {"decode_chunk_size": 0},
    "InterDynMaskTrajectory": {"frames": 3},
    "InterDynSAM2VideoMasks": {"sam2_model": "sam2.1_hiera_tiny.pt", "device": "cpu", "resolution": 256},
    "InterDynControlBranchLoader": {"control_branch": "interdyn_native_tiny.safetensors", "weight_dtype": "default"},
    "SVD_img2vid_Conditioning": {"width": 64, "height": 64, "video_frames": 3},
    "KSampler": {"steps": 2},
    "ImageScale": {"width": 64, "height": 64},
}
# overrides for one workflow only (the same node type elsewhere keeps its values)
FAST_IN = {NATIVE_DRAG: {"InterDynDriveEditor": {"frames": 3}}}
KSAMPLER_ADVANCED_STEPS = 5  # KSampler (Advanced) runs this many steps, its start/end steps scaled alike
# workflows that run exactly as shipped (the built-in model: already small, no files needed)
AS_SHIPPED = {"InterDyn toy physics - no downloads.json", "InterDyn drag without training - no downloads.json"}
PROMPTS = {
    "InterDyn hand pushes an object - SAM2 masks.json": '[{"box": [10, 10, 40, 40]}]',
    "InterDyn several driving objects - SAM2.json": '[{"box": [10, 10, 40, 40]}, {"points": [[70, 40]], "labels": [1]}]',
}


# ---------------------------------------------------------------------------- inputs and models
def _frames(n=FRAMES):
    import numpy as np

    ys, xs = np.mgrid[0:H, 0:W]
    out = []
    for f in range(n):
        img = np.stack([xs * 255 // W, ys * 255 // H, np.full_like(xs, 120)], -1).astype(np.uint8)
        x = 10 + 4 * f
        img[20:40, x:x + 20] = 255
        out.append(img)
    return out


def _write_video(path: Path, fps: int = 14):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for img in _frames():
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_inputs(folder: Path):
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    first = _frames(1)[0]
    Image.fromarray(first).save(folder / "first_frame.png")
    Image.fromarray(first).save(folder / "scene.png")
    mask = np.zeros((H, W, 3), np.uint8)
    mask[20:40, 10:30] = 255
    Image.fromarray(mask).save(folder / "hand_mask.png")
    _write_video(folder / "hand_video.mp4")
    _write_video(folder / "objects.mp4")


def _write_models(root: Path):
    import torch

    from interdyn.data.segmentation import build_sam2_video_predictor_random
    from interdyn.core.tiny import write_tiny_models

    for kind in ("diffusers", "interdyn", "sam2", "checkpoints"):
        (root / kind).mkdir(parents=True, exist_ok=True)
    paths = write_tiny_models(root / "build")
    shutil.move(str(paths["svd"]), root / "diffusers" / "svd_tiny")
    shutil.move(str(paths["interdyn"]), root / "interdyn" / "interdyn_tiny.safetensors")
    _write_native_branch(root / "interdyn" / "interdyn_native_tiny.safetensors")
    predictor = build_sam2_video_predictor_random(device="cpu", image_size=256)
    torch.save({"model": predictor.state_dict()}, root / "sam2" / "sam2.1_hiera_tiny.pt")
    yaml = root / "extra_model_paths.yaml"
    yaml.write_text("interdyn_test:\n"
                    f"    base_path: {root}\n"
                    "    diffusers: diffusers\n"
                    "    interdyn: interdyn\n"
                    "    sam2: sam2\n"
                    "    checkpoints: checkpoints\n")
    return yaml


def _write_native_branch(path: Path):
    """A control branch for the tiny single-file SVD (the native workflow's model), zero convs perturbed."""
    from interdyn.core.loading import save_control_branch
    from interdyn.models.controlnet import InterDynControlNet
    from interdyn.single_file import load_svd_single_file
    from interdyn.core.tiny import TINY_CONTROL_CNN, perturb_zero_convs

    if not (SVD_TINY / "tiny_svd.safetensors").is_file():
        return
    unet = load_svd_single_file(SVD_TINY / "tiny_svd.safetensors", unet_head_dim=16, clip_head_dim=16)["unet"]
    branch = InterDynControlNet.from_unet(unet.float(), conditioning_embedding_out_channels=TINY_CONTROL_CNN,
                                          residual_mode="official")
    save_control_branch(perturb_zero_convs(branch, 0), path)


def _write_tiny_svd_node(custom_nodes: Path):
    """A test-only node that returns ComfyUI's own SVD objects built from the tiny checkpoint."""
    folder = custom_nodes / "interdyn_test_tiny_svd"
    folder.mkdir()
    (folder / "__init__.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(REPO / 'tests')!r})\n"
        "from comfy_tiny_svd import load_tiny_svd\n\n\n"
        f"class {TINY_SVD_NODE}:\n"
        "    CATEGORY = 'testing'\n"
        "    FUNCTION = 'load'\n"
        "    RETURN_TYPES = ('MODEL', 'CLIP_VISION', 'VAE')\n\n"
        "    @classmethod\n"
        "    def INPUT_TYPES(cls):\n"
        "        return {'required': {}}\n\n"
        "    def load(self):\n"
        f"        return load_tiny_svd({str(SVD_TINY / 'tiny_svd.safetensors')!r})\n\n\n"
        f"NODE_CLASS_MAPPINGS = {{{TINY_SVD_NODE!r}: {TINY_SVD_NODE}}}\n")


# ---------------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, base: Path, yaml: Path, log: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.base, self.output = base, base / "output"
        cmd = [PYTHON, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(base), "--output-directory", str(self.output),
               "--extra-model-paths-config", str(yaml), "--database-url", f"sqlite:///{base / 'comfyui.db'}",
               "--disable-auto-launch", "--preview-method", "auto"]
        if os.environ.get("INTERDYN_FRONTEND_ROOT"):  # another frontend than the one ComfyUI pins (CI: newest 1.58.x)
            cmd += ["--front-end-root", os.environ["INTERDYN_FRONTEND_ROOT"]]
        self._log_file = open(log, "w")
        self.proc = subprocess.Popen(cmd, cwd=COMFYUI, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def request(self, path, data=None, timeout=30):
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.url + path, data=body,
                                     headers={"Content-Type": "application/json"} if body else {})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
        return json.loads(text) if text else None

    def wait_ready(self):
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ComfyUI exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                self.request("/system_stats", timeout=5)
                return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                time.sleep(1)
        raise AssertionError(f"ComfyUI did not answer within {START_TIMEOUT}s:\n{self.log_text()[-4000:]}")

    def log_text(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # this PID only
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log_file.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy_base")
    (base / "custom_nodes").mkdir()
    os.symlink(REPO, base / "custom_nodes" / PACK_FOLDER, target_is_directory=True)
    _write_tiny_svd_node(base / "custom_nodes")
    _write_inputs(base / "input")
    yaml = _write_models(tmp_path_factory.mktemp("models"))
    srv = Server(base, yaml, base / "comfyui.log")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


# ---------------------------------------------------------------------------- UI -> API
def _own_convert(workflow: dict, object_info: dict) -> dict:
    """A minimal UI -> API converter: widget values in input order (a seed's control value skipped)."""
    links = {link[0]: link for link in workflow["links"]}
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in UI_ONLY or node.get("mode", 0) in (2, 4):
            continue
        info = object_info[node["type"]]
        values = list(node.get("widgets_values") or [])
        linked = {i["name"]: links[i["link"]] for i in node.get("inputs", []) if i.get("link") is not None}
        inputs = {}
        for section in ("required", "optional"):
            for name in info.get("input_order", {}).get(section, []):
                spec = info["input"][section][name]
                kind = "COMBO" if isinstance(spec[0], list) else spec[0]
                opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if kind in WIDGET_TYPES and not opts.get("forceInput"):  # a forceInput is a socket only
                    value = values.pop(0) if values else opts.get("default")
                    if opts.get("control_after_generate"):
                        values.pop(0)
                    if name not in linked:
                        inputs[name] = value
                if name in linked:
                    link = linked[name]
                    inputs[name] = [str(link[1]), link[2]]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


def to_api(workflow: dict, object_info: dict) -> dict:
    try:
        from comfy_cli.workflow_to_api import convert_ui_to_api
    except ImportError:
        return _own_convert(workflow, object_info)
    return convert_ui_to_api(workflow, object_info)


# ---------------------------------------------------------------------------- tests
def test_pack_imports_in_comfyui(server):
    log = server.log_text()
    assert "IMPORT FAILED" not in log, log[-4000:]
    info = server.request("/object_info")
    ours = {"InterDynModelLoader", "InterDynControlFromMasks", "InterDynControlFromRenders", "InterDynSampler",
            "InterDynDecode", "InterDynSAM2VideoMasks", "InterDynMaskTrajectory", "InterDynControlBranchLoader",
            "InterDynApply"}
    assert ours <= set(info), f"missing nodes: {ours - set(info)}"
    loader = info["InterDynModelLoader"]["input"]["required"]
    assert loader["svd"][0] == "COMBO" and loader["interdyn"][0] == "COMBO", "declared with the V3 API (comfy_api)"
    assert "svd_tiny" in loader["svd"][1]["options"], "models/diffusers from extra_model_paths.yaml must be listed"
    assert "interdyn_tiny.safetensors" in loader["interdyn"][1]["options"], \
        "the yaml's interdyn folder must survive registration"


def test_workflows_are_served_as_templates(server):
    templates = server.request("/workflow_templates")
    assert sorted(templates.get(PACK_FOLDER, [])) == sorted(p.stem for p in (REPO / "workflows").glob("*.json"))


def fast_prompt(server, name: str, **sampler) -> dict:
    """The workflow in API format with tiny models, small sizes and the test's inputs."""
    workflow = json.loads((REPO / "workflows" / name).read_text())
    prompt = to_api(workflow, server.request("/object_info"))
    if name in AS_SHIPPED:
        return prompt
    for node in prompt.values():
        if node["class_type"] == "ImageOnlyCheckpointLoader":  # refuses tiny sizes: ComfyUI's objects, built directly
            node["class_type"], node["inputs"] = TINY_SVD_NODE, {}
        for key, value in {**FAST.get(node["class_type"], {}), **FAST_IN.get(name, {}).get(node["class_type"], {}),
                           **(sampler if node["class_type"] == "InterDynSampler" else {})}.items():
            if not isinstance(node["inputs"].get(key), list):
                node["inputs"][key] = value
        if node["class_type"] == "KSamplerAdvanced":  # the dual clock's phases: steps 16 / 21 of 50 -> 1 / 2 of 5
            inputs, total = node["inputs"], node["inputs"]["steps"]
            for key in ("start_at_step", "end_at_step"):
                if inputs[key] < total:
                    inputs[key] = inputs[key] * KSAMPLER_ADVANCED_STEPS // total
            inputs["steps"] = KSAMPLER_ADVANCED_STEPS
        if node["class_type"] == "InterDynSAM2VideoMasks":
            node["inputs"]["prompts"] = PROMPTS[name]
    return prompt


def queue(server, name: str, prompt: dict) -> str:
    server.request("/free", {"unload_models": True, "free_memory": True})
    try:
        return server.request("/prompt", {"prompt": prompt, "client_id": uuid.uuid4().hex})["prompt_id"]
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{name} was refused: {err.read().decode()[:4000]}") from None


def wait(server, name: str, prompt_id: str) -> dict:
    deadline = time.time() + RUN_TIMEOUT
    while time.time() < deadline:
        entry = server.request(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("status_str") in ("success", "error"):
            return entry
        assert server.proc.poll() is None, f"ComfyUI died:\n{server.log_text()[-4000:]}"
        time.sleep(1)
    raise AssertionError(f"{name} did not finish within {RUN_TIMEOUT}s:\n{server.log_text()[-4000:]}")


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "workflows").glob("*.json")))
def test_workflow_runs(server, name):
    if name in (NATIVE, NATIVE_DRAG) and not (SVD_TINY / "tiny_svd.safetensors").is_file():
        pytest.skip(f"the native workflows run on the tiny single-file SVD fixture, missing here ({SVD_TINY}; "
                    "set SVD_TINY_FIXTURE)")
    entry = wait(server, name, queue(server, name, fast_prompt(server, name)))
    status = entry["status"]
    assert status.get("status_str") == "success", \
        f"{name} failed: {json.dumps(status.get('messages'))[:4000]}\n{server.log_text()[-3000:]}"
    prefix = {"InterDyn hand pushes an object - SAM2 masks.json": "hand_object", "InterDyn draw the drive on the picture.json": "mask_trajectory",
              "InterDyn several driving objects - SAM2.json": "multi_object", "InterDyn toy physics - no downloads.json": "toy_physics_0",
              "InterDyn drag without training - no downloads.json": "drag_without_training", NATIVE: "native_svd",
              NATIVE_DRAG: "svd_drag_native"}[name]
    written = [p for p in (server.output / "interdyn").glob(f"{prefix}*") if p.stat().st_size > 0]
    assert written, f"{name} wrote no video into {server.output / 'interdyn'}"


def test_cancel_stops_sampling_and_the_server_goes_on(server):
    name = "InterDyn draw the drive on the picture.json"
    prompt_id = queue(server, name, fast_prompt(server, name, steps=400, seed=7))
    deadline = time.time() + RUN_TIMEOUT
    while not server.request("/queue")["queue_running"] and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(10)  # past loading (about 3 s), well into the 400 steps
    server.request("/interrupt", {})
    entry = wait(server, name, prompt_id)
    events = [m[0] for m in entry["status"].get("messages", [])]
    assert "execution_interrupted" in events, f"cancel must interrupt the sampler cleanly, got {events}"
    assert "execution_error" not in events, f"a cancel is not an error: {entry['status']}"
    # the server still runs workflows afterwards
    again = wait(server, name, queue(server, name, fast_prompt(server, name, seed=8)))
    assert again["status"]["status_str"] == "success"


def test_the_toy_workflow_gives_the_librarys_frames_for_the_same_seed(server):
    """The shipped toy workflow, run as a user runs it, and the library path of `interdyn demo` / `interdyn probes`
    (the built-in model, its world, TOY_SAMPLING) give the same frames for the same scene and seed: the workflow's
    widgets hold the built-in settings, not drifted copies of them."""
    import numpy as np
    import torch
    from PIL import Image

    from interdyn.core.builtin import TOY_PHYSICS, TOY_SAMPLING, toy_world
    from interdyn.core.loading import load_control_branch, load_svd_backbone
    from interdyn.apps.probes import model_generator
    from interdyn.data.synthetic import scene_for_preset

    name = "InterDyn toy physics - no downloads.json"
    prompt = fast_prompt(server, name)  # as shipped
    by_type = {node["class_type"]: (key, node["inputs"]) for key, node in prompt.items()}
    scene_in, sampler = by_type["InterDynSyntheticScene"][1], by_type["InterDynSampler"][1]
    assert scene_in["world"] == toy_world(), "the workflow's scenes come from the world the built-in model learned"
    widgets = {"steps": "num_steps", "min_cfg": "min_guidance", "max_cfg": "max_guidance", "fps": "fps",
               "motion_bucket_id": "motion_bucket_id", "noise_aug_strength": "noise_aug_strength",
               "frames": "num_frames"}
    drift = {w: (sampler[w], TOY_SAMPLING[k]) for w, k in widgets.items() if sampler[w] != TOY_SAMPLING[k]}
    assert not drift, f"the sampler's widgets differ from the built-in model's settings (widget: (workflow, CLI)): {drift}"
    prompt["9999"] = {"class_type": "SaveImage", "inputs": {"images": [by_type["InterDynDecode"][0], 0],
                                                            "filename_prefix": "interdyn/toy_parity"}}
    entry = wait(server, name, queue(server, name, prompt))
    assert entry["status"].get("status_str") == "success", json.dumps(entry["status"].get("messages"))[:3000]
    files = sorted((server.output / "interdyn").glob("toy_parity_*.png"))
    assert len(files) == sampler["frames"], f"one PNG per frame, got {[f.name for f in files]}"
    comfy = torch.stack([torch.from_numpy(np.array(Image.open(f).convert("RGB"))) for f in files]).permute(0, 3, 1, 2)

    scene = scene_for_preset(scene_in["preset"], scene_in["seed"], size=(scene_in["height"], scene_in["width"]),
                             num_frames=scene_in["frames"], world=scene_in["world"])
    backbone = load_svd_backbone(TOY_PHYSICS)
    generate = model_generator(backbone, load_control_branch(TOY_PHYSICS, backbone=backbone), dict(TOY_SAMPLING))
    ours = generate(scene.frames[0], scene.control, sampler["control_strength"], sampler["seed"])
    ours = (ours * 255.0).clamp(0, 255).to(torch.uint8)  # SaveImage truncates as this does
    levels = (comfy.int() - ours.int()).abs()
    assert levels.max() <= 1, (f"the workflow's frames differ from the library's by up to {int(levels.max())} of 255 "
                               f"({(levels > 1).float().mean():.1%} of the values)")
