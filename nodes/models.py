"""Finding model files in ComfyUI's model folders, and the INTERDYN_MODEL object nodes pass around."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import torch

from ..interdyn.core.builtin import builtin_names, builtin_path, is_builtin
from ..interdyn.core.loading import ModelLoadError, load_control_branch, load_svd_backbone, resolve_dtype
from . import host

NONE = "none"
PRECISIONS = ["auto", "fp16", "bf16", "fp32"]
SVD_CHECKPOINT_HINTS = ("svd", "stable-video-diffusion", "stable_video_diffusion")
_MAX_DEPTH = 3


# ---------------------------------------------------------------------------- listing
def _walk(root: str, max_depth: int = _MAX_DEPTH):
    """``os.walk`` that follows links, skips hidden folders and stops ``max_depth`` levels down."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        depth = 0 if dirpath == root else os.path.relpath(dirpath, root).count(os.sep) + 1
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if depth < max_depth else []
        yield dirpath, dirnames, filenames


def _rel(root: str, path: str) -> str:
    return os.path.relpath(path, os.path.abspath(root)).replace(os.sep, "/")


def _is_svd_folder(folder: str) -> bool:
    index = os.path.join(folder, "model_index.json")
    if not os.path.isfile(index):
        return False
    try:
        with open(index, encoding="utf-8") as f:
            return json.load(f).get("_class_name") == "StableVideoDiffusionPipeline"
    except (OSError, ValueError, AttributeError):
        return False


def _is_svd_checkpoint_name(name: str) -> bool:
    low = os.path.basename(name).lower()
    return low.endswith(".safetensors") and (low.startswith("svd") or any(h in low for h in SVD_CHECKPOINT_HINTS[1:]))


def list_svd_models() -> list[str]:
    """SVD diffusers folders (``model_index.json`` of a StableVideoDiffusionPipeline) under
    ``models/diffusers`` and ``svd*.safetensors`` files under ``models/checkpoints``, after the
    built-in model (``builtin:toy-physics``, shipped in the package)."""
    names: set[str] = set()
    for root in host.model_folders("diffusers"):
        for dirpath, dirnames, _ in _walk(root):
            if dirpath != os.path.abspath(root) and _is_svd_folder(dirpath):
                names.add(_rel(root, dirpath))
                dirnames[:] = []
    for root in host.model_folders("checkpoints"):
        for dirpath, _, filenames in _walk(root):
            names.update(_rel(root, os.path.join(dirpath, f)) for f in filenames if _is_svd_checkpoint_name(f))
    return builtin_names() + sorted(names)


def _is_control_folder(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "config.json")) or os.path.isfile(
        os.path.join(folder, "controlnet", "config.json"))


def _control_branch_names(kind: str) -> set[str]:
    names: set[str] = set()
    for root in host.model_folders(kind):
        for dirpath, dirnames, filenames in _walk(root):
            if dirpath != os.path.abspath(root) and _is_control_folder(dirpath):
                names.add(_rel(root, dirpath))
                dirnames[:] = []
                continue
            names.update(_rel(root, os.path.join(dirpath, f)) for f in filenames if f.lower().endswith(".safetensors"))
    return names


def list_control_branches(kinds: tuple[str, ...] = ("interdyn",), none: bool = True) -> list[str]:
    """``none`` + control branch folders (``config.json``, or ``controlnet/config.json`` as in the
    official release) and ``.safetensors`` files under ``models/interdyn`` (and the other folder
    ``kinds`` given, e.g. ``controlnet``)."""
    names: set[str] = set()
    for kind in kinds:
        names |= _control_branch_names(kind)
    return ([NONE] if none else []) + builtin_names() + sorted(names)


def list_sam2_checkpoints() -> list[str]:
    """``.pt`` and ``.safetensors`` files under ``models/sam2``."""
    names: set[str] = set()
    for root in host.model_folders("sam2"):
        for dirpath, _, filenames in _walk(root):
            names.update(_rel(root, os.path.join(dirpath, f)) for f in filenames
                         if f.lower().endswith((".pt", ".safetensors")))
    return sorted(names)


def _missing(what: str, name: str, searched: list[tuple[str, list[str]]], hint: str) -> ModelLoadError:
    where = "; ".join(f"{how} in {', '.join(folders) or '(no folder registered)'}" for how, folders in searched)
    return ModelLoadError(f"{what} {name!r} was not found. Looked for {where}. {hint} Nothing is downloaded at run time.")


def _find(kind: str, name: str, accept) -> Path | None:
    if not name or os.path.isabs(name) or ".." in Path(name).parts:
        return None
    for root in host.model_folders(kind):
        path = Path(root) / name
        if accept(path):
            return path
    return None


def _exists_not_folder(path: Path) -> bool:
    """A file, or a FIFO, device or socket under a model's name (which the loaders refuse with the widget's name)."""
    return path.exists() and not path.is_dir()


