"""The InterDyn training objective: SVD's EDM v-prediction loss with a control branch.

One training step, per clip (InterDyn sec. 4.1, SVD's EDM preconditioning with sigma_data = 1):

* ``x0`` = VAE latents of the frames (posterior mode, or a sample) times ``scaling_factor``;
* ``ln sigma ~ N(P_mean, P_std^2)``, ``n ~ N(0, I)``, ``x = x0 + sigma * n``;
* conditioning as SVD was trained: the first frame (clean) gives the CLIP embedding; the first
  frame plus pixel noise ``noise_aug_strength * randn`` (per-clip strength) gives the image
  latent (``.mode()``, *unscaled*) concatenated to every frame; added time ids
  ``[fps - 1, motion_bucket_id, noise_aug_strength]``. All of it is
  :func:`interdyn.core.sampling.encode_conditioning`, the function inference uses;
* with probability ``image_dropout`` the image is dropped: zero CLIP embedding and zero image
  latent together, the control kept (the unconditional half of CFG at inference);
* UNet input ``cat([c_in * x, image_latent])``, timestep ``c_noise = 0.25 ln sigma``, the
  control branch's residuals added to the UNet's skips;
* loss: plain MSE between the UNet's output ``F`` and the v-target, see :func:`v_target`.

Randomness: every clip draws from its own generator seeded by ``(seed, step, slot)``: the
optimizer step and the clip's position in that step's global batch (``(accumulation_index *
num_processes + process_index) * batch_size + i``). Results therefore do not depend on the
global RNG state, on how a run was interrupted and resumed, or on how a global batch is split
into processes, accumulated micro-batches and per-device batches.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from interdyn.core.control import normalize_control
from interdyn.models.backbone import SVDBackbone
from interdyn.core.sampling import edm_noise_level, edm_scale_input, encode_conditioning


# ---------------------------------------------------------------------------- randomness
def clip_generators(seed: int, step: int, first_slot: int, count: int) -> list[torch.Generator]:
    """One CPU generator per clip, seeded by ``(seed, step, slot)`` (slots ``first_slot...``)."""
    gens = []
    for slot in range(first_slot, first_slot + count):
        state = np.random.SeedSequence([int(seed), int(step), int(slot)]).generate_state(2, dtype=np.uint32)
        gens.append(torch.Generator("cpu").manual_seed(int(state[0]) << 32 | int(state[1])))
    return gens


@dataclass
class NoiseSettings:
    """How the per-clip random quantities are drawn (the ``method`` keys of the training config)."""

    p_mean: float = 0.7
    p_std: float = 1.6
    noise_aug_dist: str = "lognormal"
    noise_aug_log_mean: float = -3.0
    noise_aug_log_std: float = 0.5
    noise_aug_min: float = 0.0
    noise_aug_max: float = 0.1
    image_dropout: float = 0.05

    @classmethod
    def from_config(cls, config) -> "NoiseSettings":
        return cls(**{k: getattr(config, k) for k in cls.__dataclass_fields__})


@dataclass
class ClipDraws:
    """The scalar random choices of a batch of clips (one entry per clip)."""

    log_sigma: torch.Tensor          # [B] float32, ln sigma
    noise_aug_strength: torch.Tensor  # [B] float32
    keep_image: torch.Tensor         # [B] bool, False = image dropped


def draw_clip_scalars(generators: list[torch.Generator], settings: NoiseSettings) -> ClipDraws:
    """Draw ln sigma, the noise augmentation strength and the image dropout, in that order, per clip.

    These three come first from each clip's generator, so their statistics do not depend on the
    clip's size; the tensors (:func:`prepare_inputs`) are drawn after them.
    """
    log_sigma, aug, keep = [], [], []
    for g in generators:
        z = torch.randn((), generator=g)
        log_sigma.append(settings.p_mean + settings.p_std * z)
        u = torch.rand((), generator=g)
        if settings.noise_aug_dist == "lognormal":
            # inverse-CDF of the normal, so every distribution consumes one uniform draw
            aug.append(torch.exp(settings.noise_aug_log_mean + settings.noise_aug_log_std * torch.special.ndtri(u)))
        elif settings.noise_aug_dist == "uniform":
            aug.append(settings.noise_aug_min + (settings.noise_aug_max - settings.noise_aug_min) * u)
        else:
            raise ValueError(f"noise_aug_dist must be 'lognormal' or 'uniform', got {settings.noise_aug_dist!r}")
        keep.append(torch.rand((), generator=g) >= settings.image_dropout)
    return ClipDraws(torch.stack(log_sigma).float(), torch.stack(aug).float(), torch.stack(keep))


# ---------------------------------------------------------------------------- targets
def v_target(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """SVD's v-target ``(n - sigma * x0) / sqrt(sigma^2 + 1)`` for ``x = x0 + sigma * n``.

    Plain MSE on it equals the EDM-weighted denoising loss. With sigma_data = 1 the denoiser is
    ``D(x) = c_skip x + c_out F(c_in x)``, ``c_skip = 1/(s^2+1)``, ``c_out = -s/sqrt(s^2+1)``, and
    EDM weights ``|D(x) - x0|^2`` by ``lambda(s) = (s^2+1)/s^2``. Then::

        D(x) - x0 = c_out * (F - (x0 - c_skip x) / c_out)
        (x0 - c_skip x) / c_out = [s (s x0 - n) / (s^2+1)] * [-sqrt(s^2+1) / s] = (n - s x0) / sqrt(s^2+1)
        lambda(s) * c_out^2 = (s^2+1)/s^2 * s^2/(s^2+1) = 1

    so ``lambda(s) |D(x) - x0|^2 = |F - v|^2`` with ``v = (n - s x0)/sqrt(s^2+1)``. The target has unit
    variance at every noise level and no division by a small sigma, so the loss is well scaled in
    bf16 where the x0 form (large weights at small sigma) is not.
    """
    return (noise - sigma * x0) / (sigma**2 + 1) ** 0.5


# ---------------------------------------------------------------------------- inputs
@dataclass
class ModelInputs:
    """Everything the trainable forward pass needs, computed without gradients."""

    unet_input: torch.Tensor       # [B, F, 8, h, w]: c_in * x (4 ch) + image latent (4 ch), weight dtype
    timestep: torch.Tensor         # [B] c_noise = 0.25 ln sigma
    image_embeddings: torch.Tensor  # [B, 1, D] (zero where the image is dropped)
    added_time_ids: torch.Tensor   # [B, 3]
    control: torch.Tensor          # [B, F, 3, H, W] in [-1, 1]
    target: torch.Tensor           # [B, F, 4, h, w] float32 v-target
    draws: ClipDraws


def _clip_values(meta: list[dict], key: str, default: float | None) -> list[float]:
    out = []
    for m in meta:
        value = m.get(key) if isinstance(m, dict) else None
        if value is None:
            if default is None:
                raise ValueError(f"the batch metadata has no {key!r} and the config gives no default")
            value = default
        out.append(float(value))
    return out


@torch.no_grad()
def encode_video_latents(backbone: SVDBackbone, frames: torch.Tensor, *, latent_mode: str = "mode",
                         generators: list[torch.Generator] | None = None, chunk: int = 16) -> torch.Tensor:
    """Frames ``[B, F, 3, H, W]`` in [0, 1] -> ``x0`` ``[B, F, C, h, w]`` float32, scaled by ``scaling_factor``.

    ``latent_mode="sample"`` draws the posterior sample's noise from each clip's generator.
    """
    vae = backbone.vae
    batch, num_frames = frames.shape[:2]
    flat = (frames.flatten(0, 1) * 2.0 - 1.0).to(device=vae.device, dtype=vae.dtype)
    means, stds = [], []
    for start in range(0, flat.shape[0], chunk):
        dist = vae.encode(flat[start:start + chunk]).latent_dist
        means.append(dist.mean.float())
        stds.append(dist.std.float())
    latents = torch.cat(means)
    if latent_mode == "sample":
        if generators is None:
            raise ValueError("latent_mode='sample' needs one generator per clip")
        std = torch.cat(stds).reshape(batch, num_frames, *latents.shape[1:])
        eps = torch.stack([torch.randn(std.shape[1:], generator=g) for g in generators]).to(std.device)
        latents = latents.reshape_as(std) + std * eps
    elif latent_mode != "mode":
        raise ValueError(f"latent_mode must be 'mode' or 'sample', got {latent_mode!r}")
    latents = latents.reshape(batch, num_frames, *latents.shape[-3:])
    return latents * vae.config.scaling_factor


@torch.no_grad()
def prepare_inputs(backbone: SVDBackbone, batch: dict, generators: list[torch.Generator],
                   settings: NoiseSettings, *, fps_conditioning: float | None = None,
                   motion_bucket_id: float = 40.0, latent_mode: str = "mode", vae_chunk: int = 16) -> ModelInputs:
    """Latents, conditioning, noise and target of a batch (``frames``, ``control``, ``meta``; see datasets.py).

    Draw order per clip generator: ln sigma, noise augmentation, dropout (:func:`draw_clip_scalars`),
    then the VAE posterior noise (``latent_mode="sample"`` only), the conditioning frame's pixel noise,
    the latent noise ``n``.
    """
    frames, control, meta = batch["frames"], batch["control"], batch["meta"]
    if frames.ndim != 5 or control.shape != frames.shape:
        raise ValueError(f"batch frames and control must both be [B, F, 3, H, W], got {tuple(frames.shape)} and "
                         f"{tuple(control.shape)}")
    if len(generators) != frames.shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {frames.shape[0]} clips")
    device, dtype = backbone.device, backbone.dtype
    draws = draw_clip_scalars(generators, settings)
    x0 = encode_video_latents(backbone, frames, latent_mode=latent_mode, generators=generators, chunk=vae_chunk)

    fps = _clip_values(meta, "fps", None)
    fps = [f + 1.0 for f in fps] if fps_conditioning is None else [fps_conditioning] * len(fps)
    buckets = _clip_values(meta, "motion_bucket_id", motion_bucket_id)
    cond = encode_conditioning(backbone, frames[:, 0], fps=fps, motion_bucket_id=buckets,
                               noise_aug_strength=draws.noise_aug_strength, generator=list(generators))
    keep = draws.keep_image.to(device)
    embeddings = cond.image_embeddings * keep[:, None, None].to(dtype)
    image_latents = cond.image_latents * keep[:, None, None, None].to(dtype)
    time_ids = cond.added_time_ids

    noise = torch.stack([torch.randn(x0.shape[1:], generator=g) for g in generators]).to(device)
    sigma = draws.log_sigma.exp().to(device)[:, None, None, None, None]
    x = x0 + sigma * noise
    unet_input = torch.cat([edm_scale_input(x, sigma).to(dtype), image_latents.unsqueeze(1).expand(-1, x.shape[1], -1, -1, -1)
                            .to(dtype)], dim=2)
    return ModelInputs(
        unet_input=unet_input, timestep=edm_noise_level(draws.log_sigma).to(device), image_embeddings=embeddings.to(dtype),
        added_time_ids=time_ids.to(dtype),
        # the range check reads the batch where the loader made it (the CPU), not the device: no host sync
        control=normalize_control(control.to(dtype=torch.float32)).to(device),
        target=v_target(x0, noise, sigma).float(), draws=draws)


def predict_v(unet, branch, inputs: ModelInputs, residual_mode: str) -> torch.Tensor:
    """The UNet's v output with the control branch's residuals (gradients flow into ``branch`` only).

    As diffusers' ControlNet training does: the branch runs under the autocast accelerate wraps a
    prepared model's forward in (float32 master weights), the frozen UNet in its own dtype without
    autocast (its residuals are cast to it).
    """
    down, mid = branch(inputs.unet_input, inputs.timestep, inputs.image_embeddings, inputs.added_time_ids,
                       controlnet_cond=inputs.control, return_dict=False)
    dtype = unet.dtype
    down, mid = [d.to(dtype) for d in down], mid.to(dtype)
    return unet(inputs.unet_input, inputs.timestep, encoder_hidden_states=inputs.image_embeddings,
                added_time_ids=inputs.added_time_ids, down_block_additional_residuals=down,
                mid_block_additional_residual=mid, residual_mode=residual_mode, return_dict=False)[0]


def v_loss(v: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain MSE in float32 between the model's v output and the v-target (see :func:`v_target`)."""
    return F.mse_loss(v.float(), target.float())
