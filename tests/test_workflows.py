"""The example workflows (UI format) fit the nodes they use: types exist, widget values line up, links match."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_nodes import combo_options, declared, import_pack

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
SEED_NAMES = ("seed", "noise_seed")  # INTs the frontend gives a control widget, declared or not
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
# combos listing the files in a model folder: the saved value depends on the user's files (the integration and
# browser tests place tiny models under these names); only a built-in entry is checked here
MODEL_COMBOS = {("InterDynModelLoader", "svd"), ("InterDynModelLoader", "interdyn"),
                ("InterDynSAM2VideoMasks", "sam2_model"), ("InterDynControlBranchLoader", "control_branch")}

# Core ComfyUI nodes the workflows may use (checked against ComfyUI v0.3.64):
# link inputs {name: type}, widget values as the frontend stores them (upload buttons store one too), outputs.
CORE = {
    "LoadImage": ({}, ["image", "upload"], ["IMAGE", "MASK"]),
    "LoadImageMask": ({}, ["image", "channel", "upload"], ["MASK"]),
    "LoadVideo": ({}, ["file", "upload"], ["VIDEO"]),
    "GetVideoComponents": ({"video": "VIDEO"}, [], ["IMAGE", "AUDIO", "FLOAT"]),
    "ImageFromBatch": ({"image": "IMAGE"}, ["batch_index", "length"], ["IMAGE"]),
    "CreateVideo": ({"images": "IMAGE", "audio": "AUDIO"}, ["fps"], ["VIDEO"]),
    "SaveVideo": ({"video": "VIDEO"}, ["filename_prefix", "format", "codec"], []),
    "SaveAnimatedWEBP": ({"images": "IMAGE"}, ["filename_prefix", "fps", "lossless", "quality", "method"], []),
    "PreviewImage": ({"images": "IMAGE"}, [], []),
    "ImageScaleBy": ({"image": "IMAGE"}, ["upscale_method", "scale_by"], ["IMAGE"]),
    "Note": ({}, ["text"], []),
    # the native SVD path (InterDyn in the core SVD graph - KSampler.json)
    "ImageOnlyCheckpointLoader": ({}, ["ckpt_name"], ["MODEL", "CLIP_VISION", "VAE"]),
    "SVD_img2vid_Conditioning": ({"clip_vision": "CLIP_VISION", "init_image": "IMAGE", "vae": "VAE"},
                                 ["width", "height", "video_frames", "motion_bucket_id", "fps", "augmentation_level"],
                                 ["CONDITIONING", "CONDITIONING", "LATENT"]),
    "VideoLinearCFGGuidance": ({"model": "MODEL"}, ["min_cfg"], ["MODEL"]),
    "KSampler": ({"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING", "latent_image": "LATENT"},
                 ["seed", "seed:control_after_generate", "steps", "cfg", "sampler_name", "scheduler", "denoise"],
                 ["LATENT"]),
    "VAEDecode": ({"samples": "LATENT", "vae": "VAE"}, [], ["IMAGE"]),
    # dual-clock denoising of core nodes (SVD drag without training - native nodes.json)
    "ImageScale": ({"image": "IMAGE"}, ["upscale_method", "width", "height", "crop"], ["IMAGE"]),
    "VAEEncode": ({"pixels": "IMAGE", "vae": "VAE"}, [], ["LATENT"]),
    "InvertMask": ({"mask": "MASK"}, [], ["MASK"]),
    "SolidMask": ({}, ["value", "width", "height"], ["MASK"]),
    "SetLatentNoiseMask": ({"samples": "LATENT", "mask": "MASK"}, [], ["LATENT"]),
    "KSamplerAdvanced": ({"model": "MODEL", "positive": "CONDITIONING", "negative": "CONDITIONING",
                          "latent_image": "LATENT"},
                         ["add_noise", "noise_seed", "noise_seed:control_after_generate", "steps", "cfg", "sampler_name",
                          "scheduler", "start_at_step", "end_at_step", "return_with_leftover_noise"], ["LATENT"]),
    "MarkdownNote": ({}, ["text"], []),
}
CORE_WIDGET_TYPES = {("CreateVideo", "fps"): "FLOAT", ("ImageScaleBy", "scale_by"): "FLOAT", ("ImageFromBatch", "batch_index"): "INT",
                     ("ImageFromBatch", "length"): "INT"}


@pytest.fixture(scope="module")
def classes():
    """The pack's node declarations as ComfyUI loads them (V3, ComfyUI's comfy_api from COMFYUI_PATH)."""
    return declared(import_pack("workflow_check_pack"))


def has_control_widget(kind, name, opts) -> bool:
    """The frontend's rule: a value-control widget ("control after generate") follows an INT or COMBO that
    declares ``control_after_generate``; an INT named ``seed`` or ``noise_seed`` gets one unless it declares
    ``control_after_generate: False`` (ComfyUI_frontend ``useIntWidget``: ``control_after_generate ?? name in
    [seed, noise_seed]``)."""
    declared = opts.get("control_after_generate")
    if kind == "INT":
        return bool(declared) if declared is not None else name in SEED_NAMES
    return kind == "COMBO" and bool(declared)


def signature(classes, node_type):
    """(link inputs {name: type}, widget names in stored order, output types, widget types, required links)."""
    if node_type in CORE:
        links, widgets, outputs = CORE[node_type]
        types = {name: t for (n, name), t in CORE_WIDGET_TYPES.items() if n == node_type}
        return links, widgets, outputs, types, set()
    cls = classes[node_type]
    spec = cls.INPUT_TYPES()
    links, widgets, types, required = {}, [], {}, set()
    for section in ("required", "optional"):
        for name, (t, opts) in spec.get(section, {}).items():
            # a forceInput STRING/INT is a socket only: the frontend builds no widget for it
            combo = isinstance(t, list) or t == "COMBO"  # V1 declares a list, V3 "COMBO" with options
            if (combo or t in WIDGET_TYPES) and not opts.get("forceInput"):
                widgets.append(name)
                types[name] = "COMBO" if combo else t
                if has_control_widget(types[name], name, opts):
                    widgets.append(f"{name}:control_after_generate")
            else:
                links[name] = t
                if section == "required":
                    required.add(name)
    return links, widgets, list(cls.RETURN_TYPES), types, required


def load(path):
    return json.loads(path.read_text())


def test_there_are_the_three_example_workflows():
    names = {p.name for p in WORKFLOWS}
    assert {"InterDyn hand pushes an object - SAM2 masks.json", "InterDyn draw the drive on the picture.json", "InterDyn several driving objects - SAM2.json"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_ui_format(path):
    wf = load(path)
    assert wf.get("version") == 0.4 and isinstance(wf.get("nodes"), list) and isinstance(wf.get("links"), list), \
        "the frontend's saved format (nodes + links), not the API format"
    assert wf["last_node_id"] >= max(n["id"] for n in wf["nodes"])
    assert wf["last_link_id"] >= max(link[0] for link in wf["links"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_node_type_exists_and_widget_values_line_up(classes, path):
    for n in load(path)["nodes"]:
        assert n["type"] in CORE or n["type"] in classes, f"{path.name}: unknown node {n['type']}"
        _, widgets, _, _, _ = signature(classes, n["type"])
        values = n.get("widgets_values", [])
        assert len(values) == len(widgets), (f"{path.name} node {n['id']} {n['type']}: {len(values)} widget values "
                                             f"for widgets {widgets}")


def test_every_seed_input_declares_its_control_widget(classes):
    for node_type, cls in classes.items():
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, (t, opts) in spec.get(section, {}).items():
                if t == "INT" and "seed" in name:
                    assert opts.get("control_after_generate") is True, (
                        f"{node_type}.{name}: declare control_after_generate=True; the frontend adds the widget to "
                        "every INT named seed anyway, and the declaration makes the saved slot visible to readers")


def widget_problems(classes, node) -> list[str]:
    """What the frontend would get wrong when it loads this node's saved widget values (empty: nothing)."""
    node_type, values = node["type"], list(node.get("widgets_values") or [])
    if node_type not in classes:
        return []
    cls = classes[node_type]
    spec = {**cls.INPUT_TYPES()["required"], **cls.INPUT_TYPES().get("optional", {})}
    _, widgets, _, types, _ = signature(classes, node_type)
    where = f"node {node['id']} {node_type}"
    optional = set(cls.INPUT_TYPES().get("optional", {}))
    # a workflow saved before a trailing optional widget existed holds fewer values: the frontend gives the rest
    # their defaults; anything else shifts every later value into the wrong widget
    trailing_optional = len(values) < len(widgets) and all(w in optional for w in widgets[len(values):])
    if len(values) != len(widgets) and not trailing_optional:
        return [f"{where}: {len(values)} saved values for the {len(widgets)} widgets the frontend builds {widgets}; "
                "every value after the first missing slot lands in the wrong widget"]
    widgets = widgets[:len(values)]
    problems = []
    for name, value in zip(widgets, values):
        if name.endswith(":control_after_generate"):
            if value not in CONTROL_VALUES:
                problems.append(f"{where}.{name} = {value!r}, not one of {CONTROL_VALUES}")
            continue
        kind, opts = types[name], spec[name][1]
        if kind == "COMBO":
            choices = combo_options(spec[name])
            if (node_type, name) in MODEL_COMBOS and not str(value).startswith("builtin:"):
                ok = isinstance(value, str) and value != ""
            else:
                ok = value in choices
            if not ok:
                problems.append(f"{where}.{name} = {value!r} is not in its list {choices}")
            continue
        python_types = {"INT": (int,), "FLOAT": (int, float), "STRING": (str,), "BOOLEAN": (bool,)}[kind]
        if not isinstance(value, python_types) or (kind != "BOOLEAN" and isinstance(value, bool)):
            problems.append(f"{where}.{name} = {value!r} is not a {kind}")
            continue
        if kind in ("INT", "FLOAT"):
            low, high = opts.get("min", float("-inf")), opts.get("max", float("inf"))
            if not low <= value <= high:
                problems.append(f"{where}.{name} = {value} outside [{low}, {high}]")
            step = opts.get("step", 1)
            if kind == "INT" and step > 1 and value % step:
                problems.append(f"{where}.{name} = {value} is not a multiple of its step {step}")
    return problems


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_saved_widget_values_fit_the_widgets_the_frontend_builds(classes, path):
    problems = [p for n in load(path)["nodes"] for p in widget_problems(classes, n)]
    assert not problems, f"{path.name}: " + "\n".join(problems)


