"""Load the SVD backbone and InterDyn control branches from local files (never from a hub), and write them.

Backbone: a diffusers ``StableVideoDiffusionPipeline`` folder (the layout of
``stabilityai/stable-video-diffusion-img2vid[-xt]``: ``unet/``, ``vae/``, ``image_encoder/``,
``feature_extractor/``, ``scheduler/``, with or without the ``fp16`` variant files), or an
original single-file checkpoint (``svd.safetensors``; see :mod:`interdyn.single_file`).
Both loaders also accept ``"builtin:toy-physics"``, the small model shipped in the package
(:mod:`interdyn.core.builtin`).

Control branch: the official release's ``controlnet`` folder (``config.json`` +
``diffusion_pytorch_model.safetensors``, class ``ControlNetSDVModel``; the folder above it works
too), or one ``.safetensors`` file in our format:

* tensors: the branch's state dict (same names as the official release);
* metadata ``format`` = ``"interdyn-control-branch"``, ``format_version`` = ``"1"``,
  ``config`` = the model config as JSON (includes ``residual_mode``), ``provenance`` = JSON
  describing where the weights come from (free form: base model, training run, steps, ...).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import torch
from diffusers import AutoencoderKLTemporalDecoder
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionModelWithProjection

from .builtin import TOY_PHYSICS, builtin_path, is_builtin
from ..support.errors import ModelLoadError
from ..support.safe_output import atomic_file, readable_tree
from ..support.validation import check_input_path
from ..models.backbone import CLIP_MEAN, CLIP_STD, SVD_SCHEDULER_CONFIG, SVDBackbone
from ..models.controlnet import InterDynControlNet, mark_official_config
from ..models.unet import InterDynUNet
from ..single_file import load_svd_single_file

CONTROL_FORMAT = "interdyn-control-branch"
CONTROL_FORMAT_VERSION = "1"
WEIGHT_NAMES = {"unet": "diffusion_pytorch_model", "vae": "diffusion_pytorch_model", "image_encoder": "model"}
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: ``feature_extractor/preprocessor_config.json`` of an SVD folder (CLIP's 224-px resize, crop and normalisation)
SVD_FEATURE_EXTRACTOR = {
    "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
    "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": list(CLIP_MEAN),
    "image_processor_type": "CLIPImageProcessor", "image_std": list(CLIP_STD), "resample": 3,
    "rescale_factor": 1 / 255, "size": {"shortest_edge": 224},
}


def resolve_dtype(precision: str | torch.dtype | None, device: str | torch.device = "cpu") -> torch.dtype:
    """``"auto"`` -> fp16 on CUDA (bf16 if supported), fp32 elsewhere; ``"fp16"``/``"bf16"``/``"fp32"``."""
    if isinstance(precision, torch.dtype):
        return precision
    if precision in (None, "auto"):
        if torch.device(device).type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of auto, {', '.join(PRECISIONS)}; got {precision!r}")
    return PRECISIONS[precision]


# ---------------------------------------------------------------------------- backbone
def _weights_file(folder: Path, stem: str) -> tuple[Path, str | None]:
    for variant in (None, "fp16"):
        name = f"{stem}.safetensors" if variant is None else f"{stem}.{variant}.safetensors"
        if (folder / name).is_file():
            return folder / name, variant
    raise ModelLoadError(f"no weights in {folder}: expected {stem}.safetensors or {stem}.fp16.safetensors")


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ModelLoadError(f"{what}: {path} is missing")
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelLoadError(f"{what}: {path} is not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{what}: {path} must hold a JSON object, found a {type(value).__name__}")
    return value


def _metadata_json(path: Path, meta: dict, key: str, default: str | None = None) -> dict:
    """Metadata entry ``key`` of safetensors file ``path``: a JSON object (never a name or path to resolve)."""
    text = meta.get(key, default)
    try:
        value = json.loads(text)
    except (TypeError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{path}: the metadata entry {key!r} is not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path}: the metadata entry {key!r} must be a JSON object (a model config), found a "
                             f"{type(value).__name__} ({str(value)[:60]!r}); refusing to resolve it as a model name "
                             "or path (interdyn never downloads)")
    return value


def check_svd_folder(path: str | os.PathLike) -> dict[str, tuple[Path, str | None]]:
    """Verify an SVD diffusers folder; returns each component's weights file and variant."""
    root = Path(path)
    if not root.is_dir():
        raise ModelLoadError(f"SVD backbone folder {root} does not exist")
    missing = [f"{sub}/" for sub in ("unet", "vae", "image_encoder") if not (root / sub).is_dir()]
    if missing:
        raise ModelLoadError(
            f"{root} is not a Stable Video Diffusion diffusers folder: missing {', '.join(missing)}. Expected the "
            "layout of stabilityai/stable-video-diffusion-img2vid (model_index.json, unet/, vae/, image_encoder/, "
            "feature_extractor/, scheduler/)")
    files = {}
    for sub, stem in WEIGHT_NAMES.items():
        _read_json(root / sub / "config.json", f"SVD {sub} config")
        files[sub] = _weights_file(root / sub, stem)
    unet_cfg = _read_json(root / "unet" / "config.json", "SVD unet config")
    if unet_cfg.get("_class_name") not in (None, "UNetSpatioTemporalConditionModel", "InterDynUNet",
                                           "UNetSpatioTemporalConditionControlNetModel"):
        raise ModelLoadError(f"{root / 'unet'} holds a {unet_cfg.get('_class_name')}, not SVD's "
                             "UNetSpatioTemporalConditionModel: this is not a Stable Video Diffusion backbone")
    return files


