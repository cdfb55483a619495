"""What a file is, from its safetensors header alone: SVD, another model (named), a pickle (refused), or
broken; and the refusal messages that say what to use instead."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from safetensors import safe_open

from ..support.validation import check_input_path
from .layout import (
    CLIP_VISUAL_PREFIX,
    PICKLE_SUFFIXES,
    UNET_PREFIX,
    VAE_PREFIX,
    SVDCheckpointError,
)


@dataclass(frozen=True)
class CheckpointInfo:
    """What a file is, read from its header only (no tensor data)."""

    path: Path
    kind: str  # svd sd1 sd2 sdxl image_unet diffusers bare_unet pickle not_safetensors folder unknown
    description: str
    has_unet: bool = False
    has_vae: bool = False
    has_image_encoder: bool = False
    num_tensors: int = 0
    dtypes: Mapping[str, int] = field(default_factory=dict)  # safetensors dtype name -> tensor count
    problems: tuple[str, ...] = ()

    @property
    def is_svd(self) -> bool:
        return self.kind == "svd" and not self.problems


_SVD_NAMES = "svd.safetensors, svd_xt.safetensors or svd_xt_1_1.safetensors"


def _read_magic(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(16)


def _looks_pickled(path: Path, magic: bytes) -> bool:
    return path.suffix.lower() in PICKLE_SUFFIXES or magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"


def _header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{key: (dtype, shape)}`` from the safetensors header (tensor data is not read)."""
    out = {}
    with safe_open(str(path), framework="pt", device="cpu") as f:
        for key in f.keys():
            sl = f.get_slice(key)
            out[key] = (str(sl.get_dtype()), tuple(int(s) for s in sl.get_shape()))
    return out


def _classify(keys: Sequence[str], shapes: Mapping[str, Sequence[int]]) -> tuple[str, str]:
    """(kind, description) of a key set."""
    has = lambda prefix: any(k.startswith(prefix) for k in keys)  # noqa: E731
    unet_keys = [k for k in keys if k.startswith(UNET_PREFIX)]
    video_unet = any(".time_stack." in k or ".time_mixer." in k for k in unet_keys)
    video_vae = any(k.startswith(VAE_PREFIX + "decoder.") and ("time_stack" in k or k.endswith("mix_factor"))
                    for k in keys)
    if has("conditioner.embedders.1.model.") or has("conditioner.embedders.0.transformer.text_model."):
        return "sdxl", "a Stable Diffusion XL image checkpoint"
    if has("cond_stage_model.transformer."):
        return "sd1", "a Stable Diffusion 1.x image checkpoint"
    if has("cond_stage_model.model."):
        return "sd2", "a Stable Diffusion 2.x image checkpoint"
    if video_unet or video_vae or has(CLIP_VISUAL_PREFIX) or has("conditioner.embedders.3.encoder."):
        return "svd", "a Stable Video Diffusion single-file checkpoint"
    if unet_keys:
        return "image_unet", "an image diffusion checkpoint without temporal layers (not Stable Video Diffusion)"
    if has("down_blocks.") or has("conv_in.") or has("vision_model."):
        return "diffusers", "a diffusers/transformers-format weights file (one model, not a single-file checkpoint)"
    if has("input_blocks.") and has("time_embed."):
        return "bare_unet", "a bare UNet weights file without the 'model.diffusion_model.' prefix"
    return "unknown", "not a known Stable Diffusion / Stable Video Diffusion checkpoint"


def _missing_parts(keys: Sequence[str]) -> tuple[str, ...]:
    parts = (
        (UNET_PREFIX, "UNet"),
        (VAE_PREFIX, "VAE"),
        (CLIP_VISUAL_PREFIX, "CLIP image encoder"),
    )
    missing = []
    for prefix, what in parts:
        if not any(k.startswith(prefix) for k in keys):
            shown = "conditioner.embedders.0.open_clip.*" if prefix == CLIP_VISUAL_PREFIX else prefix + "*"
            missing.append(f"has no {what} weights ({shown})")
    return tuple(missing)