def test_the_widget_check_catches_a_seed_without_its_control_slot(classes):
    # the shipped mistake (issue 12): the synthetic scene's seed saved without the control slot, so the
    # frontend put 64 in "control after generate" and 8 in height (server: "Value 8 smaller than min of 32")
    node = {"id": 3, "type": "InterDynSyntheticScene", "widgets_values": ["push", 1000000, 64, 64, 8]}
    assert widget_problems(classes, node), "a missing control slot after a seed must be reported"
    node["widgets_values"] = ["push", 1000000, "fixed", 64, 64, 8]
    assert widget_problems(classes, node) == [], "the slot filled, the values fit"
    node["widgets_values"] = ["push", 1000000, "fixed", 64, 8, 8]
    assert widget_problems(classes, node), "a height below its min must be reported"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_links_connect_matching_types(classes, path):
    wf = load(path)
    nodes = {n["id"]: n for n in wf["nodes"]}
    for link_id, src, src_slot, dst, dst_slot, type_ in wf["links"]:
        out = nodes[src]["outputs"][src_slot]
        inp = nodes[dst]["inputs"][dst_slot]
        assert link_id in (out.get("links") or []) and inp["link"] == link_id, f"{path.name}: link {link_id} dangling"
        _, _, out_types, _, _ = signature(classes, nodes[src]["type"])
        links, widgets, _, widget_types, _ = signature(classes, nodes[dst]["type"])
        assert out_types[src_slot] == out["type"] == type_, f"{path.name}: link {link_id} output type"
        if "widget" in inp:
            assert inp["name"] in widgets, f"{path.name}: {nodes[dst]['type']} has no widget {inp['name']}"
            expected = widget_types.get(inp["name"])
        else:
            expected = links.get(inp["name"])
        assert expected == type_, (f"{path.name}: link {link_id} brings {type_} to {nodes[dst]['type']}."
                                   f"{inp['name']}, which takes {expected}")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_required_inputs_are_connected_and_an_output_is_saved(classes, path):
    wf = load(path)
    for n in wf["nodes"]:
        _, _, _, _, required = signature(classes, n["type"])
        linked = {i["name"] for i in n.get("inputs", []) if i.get("link") is not None}
        assert required <= linked, f"{path.name}: {n['type']} misses {required - linked}"
    assert any(n["type"] in ("SaveVideo", "SaveAnimatedWEBP") for n in wf["nodes"]), "the video must be saved"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_a_note_says_where_the_model_files_go(path):
    notes = " ".join(n["widgets_values"][0] for n in load(path)["nodes"] if n["type"] in ("Note", "MarkdownNote"))
    loaders = [n for n in load(path)["nodes"] if n["type"] == "InterDynModelLoader"]
    if loaders and all(str(n["widgets_values"][0]).startswith("builtin:") for n in loaders):
        assert "nothing to download" in notes.lower(), f"{path.name}: say that the built-in model needs no files"
        return
    native = any(n["type"] == "ImageOnlyCheckpointLoader" for n in load(path)["nodes"])  # no diffusers folder there
    branch = not native or any(n["type"] == "InterDynControlBranchLoader" for n in load(path)["nodes"])
    folders = ("models/checkpoints", "models/interdyn") if native else ("models/diffusers", "models/checkpoints",
                                                                         "models/interdyn")
    for folder in folders if branch else ("models/checkpoints",):
        assert folder in notes, f"{path.name}: the notes must say what goes in {folder}"
    if any(n["type"] == "InterDynSAM2VideoMasks" for n in load(path)["nodes"]):
        assert "models/sam2" in notes


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_has_a_template_card_image(path):
    # the template browser shows workflows/<name>.jpg on the workflow's card (a grey box when it is missing)
    image = path.with_suffix(".jpg")
    assert image.is_file(), f"{path.name}: the template browser asks for {image.name}"
    data = image.read_bytes()
    assert data[:3] == b"\xff\xd8\xff", f"{image.name} must be a JPEG (the frontend asks for .jpg)"
    assert len(data) < 200_000, f"{image.name} is {len(data)} bytes: keep card images small"