def _builtin_or_path(path: str | os.PathLike, part: str) -> Path:
    """``"builtin:<name>"`` -> the packaged files (:mod:`interdyn.core.builtin`); anything else -> ``Path``."""
    return builtin_path(path, part) if is_builtin(path) else Path(path)


def load_svd_backbone(path: str | os.PathLike, *, dtype: str | torch.dtype | None = None,
                      device: str | torch.device = "cpu", name: str = "SVD backbone") -> SVDBackbone:
    """Load SVD from a diffusers folder or an original single-file ``.safetensors`` checkpoint.

    The VAE stays in float32 when a half precision is asked for and its config says
    ``force_upcast`` (as SVD's does): its encoder and decoder overflow in fp16.
    ``name``: the caller's name for ``path`` (a flag, a widget) in the message that refuses a FIFO, device or socket
    anywhere in the folder, before anything is opened.
    """
    dtype = resolve_dtype(dtype, device)
    path = check_input_path(_builtin_or_path(path, "svd"), name, contents=True)
    if path.is_file() or path.suffix in (".safetensors", ".ckpt", ".pt", ".pth"):
        parts = load_svd_single_file(path, dtype=dtype, device=device)
        backbone = SVDBackbone(parts["unet"], parts["vae"], parts["image_encoder"],
                               clip_mean=tuple(parts["clip_mean"]), clip_std=tuple(parts["clip_std"]),
                               clip_size=int(parts["clip_size"]),
                               sigma_min=float(parts["scheduler_config"].get("sigma_min", 0.002)),
                               sigma_max=float(parts["scheduler_config"].get("sigma_max", 700.0)), source=str(path))
    else:
        files = check_svd_folder(path)
        common = dict(torch_dtype=dtype, local_files_only=True, use_safetensors=True)
        unet = InterDynUNet.from_pretrained(path / "unet", variant=files["unet"][1], **common)
        vae = AutoencoderKLTemporalDecoder.from_pretrained(path / "vae", variant=files["vae"][1], **common)
        image_encoder = CLIPVisionModelWithProjection.from_pretrained(
            path / "image_encoder", dtype=dtype, local_files_only=True, use_safetensors=True,
            variant=files["image_encoder"][1])
        fe_path = path / "feature_extractor" / "preprocessor_config.json"
        fe = _read_json(fe_path, "SVD feature extractor") if fe_path.exists() else {}
        sched_path = path / "scheduler" / "scheduler_config.json"
        sched = _read_json(sched_path, "SVD scheduler") if sched_path.exists() else {}
        size = fe.get("crop_size", {}).get("height", 224) if isinstance(fe.get("crop_size"), dict) else 224
        backbone = SVDBackbone(unet, vae, image_encoder, clip_mean=tuple(fe.get("image_mean", CLIP_MEAN)),
                               clip_std=tuple(fe.get("image_std", CLIP_STD)), clip_size=int(size),
                               sigma_min=float(sched.get("sigma_min", 0.002)),
                               sigma_max=float(sched.get("sigma_max", 700.0)), source=str(path))
    if dtype in (torch.float16, torch.bfloat16) and backbone.vae.config.get("force_upcast", False):
        backbone.vae.to(torch.float32)
        backbone.extra["vae_upcast"] = True
    for module in (backbone.unet, backbone.vae, backbone.image_encoder):
        module.to(device).eval().requires_grad_(False)
    return backbone