def resolve_svd(name: str) -> Path:
    """The SVD diffusers folder or single-file checkpoint called ``name`` (as listed by :func:`list_svd_models`)."""
    if is_builtin(name):
        return builtin_path(name, "svd")
    # a FIFO, device or socket found under the name is handed on, for the loader to refuse naming the widget
    path = _find("diffusers", name, lambda p: (p / "model_index.json").exists())
    path = path or _find("checkpoints", name, _exists_not_folder)
    if path is None:
        raise _missing("SVD model", name, [
            (f"a diffusers folder {name}/model_index.json", host.model_folders("diffusers")),
            (f"a checkpoint file {name}", host.model_folders("checkpoints"))],
            "Put the stable-video-diffusion-img2vid diffusers folder in models/diffusers, or svd.safetensors "
            "in models/checkpoints.")
    return path


def resolve_control_branch(name: str, kinds: tuple[str, ...] = ("interdyn",)) -> Path | None:
    """The control branch folder or file called ``name`` in the model folders ``kinds``; ``None`` for ``"none"``."""
    if name in (None, "", NONE):
        return None
    if is_builtin(name):
        return builtin_path(name, "control")
    for kind in kinds:
        path = _find(kind, name, lambda p: _exists_not_folder(p) or (p.is_dir() and _is_control_folder(str(p))))
        if path is not None:
            return path
    raise _missing("InterDyn control branch", name,
                   [("a folder or .safetensors file", [f for kind in kinds for f in host.model_folders(kind)])],
                   "Put the official InterDyn `controlnet` folder or an exported .safetensors file in models/interdyn.")


def resolve_sam2(name: str) -> Path:
    path = _find("sam2", name, _exists_not_folder)
    if path is None:
        raise _missing("SAM2 checkpoint", name, [("a .pt or .safetensors file", host.model_folders("sam2"))],
                       "Put e.g. sam2.1_hiera_tiny.pt (from facebook/sam2.1-hiera-tiny) in models/sam2.")
    return path


# ---------------------------------------------------------------------------- the model object
class InterDynModel:
    """What an INTERDYN_MODEL socket carries: the SVD backbone, the optional control branch, devices.

    Models wait on the offload device; :meth:`on_device` moves the parts a node needs to the
    compute device for the duration of a ``with`` block and back afterwards, also when the
    block raises (a cancelled run frees the compute device).
    """

    def __init__(self, backbone, control_branch=None, *, name: str = "", control_name: str = NONE,
                 precision: str = "auto", load_device=None, offload_device=None):
        self.backbone = backbone
        self.control_branch = control_branch
        self.name, self.control_name, self.precision = name, control_name, precision
        self.load_device = torch.device(load_device) if load_device is not None else host.torch_device()
        self.offload_device = torch.device(offload_device) if offload_device is not None else host.offload_device()

    @property
    def dtype(self) -> torch.dtype:
        return self.backbone.dtype

    def _modules(self, parts: str) -> list[torch.nn.Module]:
        b = self.backbone
        if parts == "vae":
            return [b.vae]
        if parts == "all":
            return [b.unet, b.vae, b.image_encoder] + ([self.control_branch] if self.control_branch is not None else [])
        raise ValueError(f"parts must be 'all' or 'vae', got {parts!r}")

    def size_bytes(self, parts: str = "all") -> int:
        return sum(p.numel() * p.element_size() for m in self._modules(parts) for p in m.parameters())

    def _move(self, modules, device) -> None:
        for m in modules:
            m.to(device=device)

    @contextlib.contextmanager
    def on_device(self, parts: str = "all"):
        """``with model.on_device(): ...`` runs with ``parts`` (``"all"`` or ``"vae"``) on the compute device."""
        modules = self._modules(parts)
        host.free_memory(self.size_bytes(parts), self.load_device)
        try:
            self._move(modules, self.load_device)
            yield self
        finally:
            self._move(modules, self.offload_device)
            if self.load_device != self.offload_device:
                host.soft_empty_cache()

    def __repr__(self) -> str:
        return (f"InterDynModel(svd={self.name!r}, control={self.control_name!r}, dtype={self.dtype}, "
                f"device={self.load_device}, offload={self.offload_device})")


# ---------------------------------------------------------------------------- loading with a cache
_CACHE: dict[tuple, InterDynModel] = {}


def _stamp(path: Path | None):
    if path is None:
        return None
    try:
        return (str(path.resolve()), path.stat().st_mtime_ns)
    except OSError:
        return (str(path), None)


def load_model(svd: str, control: str = NONE, precision: str = "auto", keep_loaded: bool = True) -> InterDynModel:
    """Resolve names to files and load them (from the cache when ``keep_loaded`` and nothing changed)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    svd_path = resolve_svd(svd)
    branch_path = resolve_control_branch(control)
    key = (_stamp(svd_path), _stamp(branch_path), precision)
    if keep_loaded and key in _CACHE:
        return _CACHE[key]
    _CACHE.pop(key, None)
    load_device, offload = host.torch_device(), host.offload_device()
    dtype = resolve_dtype(precision, load_device)
    backbone = load_svd_backbone(svd_path, dtype=dtype, device=offload, name="svd")
    branch = None
    if branch_path is not None:
        branch = load_control_branch(branch_path, dtype=backbone.dtype, device=offload, backbone=backbone,
                                     name="interdyn")
    model = InterDynModel(backbone, branch, name=svd, control_name=control or NONE, precision=precision,
                          load_device=load_device, offload_device=offload)
    if keep_loaded:
        _CACHE.clear()  # keep one model in memory, not every one ever loaded
        _CACHE[key] = model
    return model
