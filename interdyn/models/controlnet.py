"""The InterDyn control branch: a trainable copy of SVD's encoder driven by control frames.

Structure (as the official InterDyn release, itself after svd-temporal-controlnet):

* a small CNN (``controlnet_cond_embedding``) that turns each control frame, in [-1, 1],
  into features on the latent grid: ``conv_in`` to ``conditioning_embedding_out_channels[0]``,
  then per stage a 3x3 conv and a stride-2 3x3 conv to the next width, SiLU after each,
  and a zero-initialised ``conv_out`` to the width of the UNet's first block;
* a copy of the UNet's ``conv_in``, time embeddings, down blocks and mid block; the CNN
  output is added right after ``conv_in``;
* one zero-initialised 1x1 conv per skip connection (``controlnet_down_blocks``) and one
  for the mid block (``controlnet_mid_block``).

Parameter names equal the official ``ControlNetSDVModel``'s, so the published
``rickakkerman/InterDyn`` ``controlnet`` folder loads directly. How the residuals enter the
UNet is part of the weights' contract and is stored in the config as ``residual_mode``
(see :mod:`interdyn.models.unet`); a config written by the official code has no such key and
is read as ``"official"``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_3d_blocks import UNetMidBlockSpatioTemporal, get_down_block
from diffusers.utils import BaseOutput
from torch import nn
from torch.nn import functional as F

from .time_embedding import svd_time_embedding
from .unet import check_residual_mode, skip_residual_multiplicities

OFFICIAL_CLASS_NAME = "ControlNetSDVModel"
# keys of the official config that describe the UNet's decoder, which the branch does not have
OFFICIAL_UNUSED_KEYS = ("out_channels", "up_block_types")


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ControlConditioningEmbedding(nn.Module):
    """Per-frame CNN from control frames ``[N, C, H, W]`` to ``[N, out_channels, H/2^(k-1), W/2^(k-1)]``."""

    def __init__(self, out_channels: int, conditioning_channels: int = 3,
                 block_out_channels: Sequence[int] = (16, 32, 96, 256)):
        super().__init__()
        self.conv_in = nn.Conv2d(conditioning_channels, block_out_channels[0], kernel_size=3, padding=1)
        self.blocks = nn.ModuleList()
        for c_in, c_out in zip(block_out_channels[:-1], block_out_channels[1:]):
            self.blocks.append(nn.Conv2d(c_in, c_in, kernel_size=3, padding=1))
            self.blocks.append(nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, stride=2))
        self.conv_out = _zero(nn.Conv2d(block_out_channels[-1], out_channels, kernel_size=3, padding=1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = F.silu(self.conv_in(frames))
        for conv in self.blocks:
            x = F.silu(conv(x))
        return self.conv_out(x)


@dataclass
class InterDynControlNetOutput(BaseOutput):
    """Residuals for the UNet's skips (``down_block_res_samples``) and mid block, already scaled."""

    down_block_res_samples: tuple[torch.Tensor, ...]
    mid_block_res_sample: torch.Tensor


