"""Building the modules: parameters on the meta device, tensors streamed from the file (zero copy where the
dtype allows), the three models filled with ``load_state_dict(assign=True)``."""
from __future__ import annotations

import contextlib
import json
import logging
import struct
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
from safetensors import safe_open
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from ..models.backbone import CLIP_MEAN, CLIP_STD, SVD_SCHEDULER_CONFIG
from .checkpoint_info import CheckpointInfo, require_svd_single_file
from .configs import derive_configs
from .layout import DEFAULT_CLIP_HEAD_DIM, DEFAULT_UNET_HEAD_DIM, SVDCheckpointError
from .plan import TensorRule, plan_conversion

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Create parameters on the meta device (no memory, no init cost); buffers stay real.

    Buffers are kept on the CPU because some are not in the state dict (CLIP ``position_ids``).
    """
    original = nn.Module.register_parameter

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


_SAFETENSORS_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32, "F64": torch.float64}


def _file_dtype(info: CheckpointInfo) -> torch.dtype:
    """The float dtype most tensors of the file use (F16 / BF16 / F32)."""
    floats = {d: n for d, n in info.dtypes.items() if d in _SAFETENSORS_DTYPES}
    if not floats:
        raise SVDCheckpointError(f"{info.path} has no floating-point tensors (dtypes: {dict(info.dtypes)})")
    return _SAFETENSORS_DTYPES[max(floats, key=floats.__getitem__)]


def _header_entries(path: Path) -> tuple[int, dict[str, tuple[str, tuple[int, ...], int, int]]]:
    """Start of the data section and ``{key: (dtype, shape, begin, end)}`` from the safetensors header."""
    with open(path, "rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    header.pop("__metadata__", None)
    entries = {k: (v["dtype"], tuple(v["shape"]), *v["data_offsets"]) for k, v in header.items()}
    return 8 + length, entries


@contextlib.contextmanager
def _tensor_source(path: Path, zero_copy: bool) -> Iterator[Callable[[str], torch.Tensor]]:
    """A ``get(key) -> tensor`` for the duration of the block.

    ``zero_copy``: tensors from ``safe_open`` share a private copy-on-write map of the file, so
    weights kept as they are cost no copy. Otherwise (dtype cast or another device) each tensor is
    read into its own small buffer and dropped after conversion: a map would keep every page of
    the file resident next to the converted copies until the end of the load.
    """
    if zero_copy:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            yield f.get_tensor
        return
    data_start, entries = _header_entries(path)
    last: dict[str, torch.Tensor] = {}  # the fused q/k/v source is asked three times in a row
    with open(path, "rb", buffering=0) as fh:

        def get(key: str) -> torch.Tensor:
            if key not in last:
                last.clear()
                dtype_name, shape, begin, end = entries[key]
                buf = torch.empty(end - begin, dtype=torch.uint8)
                view, done = memoryview(buf.numpy()), 0
                fh.seek(data_start + begin)
                while done < end - begin:
                    n = fh.readinto(view[done:])
                    if not n:
                        raise SVDCheckpointError(f"{path} is truncated: tensor {key!r} is incomplete; re-download it")
                    done += n
                last[key] = buf.view(_SAFETENSORS_DTYPES[dtype_name]).reshape(shape)
            return last[key]

        yield get


def _make_tensor(rule: TensorRule, get: Callable[[str], torch.Tensor], dtype: torch.dtype,
                 device: torch.device) -> torch.Tensor:
    """Apply ``rule`` to the streamed source tensor; copies only when a transform/cast needs it."""
    if rule.transform == "identity":
        assert rule.shape is not None
        if len(rule.shape) == 1:
            return torch.zeros(rule.shape, dtype=dtype, device=device)
        n = rule.shape[0]
        return torch.eye(n, dtype=dtype, device=device).reshape(rule.shape)
    assert rule.source is not None
    t = get(rule.source)
    if rule.transform == "squeeze":
        t = t.reshape(t.shape[0], t.shape[1])
    elif rule.transform.startswith("chunk"):
        t = t.chunk(3, dim=0)[int(rule.transform[5])]
    elif rule.transform == "transpose":
        t = t.t().contiguous()
    return t.to(device=device, dtype=dtype)


def _fill(module: nn.Module, rules: Sequence[TensorRule], get: Callable[[str], torch.Tensor],
          dtype: torch.dtype, device: torch.device, what: str, path: Path) -> nn.Module:
    """Load the converted tensors into ``module`` (strict, assign) and freeze it."""
    state = {rule.target: _make_tensor(rule, get, dtype, device) for rule in rules}
    try:
        missing, unexpected = module.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as exc:
        raise SVDCheckpointError(f"{path}: the {what} weights do not fit the derived config: {exc}") from exc
    if missing or unexpected:
        raise SVDCheckpointError(
            f"{path}: the {what} weights do not match the model built from them: "
            f"missing {sorted(missing)[:8]} ({len(missing)}), unexpected {sorted(unexpected)[:8]} ({len(unexpected)})"
        )
    still_meta = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if still_meta:
        raise SVDCheckpointError(f"{path}: the {what} has tensors without weights: {still_meta[:8]}")
    for name, buf in module.named_buffers():
        if buf.is_floating_point() and buf.dtype != dtype:
            buf.data = buf.data.to(dtype)
    module.to(device)
    module.eval()
    module.requires_grad_(False)
    return module


def _default_unet_cls() -> type:
    try:
        from ..models.unet import InterDynUNet  # ours, with a fallback to diffusers' UNet when it cannot be imported

        return InterDynUNet
    except ImportError as exc:
        logger.debug("InterDynUNet unavailable (%s); using diffusers' UNetSpatioTemporalConditionModel", exc)
        return UNetSpatioTemporalConditionModel


def _guess_num_frames(path: Path) -> int:
    """svd_xt* were trained on 25 frames, svd on 14 (only the config default; not structural)."""
    return 25 if "xt" in path.stem.lower() else 14


def load_svd_single_file(
    path: str | Path,
    *,
    dtype: torch.dtype | None = None,
    device: str | torch.device = "cpu",
    unet_cls: type | None = None,
    unet_head_dim: int = DEFAULT_UNET_HEAD_DIM,
    clip_head_dim: int = DEFAULT_CLIP_HEAD_DIM,
    num_frames: int | None = None,
) -> dict[str, Any]:
    """Load UNet, temporal VAE and CLIP image encoder from a single-file SVD checkpoint.

    ``dtype`` None keeps the file's dtype (fp16 stays fp16). ``unet_head_dim``/``clip_head_dim``
    only need changing for non-SVD sizes (they are not stored in the file). ``num_frames`` is
    the UNet config default (guessed from the file name: 25 for ``*xt*``, else 14).

    Returns ``{"unet", "vae", "image_encoder", "clip_mean", "clip_std", "clip_size",
    "scheduler_config", "source"}``; modules are in eval mode with ``requires_grad`` False.
    """
    path = Path(path)
    info = require_svd_single_file(path)
    target_dtype = dtype or _file_dtype(info)
    device = torch.device(device)
    unet_cls = unet_cls or _default_unet_cls()

    with safe_open(str(path), framework="pt", device="cpu") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    plan = plan_conversion(shapes)
    if plan.unmapped:
        raise SVDCheckpointError(
            f"{path}: {len(plan.unmapped)} tensors of the UNet/VAE/CLIP do not fit the SVD layout, "
            f"e.g. {plan.unmapped[:5]}; this is not a standard SVD checkpoint"
        )
    if plan.foreign:
        logger.info("%s: ignoring %d tensors outside the SVD layout, e.g. %s", path, len(plan.foreign),
                    plan.foreign[:3])
    configs = derive_configs(shapes, unet_head_dim=unet_head_dim, clip_head_dim=clip_head_dim,
                             num_frames=num_frames or _guess_num_frames(path))
    builders: dict[str, Callable[[], nn.Module]] = {
        "unet": lambda: unet_cls(**configs["unet"]),
        "vae": lambda: AutoencoderKLTemporalDecoder(**configs["vae"]),
        "image_encoder": lambda: CLIPVisionModelWithProjection(CLIPVisionConfig(**configs["image_encoder"])),
    }
    zero_copy = device.type == "cpu" and target_dtype == _file_dtype(info)
    modules = {}
    with _tensor_source(path, zero_copy) as get:
        for name, build in builders.items():
            with _parameters_on_meta():
                module = build()
            modules[name] = _fill(module, plan.rules[name], get, target_dtype, device, name, path)

    return {
        **modules,
        "clip_mean": CLIP_MEAN,
        "clip_std": CLIP_STD,
        "clip_size": configs["image_encoder"]["image_size"],
        "scheduler_config": dict(SVD_SCHEDULER_CONFIG),
        "source": str(path),
    }