# ---------------------------------------------------------------------------- control branch
def _control_branch_files(path: Path) -> tuple[dict, dict, Path]:
    """(config, provenance, weights file) of a control branch folder or single file."""
    if not path.exists():
        raise ModelLoadError(f"control branch {path} does not exist")
    if path.is_dir():
        folder = path / "controlnet" if (path / "controlnet" / "config.json").is_file() else path
        config = _read_json(folder / "config.json", "InterDyn control branch config")
        weights, _ = _weights_file(folder, "diffusion_pytorch_model")
        return mark_official_config(config), {"source": str(folder)}, weights
    if path.suffix != ".safetensors":
        raise ModelLoadError(f"{path} is not a .safetensors file: a control branch is a folder with config.json and "
                             "diffusion_pytorch_model.safetensors, or one .safetensors file exported by "
                             "`python -m training.export`")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as err:  # noqa: BLE001 - safetensors raises several types for a bad header
        raise ModelLoadError(f"{path} is not a readable safetensors file ({err})") from None
    if meta.get("format") != CONTROL_FORMAT or "config" not in meta:
        raise ModelLoadError(
            f"{path} is not an InterDyn control branch: its metadata has no format={CONTROL_FORMAT!r} and config "
            f"(found keys {sorted(meta)}). If it is an SVD checkpoint, load it as the backbone; official InterDyn "
            "weights are a folder with config.json")
    if meta.get("format_version") != CONTROL_FORMAT_VERSION:
        raise ModelLoadError(f"{path} has control branch format version {meta.get('format_version')!r}; this "
                             f"version of interdyn reads version {CONTROL_FORMAT_VERSION}")
    return _metadata_json(path, meta, "config"), _metadata_json(path, meta, "provenance", "{}"), path


