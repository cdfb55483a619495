"""The one place where the nodes meet ComfyUI's runtime (progress, cancel, devices, model folders).

Every helper imports ComfyUI lazily and falls back to a plain behaviour when ComfyUI is not
there, so the node classes import and run without it (tests call them directly, and may
monkeypatch these functions). Nothing else in ``nodes/`` imports ``comfy`` or ``folder_paths``, except
:mod:`.native_control`, which defines InterDyn's ComfyUI control object (a ``ControlBase`` subclass)
on first use, inside ComfyUI only.
"""
from __future__ import annotations

import logging
import os
import uuid

import torch
from PIL import Image

log = logging.getLogger("InterDyn")

#: model folder kinds the pack reads; ``interdyn`` and ``sam2`` are registered by the pack,
#: ``diffusers``, ``checkpoints`` and ``controlnet`` are ComfyUI's own.
MODEL_KINDS = ("diffusers", "checkpoints", "interdyn", "sam2", "controlnet")

#: outside ComfyUI, model folders are ``$INTERDYN_MODELS_DIR/<kind>`` (default ``./models/<kind>``)
FALLBACK_MODELS_ENV = "INTERDYN_MODELS_DIR"


def _folder_paths():
    try:
        import folder_paths  # ComfyUI's module; only importable inside ComfyUI
    except ImportError:
        return None
    return folder_paths


def _model_management():
    try:
        import comfy.model_management as mm  # ComfyUI's; only importable inside ComfyUI
    except ImportError:
        return None
    return mm


def in_comfyui() -> bool:
    """True when running inside ComfyUI (its ``folder_paths`` module is importable)."""
    return _folder_paths() is not None


# ---------------------------------------------------------------------------- model folders
def register_model_folders() -> None:
    """Add ``models/interdyn`` and ``models/sam2`` to ComfyUI's folder list.

    Uses ``folder_paths.add_model_folder_path``, which appends to (never replaces) folders that
    ``extra_model_paths.yaml`` declared for the same kind. Outside ComfyUI this does nothing.
    """
    fp = _folder_paths()
    if fp is None:
        return
    for kind in ("interdyn", "sam2"):
        fp.add_model_folder_path(kind, os.path.join(fp.models_dir, kind))


def model_folders(kind: str) -> list[str]:
    """Every folder searched for models of ``kind`` (``diffusers``, ``checkpoints``, ``interdyn``, ``sam2``)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; one of {MODEL_KINDS}")
    fp = _folder_paths()
    if fp is not None:
        try:
            return list(fp.get_folder_paths(kind))
        except KeyError:
            return [os.path.join(fp.models_dir, kind)]
    base = os.environ.get(FALLBACK_MODELS_ENV) or os.path.join(os.getcwd(), "models")
    return [os.path.join(base, kind)]


# ---------------------------------------------------------------------------- devices
def torch_device() -> torch.device:
    """The device to compute on: ComfyUI's choice inside ComfyUI, else the CPU."""
    mm = _model_management()
    return mm.get_torch_device() if mm is not None else torch.device("cpu")


def offload_device() -> torch.device:
    """Where models wait between runs: ComfyUI's UNet offload device inside ComfyUI, else the CPU."""
    mm = _model_management()
    return mm.unet_offload_device() if mm is not None else torch.device("cpu")


def default_weight_dtype() -> torch.dtype:
    """The dtype ComfyUI would give a diffusion model's weights on its compute device (fp32 outside ComfyUI)."""
    mm = _model_management()
    if mm is None:
        return torch.float32
    return mm.unet_dtype(supported_dtypes=[torch.float16, torch.bfloat16, torch.float32])


def free_memory(num_bytes: int, device: torch.device) -> None:
    """Ask ComfyUI to unload its own models until ``num_bytes`` fit on ``device`` (no-op outside)."""
    mm = _model_management()
    if mm is not None and torch.device(device).type != "cpu":
        mm.free_memory(num_bytes, torch.device(device))


def soft_empty_cache() -> None:
    mm = _model_management()
    if mm is not None:
        mm.soft_empty_cache()
    elif torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------- progress and cancel
def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed Cancel (no-op outside ComfyUI)."""
    mm = _model_management()
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


class _NullProgress:
    def __init__(self, total: int):
        self.total, self.current = total, 0

    def update_absolute(self, value, total=None, preview=None):
        self.current = value


def progress_bar(total: int):
    """``comfy.utils.ProgressBar(total)`` inside ComfyUI, else an object that only counts."""
    try:
        import comfy.utils  # ComfyUI's; only importable inside ComfyUI
    except ImportError:
        return _NullProgress(total)
    return comfy.utils.ProgressBar(total)


def latent_previewer(device: torch.device):
    """A function ``x0 [B, C, h, w] -> preview`` for the progress bar, or ``None``.

    Uses ComfyUI's own previewer (latent-to-RGB factors or TAESD) for SVD's latent format
    (SD 1.x's); outside ComfyUI, or with previews disabled, there is none.
    """
    try:
        import comfy.latent_formats  # ComfyUI's; only importable inside ComfyUI
        import latent_preview
    except ImportError:
        return None
    try:
        previewer = latent_preview.get_previewer(device, comfy.latent_formats.SD15())
    except Exception as err:  # noqa: BLE001 - a preview must never stop sampling
        log.debug("InterDyn: no latent preview (%s)", err)
        return None
    if previewer is None:
        return None

    def preview(x0: torch.Tensor):
        try:
            return previewer.decode_latent_to_preview_image("JPEG", x0)
        except Exception as err:  # noqa: BLE001
            log.debug("InterDyn: latent preview failed (%s)", err)
            return None

    return preview


# ---------------------------------------------------------------------------- page previews
def save_temp_png(pixels, prefix: str) -> dict | None:
    """Write ``pixels`` (uint8 ``[H, W]``, ``[H, W, 3]`` or ``[H, W, 4]`` array) as a PNG in ComfyUI's temp folder.

    Returns the ``{"filename", "subfolder", "type": "temp"}`` entry the page fetches through ``/view``; outside
    ComfyUI (no temp folder to serve from) ``None``. A preview must never stop a run: failures are logged.
    """
    fp = _folder_paths()
    if fp is None:
        return None
    try:
        folder = fp.get_temp_directory()
        os.makedirs(folder, exist_ok=True)
        name = f"{prefix}_{uuid.uuid4().hex[:12]}.png"
        Image.fromarray(pixels).save(os.path.join(folder, name), compress_level=1)
        return {"filename": name, "subfolder": "", "type": "temp"}
    except Exception as err:  # noqa: BLE001 - the preview is a convenience
        log.warning("InterDyn: could not write the editor preview (%s)", err)
        return None
