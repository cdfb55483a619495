"""Load Stable Video Diffusion from a single-file SGM checkpoint (svd*.safetensors).

ComfyUI users keep SVD as one ``.safetensors`` file in ``models/checkpoints`` (the original
Stability / generative-models key layout: ``model.diffusion_model.*``, ``first_stage_model.*``,
``conditioner.embedders.0.open_clip.model.visual.*``). diffusers cannot read that layout for SVD,
so this module converts it at load time into

* the diffusers ``UNetSpatioTemporalConditionModel`` (or a subclass, e.g. ``InterDynUNet``),
* the temporal VAE ``AutoencoderKLTemporalDecoder`` (``quant_conv`` filled with identity),
* the CLIP image encoder ``transformers.CLIPVisionModelWithProjection`` (open_clip ViT-H/14),
* the CLIP preprocessing settings and the SVD ``EulerDiscreteScheduler`` config.

Design:

* The key mapping is a pure function of the file's key names and shapes (:func:`plan_conversion`,
  :func:`derive_configs`) so it can be checked against a key/shape manifest without weights.
* Tensors are streamed with ``safetensors.safe_open``; safetensors hands out tensors backed by a
  private copy-on-write memory map of the file, and modules are built with their parameters on
  the ``meta`` device and filled with ``load_state_dict(assign=True)``. Nothing is copied unless a
  transform or a dtype/device change needs it, so memory stays about one model size.
* Nothing is downloaded: every config comes from the file's own shapes. Two numbers cannot be
  read from weights (the attention head widths); they default to SVD's values (UNet 64, ViT-H 80)
  and can be overridden for other sizes (the tiny test checkpoint uses 16 for both).
* Pickled checkpoints (``.ckpt``/``.pt``) are refused, never unpickled.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

from .models.backbone import CLIP_MEAN, CLIP_STD, SVD_SCHEDULER_CONFIG

logger = logging.getLogger(__name__)

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "SVD_SCHEDULER_CONFIG",
    "CheckpointInfo",
    "ConversionPlan",
    "SVDCheckpointError",
    "TensorRule",
    "derive_configs",
    "inspect_checkpoint",
    "is_svd_single_file",
    "load_svd_single_file",
    "plan_conversion",
    "require_svd_single_file",
    "target_shape",
]

# --------------------------------------------------------------------------------------------
# Constants of the single-file layout and of SVD
# --------------------------------------------------------------------------------------------

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
OPEN_CLIP_PREFIX = "conditioner.embedders.0.open_clip."
CLIP_VISUAL_PREFIX = "conditioner.embedders.0.open_clip.model.visual."

#: Key prefixes that are present in the SVD files but are not needed: the open_clip text-side
#: leftovers (everything of ``open_clip.model.`` except ``visual.``) and the legacy VAE copy that
#: embedder #3 holds for the conditioning frames.
UNUSED_PREFIXES: tuple[str, ...] = ("conditioner.embedders.3.encoder.",)
UNUSED_TEXT_SIDE_PREFIX = "conditioner.embedders.0.open_clip.model."

DEFAULT_UNET_HEAD_DIM = 64  # svd.yaml num_head_channels
DEFAULT_CLIP_HEAD_DIM = 80  # open_clip ViT-H-14 head_width (1280 wide, 16 heads)
VAE_SCALING_FACTOR = 0.18215  # SD latent scale; SVD reuses the SD VAE encoder
NUM_ADDED_TIME_IDS = 3  # fps_id, motion_bucket_id, cond_aug

PICKLE_SUFFIXES = frozenset({".ckpt", ".pt", ".pth", ".bin", ".pkl"})


class SVDCheckpointError(ValueError):
    """The file is not a usable single-file SVD checkpoint (the message says why and what to do)."""


# --------------------------------------------------------------------------------------------
# Conversion plan: a pure function of key names and shapes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorRule:
    """How one target tensor is made.

    ``transform`` is one of ``copy``, ``squeeze`` (1x1 conv -> linear), ``chunk{i}of3`` (row block
    ``i`` of a fused q/k/v projection), ``transpose`` (2-D), or ``identity`` (generated: an
    identity 1x1 conv weight or a zero bias of ``shape``; ``source`` is None).
    """

    target: str
    source: str | None
    transform: str = "copy"
    shape: tuple[int, ...] | None = None  # only for generated tensors


@dataclass
class ConversionPlan:
    """Rules per component (``unet``, ``vae``, ``image_encoder``) and the leftover source keys."""

    rules: dict[str, list[TensorRule]] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)  # documented, deliberately skipped keys
    unmapped: list[str] = field(default_factory=list)  # keys in a used group that map nowhere
    foreign: list[str] = field(default_factory=list)  # keys outside every known group


def target_shape(rule: TensorRule, source_shape: Sequence[int] | None) -> tuple[int, ...]:
    """Shape of the target tensor that ``rule`` produces from a source of ``source_shape``."""
    if rule.transform == "identity":
        assert rule.shape is not None
        return tuple(rule.shape)
    assert source_shape is not None
    shape = tuple(int(s) for s in source_shape)
    if rule.transform == "copy":
        return shape
    if rule.transform == "squeeze":
        return shape[:2]
    if rule.transform.startswith("chunk"):
        return (shape[0] // 3, *shape[1:])
    if rule.transform == "transpose":
        return (shape[1], shape[0])
    raise ValueError(f"unknown transform {rule.transform!r}")


def _rename(inner: str, table: Sequence[tuple[str, str]]) -> str | None:
    """Replace the first matching prefix of ``inner`` from ``table``; None if none matches."""
    for old, new in table:
        if inner == old or (old.endswith(".") and inner.startswith(old)):
            return new + inner[len(old):]
    return None


def _indices(keys: Iterator[str] | Sequence[str], pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern`` (one group) in ``keys``."""
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in keys if (m := regex.match(k))}
    return sorted(found)