def test_the_native_drag_workflow_is_the_dual_clock_at_the_authors_levels():
    """The two KSampler (Advanced) of 'SVD drag without training - native nodes' are one schedule split at t_weak and
    t_strong (the composition tests/test_comfyui_native_dual_clock.py runs against the pack's sampler): same seed,
    steps, cfg, sampler and scheduler; #1 adds the noise, starts at the step of sigma_weak and returns the leftover
    noise at the step of sigma_strong; #2 adds none and goes on from there; the region's mask is cleared between."""
    from interdyn.core.dual_clock import SVD_SIGMA_STRONG, SVD_SIGMA_WEAK
    from interdyn.core.sampling import karras_sigmas

    wf = load(REPO / "workflows" / "SVD drag without training - native nodes.json")
    nodes = {n["id"]: n for n in wf["nodes"]}
    links = {link[0]: link for link in wf["links"]}

    def source(node, name):
        link = links[next(i["link"] for i in node["inputs"] if i["name"] == name)]
        return nodes[link[1]]

    held, free = sorted((n for n in wf["nodes"] if n["type"] == "KSamplerAdvanced"),
                        key=lambda n: n["widgets_values"][7])  # by start_at_step
    names = CORE["KSamplerAdvanced"][1]
    a, b = (dict(zip(names, n["widgets_values"])) for n in (held, free))
    for key in ("noise_seed", "steps", "cfg", "sampler_name", "scheduler"):
        assert a[key] == b[key], f"{key} differs between the two samplers"
    assert (a["add_noise"], a["return_with_leftover_noise"], b["add_noise"]) == ("enable", "enable", "disable")
    assert b["start_at_step"] == a["end_at_step"] and b["end_at_step"] >= b["steps"]
    sigmas = karras_sigmas(a["steps"])  # euler + karras over SVD's 700 -> 0.002: the pack's schedule
    assert (a["sampler_name"], a["scheduler"]) == ("euler", "karras")
    assert abs(float(sigmas[a["start_at_step"]]) - SVD_SIGMA_WEAK) < 1e-3 * SVD_SIGMA_WEAK
    assert abs(float(sigmas[a["end_at_step"]]) - SVD_SIGMA_STRONG) < 1e-3 * SVD_SIGMA_STRONG
    # #1 samples the reference's latents with the inverted region as the noise mask (1 = free)
    masked = source(held, "latent_image")
    assert masked["type"] == "SetLatentNoiseMask"
    assert source(masked, "samples")["type"] == "VAEEncode"
    assert source(source(masked, "samples"), "pixels")["type"] == "InterDynCutAndDragReference"
    invert = source(masked, "mask")
    assert invert["type"] == "InvertMask" and source(invert, "mask")["type"] == "InterDynCutAndDragReference"
    # #2 gets #1's output with the mask replaced by an all-ones one (the sampler passes its input's mask on)
    cleared = source(free, "latent_image")
    assert cleared["type"] == "SetLatentNoiseMask" and source(cleared, "samples")["id"] == held["id"]
    solid = source(cleared, "mask")
    assert solid["type"] == "SolidMask" and solid["widgets_values"][0] == 1.0
    for sampler in (held, free):
        assert source(sampler, "model")["type"] == "VideoLinearCFGGuidance"
