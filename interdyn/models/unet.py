"""SVD's spatio-temporal UNet with control residuals injected into its skip connections.

Without residuals the forward pass *is* diffusers' ``UNetSpatioTemporalConditionModel``
forward (we call it), so stock SVD ``unet/`` weights load unchanged and give identical
outputs. With residuals, each down-block skip receives its control residual:

* ``"standard"`` — every skip residual is added once, after the encoder (ControlNet's
  usual wiring; use it for new training).
* ``"official"`` — the official InterDyn release adds the residuals inside its down-block
  loop, so skip ``k`` is incremented once after every down block from the one that produced
  it to the last: 4,4,4,4,3,3,3,2,2,2,1,1 for SVD's 12 skips. The published InterDyn weights
  were trained with it and only work with it. The additions happen in the same order as in
  the official code, so results are bit-identical to it.

The mid-block residual is added once, after the mid block, in both modes. Residuals only
change the stored skips, never the features flowing down the encoder.
"""
from __future__ import annotations

from typing import Sequence

import torch
from diffusers import UNetSpatioTemporalConditionModel
from diffusers.models.unets.unet_spatio_temporal_condition import UNetSpatioTemporalConditionOutput

from .time_embedding import svd_time_embedding

RESIDUAL_MODES = ("standard", "official")


def skip_residual_multiplicities(layers_per_block: Sequence[int], residual_mode: str) -> list[int]:
    """How many times each skip receives its residual, for a UNet with these blocks.

    ``layers_per_block[i]`` resnets per down block; every block but the last also has a
    downsampler skip; skip 0 is the output of ``conv_in``.
    """
    check_residual_mode(residual_mode)
    num_blocks = len(layers_per_block)
    counts = [num_blocks if residual_mode == "official" else 1]
    for i, layers in enumerate(layers_per_block):
        skips = layers + (1 if i < num_blocks - 1 else 0)
        counts += [num_blocks - i if residual_mode == "official" else 1] * skips
    return counts


def check_residual_mode(residual_mode: str) -> None:
    if residual_mode not in RESIDUAL_MODES:
        raise ValueError(f"residual_mode must be one of {RESIDUAL_MODES}, got {residual_mode!r}")


class InterDynUNet(UNetSpatioTemporalConditionModel):
    """``UNetSpatioTemporalConditionModel`` whose forward accepts control residuals."""

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        down_block_additional_residuals: Sequence[torch.Tensor] | None = None,
        mid_block_additional_residual: torch.Tensor | None = None,
        residual_mode: str = "standard",
        return_dict: bool = True,
    ):
        if down_block_additional_residuals is None and mid_block_additional_residual is None:
            return super().forward(
                sample, timestep, encoder_hidden_states, added_time_ids, return_dict=return_dict
            )
        check_residual_mode(residual_mode)
        residuals = tuple(down_block_additional_residuals or ())
        expected = 1 + sum(len(block.resnets) + (1 if getattr(block, "downsamplers", None) else 0)
                           for block in self.down_blocks)
        if residuals and len(residuals) != expected:
            raise ValueError(f"expected {expected} down-block residuals (one per skip connection), got {len(residuals)}")

        batch_size, num_frames = sample.shape[:2]
        emb = svd_time_embedding(self, sample, timestep, added_time_ids)

        sample = sample.flatten(0, 1)
        emb = emb.repeat_interleave(num_frames, dim=0, output_size=emb.shape[0] * num_frames)
        encoder_hidden_states = encoder_hidden_states.repeat_interleave(
            num_frames, dim=0, output_size=encoder_hidden_states.shape[0] * num_frames
        )
        sample = self.conv_in(sample)
        image_only_indicator = torch.zeros(batch_size, num_frames, dtype=sample.dtype, device=sample.device)

        skips: tuple[torch.Tensor, ...] = (sample,)
        for block in self.down_blocks:
            kwargs = {"encoder_hidden_states": encoder_hidden_states} if getattr(block, "has_cross_attention", False) else {}
            sample, block_skips = block(hidden_states=sample, temb=emb, image_only_indicator=image_only_indicator, **kwargs)
            skips += block_skips
            if residuals and residual_mode == "official":
                # the official loop: every skip produced so far gets its residual again
                skips = tuple(s + r for s, r in zip(skips, residuals))
        if residuals and residual_mode == "standard":
            skips = tuple(s + r for s, r in zip(skips, residuals))

        sample = self.mid_block(hidden_states=sample, temb=emb, encoder_hidden_states=encoder_hidden_states,
                                image_only_indicator=image_only_indicator)
        if mid_block_additional_residual is not None:
            sample = sample + mid_block_additional_residual

        # sizes that are not multiples of the total upsampling factor need explicit upsample sizes
        odd_size = any(s % 2 ** self.num_upsamplers != 0 for s in skips[0].shape[-2:])
        for i, block in enumerate(self.up_blocks):
            n = len(block.resnets)
            block_skips, skips = skips[-n:], skips[:-n]
            upsample_size = skips[-1].shape[2:] if odd_size and i < len(self.up_blocks) - 1 else None
            kwargs = {"encoder_hidden_states": encoder_hidden_states} if getattr(block, "has_cross_attention", False) else {}
            sample = block(hidden_states=sample, temb=emb, res_hidden_states_tuple=block_skips,
                           upsample_size=upsample_size, image_only_indicator=image_only_indicator, **kwargs)

        sample = self.conv_out(self.conv_act(self.conv_norm_out(sample)))
        sample = sample.reshape(batch_size, num_frames, *sample.shape[1:])
        if not return_dict:
            return (sample,)
        return UNetSpatioTemporalConditionOutput(sample=sample)