class InterDynControlNet(ModelMixin, ConfigMixin):
    """InterDyn's control branch for SVD's ``UNetSpatioTemporalConditionModel``.

    Build one for a backbone with :meth:`from_unet`; load trained weights with
    :func:`interdyn.core.loading.load_control_branch` (official folder or our single file).
    """

    _supports_gradient_checkpointing = True
    config_name = "config.json"

    @register_to_config
    def __init__(
        self,
        in_channels: int = 8,
        down_block_types: Sequence[str] = (
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "CrossAttnDownBlockSpatioTemporal",
            "DownBlockSpatioTemporal",
        ),
        block_out_channels: Sequence[int] = (320, 640, 1280, 1280),
        addition_time_embed_dim: int = 256,
        projection_class_embeddings_input_dim: int = 768,
        layers_per_block: int | Sequence[int] = 2,
        cross_attention_dim: int | Sequence[int] = 1024,
        transformer_layers_per_block: int | Sequence[int] = 1,
        num_attention_heads: int | Sequence[int] = (5, 10, 10, 20),
        conditioning_channels: int = 3,
        conditioning_embedding_out_channels: Sequence[int] = (16, 32, 96, 256),
        residual_mode: str = "standard",
        num_frames: int = 14,
        sample_size: int | None = None,
    ):
        super().__init__()
        check_residual_mode(residual_mode)
        n = len(down_block_types)
        if len(block_out_channels) != n:
            raise ValueError(f"block_out_channels ({len(block_out_channels)}) and down_block_types ({n}) differ in length")

        def per_block(value, name):
            values = [value] * n if isinstance(value, int) else list(value)
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} entries for {n} down blocks")
            return values

        heads = per_block(num_attention_heads, "num_attention_heads")
        cross_dims = per_block(cross_attention_dim, "cross_attention_dim")
        layers = per_block(layers_per_block, "layers_per_block")
        transformer_layers = per_block(transformer_layers_per_block, "transformer_layers_per_block")

        self.conv_in = nn.Conv2d(in_channels, block_out_channels[0], kernel_size=3, padding=1)
        time_embed_dim = block_out_channels[0] * 4
        self.time_proj = Timesteps(block_out_channels[0], True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(block_out_channels[0], time_embed_dim)
        self.add_time_proj = Timesteps(addition_time_embed_dim, True, downscale_freq_shift=0)
        self.add_embedding = TimestepEmbedding(projection_class_embeddings_input_dim, time_embed_dim)
        self.controlnet_cond_embedding = ControlConditioningEmbedding(
            block_out_channels[0], conditioning_channels, conditioning_embedding_out_channels
        )

        self.down_blocks = nn.ModuleList()
        self.controlnet_down_blocks = nn.ModuleList([_zero(nn.Conv2d(block_out_channels[0], block_out_channels[0], 1))])
        out_ch = block_out_channels[0]
        for i, block_type in enumerate(down_block_types):
            in_ch, out_ch = out_ch, block_out_channels[i]
            is_final = i == n - 1
            self.down_blocks.append(get_down_block(
                block_type, num_layers=layers[i], transformer_layers_per_block=transformer_layers[i],
                in_channels=in_ch, out_channels=out_ch, temb_channels=time_embed_dim,
                add_downsample=not is_final, resnet_eps=1e-5, cross_attention_dim=cross_dims[i],
                num_attention_heads=heads[i], resnet_act_fn="silu",
            ))
            for _ in range(layers[i] + (0 if is_final else 1)):
                self.controlnet_down_blocks.append(_zero(nn.Conv2d(out_ch, out_ch, 1)))
        self.mid_block = UNetMidBlockSpatioTemporal(
            block_out_channels[-1], temb_channels=time_embed_dim,
            transformer_layers_per_block=transformer_layers[-1],
            cross_attention_dim=cross_dims[-1], num_attention_heads=heads[-1],
        )
        self.controlnet_mid_block = _zero(nn.Conv2d(block_out_channels[-1], block_out_channels[-1], 1))
        self.gradient_checkpointing = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_unet(
        cls,
        unet,
        conditioning_embedding_out_channels: Sequence[int] = (16, 32, 96, 256),
        conditioning_channels: int = 3,
        residual_mode: str = "standard",
        load_weights_from_unet: bool = True,
    ) -> "InterDynControlNet":
        """A control branch for ``unet`` (any number of blocks), initialised from its weights.

        Copies ``conv_in``, the timestep and added-time embeddings, the down blocks and the mid
        block. (The official ``from_unet`` forgets ``add_embedding``; we copy it.) The CNN's
        output conv and all residual convs start at zero, so the branch is invisible until trained.
        """
        c = unet.config
        # built on the UNet's device: a real-size branch on a GPU is initialised there, not on the CPU and copied
        with torch.device(unet.device):
            model = cls(
                in_channels=c.in_channels, down_block_types=tuple(c.down_block_types),
                block_out_channels=tuple(c.block_out_channels), addition_time_embed_dim=c.addition_time_embed_dim,
                projection_class_embeddings_input_dim=c.projection_class_embeddings_input_dim,
                layers_per_block=c.layers_per_block, cross_attention_dim=c.cross_attention_dim,
                transformer_layers_per_block=c.transformer_layers_per_block, num_attention_heads=c.num_attention_heads,
                conditioning_channels=conditioning_channels,
                conditioning_embedding_out_channels=tuple(conditioning_embedding_out_channels),
                residual_mode=residual_mode, num_frames=c.num_frames, sample_size=c.sample_size,
            )
        if load_weights_from_unet:
            for name in ("conv_in", "time_embedding", "add_embedding", "down_blocks", "mid_block"):
                getattr(model, name).load_state_dict(getattr(unet, name).state_dict())
        if model.dtype != unet.dtype:
            model.to(dtype=unet.dtype)
        return model.to(device=unet.device)

    @classmethod
    def load_config(cls, *args, **kwargs):
        """Read a config; an official ``ControlNetSDVModel`` config selects the official residual mode."""
        out = super().load_config(*args, **kwargs)
        config = out[0] if isinstance(out, tuple) else out
        mark_official_config(config)
        return out

    # ------------------------------------------------------------------ properties
    @property
    def residual_mode(self) -> str:
        return self.config.residual_mode

    @property
    def num_skips(self) -> int:
        return len(self.controlnet_down_blocks)

    def residual_multiplicities(self) -> list[int]:
        """How often each skip residual is added to the UNet's skips in this branch's mode."""
        layers = self.config.layers_per_block
        layers = [layers] * len(self.down_blocks) if isinstance(layers, int) else list(layers)
        return skip_residual_multiplicities(layers, self.residual_mode)

    # ------------------------------------------------------------------ forward
    def embed_control(self, control: torch.Tensor) -> torch.Tensor:
        """Control frames ``[B, F, C, H, W]`` in [-1, 1] -> CNN features ``[B*F, C0, H/8, W/8]``.

        Depends on the control only, so a sampler computes it once per video, not per step.
        """
        if control.ndim != 5:
            raise ValueError(f"control must be [batch, frames, channels, height, width], got shape {tuple(control.shape)}")
        return self.controlnet_cond_embedding(control.flatten(0, 1).to(self.dtype))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        controlnet_cond: torch.Tensor | None = None,
        control_embedding: torch.Tensor | None = None,
        conditioning_scale: float = 1.0,
        return_dict: bool = True,
        **unused,
    ):
        """Residuals for one UNet call.

        ``sample`` ``[B, F, in_channels, h, w]`` (scaled noisy latent + image latent);
        either ``controlnet_cond`` (control frames ``[B, F, 3, H, W]`` in [-1, 1]) or a
        precomputed ``control_embedding`` from :meth:`embed_control` (``[B*F, C0, h, w]``).
        """
        if control_embedding is None:
            if controlnet_cond is None:
                raise ValueError("pass controlnet_cond (control frames) or control_embedding")
            control_embedding = self.embed_control(controlnet_cond)
        batch_size, num_frames = sample.shape[:2]
        emb = svd_time_embedding(self, sample, timestep, added_time_ids)  # the same maths as the UNet's

        sample = sample.flatten(0, 1)
        emb = emb.repeat_interleave(num_frames, dim=0)
        encoder_hidden_states = encoder_hidden_states.repeat_interleave(num_frames, dim=0)
        if control_embedding.shape[0] != sample.shape[0]:
            raise ValueError(f"control embedding covers {control_embedding.shape[0]} frames, the sample "
                             f"{sample.shape[0]} (batch {batch_size} x {num_frames} frames)")
        down, mid = self._residuals(sample, emb, encoder_hidden_states, control_embedding, batch_size, num_frames,
                                    conditioning_scale)
        if not return_dict:
            return down, mid
        return InterDynControlNetOutput(down_block_res_samples=down, mid_block_res_sample=mid)

    def forward_frames(
        self,
        sample: torch.Tensor,
        timesteps: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        time_embeds: torch.Tensor,
        control_embedding: torch.Tensor,
        num_frames: int,
        conditioning_scale: float = 1.0,
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """Residuals for one UNet call in the frames-first layout of hosts such as ComfyUI.

        Every argument has one row per frame (``N = videos x num_frames`` rows, frames of a video
        adjacent): ``sample`` ``[N, in_channels, h, w]`` (scaled noisy latent + image latent),
        ``timesteps`` ``[N]`` (c_noise), ``encoder_hidden_states`` ``[N, 1, D]``, ``time_embeds``
        ``[N, projection_class_embeddings_input_dim]`` (the sinusoidal embeddings of the added time
        ids, cos|sin per id, concatenated: what :meth:`forward` computes from ``added_time_ids``),
        ``control_embedding`` ``[N, C0, h, w]`` from :meth:`embed_control`. Same maths as
        :meth:`forward`, with the time embedding computed per row instead of per video.
        """
        rows = sample.shape[0]
        if rows % num_frames:
            raise ValueError(f"{rows} rows are not a whole number of {num_frames}-frame videos")
        for name, t in (("timesteps", timesteps), ("encoder_hidden_states", encoder_hidden_states),
                        ("time_embeds", time_embeds), ("control_embedding", control_embedding)):
            if t.shape[0] != rows:
                raise ValueError(f"{name} has {t.shape[0]} rows, the sample {rows}")
        emb = self.time_embedding(self.time_proj(timesteps).to(dtype=sample.dtype))
        emb = emb + self.add_embedding(time_embeds.to(emb.dtype))
        return self._residuals(sample, emb, encoder_hidden_states, control_embedding, rows // num_frames, num_frames,
                               conditioning_scale)

    def _residuals(self, sample, emb, encoder_hidden_states, control_embedding, videos: int, num_frames: int,
                   conditioning_scale: float) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """The encoder and mid block on frames-first rows (``videos x num_frames``), with the control features
        added after ``conv_in``; the zero convolutions' outputs scaled by ``conditioning_scale``."""
        sample = self.conv_in(sample) + control_embedding
        image_only_indicator = torch.zeros(videos, num_frames, dtype=sample.dtype, device=sample.device)
        skips: tuple[torch.Tensor, ...] = (sample,)
        for block in self.down_blocks:
            kwargs = {"encoder_hidden_states": encoder_hidden_states} if getattr(block, "has_cross_attention", False) else {}
            sample, block_skips = block(hidden_states=sample, temb=emb, image_only_indicator=image_only_indicator, **kwargs)
            skips += block_skips
        sample = self.mid_block(hidden_states=sample, temb=emb, encoder_hidden_states=encoder_hidden_states,
                                image_only_indicator=image_only_indicator)
        down = tuple(conv(s) * conditioning_scale for s, conv in zip(skips, self.controlnet_down_blocks))
        return down, self.controlnet_mid_block(sample) * conditioning_scale


def mark_official_config(config: dict) -> dict:
    """Give a config written by the official code (no ``residual_mode``) the official mode."""
    if config.get("_class_name") == OFFICIAL_CLASS_NAME:
        config.setdefault("residual_mode", "official")
        for key in OFFICIAL_UNUSED_KEYS:
            config.pop(key, None)
    return config