def inspect_checkpoint(path: str | Path) -> CheckpointInfo:
    """Say what ``path`` is without reading tensor data or unpickling anything.

    Raises ``FileNotFoundError`` if the path does not exist and :class:`interdyn.support.validation.InputError` if it
    is a FIFO, device or socket (never opened: a FIFO blocks its reader); every other finding (wrong model, missing
    parts, pickled file, not safetensors) is returned in ``kind``/``problems``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"SVD checkpoint not found: {path} (expected a file such as {_SVD_NAMES})")
    check_input_path(path, "SVD checkpoint", what="a regular file")
    if path.is_dir():
        return CheckpointInfo(path, "folder", "a folder, not a single file", problems=(
            "is a folder; pass the .safetensors file (a diffusers-format SVD folder is loaded by "
            "interdyn.core.loading.load_svd_backbone)",))
    magic = _read_magic(path)
    if _looks_pickled(path, magic):
        return CheckpointInfo(path, "pickle", "a pickled PyTorch checkpoint", problems=(
            "is a pickled PyTorch checkpoint; it was not opened, because unpickling a downloaded file can run "
            "arbitrary code. Download the .safetensors release instead (" + _SVD_NAMES + ") or convert this "
            "file to .safetensors with a tool you trust",))
    try:
        header = _header(path)
    except Exception as exc:  # safetensors raises its own error type for a bad header
        return CheckpointInfo(path, "not_safetensors", "not a safetensors file", problems=(
            f"is not a readable .safetensors file ({type(exc).__name__}: {exc}); re-download it",))
    keys = list(header)
    shapes = {k: s for k, (_, s) in header.items()}
    kind, description = _classify(keys, shapes)
    problems: tuple[str, ...] = ()
    if kind == "svd":
        problems = _missing_parts(keys)
    else:
        problems = (f"is {description}, not Stable Video Diffusion",)
    return CheckpointInfo(
        path=path,
        kind=kind,
        description=description,
        has_unet=any(k.startswith(UNET_PREFIX) for k in keys),
        has_vae=any(k.startswith(VAE_PREFIX) for k in keys),
        has_image_encoder=any(k.startswith(CLIP_VISUAL_PREFIX) for k in keys),
        num_tensors=len(keys),
        dtypes=dict(Counter(d for d, _ in header.values())),
        problems=problems,
    )


def _refusal(info: CheckpointInfo) -> str:
    what_to_do = {
        "svd": "Use the complete single-file release (" + _SVD_NAMES + "), not a UNet-only or pruned file.",
        "pickle": "",
        "not_safetensors": "",
        "folder": "",
    }.get(info.kind, "Select an SVD checkpoint instead (" + _SVD_NAMES + ").")
    problems = "; ".join(info.problems)
    if info.kind == "svd":
        present = [name for name, has in (("UNet", info.has_unet), ("VAE", info.has_vae),
                                          ("CLIP image encoder", info.has_image_encoder)) if has]
        problems += f" (found {', '.join(present) or 'none of the parts'} in {info.num_tensors} tensors)"
    return f"Cannot load {info.path} as Stable Video Diffusion: it {problems}. {what_to_do}".strip()


def require_svd_single_file(path: str | Path) -> CheckpointInfo:
    """:func:`inspect_checkpoint`, raising :class:`SVDCheckpointError` unless it is a complete SVD file."""
    info = inspect_checkpoint(path)
    if not info.is_svd:
        raise SVDCheckpointError(_refusal(info))
    return info


def is_svd_single_file(path: str | Path) -> bool:
    """True if ``path`` is a complete single-file SVD checkpoint (.safetensors). Never raises."""
    try:
        return inspect_checkpoint(path).is_svd
    except (OSError, SVDCheckpointError):
        return False
