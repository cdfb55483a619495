"""The diffusers configs of the three models, read from the file's tensor shapes (nothing downloaded)."""
from __future__ import annotations

import math
import re
from typing import Any, Mapping, Sequence

from .layout import (
    CLIP_VISUAL_PREFIX,
    DEFAULT_CLIP_HEAD_DIM,
    DEFAULT_UNET_HEAD_DIM,
    NUM_ADDED_TIME_IDS,
    UNET_PREFIX,
    VAE_PREFIX,
    VAE_SCALING_FACTOR,
    SVDCheckpointError,
)
from .plan import key_indices, unet_block_prefixes


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
    blocks = unet_block_prefixes(keys)
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
            depth.append(len(key_indices(keys, re.escape(first) + r"transformer_blocks\.(\d+)\.")))
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
    levels = key_indices(keys, r"encoder\.down\.(\d+)\.")
    per_level = key_indices(keys, r"encoder\.down\.0\.block\.(\d+)\.")
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
        "num_hidden_layers": len(key_indices(list(shapes), re.escape(p) + r"transformer\.resblocks\.(\d+)\.")),
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