# ---- UNet ----------------------------------------------------------------------------------

_UNET_RESNET_SPATIAL = [
    ("in_layers.0.", "norm1."),
    ("in_layers.2.", "conv1."),
    ("emb_layers.1.", "time_emb_proj."),
    ("out_layers.0.", "norm2."),
    ("out_layers.3.", "conv2."),
    ("skip_connection.", "conv_shortcut."),
]
_UNET_RESNET = (
    [("time_stack." + old, "temporal_res_block." + new) for old, new in _UNET_RESNET_SPATIAL]
    + [(old, "spatial_res_block." + new) for old, new in _UNET_RESNET_SPATIAL]
    + [("time_mixer.mix_factor", "time_mixer.mix_factor")]
)
_UNET_ATTENTION = [
    ("norm.", "norm."),
    ("proj_in.", "proj_in."),
    ("proj_out.", "proj_out."),
    ("transformer_blocks.", "transformer_blocks."),
    ("time_stack.", "temporal_transformer_blocks."),
    ("time_pos_embed.0.", "time_pos_embed.linear_1."),
    ("time_pos_embed.2.", "time_pos_embed.linear_2."),
    ("time_mixer.mix_factor", "time_mixer.mix_factor"),
]
_UNET_TOP = [
    ("time_embed.0.", "time_embedding.linear_1."),
    ("time_embed.2.", "time_embedding.linear_2."),
    ("label_emb.0.0.", "add_embedding.linear_1."),
    ("label_emb.0.2.", "add_embedding.linear_2."),
    ("input_blocks.0.0.", "conv_in."),
    ("out.0.", "conv_norm_out."),
    ("out.2.", "conv_out."),
]