def load_control_branch(path: str | os.PathLike, *, dtype: str | torch.dtype | None = None,
                        device: str | torch.device = "cpu", backbone: SVDBackbone | None = None,
                        name: str = "control branch") -> InterDynControlNet:
    """Load an InterDyn control branch (official folder or our single file), checked against ``backbone``.

    The residual mode comes with the weights: ``"official"`` for the published release,
    whatever the file says for ours. ``dtype`` None means the backbone's dtype when ``backbone`` is
    given (the two must match to run together), else the file's. ``name``: the caller's name for ``path`` in the
    message that refuses a FIFO, device or socket (the file, or anywhere in the folder), before anything is opened.
    """
    path = check_input_path(_builtin_or_path(path, "control"), name, contents=True)
    config, provenance, weights = _control_branch_files(path)
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as err:  # noqa: BLE001 - safetensors raises several types for a bad file
        raise ModelLoadError(f"{weights} is not a readable safetensors file ({err})") from None
    try:
        with torch.device("meta"):
            model = InterDynControlNet.from_config(dict(config))  # a dict: from_config never looks anything up
    except (TypeError, ValueError, KeyError) as err:
        raise ModelLoadError(f"{path}: its control branch config does not describe an InterDyn control branch "
                             f"({err})") from None
    expected = set(model.state_dict())
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ModelLoadError(
            f"{weights} does not fit an InterDyn control branch with config {path}: "
            f"{len(missing)} missing tensors (e.g. {sorted(missing)[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {sorted(unexpected)[:3]})")
    shapes = model.state_dict()
    wrong = [k for k in expected if tuple(shapes[k].shape) != tuple(state[k].shape)]
    if wrong:
        k = wrong[0]
        raise ModelLoadError(f"{weights}: tensor {k} has shape {tuple(state[k].shape)} but its config implies "
                             f"{tuple(shapes[k].shape)} ({len(wrong)} tensors differ)")
    not_float = sorted(k for k in expected if not state[k].is_floating_point())
    if not_float:
        k = not_float[0]
        raise ModelLoadError(f"{weights}: tensor {k} is {str(state[k].dtype).replace('torch.', '')}, not floating point "
                             f"({len(not_float)} such tensors): a quantised (int) control branch cannot be loaded; "
                             "export it as fp32, fp16 or bf16 (python -m training.export --dtype fp16)")
    if dtype is not None:
        target = resolve_dtype(dtype, device)
    else:
        target = backbone.dtype if backbone is not None else state[next(iter(state))].dtype
    # cast the tensors, not the module (diffusers' ModelMixin.to(dtype) warns about fp32 modules)
    state = {k: v.to(target) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    model.to(device=device).eval().requires_grad_(False)
    model.provenance = provenance
    if backbone is not None:
        check_compatible(model, backbone)
    return model


def check_compatible(control_branch: InterDynControlNet, backbone: SVDBackbone) -> None:
    """Raise when the branch's channel layout does not fit the backbone's UNet."""
    b, u = control_branch.config, backbone.unet.config
    problems = []
    for key in ("in_channels", "block_out_channels", "layers_per_block", "cross_attention_dim",
                "addition_time_embed_dim", "projection_class_embeddings_input_dim", "down_block_types"):
        bv, uv = b.get(key), u.get(key)
        norm = (lambda v: list(v) if isinstance(v, (list, tuple)) else v)
        if norm(bv) != norm(uv):
            problems.append(f"{key}: branch {bv} vs UNet {uv}")
    if problems:
        raise ModelLoadError("the control branch does not fit this SVD backbone (was it trained for another "
                             "model?): " + "; ".join(problems))
    trained_on = (getattr(control_branch, "provenance", None) or {}).get("backbone_fingerprint")
    if trained_on:
        here = backbone_fingerprint(backbone.unet)
        key = (tuple(trained_on), tuple(here))
        if not same_backbone(trained_on, here) and key not in _WARNED_BACKBONES:
            _WARNED_BACKBONES.add(key)
            base = control_branch.provenance.get("base_model", "another backbone")
            warnings.warn(f"this control branch was trained on another backbone ({base}) than the one loaded: the "
                          "shapes fit, the weights differ, so its videos may be wrong. Load the backbone it was "
                          "trained on.", UserWarning, stacklevel=3)


_WARNED_BACKBONES: set = set()


def backbone_fingerprint(unet) -> list[float]:
    """A few statistics of a UNet's weights (sums and norms of its first and last convolutions) that tell two
    backbones apart whatever their storage precision (fp16/bf16/fp32 agree to about 1e-3)."""
    values = []
    for module in (unet.conv_in, unet.conv_out):
        w = module.weight.detach().float().cpu()
        values += [float(w.sum()), float(w.norm()), float(w.abs().max())]
    return [round(v, 6) for v in values]


def same_backbone(a, b, rtol: float = 1e-2) -> bool:
    """Whether two :func:`backbone_fingerprint` lists describe the same weights (up to storage precision)."""
    if len(a) != len(b):
        return False
    return all(abs(x - y) <= rtol * max(abs(x), abs(y), 1e-3) for x, y in zip(a, b))


def save_control_branch(model: InterDynControlNet, path: str | os.PathLike, *, dtype: torch.dtype | None = None,
                        provenance: dict | None = None) -> Path:
    """Write ``model`` as one ``.safetensors`` file in our format, atomically (temp name, then rename)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"the control branch file name must end in .safetensors, got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.to(dtype) if dtype is not None else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    config = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    config["_class_name"] = type(model).__name__
    metadata = {"format": CONTROL_FORMAT, "format_version": CONTROL_FORMAT_VERSION,
                "config": json.dumps(config), "provenance": json.dumps(provenance or {})}
    with atomic_file(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)
    return path


def save_svd_folder(backbone: SVDBackbone, folder: str | Path, variant: str | None = None) -> Path:
    """Write ``backbone`` as a diffusers SVD folder (``model_index.json``, ``unet/``, ``vae/`` ...)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    backbone.unet.save_pretrained(folder / "unet", variant=variant)
    _rename_class(folder / "unet" / "config.json", "UNetSpatioTemporalConditionModel")
    backbone.vae.save_pretrained(folder / "vae", variant=variant)
    backbone.image_encoder.save_pretrained(folder / "image_encoder", variant=variant)
    (folder / "feature_extractor").mkdir(exist_ok=True)
    (folder / "feature_extractor" / "preprocessor_config.json").write_text(json.dumps(SVD_FEATURE_EXTRACTOR, indent=2))
    (folder / "scheduler").mkdir(exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(SVD_SCHEDULER_CONFIG, indent=2))
    index = {"_class_name": "StableVideoDiffusionPipeline",
             "feature_extractor": ["transformers", "CLIPImageProcessor"],
             "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
             "scheduler": ["diffusers", "EulerDiscreteScheduler"],
             "unet": ["diffusers", "UNetSpatioTemporalConditionModel"],
             "vae": ["diffusers", "AutoencoderKLTemporalDecoder"]}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return readable_tree(folder)  # safetensors writes 0600: give the umask's mode


def _rename_class(config_path: Path, name: str) -> None:
    config = json.loads(config_path.read_text())
    config["_class_name"] = name
    config_path.write_text(json.dumps(config, indent=2))


def load_toy_physics(*, dtype=None, device="cpu") -> tuple[SVDBackbone, InterDynControlNet]:
    """``(backbone, control_branch)`` of the built-in toy-physics model (:mod:`interdyn.core.builtin`; float32 on
    the CPU by default)."""
    backbone = load_svd_backbone(TOY_PHYSICS, dtype=dtype, device=device)
    branch = load_control_branch(TOY_PHYSICS, dtype=dtype, device=device, backbone=backbone)
    return backbone, branch
