"""SVD's conditioning embedding, shared by the UNet and the control branch.

Both networks turn the noise level ``c_noise`` and the three added time ids (``fps - 1``,
``motion_bucket_id``, ``noise_aug_strength``) into one embedding per video with the same four modules
(``time_proj``, ``time_embedding``, ``add_time_proj``, ``add_embedding``), exactly as diffusers'
``UNetSpatioTemporalConditionModel.forward`` does before its first block. The branch copies those modules
from the UNet (:meth:`InterDynControlNet.from_unet`), so this is one computation with two sets of weights.
"""
from __future__ import annotations

import torch


def as_timesteps(timestep: torch.Tensor | float | int, batch_size: int, device) -> torch.Tensor:
    """``timestep`` (a number, a 0-d or a ``[B]`` tensor) as a ``[batch_size]`` tensor on ``device``, as diffusers
    builds it (float64 for a float, int64 for an int; the sinusoidal projection casts to float32 either way)."""
    if not torch.is_tensor(timestep):
        timestep = torch.tensor([timestep], dtype=torch.float64 if isinstance(timestep, float) else torch.int64,
                                device=device)
    elif timestep.ndim == 0:
        timestep = timestep[None].to(device)
    return timestep.expand(batch_size)


def svd_time_embedding(model: torch.nn.Module, sample: torch.Tensor, timestep: torch.Tensor | float | int,
                       added_time_ids: torch.Tensor) -> torch.Tensor:
    """The ``[B, D]`` embedding of the noise level and the added time ids, for ``sample`` ``[B, F, C, h, w]``.

    ``model`` holds ``time_proj``, ``time_embedding``, ``add_time_proj`` and ``add_embedding`` (SVD's UNet or the
    control branch); the result is in ``sample``'s dtype."""
    batch_size = sample.shape[0]
    timesteps = as_timesteps(timestep, batch_size, sample.device)
    emb = model.time_embedding(model.time_proj(timesteps).to(dtype=sample.dtype))
    time_embeds = model.add_time_proj(added_time_ids.flatten()).reshape((batch_size, -1)).to(emb.dtype)
    return emb + model.add_embedding(time_embeds)