def _unet_block_prefixes(keys: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Map each SGM UNet sub-module prefix to ``(diffusers prefix, kind)``.

    Kinds: ``resnet``, ``attention`` or ``plain`` (down/up-sampler convs: keys copied as is).
    The level structure is read from the keys: a down-sampler (``op``) closes a level.
    """
    blocks: dict[str, tuple[str, str]] = {}
    level, j = 0, 0
    for i in _indices(keys, r"input_blocks\.(\d+)\.")[1:]:
        p = f"input_blocks.{i}."
        if any(k.startswith(p + "0.op.") for k in keys):
            blocks[p + "0.op."] = (f"down_blocks.{level}.downsamplers.0.conv.", "plain")
            level, j = level + 1, 0
            continue
        blocks[p + "0."] = (f"down_blocks.{level}.resnets.{j}.", "resnet")
        if any(k.startswith(p + "1.") for k in keys):
            blocks[p + "1."] = (f"down_blocks.{level}.attentions.{j}.", "attention")
        j += 1
    blocks["middle_block.0."] = ("mid_block.resnets.0.", "resnet")
    blocks["middle_block.1."] = ("mid_block.attentions.0.", "attention")
    blocks["middle_block.2."] = ("mid_block.resnets.1.", "resnet")

    out_ids = _indices(keys, r"output_blocks\.(\d+)\.")
    per_level = len(out_ids) // (level + 1) if out_ids else 1
    for i in out_ids:
        up, j = divmod(i, per_level)
        p = f"output_blocks.{i}."
        blocks[p + "0."] = (f"up_blocks.{up}.resnets.{j}.", "resnet")
        for sub in _indices(keys, re.escape(p) + r"(\d+)\.")[1:]:
            sp = f"{p}{sub}."
            if any(k.startswith(sp + "conv.") for k in keys):
                blocks[sp + "conv."] = (f"up_blocks.{up}.upsamplers.0.conv.", "plain")
            else:
                blocks[sp] = (f"up_blocks.{up}.attentions.{j}.", "attention")
    return blocks


def _plan_unet(shapes: Mapping[str, Sequence[int]]) -> tuple[list[TensorRule], list[str]]:
    keys = [k[len(UNET_PREFIX):] for k in shapes if k.startswith(UNET_PREFIX)]
    blocks = _unet_block_prefixes(keys)
    # longest prefix first so that "output_blocks.2.1.conv." wins over "output_blocks.2.1."
    ordered = sorted(blocks.items(), key=lambda item: -len(item[0]))
    tables = {"resnet": _UNET_RESNET, "attention": _UNET_ATTENTION}
    rules, unmapped = [], []
    for key in keys:
        target = _rename(key, _UNET_TOP)
        if target is None:
            for prefix, (new_prefix, kind) in ordered:
                if key.startswith(prefix):
                    inner = key[len(prefix):]
                    renamed = inner if kind == "plain" else _rename(inner, tables[kind])
                    target = None if renamed is None else new_prefix + renamed
                    break
        if target is None:
            unmapped.append(UNET_PREFIX + key)
        else:
            rules.append(TensorRule(target, UNET_PREFIX + key))
    return rules, unmapped


# ---- VAE -----------------------------------------------------------------------------------

_VAE_RESNET = [
    ("norm1.", "norm1."),
    ("conv1.", "conv1."),
    ("norm2.", "norm2."),
    ("conv2.", "conv2."),
    ("nin_shortcut.", "conv_shortcut."),
]
_VAE_VIDEO_RESNET = [
    ("time_stack.in_layers.0.", "temporal_res_block.norm1."),
    ("time_stack.in_layers.2.", "temporal_res_block.conv1."),
    ("time_stack.out_layers.0.", "temporal_res_block.norm2."),
    ("time_stack.out_layers.3.", "temporal_res_block.conv2."),
    ("mix_factor", "time_mixer.mix_factor"),
] + [(old, "spatial_res_block." + new) for old, new in _VAE_RESNET]
_VAE_ATTENTION = [
    ("norm.", "group_norm."),
    ("q.", "to_q."),
    ("k.", "to_k."),
    ("v.", "to_v."),
    ("proj_out.", "to_out.0."),
]
_VAE_TOP = [
    ("encoder.conv_in.", "encoder.conv_in."),
    ("encoder.norm_out.", "encoder.conv_norm_out."),
    ("encoder.conv_out.", "encoder.conv_out."),
    ("decoder.conv_in.", "decoder.conv_in."),
    ("decoder.norm_out.", "decoder.conv_norm_out."),
    ("decoder.conv_out.time_mix_conv.", "decoder.time_conv_out."),
    ("decoder.conv_out.", "decoder.conv_out."),
]


_VaeBlock = tuple[str, str, Sequence[tuple[str, str]], bool]  # SGM prefix, diffusers prefix, table, indexed


def _vae_block_prefixes(keys: Sequence[str]) -> list[_VaeBlock]:
    """Every VAE sub-module: SGM prefix, diffusers prefix, inner rename table (empty: keep names)
    and whether the prefix is followed by a resnet index (``block.<j>.``)."""
    levels = len(_indices(keys, r"encoder\.down\.(\d+)\."))
    blocks: list[_VaeBlock] = []
    for part, resnets in (("encoder", _VAE_RESNET), ("decoder", _VAE_VIDEO_RESNET)):
        blocks.append((f"{part}.mid.attn_1.", f"{part}.mid_block.attentions.0.", _VAE_ATTENTION, False))
        blocks.append((f"{part}.mid.block_1.", f"{part}.mid_block.resnets.0.", resnets, False))
        blocks.append((f"{part}.mid.block_2.", f"{part}.mid_block.resnets.1.", resnets, False))
    for lvl in range(levels):
        up = levels - 1 - lvl  # SGM numbers decoder levels from the finest; diffusers from the coarsest
        blocks += [
            (f"encoder.down.{lvl}.block.", f"encoder.down_blocks.{lvl}.resnets.", _VAE_RESNET, True),
            (f"encoder.down.{lvl}.downsample.conv.", f"encoder.down_blocks.{lvl}.downsamplers.0.conv.", (), False),
            (f"decoder.up.{lvl}.block.", f"decoder.up_blocks.{up}.resnets.", _VAE_VIDEO_RESNET, True),
            (f"decoder.up.{lvl}.upsample.conv.", f"decoder.up_blocks.{up}.upsamplers.0.conv.", (), False),
        ]
    return blocks


def _rename_vae_key(key: str, blocks: Sequence[_VaeBlock]) -> str | None:
    target = _rename(key, _VAE_TOP)
    if target is not None:
        return target
    for prefix, new_prefix, table, indexed in blocks:
        if not key.startswith(prefix):
            continue
        inner = key[len(prefix):]
        index = ""
        if indexed:  # "<j>.<resnet inner>"
            j, _, inner = inner.partition(".")
            if not j.isdigit():
                return None
            index = j + "."
        renamed = _rename(inner, table) if table else inner
        return None if renamed is None else new_prefix + index + renamed
    return None


def _plan_vae(shapes: Mapping[str, Sequence[int]]) -> tuple[list[TensorRule], list[str]]:
    keys = [k[len(VAE_PREFIX):] for k in shapes if k.startswith(VAE_PREFIX)]
    blocks = _vae_block_prefixes(keys)
    rules, unmapped = [], []
    for key in keys:
        target = _rename_vae_key(key, blocks)
        if target is None:
            unmapped.append(VAE_PREFIX + key)
            continue
        is_attn_weight = ".attentions.0." in target and target.endswith(".weight") and "group_norm" not in target
        rules.append(TensorRule(target, VAE_PREFIX + key, "squeeze" if is_attn_weight else "copy"))
    moments = shapes.get(VAE_PREFIX + "encoder.conv_out.weight")
    if moments is not None:  # the SGM first stage has no quant_conv; diffusers applies one: identity
        n = int(moments[0])
        rules.append(TensorRule("quant_conv.weight", None, "identity", (n, n, 1, 1)))
        rules.append(TensorRule("quant_conv.bias", None, "identity", (n,)))
    return rules, unmapped


# ---- CLIP image encoder --------------------------------------------------------------------

_CLIP_TOP = [
    ("class_embedding", "vision_model.embeddings.class_embedding"),
    ("conv1.weight", "vision_model.embeddings.patch_embedding.weight"),
    ("positional_embedding", "vision_model.embeddings.position_embedding.weight"),
    ("ln_pre.", "vision_model.pre_layrnorm."),
    ("ln_post.", "vision_model.post_layernorm."),
]
_CLIP_LAYER = [
    ("attn.out_proj.", "self_attn.out_proj."),
    ("ln_1.", "layer_norm1."),
    ("ln_2.", "layer_norm2."),
    ("mlp.c_fc.", "mlp.fc1."),
    ("mlp.c_proj.", "mlp.fc2."),
]
_CLIP_LAYER_RE = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)")


def _clip_rules_for(key: str) -> list[TensorRule] | None:
    source = CLIP_VISUAL_PREFIX + key
    if key == "proj":
        return [TensorRule("visual_projection.weight", source, "transpose")]
    target = _rename(key, _CLIP_TOP)
    if target is not None:
        return [TensorRule(target, source)]
    m = _CLIP_LAYER_RE.fullmatch(key)
    if m is None:
        return None
    layer, inner = f"vision_model.encoder.layers.{m.group(1)}.", m.group(2)
    fused = re.fullmatch(r"attn\.in_proj_(weight|bias)", inner)
    if fused:
        return [
            TensorRule(f"{layer}self_attn.{name}_proj.{fused.group(1)}", source, f"chunk{i}of3")
            for i, name in enumerate("qkv")
        ]
    renamed = _rename(inner, _CLIP_LAYER)
    return None if renamed is None else [TensorRule(layer + renamed, source)]


def _plan_image_encoder(shapes: Mapping[str, Sequence[int]]) -> tuple[list[TensorRule], list[str]]:
    rules, unmapped = [], []
    for full in shapes:
        if not full.startswith(CLIP_VISUAL_PREFIX):
            continue
        found = _clip_rules_for(full[len(CLIP_VISUAL_PREFIX):])
        if found is None:
            unmapped.append(full)
        else:
            rules.extend(found)
    return rules, unmapped


def _is_unused(key: str) -> bool:
    if key.startswith(UNUSED_PREFIXES):
        return True
    return key.startswith(UNUSED_TEXT_SIDE_PREFIX) and not key.startswith(CLIP_VISUAL_PREFIX)


def plan_conversion(shapes: Mapping[str, Sequence[int]]) -> ConversionPlan:
    """Map every key of a single-file SVD checkpoint to diffusers/transformers keys.

    ``shapes`` is ``{source key: shape}`` (no tensors needed). The result lists the rules per
    component plus the source keys that were skipped on purpose (``unused``), that belong to a
    used group but could not be mapped (``unmapped``, a sign of a different architecture), and
    that belong to no known group (``foreign``).
    """
    plan = ConversionPlan()
    for name, planner in (("unet", _plan_unet), ("vae", _plan_vae), ("image_encoder", _plan_image_encoder)):
        plan.rules[name], unmapped = planner(shapes)
        plan.unmapped.extend(unmapped)
    used_prefixes = (UNET_PREFIX, VAE_PREFIX, CLIP_VISUAL_PREFIX)
    for key in shapes:
        if key.startswith(used_prefixes):
            continue
        (plan.unused if _is_unused(key) else plan.foreign).append(key)
    return plan


# ---- Configs from shapes -------------------------------------------------------------------


def _shape(shapes: Mapping[str, Sequence[int]], key: str) -> tuple[int, ...]:
    if key not in shapes:
        raise SVDCheckpointError(f"expected tensor {key!r} is missing, so the model size cannot be derived")
    return tuple(int(s) for s in shapes[key])


def _heads(width: int, head_dim: int, what: str, option: str) -> int:
    if width % head_dim:
        raise SVDCheckpointError(
            f"{what} width {width} is not a multiple of the attention head width {head_dim}; "
            f"this is not a standard SVD size: pass {option}=<the head width the model was trained with>"
        )
    return width // head_dim


def _unet_config(shapes: Mapping[str, Sequence[int]], head_dim: int, num_frames: int) -> dict[str, Any]:
    p = UNET_PREFIX
    keys = [k[len(p):] for k in shapes if k.startswith(p)]
    blocks = _unet_block_prefixes(keys)
    down = sorted({int(new.split(".")[1]) for new, _ in blocks.values() if new.startswith("down_blocks.")})
    channels, has_attn, depth, layers = [], [], [], []
    for lvl in down:
        res = [old for old, (new, kind) in blocks.items() if new.startswith(f"down_blocks.{lvl}.resnets.")]
        attn = [old for old, (new, kind) in blocks.items() if new.startswith(f"down_blocks.{lvl}.attentions.")]
        channels.append(_shape(shapes, p + sorted(res)[0] + "out_layers.3.weight")[0])
        layers.append(len(res))
        has_attn.append(bool(attn))
        if attn:
            first = sorted(attn)[0]
            depth.append(len(_indices(keys, re.escape(first) + r"transformer_blocks\.(\d+)\.")))
    up_attn = [
        any(new.startswith(f"up_blocks.{u}.attentions.") for new, _ in blocks.values()) for u in range(len(down))
    ]
    if len(set(layers)) != 1:
        raise SVDCheckpointError(f"UNet levels have different numbers of res blocks {layers}; not an SVD UNet")
    context = next(s[1] for k, s in shapes.items() if k.startswith(p) and k.endswith("attn2.to_k.weight"))
    added = _shape(shapes, p + "label_emb.0.0.weight")[1]
    return {
        "sample_size": 96,  # the HF SVD configs' value (only a default for the output size)
        "in_channels": _shape(shapes, p + "input_blocks.0.0.weight")[1],
        "out_channels": _shape(shapes, p + "out.2.weight")[0],
        "down_block_types": [
            "CrossAttnDownBlockSpatioTemporal" if a else "DownBlockSpatioTemporal" for a in has_attn
        ],
        "up_block_types": ["CrossAttnUpBlockSpatioTemporal" if a else "UpBlockSpatioTemporal" for a in up_attn],
        "block_out_channels": channels,
        "addition_time_embed_dim": added // NUM_ADDED_TIME_IDS,
        "projection_class_embeddings_input_dim": added,
        "layers_per_block": layers[0],
        "cross_attention_dim": int(context),
        "transformer_layers_per_block": depth[0] if len(set(depth)) == 1 else _per_level(depth, has_attn),
        "num_attention_heads": [_heads(c, head_dim, "UNet block", "unet_head_dim") for c in channels],
        "num_frames": num_frames,
    }


def _per_level(depth: list[int], has_attn: list[bool]) -> list[int]:
    it = iter(depth)
    return [next(it) if a else 1 for a in has_attn]


def _vae_config(shapes: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    p = VAE_PREFIX
    keys = [k[len(p):] for k in shapes if k.startswith(p)]
    levels = _indices(keys, r"encoder\.down\.(\d+)\.")
    per_level = _indices(keys, r"encoder\.down\.0\.block\.(\d+)\.")
    return {
        "in_channels": _shape(shapes, p + "encoder.conv_in.weight")[1],
        "out_channels": _shape(shapes, p + "decoder.conv_out.weight")[0],
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "block_out_channels": [_shape(shapes, f"{p}encoder.down.{i}.block.0.conv1.weight")[0] for i in levels],
        "layers_per_block": len(per_level),
        "latent_channels": _shape(shapes, p + "decoder.conv_in.weight")[1],
        "sample_size": 768,
        "scaling_factor": VAE_SCALING_FACTOR,
        "force_upcast": True,
    }


def _clip_config(shapes: Mapping[str, Sequence[int]], head_dim: int) -> dict[str, Any]:
    p = CLIP_VISUAL_PREFIX
    width = _shape(shapes, p + "class_embedding")[0]
    out_ch, in_ch, patch, _ = _shape(shapes, p + "conv1.weight")
    positions = _shape(shapes, p + "positional_embedding")[0]
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise SVDCheckpointError(f"open_clip positional_embedding has {positions} rows, not 1 + a square grid")
    return {
        "hidden_size": width,
        "intermediate_size": _shape(shapes, p + "transformer.resblocks.0.mlp.c_fc.weight")[0],
        "num_hidden_layers": len(_indices(list(shapes), re.escape(p) + r"transformer\.resblocks\.(\d+)\.")),
        "num_attention_heads": _heads(width, head_dim, "CLIP vision", "clip_head_dim"),
        "image_size": grid * patch,
        "patch_size": patch,
        "projection_dim": _shape(shapes, p + "proj")[1],
        "hidden_act": "gelu",  # open_clip ViT-H uses exact GELU (transformers defaults to quick_gelu)
        "layer_norm_eps": 1e-5,
        "num_channels": in_ch,
    }


def derive_configs(
    shapes: Mapping[str, Sequence[int]],
    *,
    unet_head_dim: int = DEFAULT_UNET_HEAD_DIM,
    clip_head_dim: int = DEFAULT_CLIP_HEAD_DIM,
    num_frames: int = 25,
) -> dict[str, dict[str, Any]]:
    """Constructor kwargs for the UNet, VAE and ``CLIPVisionConfig``, read from key shapes."""
    return {
        "unet": _unet_config(shapes, unet_head_dim, num_frames),
        "vae": _vae_config(shapes),
        "image_encoder": _clip_config(shapes, clip_head_dim),
    }


# --------------------------------------------------------------------------------------------
# Inspection and refusal
# --------------------------------------------------------------------------------------------


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
    from safetensors import safe_open

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

    Raises ``FileNotFoundError`` if the path does not exist; every other finding (wrong model,
    missing parts, pickled file, not safetensors) is returned in ``kind``/``problems``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"SVD checkpoint not found: {path} (expected a file such as {_SVD_NAMES})")
    if path.is_dir():
        return CheckpointInfo(path, "folder", "a folder, not a single file", problems=(
            "is a folder; pass the .safetensors file (a diffusers-format SVD folder is loaded by "
            "interdyn.loading.load_svd_backbone)",))
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


# --------------------------------------------------------------------------------------------
# Building the modules
# --------------------------------------------------------------------------------------------


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
        from safetensors import safe_open

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
        from .models.unet import InterDynUNet

        return InterDynUNet
    except ImportError as exc:
        logger.debug("InterDynUNet unavailable (%s); using diffusers' UNetSpatioTemporalConditionModel", exc)
        from diffusers import UNetSpatioTemporalConditionModel

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
    from diffusers import AutoencoderKLTemporalDecoder
    from safetensors import safe_open
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

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
