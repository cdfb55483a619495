"""The conversion plan, a pure function of the file's key names and shapes: which tensor of the file becomes
which parameter of the diffusers UNet, temporal VAE and CLIP image encoder (and how it is reshaped)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

from .layout import (
    CLIP_VISUAL_PREFIX,
    UNET_PREFIX,
    UNUSED_PREFIXES,
    UNUSED_TEXT_SIDE_PREFIX,
    VAE_PREFIX,
)


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


def key_indices(keys: Iterator[str] | Sequence[str], pattern: str) -> list[int]:
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


def unet_block_prefixes(keys: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Map each SGM UNet sub-module prefix to ``(diffusers prefix, kind)``.

    Kinds: ``resnet``, ``attention`` or ``plain`` (down/up-sampler convs: keys copied as is).
    The level structure is read from the keys: a down-sampler (``op``) closes a level.
    """
    blocks: dict[str, tuple[str, str]] = {}
    level, j = 0, 0
    for i in key_indices(keys, r"input_blocks\.(\d+)\.")[1:]:
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

    out_ids = key_indices(keys, r"output_blocks\.(\d+)\.")
    per_level = len(out_ids) // (level + 1) if out_ids else 1
    for i in out_ids:
        up, j = divmod(i, per_level)
        p = f"output_blocks.{i}."
        blocks[p + "0."] = (f"up_blocks.{up}.resnets.{j}.", "resnet")
        for sub in key_indices(keys, re.escape(p) + r"(\d+)\.")[1:]:
            sp = f"{p}{sub}."
            if any(k.startswith(sp + "conv.") for k in keys):
                blocks[sp + "conv."] = (f"up_blocks.{up}.upsamplers.0.conv.", "plain")
            else:
                blocks[sp] = (f"up_blocks.{up}.attentions.{j}.", "attention")
    return blocks


def _plan_unet(shapes: Mapping[str, Sequence[int]]) -> tuple[list[TensorRule], list[str]]:
    keys = [k[len(UNET_PREFIX):] for k in shapes if k.startswith(UNET_PREFIX)]
    blocks = unet_block_prefixes(keys)
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
    levels = len(key_indices(keys, r"encoder\.down\.(\d+)\."))
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
