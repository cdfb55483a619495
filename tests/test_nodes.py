"""The ComfyUI node pack on tiny models: the nodes' functions called without ComfyUI; their V3 declarations with\nComfyUI's ``comfy_api`` (``COMFYUI_PATH``)."""
from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
H, W, F = 64, 64, 2


def import_pack(name: str):
    """Import the repository root as a package called ``name``, as ComfyUI does with a custom node folder."""
    spec = importlib.util.spec_from_file_location(name, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def declared(pack) -> dict:
    """The pack's V3 declarations, ``{node type name: io.ComfyNode class}``, as ComfyUI loads them.

    They import ComfyUI's ``comfy_api`` (only ComfyUI has it), taken from ``COMFYUI_PATH``. ComfyUI's modules are
    then removed from ``sys.modules`` and its folder from ``sys.path`` again: the classes keep what they imported,
    and the rest of the test process still runs the nodes as outside ComfyUI (``nodes.host`` would otherwise
    find ``comfy.model_management`` and ask it for a GPU). Skipped without ``COMFYUI_PATH``, except where CI
    requires ComfyUI (``INTERDYN_REQUIRE_COMFYUI=1``), where that is a failure.
    """
    import asyncio
    import os

    if pack.__name__ in _DECLARED:
        return _DECLARED[pack.__name__]
    path = os.environ.get("COMFYUI_PATH")
    if not path or not (Path(path) / "comfy_api").is_dir():
        reason = "set COMFYUI_PATH to a ComfyUI checkout: the node declarations use its comfy_api"
        if os.environ.get("INTERDYN_REQUIRE_COMFYUI") == "1":
            pytest.fail(f"{reason} (INTERDYN_REQUIRE_COMFYUI=1)")
        pytest.skip(reason)
    modules, sys_path = set(sys.modules), list(sys.path)
    sys.path.append(path)
    try:
        extension = asyncio.run(pack.comfy_entrypoint())
        classes = {cls.GET_SCHEMA().node_id: cls for cls in asyncio.run(extension.get_node_list())}
    finally:
        sys.path[:] = sys_path
        for name in set(sys.modules) - modules:
            if name.split(".")[0] in ("comfy", "comfy_api", "comfy_execution", "comfy_config", "folder_paths",
                                      "latent_preview", "utils", "app", "server", "node_helpers"):
                del sys.modules[name]
    _DECLARED[pack.__name__] = classes
    return classes


_DECLARED: dict[str, dict] = {}


def combo_options(entry) -> list:
    """A combo input's choices, in V1 form (``[choices], {...}``) or V3's (``"COMBO", {"options": [...]}``)."""
    return entry[0] if isinstance(entry[0], list) else entry[1]["options"]


@pytest.fixture(scope="module")
def pack():
    return import_pack(f"pack_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    from interdyn.core.tiny import write_tiny_models

    root = tmp_path_factory.mktemp("models")
    for kind in ("diffusers", "checkpoints", "interdyn", "sam2"):
        (root / kind).mkdir()
    paths = write_tiny_models(root / "tmp")
    paths["svd"].rename(root / "diffusers" / "svd_tiny")
    paths["interdyn"].rename(root / "interdyn" / "interdyn_tiny.safetensors")
    return root


@pytest.fixture(autouse=True)
def folders(pack, model_root, monkeypatch):
    """Point the adapter's model folder lookup at the tiny models."""
    monkeypatch.setattr(pack.nodes.host, "model_folders", lambda kind: [str(model_root / kind)])
    return model_root


@pytest.fixture(scope="module")
def model(pack, model_root):
    import pytest as _pytest

    with _pytest.MonkeyPatch.context() as mp:
        mp.setattr(pack.nodes.host, "model_folders", lambda kind: [str(model_root / kind)])
        (m,) = pack.nodes.FUNCTIONS["InterDynModelLoader"]("svd_tiny", "interdyn_tiny.safetensors", "auto", True)
    return m


def node(pack, name):
    """The function that runs node ``name`` (what ComfyUI calls through the V3 declaration)."""
    return pack.nodes.FUNCTIONS[name]


def moving_square(frames=F, h=H, w=W, size=16) -> torch.Tensor:
    masks = torch.zeros(frames, h, w)
    for f in range(frames):
        x = 4 + 8 * f
        masks[f, 20:20 + size, x:x + size] = 1.0
    return masks


def image(b=1, h=H, w=W) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([xs, ys, 1 - xs], dim=-1).unsqueeze(0).repeat(b, 1, 1, 1)


SAMPLER = dict(width=W, height=H, frames=F, steps=1, min_cfg=1.0, max_cfg=2.0, fps=7, motion_bucket_id=40,
               noise_aug_strength=0.02, seed=3, control_strength=1.0, control_start=0.0, control_end=1.0)


# ---------------------------------------------------------------------------- declarations
def test_pack_imports_under_any_folder_name_without_comfyui(pack):
    # ComfyUI names the package after the folder's full path (dots replaced): dashes, spaces, slashes
    before = set(sys.modules)
    other = import_pack(f"/home/me/ComfyUI/custom_nodes/ComfyUI-InterDyn copy {uuid.uuid4().hex[:6]}")
    assert set(other.nodes.FUNCTIONS) == set(pack.nodes.FUNCTIONS), "relative imports only: any name works"
    assert callable(other.comfy_entrypoint) and not hasattr(other, "NODE_CLASS_MAPPINGS"), \
        "ComfyUI reads NODE_CLASS_MAPPINGS before comfy_entrypoint: the pack must declare its nodes one way (V3)"
    new = set(sys.modules) - before
    assert not any(m.split(".")[0] in ("comfy", "comfy_api", "comfy_execution", "folder_paths") for m in new), \
        "importing the pack must not import ComfyUI modules (only comfy_entrypoint does)"


def test_every_node_is_declared_with_the_v3_api_over_its_function(pack):
    """Each declaration is the node's type name, inputs named as its function's parameters (in order), tooltips on
    every input and output, and an execute that calls the function."""
    import inspect

    nodes = declared(pack)
    assert list(nodes) == list(pack.nodes.FUNCTIONS), "one declaration per function, in the Add Node menu's order"
    for name, cls in nodes.items():
        schema = cls.GET_SCHEMA()
        assert schema.category == "InterDyn" and schema.description and schema.display_name, name
        params = list(inspect.signature(pack.nodes.FUNCTIONS[name]).parameters)
        assert [i.id for i in schema.inputs] == params, f"{name}: widget/socket names and order = the function's"
        for i in schema.inputs:
            assert i.tooltip, f"{name}.{i.id} needs a tooltip"
        assert all(o.tooltip and o.display_name for o in schema.outputs), name


def test_declarations_execute_the_functions(pack, monkeypatch):
    """execute passes the inputs by name to the node's function and returns its outputs (the Drive Editor's and Mask
    Trajectory's ``ui`` as the node's UI output)."""
    nodes = declared(pack)
    calls = {}
    for name, fn in list(pack.nodes.FUNCTIONS.items()):
        module = __import__(fn.__module__, fromlist=[fn.__name__])

        def fake(*args, _name=name, **kwargs):
            calls[_name] = kwargs
            if _name in ("InterDynDriveEditor", "InterDynMaskTrajectory"):
                return pack.nodes.results.Outputs(("masks",), ui={"view": [_name]})
            return (_name, "second")

        monkeypatch.setattr(module, fn.__name__, fake)
    for name, cls in nodes.items():
        out = cls.execute(a=1, b=2)
        assert calls[name] == {"a": 1, "b": 2}, name
        if name in ("InterDynDriveEditor", "InterDynMaskTrajectory"):
            assert out.args == ("masks",) and out.ui == {"view": [name]}, "the tuple's items, and its ui"
        else:
            assert out.args == (name, "second"), name


def reported_name(error: BaseException) -> str:
    """How ComfyUI names an exception in its error panel (``module.qualname``)."""
    return f"{type(error).__module__}.{type(error).__qualname__}"


def test_every_node_reports_user_errors_as_interdyn_input_error(pack, monkeypatch):
    """Issue 36: ComfyUI imports the pack under its folder's path and names an exception ``module.qualname``, so a
    user error of most nodes (the Sampler's, Decode's, the Model Loader's ...) read as a file path of the pack in the
    error panel. Whatever user error a node's function raises (the library's errors are all ValueErrors), every
    node's execute reports it as ``InterDyn.InputError``, still of its own class, message kept; a bug or a cancel
    passes unchanged. The same holds for ``nodes.FUNCTIONS``."""
    class Interrupted(Exception):  # as ComfyUI's InterruptProcessingException
        pass

    lib = pack.interdyn
    user_errors = [ValueError, lib.support.validation.InputError, lib.support.errors.ModelLoadError,
                   lib.data.video_io.VideoReadError, lib.support.safe_output.OutputError]
    nodes = declared(pack)
    assert set(nodes) == set(pack.nodes.FUNCTIONS), "every node of the pack"
    raised = {}
    for name, fn in list(pack.nodes.FUNCTIONS.items()):
        module = __import__(fn.__module__, fromlist=[fn.__name__])

        def failing(*args, _name=name, **kwargs):
            raise raised[_name]

        monkeypatch.setattr(module, fn.__name__, failing)
    for name, cls in nodes.items():
        for kind in user_errors:
            raised[name] = kind(f"{name}: frames must be at least 1, got 0")
            with pytest.raises(ValueError) as caught:
                cls.execute(a=1)
            assert reported_name(caught.value) == "InterDyn.InputError", f"{name} reports a {kind.__name__} readably"
            assert isinstance(caught.value, kind) and str(caught.value) == str(raised[name]), name
            assert isinstance(caught.value, lib.support.validation.InputError), "the library's InputError too"
        for other in (RuntimeError("a bug"), Interrupted()):
            raised[name] = other
            with pytest.raises(type(other)) as caught:
                cls.execute(a=1)
            assert caught.value is other, f"{name}: not a user error, passed as it is"
    with pytest.raises(ValueError) as caught:  # the functions of FUNCTIONS are the unpatched ones
        pack.nodes.FUNCTIONS["InterDynDecode"](None, {"samples": torch.zeros(2, 4, 8, 8)}, 0)
    assert reported_name(caught.value) == "InterDyn.InputError", "nodes.FUNCTIONS: what the node raises in ComfyUI"


def test_the_sampler_and_decode_user_errors_read_as_interdyn_input_error(pack, model):
    """The two nodes of issue 36's report, with real mistakes through ComfyUI's execute: a control of another length
    than the sampler's frames, a LATENT that is not the sampler's, a model name that is not in the folders."""
    nodes = declared(pack)
    control, _, _ = pack.nodes.FUNCTIONS["InterDynControlFromMasks"](moving_square(), W, H, F, 7.0, 7.0, "center", 0, 1)
    mistakes = [
        (nodes["InterDynSampler"], dict(model=model, image=image(), control=torch.cat([control, control[:1]]),
                                        **SAMPLER), "control has 3 frames but frames is 2"),
        (nodes["InterDynDecode"], dict(model=model, latent={"samples": torch.zeros(2, 4, 8, 8)}, decode_chunk_size=0),
         "does not come from the InterDyn Sampler"),
        (nodes["InterDynModelLoader"], dict(svd="no_such_svd", interdyn="none", precision="auto", keep_loaded=False),
         "'no_such_svd' was not found"),
    ]
    for cls, inputs, message in mistakes:
        with pytest.raises(ValueError) as caught:
            cls.execute(**inputs)
        assert reported_name(caught.value) == "InterDyn.InputError" and message in str(caught.value), caught.value


def one_nan(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[5] = float("nan")
    return t


def test_every_image_mask_and_latent_input_refuses_one_nan_naming_itself(pack, model):
    """Issue 34 item 8, checked by class: no NaN leaves a node, and the node that receives one names its own input.
    Control From Masks' ``image`` passed a NaN pixel into its fitted image output; the Sampler's ``drag_region`` was
    refused as "masks" (the library's name). Every IMAGE, MASK and LATENT input of the Sampler, Decode, both control
    nodes and Cut and Drag Reference (the mask nodes' masks: tests/test_drive_editor.py)."""
    f = pack.nodes.FUNCTIONS
    control, _, _ = f["InterDynControlFromMasks"](moving_square(), W, H, F, 7.0, 7.0, "center", 0, 1)
    reference, region = f["InterDynCutAndDragReference"](image(), moving_square())[:2]
    (latent,) = f["InterDynSampler"](model, image(), control=control, **SAMPLER)
    sample = lambda **kw: f["InterDynSampler"](**{"model": model, "image": image(), "control": control,  # noqa: E731
                                                   **SAMPLER, **kw})
    cases = {
        "image": lambda: sample(image=one_nan(image())),
        "drag_reference": lambda: sample(drag_reference=one_nan(reference), drag_region=region),
        "drag_region": lambda: sample(drag_reference=reference, drag_region=one_nan(region)),
        "latent": lambda: f["InterDynDecode"](model, {**latent, "samples": one_nan(latent["samples"])}, 0),
        "image ": lambda: f["InterDynControlFromMasks"](moving_square(), W, H, F, 7.0, 7.0, "center", 0, 1,
                                                        image=one_nan(image())),
        "renders": lambda: f["InterDynControlFromRenders"](one_nan(image(F)), W, H, F, 7.0, 7.0, "center", 0),
        "image  ": lambda: f["InterDynControlFromRenders"](image(F), W, H, F, 7.0, 7.0, "center", 0,
                                                           image=one_nan(image())),
        "masks": lambda: f["InterDynCutAndDragReference"](image(), one_nan(moving_square())),
        "image   ": lambda: f["InterDynCutAndDragReference"](one_nan(image()), moving_square()),
    }
    for name, run in cases.items():
        with pytest.raises(ValueError) as caught:
            run()
        message = str(caught.value)
        assert message.startswith(f"{name.strip()} ") and "NaN" in message, f"{name.strip()}: {message}"
        assert reported_name(caught.value) == "InterDyn.InputError", message


def test_seed_widget_has_control_after_generate(pack):
    seed = declared(pack)["InterDynSampler"].INPUT_TYPES()["required"]["seed"]
    assert seed[1]["control_after_generate"] is True and seed[1]["max"] == 0xFFFFFFFFFFFFFFFF


# ---------------------------------------------------------------------------- loader
def test_loader_lists_diffusers_folders_svd_checkpoints_and_control_branches(pack, folders):
    (folders / "checkpoints" / "svd_xt.safetensors").write_bytes(b"")
    (folders / "checkpoints" / "sd15.safetensors").write_bytes(b"")
    (folders / "sam2" / "sam2.1_hiera_tiny.pt").write_bytes(b"")
    try:
        nodes = declared(pack)
        spec = nodes["InterDynModelLoader"].INPUT_TYPES()["required"]
        assert combo_options(spec["svd"]) == ["builtin:toy-physics", "svd_tiny", "svd_xt.safetensors"], \
            "the built-in model first, then SVD folders and svd*.safetensors only"
        assert combo_options(spec["interdyn"]) == ["none", "builtin:toy-physics", "interdyn_tiny.safetensors"]
        sam2 = combo_options(nodes["InterDynSAM2VideoMasks"].INPUT_TYPES()["required"]["sam2_model"])
        assert sam2 == ["sam2.1_hiera_tiny.pt"]
    finally:
        for p in ("checkpoints/svd_xt.safetensors", "checkpoints/sd15.safetensors", "sam2/sam2.1_hiera_tiny.pt"):
            (folders / p).unlink()


def test_missing_model_error_names_the_file_and_every_folder_searched(pack, folders, monkeypatch):
    extra = folders / "elsewhere"
    monkeypatch.setattr(pack.nodes.host, "model_folders", lambda kind: [str(folders / kind), str(extra / kind)])
    load = node(pack, "InterDynModelLoader")
    with pytest.raises(ValueError) as err:
        load("svd_missing", "none", "auto", False)
    message = str(err.value)
    assert "svd_missing" in message
    for kind in ("diffusers", "checkpoints"):
        for root in (folders, extra):
            assert str(root / kind) in message, f"the error must name every folder searched ({root / kind})"
    with pytest.raises(ValueError, match="interdyn_missing.safetensors.*interdyn"):
        load("svd_tiny", "interdyn_missing.safetensors", "auto", False)


def test_loader_keeps_the_model_when_asked(pack, model):
    (again,) = node(pack, "InterDynModelLoader")("svd_tiny", "interdyn_tiny.safetensors", "auto", True)
    assert again is model, "keep_loaded returns the cached model for the same files and precision"
    assert model.control_branch is not None and model.dtype == torch.float32, "auto is fp32 on the CPU"


# ---------------------------------------------------------------------------- control
def test_control_from_masks_colours_objects_and_returns_comfy_layouts(pack):
    a, b = moving_square(), moving_square().flip(-1)
    control, preview, fitted = pack.nodes.FUNCTIONS["InterDynControlFromMasks"](
        a, W, H, F, 7.0, 7.0, "center", 0, 1, mask_2=b)
    assert control.shape == (F, 3, H, W) and preview.shape == (F, H, W, 3), "control FCHW, preview IMAGE BHWC"
    assert fitted is None, "no image connected, no fitted image"
    assert preview[0, 25, 6].tolist() == [1, 1, 1], "mask_1 is white"
    assert preview[0, 25, W - 7].tolist() == [1, 0, 0], "mask_2 is red"
    assert float(control.min()) >= 0 and float(control.max()) <= 1


def test_control_splits_object_masks_by_count_and_resamples_fps(pack):
    seq = moving_square(frames=4)
    objects = torch.cat([seq, seq.flip(-1)])  # SAM2's object_masks: object 1's frames, then object 2's
    control, preview, _ = pack.nodes.FUNCTIONS["InterDynControlFromMasks"](objects, W, H, 2, 14.0, 7.0, "center", 0, 2)
    assert control.shape == (2, 3, H, W)
    assert preview[1, 25, 4 + 16 + 2].tolist() == [1, 1, 1], "14 -> 7 fps takes source frames 0 and 2 (x = 20)"
    assert preview[0, 25, W - 7].tolist() == [1, 0, 0], "the second object gets the second colour"
    with pytest.raises(ValueError, match="objects_in_mask_1"):
        pack.nodes.FUNCTIONS["InterDynControlFromMasks"](objects, W, H, 2, 7.0, 7.0, "center", 0, 3)


def test_control_crops_the_first_frame_like_the_masks(pack):
    masks = torch.zeros(F, H, 2 * W)
    masks[:, 20:30, 100:110] = 1.0
    first = torch.rand(1, H, 2 * W, 3)
    _, preview, fitted = pack.nodes.FUNCTIONS["InterDynControlFromMasks"](
        masks, W, H, F, 7.0, 7.0, "mask", 0, 1, image=first)
    assert fitted.shape == (1, H, W, 3)
    left = 2 * W - W  # the mask at x 100..110 puts the window at the right edge
    assert torch.allclose(fitted[0], first[0, :, left:], atol=1e-6), "the image gets the same crop window as the masks"
    assert preview[0, 25, 100 - left].tolist() == [1, 1, 1]


def test_control_from_renders_keeps_colours(pack):
    renders = torch.zeros(F, H, W, 3)
    renders[:, 10:20, 10:20, 1] = 1.0
    control, preview, _ = pack.nodes.FUNCTIONS["InterDynControlFromRenders"](renders, W, H, F, 7.0, 7.0, "center", 0)
    assert control.shape == (F, 3, H, W) and torch.equal(preview, renders), "same-size renders pass through"


def test_sizes_must_be_multiples_of_64(pack):
    with pytest.raises(ValueError, match="multiple of 64.*100x64.*128x64"):
        pack.nodes.FUNCTIONS["InterDynControlFromMasks"](moving_square(), 100, 64, F, 7.0, 7.0, "center", 0, 1)


# ---------------------------------------------------------------------------- trajectory
def test_mask_trajectory_moves_the_first_mask(pack):
    mask = moving_square(frames=3)
    (out,) = pack.nodes.FUNCTIONS["InterDynMaskTrajectory"](mask, '[{"frame": 0}, {"frame": 3, "x": 12}]', 4, "nearest")
    assert out.shape == (4, H, W) and out.dtype == torch.float32, "a MASK batch [frames, H, W]"
    assert torch.equal(out[0], mask[0]) and torch.equal(out[3], torch.roll(mask[0], 12, dims=-1))


# ---------------------------------------------------------------------------- sampling and decoding
def test_sampler_and_decode_produce_comfy_latent_and_image_batches(pack, model, monkeypatch):
    steps = []
    bars = []

    class Bar:
        def __init__(self, total):
            bars.append(total)

        def update_absolute(self, value, total=None, preview=None):
            steps.append((value, total))

    monkeypatch.setattr(pack.nodes.host, "progress_bar", Bar)
    control, _, _ = pack.nodes.FUNCTIONS["InterDynControlFromMasks"](moving_square(), W, H, F, 7.0, 7.0, "center", 0, 1)
    (latent,) = pack.nodes.FUNCTIONS["InterDynSampler"](model, image(2, 96, 96), control=control, **{**SAMPLER, "steps": 2})
    assert latent["samples"].shape == (2 * F, 4, H // 8, W // 8), "frames of each video along the batch"
    assert latent["interdyn_frames"] == F and latent["batch_index"] == list(range(2 * F))
    assert steps == [(1, 2), (2, 2)], "the progress bar advances every step"
    (frames,) = pack.nodes.FUNCTIONS["InterDynDecode"](model, latent, 0)
    assert frames.shape == (2 * F, H, W, 3) and float(frames.min()) >= 0 and float(frames.max()) <= 1
    assert not torch.equal(frames[:F], frames[F:]), "two first frames give two different videos"


def test_same_seed_same_latents(pack, model):
    run = lambda: pack.nodes.FUNCTIONS["InterDynSampler"](model, image(), **SAMPLER)[0]["samples"]  # noqa: E731
    assert torch.equal(run(), run()), "sampling is deterministic for a seed"


def test_cancel_raises_mid_sampling_and_returns_models_to_the_offload_device(pack, model, monkeypatch):
    class Interrupted(Exception):
        pass

    calls = {"n": 0}

    def interrupt():
        calls["n"] += 1
        if calls["n"] == 2:  # once before sampling, then after each step: cancel after step 1 of 3
            raise Interrupted()

    moves = []
    monkeypatch.setattr(pack.nodes.host, "throw_if_interrupted", interrupt)
    monkeypatch.setattr(type(model), "_move", lambda self, modules, device: moves.append(torch.device(device)))
    with pytest.raises(Interrupted):
        pack.nodes.FUNCTIONS["InterDynSampler"](model, image(), **{**SAMPLER, "steps": 3})
    assert calls["n"] == 2, "the interrupt check runs after every step and stops the loop when it raises"
    assert moves == [model.load_device, model.offload_device], "a cancelled run moves the models back"


def test_sampler_errors_are_clear(pack, model):
    sample = node(pack, "InterDynSampler")
    control, _, _ = pack.nodes.FUNCTIONS["InterDynControlFromMasks"](moving_square(), W, H, F, 7.0, 7.0, "center", 0, 1)
    with pytest.raises(ValueError, match="multiple of 64"):
        sample(model, image(), **{**SAMPLER, "width": 96})
    with pytest.raises(ValueError, match="control has 3 frames but frames is 2: set the same width, height and frames"):
        sample(model, image(), control=torch.cat([control, control[:1]]), **SAMPLER)
    with pytest.raises(ValueError, match=r"control is 64x64 but the video is 128x64 \(width x height\): set the same"):
        sample(model, image(), control=control, **{**SAMPLER, "width": 128})
    plain = pack.nodes.models.InterDynModel(model.backbone, None, name="svd_tiny")
    with pytest.raises(ValueError, match="InterDyn Model Loader's interdyn \\(it is 'none'\\)"):
        sample(plain, image(), control=control, **SAMPLER)


def test_decode_refuses_latents_not_from_the_sampler(pack, model):
    with pytest.raises(ValueError, match="InterDyn Sampler"):
        pack.nodes.FUNCTIONS["InterDynDecode"](model, {"samples": torch.zeros(2, 4, 8, 8)}, 0)


def test_plain_svd_without_control_branch(pack, model):
    plain = pack.nodes.models.InterDynModel(model.backbone, None, name="svd_tiny")
    (latent,) = pack.nodes.FUNCTIONS["InterDynSampler"](plain, image(), **{**SAMPLER, "max_cfg": 1.0})
    assert latent["samples"].shape == (F, 4, H // 8, W // 8)


# ---------------------------------------------------------------------------- SAM2
@pytest.fixture(scope="module")
def sam2_checkpoint(model_root):
    pytest.importorskip("sam2")
    from interdyn.data.segmentation import build_sam2_video_predictor_random

    predictor = build_sam2_video_predictor_random(device="cpu", image_size=256)
    path = model_root / "sam2" / "sam2.1_hiera_tiny.pt"
    torch.save({"model": predictor.state_dict()}, path)
    yield path.name
    path.unlink()


def test_sam2_video_masks_layouts_and_object_count(pack, sam2_checkpoint):
    frames = image(3)
    segment = node(pack, "InterDynSAM2VideoMasks")
    merged, objects, count = segment(frames, sam2_checkpoint, '[{"box": [4, 4, 30, 30]}]', 0, "cpu", 256,
                                         bbox=[[30, 30, 60, 60]])
    assert count == 2, "one JSON object plus one bbox"
    assert merged.shape == (3, H, W) and objects.shape == (2 * 3, H, W), "MASK batches [frames, H, W]"
    assert merged.dtype == torch.float32 and set(merged.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(merged, torch.maximum(objects[:3], objects[3:])), "merged = union of the objects"


def test_sam2_errors_name_missing_checkpoint_and_empty_prompts(pack, folders):
    segment = node(pack, "InterDynSAM2VideoMasks")
    with pytest.raises(ValueError, match=r"sam2\.1_hiera_small\.pt.*" + str(folders / "sam2")):
        segment(image(2), "sam2.1_hiera_small.pt", '[{"box": [4, 4, 30, 30]}]', 0, "cpu", 256)
    with pytest.raises(ValueError, match="no objects to track"):
        segment(image(2), "sam2.1_hiera_small.pt", "  ", 0, "cpu", 256)
    with pytest.raises(ValueError, match="box"):
        segment(image(2), "sam2.1_hiera_small.pt", '[{"box": [4, 4]}]', 0, "cpu", 256)


# ---------------------------------------------------------------------------- synthetic scene
def test_synthetic_scene_node_gives_first_frame_driver_masks_and_ground_truth(pack):
    make = node(pack, "InterDynSyntheticScene")
    first, masks, truth, fps = make("push", 1000000, 64, 64, 8)
    assert first.shape == (1, 64, 64, 3) and truth.shape == (8, 64, 64, 3), "IMAGE batches are [B, H, W, 3]"
    assert masks.shape == (8, 64, 64) and masks.dtype == torch.float32, "MASK batches are [F, H, W] float"
    assert torch.equal(first[0], truth[0]), "the first frame is frame 0 of the ground truth"
    assert masks[0].sum() == 0 and masks[-1].sum() > 0, "push: the driver starts outside and enters"
    assert fps == 6.0
    hit, miss = make("hit", 1000000, 64, 64, 8), make("miss", 1000000, 64, 64, 8)
    assert torch.equal(hit[0], miss[0]), "hit and miss share their first frame for the same seed"
    assert not torch.equal(hit[1], miss[1]), "but not their driving motion"
