"""The InterDyn / SVD sampler: conditioning, EDM Euler with per-frame CFG, control window.

Read it like k-diffusion: :func:`sample_euler` is the loop over a sigma list and a denoiser
callable; :class:`InterDynDenoiser` does SVD's v-prediction preconditioning, the CFG batch and
the control branch; :func:`sample_latents` wires them up the way diffusers'
``StableVideoDiffusionPipeline`` and the official InterDyn pipeline do, so that results match
theirs for the same seed (the arithmetic is written in the same order as diffusers'
``EulerDiscreteScheduler``).

EDM with v-prediction and sigma_data = 1::

    c_in = 1/sqrt(s^2+1)   c_skip = 1/(s^2+1)   c_out = -s/sqrt(s^2+1)   c_noise = 0.25 ln s

``fps`` is taken in diffusers' convention (the time id receives ``fps - 1``); the official
InterDyn pipeline passes its ``fps=6`` unchanged, which is our ``fps=7``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .control import normalize_control
from .dual_clock import DualClock, check_dual_clock, encode_reference, plan_dual_clock
from ..models.backbone import SVDBackbone
from ..support.validation import (InputError, check_count, check_finite, check_frame_size, check_guidance,
                                  check_image_tensor, check_range, check_sampling_bounds, check_seed,
                                  check_video_size)

# the paper's defaults (14 frames, 256x384, 50 steps, CFG 1 -> 3); fps in diffusers' convention
DEFAULTS = dict(num_frames=14, height=256, width=384, num_steps=50, min_guidance=1.0, max_guidance=3.0,
                fps=7, motion_bucket_id=40, noise_aug_strength=0.02)

StepCallback = Callable[["StepInfo"], None]


@dataclass
class StepInfo:
    """What a per-step callback receives. Raise from the callback to cancel sampling."""

    step: int            # 0-based index of the step just finished
    total: int           # number of steps
    sigma: float         # noise level the step started from
    latents: torch.Tensor    # current latents [B, F, C, h, w] (float32)
    denoised: torch.Tensor   # the model's clean estimate at this step, for previews


@dataclass
class VideoConditioning:
    """SVD's conditioning for a batch of first frames."""

    image_embeddings: torch.Tensor  # [B, 1, D] CLIP image embeddings
    image_latents: torch.Tensor     # [B, C, h, w] unscaled VAE latent of the noise-augmented image
    added_time_ids: torch.Tensor    # [B, 3]: fps - 1, motion bucket, noise augmentation


# ---------------------------------------------------------------------------- schedule
def karras_sigmas(num_steps: int, sigma_min: float = 0.002, sigma_max: float = 700.0,
                  rho: float = 7.0) -> torch.Tensor:
    """Karras et al. sigmas from ``sigma_max`` down to ``sigma_min``, then 0 (float32, ``num_steps + 1``).

    Computed in float64 and rounded once, as diffusers' ``EulerDiscreteScheduler`` does with
    SVD's scheduler config, so both give the same list.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    ramp = np.linspace(0, 1, num_steps)
    min_inv_rho, max_inv_rho = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (max_inv_rho + ramp * (min_inv_rho - max_inv_rho)) ** rho
    return torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))


# SVD's EDM v-prediction parameterisation (the module docstring), in one place for the sampler, the training loss
# and the toy prior; written in diffusers' EulerDiscreteScheduler's order of operations (bit-identical to it)
def edm_scale_input(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``c_in * x``: the noisy latent as the UNet sees it."""
    return x / (sigma**2 + 1) ** 0.5


def edm_noise_level(log_sigma: torch.Tensor) -> torch.Tensor:
    """``c_noise = 0.25 ln sigma``: the UNet's timestep input, from ``ln sigma``."""
    return 0.25 * log_sigma


def edm_denoised(v: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``x0 = c_out * v + c_skip * x``: the denoised latent from the UNet's v-prediction."""
    return v * (-sigma / (sigma**2 + 1) ** 0.5) + (x / (sigma**2 + 1))


# ---------------------------------------------------------------------------- conditioning
def _gaussian_blur_axis(x: torch.Tensor, sigma: float, size: int, axis: int) -> torch.Tensor:
    """Blur ``x`` ``[B, C, H, W]`` along ``axis`` (-1: width, -2: height) with a normalised Gaussian of ``size`` taps
    (odd), reflecting at the borders. The kernel is built on the CPU from Python numbers: no device read."""
    taps = torch.arange(size, dtype=x.dtype) - size // 2
    kernel = torch.exp(-taps.pow(2.0) / (2 * torch.tensor(sigma, dtype=x.dtype).pow(2.0)))
    kernel = (kernel / kernel.sum()).to(x.device)
    half = size // 2
    if axis == -1:
        kernel, padding = kernel.view(1, 1, 1, size), (half, half, 0, 0)
    else:
        kernel, padding = kernel.view(1, 1, size, 1), (0, 0, half, half)
    channels = x.shape[1]
    x = torch.nn.functional.pad(x, padding, mode="reflect")
    return torch.nn.functional.conv2d(x, kernel.expand(channels, -1, -1, -1), groups=channels)


def resize_antialiased(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """SVD's resize for CLIP: a Gaussian blur with sigma ``(factor - 1) / 2`` per axis (skimage's rule; kernel
    ``2 * 2 sigma`` taps, at least 3, odd; reflect borders; width first) and then bicubic with
    ``align_corners=True``.

    What diffusers' SVD pipeline and the official InterDyn code compute, equal to the last bit to diffusers'
    private ``_resize_with_antialiasing`` (``tests/test_sampling.py``), which we no longer import."""
    height, width = x.shape[-2:]
    sigmas = [max((size_in / size_out - 1.0) / 2.0, 0.001) for size_in, size_out in zip((height, width), size)]
    taps = [k + 1 - k % 2 for k in (int(max(4.0 * s, 3)) for s in sigmas)]
    x = _gaussian_blur_axis(x, sigmas[1], taps[1], axis=-1)
    x = _gaussian_blur_axis(x, sigmas[0], taps[0], axis=-2)
    return torch.nn.functional.interpolate(x, size=size, mode="bicubic", align_corners=True)


def clip_image_embeddings(backbone: SVDBackbone, image: torch.Tensor) -> torch.Tensor:
    """CLIP embedding ``[B, 1, D]`` of images in [0, 1], as both reference pipelines compute it.

    The [-1, 1] image is resized to 224 with diffusers' antialiased bicubic resize, mapped back
    to [0, 1] and CLIP-normalised.
    """
    encoder = backbone.image_encoder
    x = resize_antialiased(image * 2.0 - 1.0, (backbone.clip_size, backbone.clip_size))
    x = (x + 1.0) / 2.0
    mean = torch.tensor(backbone.clip_mean, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.tensor(backbone.clip_std, dtype=x.dtype, device=x.device)[:, None, None]
    x = ((x - mean) / std).to(device=encoder.device, dtype=encoder.dtype)
    return encoder(x).image_embeds.unsqueeze(1)


def randn(shape, generator: torch.Generator | None, device, dtype=torch.float32) -> torch.Tensor:
    """Gaussian noise drawn on the generator's device (so CPU seeds give the same noise on GPU).

    A list of generators draws one row of the batch from each (row ``i``'s noise is what a batch of one
    with generator ``i`` gets), as diffusers' pipelines do.
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        return torch.cat([randn((1, *shape[1:]), g, device, dtype) for g in generator])
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


def encode_conditioning(backbone: SVDBackbone, image: torch.Tensor, *, fps=7, motion_bucket_id=40,
                        noise_aug_strength=0.02, generator=None,
                        image_embeddings: torch.Tensor | None = None) -> VideoConditioning:
    """SVD conditioning of first frames ``image`` ``[B, 3, H, W]`` in [0, 1].

    Draws one tensor from ``generator``: the noise augmentation of the image (before the
    initial latents, in diffusers' order). The VAE latent is ``.mode()`` and NOT multiplied by
    the scaling factor.

    ``fps``, ``motion_bucket_id`` and ``noise_aug_strength`` are one value for every row or one per
    row; ``generator`` is one generator or one per row (row ``i`` then gets the noise a batch of one
    with generator ``i`` gets), so a training batch is conditioned in one VAE call.
    ``image_embeddings`` ``[B, 1, D]``: CLIP embeddings computed earlier (CLIP is then not run).
    """
    device = backbone.device
    image = image.to(device=device, dtype=torch.float32)
    rows = image.shape[0]
    embeddings = (clip_image_embeddings(backbone, image) if image_embeddings is None
                  else image_embeddings.to(device=device, dtype=torch.float32))

    def per_row(value, name: str) -> torch.Tensor:
        t = torch.as_tensor(value, dtype=torch.float32).reshape(-1).to(device)
        if t.numel() not in (1, rows):
            raise ValueError(f"{name} has {t.numel()} values for a batch of {rows} images")
        return t.expand(rows)

    aug = per_row(noise_aug_strength, "noise_aug_strength")
    signed = image * 2.0 - 1.0
    noisy = signed + aug[:, None, None, None] * randn(signed.shape, generator, device, signed.dtype)
    vae = backbone.vae
    latents = vae.encode(noisy.to(vae.dtype)).latent_dist.mode().to(embeddings.dtype)
    time_ids = torch.stack([per_row(fps, "fps") - 1, per_row(motion_bucket_id, "motion_bucket_id"), aug], dim=1)
    return VideoConditioning(embeddings, latents, time_ids.to(embeddings.dtype))


# ---------------------------------------------------------------------------- denoiser
class InterDynDenoiser:
    """``denoiser(x, sigma, step) -> x0`` for SVD with an optional InterDyn control branch.

    One UNet call per step: the unconditional (zero CLIP embedding, zero image latent, control
    kept) and conditional halves share a batch when guidance is on, and guidance is a per-frame
    linear ramp. With guidance off (``max_guidance <= 1``) a single conditional pass runs. The
    branch runs only on steps inside ``[control_start, control_end)`` (fractions of the steps)
    and only if ``control_strength != 0``; its CNN features are computed once, here.

    Its arguments are not checked again: :func:`prepare_sampling` checked them (build it through
    :func:`sample_latents` / :func:`run_sampling`, or check with :func:`check_sampling_args` and
    :func:`checked_control` first).
    """

    def __init__(self, backbone: SVDBackbone, cond: VideoConditioning, num_frames: int, num_steps: int, *,
                 control_branch=None, control: torch.Tensor | None = None, control_strength: float = 1.0,
                 control_start: float = 0.0, control_end: float = 1.0,
                 min_guidance: float = 1.0, max_guidance: float = 3.0):
        self.unet = backbone.unet
        self.dtype = backbone.unet.dtype
        self.num_frames, self.num_steps = num_frames, num_steps
        batch = cond.image_embeddings.shape[0]
        self.cfg = max_guidance > 1
        embeddings, latents, time_ids = cond.image_embeddings, cond.image_latents, cond.added_time_ids
        if self.cfg:
            embeddings = torch.cat([torch.zeros_like(embeddings), embeddings])
            latents = torch.cat([torch.zeros_like(latents), latents])
            time_ids = torch.cat([time_ids, time_ids])
        self.embeddings = embeddings.to(self.dtype)
        self.image_latents = latents.unsqueeze(1).repeat(1, num_frames, 1, 1, 1).to(self.dtype)
        self.time_ids = time_ids.to(self.dtype)
        guidance = torch.linspace(min_guidance, max_guidance, num_frames).unsqueeze(0)
        self.guidance = guidance.to(cond.image_latents.device, torch.float32).repeat(batch, 1)[:, :, None, None, None]

        self.branch = control_branch if (control_branch is not None and control is not None
                                         and control_strength != 0) else None
        self.strength = float(control_strength)
        self.window = (control_start, control_end)
        self.branch_calls = 0
        if self.branch is not None:  # the control was checked by prepare_sampling (checked_control)
            control = control if control.ndim == 5 else control.unsqueeze(0)
            control = normalize_control(control.to(device=self.image_latents.device, dtype=torch.float32))
            control = control.expand(batch, *control.shape[1:])
            features = self.branch.embed_control(control.to(self.branch.dtype))
            self.control_features = torch.cat([features, features]) if self.cfg else features

    def control_active(self, step: int) -> bool:
        start, end = self.window
        return self.branch is not None and start * self.num_steps <= step < end * self.num_steps

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor, step: int) -> torch.Tensor:
        x_in = torch.cat([x] * 2) if self.cfg else x
        x_in = edm_scale_input(x_in, sigma)
        x_in = torch.cat([x_in.to(self.dtype), self.image_latents], dim=2)
        t = edm_noise_level(sigma.log())
        residuals = {}
        if self.control_active(step):
            self.branch_calls += 1
            down, mid = self.branch(x_in, t, self.embeddings, self.time_ids, control_embedding=self.control_features,
                                    conditioning_scale=self.strength, return_dict=False)
            residuals = dict(down_block_additional_residuals=down, mid_block_additional_residual=mid,
                             residual_mode=self.branch.residual_mode)
        v = self.unet(x_in, t, encoder_hidden_states=self.embeddings, added_time_ids=self.time_ids,
                      return_dict=False, **residuals)[0]
        if self.cfg:
            v_uncond, v_cond = v.chunk(2)
            v = v_uncond + self.guidance * (v_cond - v_uncond)
        v = v.float()
        return edm_denoised(v, x, sigma)


# ---------------------------------------------------------------------------- sampler
def sample_euler(denoiser: Callable, x: torch.Tensor, sigmas: torch.Tensor,
                 callback: StepCallback | None = None,
                 project: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """Euler's method on the probability-flow ODE over ``sigmas`` (last one usually 0).

    ``project(k, x)``, if given, is applied after the step that lands on ``sigmas[k]`` (dual-clock denoising
    replaces the held region there: :mod:`interdyn.core.dual_clock`)."""
    total = len(sigmas) - 1
    # the callback's float sigmas, read from the device once (not one host sync per step)
    sigma_values = sigmas.tolist() if callback is not None else None
    for i in range(total):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoiser(x, sigma, i)
        d = (x - denoised) / sigma
        x = x + d * (sigma_next - sigma)
        if project is not None:
            x = project(i + 1, x)
        if callback is not None:
            callback(StepInfo(i, total, sigma_values[i], x, denoised))
    return x


#: |control_strength| above this is refused: ControlNet strengths are O(1) (ComfyUI's widgets stop at 10); at 1e30
#: the residuals overflow float32 and the video is NaN
MAX_CONTROL_STRENGTH = 100.0


def check_sampling_args(*, names: dict | None = None, num_frames=14, num_steps=50, min_guidance=1.0,
                        max_guidance=3.0, fps=7, motion_bucket_id=40, noise_aug_strength=0.02, control_strength=1.0,
                        control_start=0.0, control_end=1.0, generator=None, decode_chunk_size=None, height=None,
                        width=None) -> None:
    """Check the sampler's scalar arguments before anything runs; raise :class:`~interdyn.support.validation.InputError`.

    ``names`` maps the Python names to the caller's (``{"num_frames": "--frames"}`` on the command line,
    a widget name in a node), so messages speak the caller's language.
    """
    n = lambda key: (names or {}).get(key, key)  # noqa: E731
    check_count(num_frames, n("num_frames"))
    check_count(num_steps, n("num_steps"))
    check_guidance(min_guidance, n("min_guidance"))
    check_guidance(max_guidance, n("max_guidance"))
    if check_finite(fps, n("fps")) <= 0:
        raise InputError(f"{n('fps')} must be > 0, got {fps}")
    check_range(motion_bucket_id, n("motion_bucket_id"), low=0)
    check_range(noise_aug_strength, n("noise_aug_strength"), low=0)
    check_range(control_strength, n("control_strength"), -MAX_CONTROL_STRENGTH, MAX_CONTROL_STRENGTH)
    check_range(control_start, n("control_start"), 0, 1)
    check_range(control_end, n("control_end"), 0, 1)
    if control_start > control_end:
        raise InputError(f"{n('control_start')} ({control_start}) must not be after {n('control_end')} ({control_end})")
    for i, g in enumerate(generator if isinstance(generator, (list, tuple)) else [generator]):
        if g is not None and not isinstance(g, torch.Generator):
            check_seed(g, n("generator") + (f"[{i}]" if isinstance(generator, (list, tuple)) else ""))
    if decode_chunk_size is not None:
        check_count(decode_chunk_size, n("decode_chunk_size"))
    check_sampling_bounds(names=names, num_steps=num_steps, fps=fps, motion_bucket_id=motion_bucket_id,
                          noise_aug_strength=noise_aug_strength, min_guidance=min_guidance, max_guidance=max_guidance)
    check_frame_size(height, width, names=(n("height"), n("width")))
    if height is not None and width is not None:
        check_video_size(num_frames, height, width, names=(n("num_frames"), n("height"), n("width")))


def _checked_sigmas(sigmas) -> torch.Tensor | None:
    if sigmas is None:
        return None
    sigmas = torch.as_tensor(sigmas, dtype=torch.float32)
    if sigmas.ndim != 1 or len(sigmas) < 2 or not bool(torch.isfinite(sigmas).all()):
        raise InputError(f"sigmas must be a 1-D list of at least 2 finite noise levels, got {tuple(sigmas.shape)}")
    if bool((sigmas < 0).any()) or not bool((sigmas[1:] < sigmas[:-1]).all()):
        raise InputError(f"sigmas must be noise levels >= 0 in strictly decreasing order (the last may be 0), got "
                         f"{[round(float(v), 4) for v in sigmas[:8]]}{' ...' if len(sigmas) > 8 else ''}")
    return sigmas


def _check_latents(latents) -> None:
    if latents is None:
        return
    if not isinstance(latents, torch.Tensor) or not latents.is_floating_point():
        raise InputError("latents must be a floating-point torch.Tensor of N(0, 1) noise")
    if not bool(torch.isfinite(latents).all()):
        raise InputError("latents contain NaN or infinite values; they are the initial N(0, 1) noise")


def _checked_image(backbone: SVDBackbone, image) -> torch.Tensor:
    """``image`` as ``[B, 3, H, W]`` floats in [0, 1] whose size this backbone can sample."""
    if not isinstance(image, torch.Tensor):
        raise InputError(f"image must be a torch.Tensor [batch, 3, height, width] in [0, 1], got {type(image).__name__}")
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[1] != 3:
        raise InputError(f"image must be [batch, 3, height, width] in [0, 1], got shape {tuple(image.shape)}")
    check_image_tensor(image, "image")
    check_frame_size(*image.shape[-2:], multiple_of=8 * backbone.vae_scale_factor,
                     names=("image height", "image width"),
                     why=f"this backbone's VAE downsamples by {backbone.vae_scale_factor} and its UNet by 8 more; "
                         "resize or crop the image")
    return image


def checked_control(control, *, num_frames: int, batch: int, size: tuple[int, int] | None = None,
                    names: dict | None = None) -> torch.Tensor:
    """Control frames ``[batch or 1, num_frames, 3, H, W]`` in [0, 1] (a 4-D tensor gains the batch axis), the
    size of the video's frames when ``size`` is given; the one check of control tensors (:func:`prepare_sampling`).
    ``names`` maps ``control``, ``num_frames``, ``height`` and ``width`` to the caller's names (``control_hint``:
    what the caller should do about a wrong size or frame count). Raises
    :class:`~interdyn.support.validation.InputError`."""
    n = lambda key: (names or {}).get(key, key)  # noqa: E731
    hint = (names or {}).get("control_hint", "interdyn.core.control.prepare_control fits and resamples it")
    if not isinstance(control, torch.Tensor):
        raise InputError(f"{n('control')} must be a torch.Tensor [batch, frames, 3, height, width], got "
                         f"{type(control).__name__}")
    if control.ndim == 4:
        control = control.unsqueeze(0)
    if control.ndim != 5 or control.shape[2] != 3:
        raise InputError(f"{n('control')} must be control frames [batch, frames, 3, height, width], got shape "
                         f"{tuple(control.shape)} (make them with interdyn.core.control, or the InterDyn Control "
                         "From Masks/Renders node)")
    if size is not None and tuple(control.shape[-2:]) != tuple(size):
        raise InputError(f"{n('control')} is {control.shape[-1]}x{control.shape[-2]} but the video is {size[1]}x{size[0]} "
                         f"({n('width')} x {n('height')}): {hint}")
    if control.shape[1] != num_frames:
        raise InputError(f"{n('control')} has {control.shape[1]} frames but {n('num_frames')} is {num_frames}: {hint}")
    if control.shape[0] not in (1, batch):
        raise InputError(f"{n('control')} batch {control.shape[0]} does not match image batch {batch}")
    check_image_tensor(control, n("control"))
    return control


def _generators(generator, batch: int):
    """An int seed -> a CPU generator; a list -> one generator per video (its length checked)."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != batch:
            raise InputError(f"generator is a list of {len(generator)} but the image batch is {batch}: give "
                             "one generator (or seed) per video")
        return [torch.Generator("cpu").manual_seed(g) if isinstance(g, int) else g for g in generator]
    if isinstance(generator, int):
        return torch.Generator("cpu").manual_seed(generator)
    return generator


@dataclass
class SamplingRequest:
    """A checked sampling request (:func:`prepare_sampling`); :func:`run_sampling` runs it without checking again."""

    image: torch.Tensor
    control: torch.Tensor | None
    control_branch: object
    settings: dict            # num_frames, min/max_guidance, fps, motion_bucket_id, noise_aug_strength, control_*
    generator: object
    latents: torch.Tensor | None
    sigmas: torch.Tensor
    dual_clock: DualClock | None


def prepare_sampling(
    backbone: SVDBackbone,
    image: torch.Tensor,
    control: torch.Tensor | None = None,
    control_branch=None,
    *,
    num_frames: int = 14,
    num_steps: int = 50,
    min_guidance: float = 1.0,
    max_guidance: float = 3.0,
    fps: float = 7,
    motion_bucket_id: float = 40,
    noise_aug_strength: float = 0.02,
    control_strength: float = 1.0,
    control_start: float = 0.0,
    control_end: float = 1.0,
    generator: torch.Generator | int | list | None = None,
    latents: torch.Tensor | None = None,
    sigmas: torch.Tensor | None = None,
    dual_clock: DualClock | None = None,
    names: dict | None = None,
) -> SamplingRequest:
    """Check every argument of :func:`sample_latents` (no model call, nothing computed) and return the request.

    The one check of a sampling request: a front end that must validate before moving the models (a ComfyUI
    node) calls this first and :func:`run_sampling` after. ``names`` maps the Python names to the caller's
    (widgets, flags), so messages speak its language. Raises :class:`~interdyn.support.validation.InputError`.
    """
    n = lambda key: (names or {}).get(key, key)  # noqa: E731
    check_sampling_args(names=names, num_frames=num_frames, num_steps=num_steps if sigmas is None else 1,
                        min_guidance=min_guidance, max_guidance=max_guidance, fps=fps,
                        motion_bucket_id=motion_bucket_id, noise_aug_strength=noise_aug_strength,
                        control_strength=control_strength, control_start=control_start, control_end=control_end,
                        generator=generator)
    sigmas = _checked_sigmas(sigmas)
    _check_latents(latents)
    image = _checked_image(backbone, image)
    height, width = image.shape[-2:]
    if control is not None:
        control = checked_control(control, num_frames=num_frames, batch=image.shape[0], size=(height, width),
                                  names=names)
    if control is not None and control_branch is None and control_strength != 0:
        hint = (names or {}).get("control_branch_hint", "load one with interdyn.core.loading.load_control_branch")
        raise InputError(f"{n('control')} was given but there is no control branch: {hint}, or set "
                         f"{n('control_strength')} to 0")
    if sigmas is None:
        sigmas = karras_sigmas(num_steps, backbone.sigma_min, backbone.sigma_max, backbone.rho)
    if dual_clock is not None:
        dual_clock = check_dual_clock(dual_clock, num_frames=num_frames, batch=image.shape[0], size=(height, width),
                                      sigma_max=float(sigmas[0]), names=names)
    settings = dict(num_frames=num_frames, min_guidance=min_guidance, max_guidance=max_guidance, fps=fps,
                    motion_bucket_id=motion_bucket_id, noise_aug_strength=noise_aug_strength,
                    control_strength=control_strength, control_start=control_start, control_end=control_end)
    return SamplingRequest(image, control, control_branch, settings, _generators(generator, image.shape[0]), latents,
                           sigmas, dual_clock)


@torch.no_grad()
def run_sampling(backbone: SVDBackbone, request: SamplingRequest, callback: StepCallback | None = None,
                 return_denoiser: bool = False):
    """Sample the video latents of a request made by :func:`prepare_sampling` (see :func:`sample_latents`)."""
    image, control, generator, settings = request.image, request.control, request.generator, request.settings
    num_frames = settings["num_frames"]
    height, width = image.shape[-2:]
    device = backbone.device
    cond = encode_conditioning(backbone, image, fps=settings["fps"], motion_bucket_id=settings["motion_bucket_id"],
                               noise_aug_strength=settings["noise_aug_strength"], generator=generator)
    sigmas = request.sigmas.to(device)
    batch = image.shape[0]
    shape = (batch, num_frames, backbone.latent_channels, height // backbone.vae_scale_factor,
             width // backbone.vae_scale_factor)
    latents = request.latents
    if latents is None:
        latents = randn(shape, generator, device)
    elif tuple(latents.shape) != shape:
        raise InputError(f"latents must have shape {shape}, got {tuple(latents.shape)}")
    latents = latents.to(device=device, dtype=torch.float32)

    denoiser = InterDynDenoiser(
        backbone, cond, num_frames, len(sigmas) - 1, control_branch=request.control_branch, control=control,
        control_strength=settings["control_strength"], control_start=settings["control_start"],
        control_end=settings["control_end"], min_guidance=settings["min_guidance"],
        max_guidance=settings["max_guidance"])
    if request.dual_clock is None:
        x = latents * (sigmas[0] ** 2 + 1) ** 0.5
        x = sample_euler(denoiser, x, sigmas, callback)
    else:  # the same noise draw starts the reference's phase and re-noises the held region at every level
        dc = request.dual_clock
        reference = encode_reference(backbone, dc.reference.expand(batch, *dc.reference.shape[1:]).float())
        plan = plan_dual_clock(sigmas, dc, reference, latents, backbone.vae_scale_factor)
        start = plan.start  # steps keep their index in the full schedule (control windows are fractions of it)
        x = sample_euler(lambda x_, sigma, step: denoiser(x_, sigma, step + start), plan.initial(sigmas),
                         sigmas[start:], callback, project=lambda k, x_: plan.project(k + start, x_, sigmas))
    return (x, denoiser) if return_denoiser else x


def sample_latents(
    backbone: SVDBackbone,
    image: torch.Tensor,
    control: torch.Tensor | None = None,
    control_branch=None,
    *,
    num_frames: int = 14,
    num_steps: int = 50,
    min_guidance: float = 1.0,
    max_guidance: float = 3.0,
    fps: float = 7,
    motion_bucket_id: float = 40,
    noise_aug_strength: float = 0.02,
    control_strength: float = 1.0,
    control_start: float = 0.0,
    control_end: float = 1.0,
    generator: torch.Generator | int | list | None = None,
    latents: torch.Tensor | None = None,
    sigmas: torch.Tensor | None = None,
    dual_clock: DualClock | None = None,
    names: dict | None = None,
    callback: StepCallback | None = None,
    return_denoiser: bool = False,
):
    """Sample video latents ``[B, F, C, H/8, W/8]`` (float32, in the VAE's scaled latent space).

    ``image``: first frames ``[B, 3, H, W]`` in [0, 1] (H, W multiples of 64).
    ``control``: control frames ``[B or 1, F, 3, H, W]`` in [0, 1] (see :mod:`interdyn.core.control`).
    ``generator`` (or an int seed) draws, in diffusers' order, the noise augmentation and then
    the initial latents; a list of them (one per video) gives each video of the batch the noise it
    would get alone; pass ``latents`` (plain N(0,1), scaled here by the initial sigma) to
    fix the latter. ``callback`` gets a :class:`StepInfo` after each step; raise from it to cancel.
    ``dual_clock`` (:class:`~interdyn.core.dual_clock.DualClock`): training-free dragging (Time-to-Move's
    dual-clock denoising) from a reference video and its region, alone (no branch) or with the branch; the
    initial latents' noise is then the one noise that noises the reference. ``None``: today's sampler, unchanged.

    Every argument is checked before the first model call (:func:`prepare_sampling`; images and
    control must be floating point, finite, in [0, 1]): a bad one raises
    :class:`~interdyn.support.validation.InputError` naming it (``names``: the caller's names).
    """
    request = prepare_sampling(
        backbone, image, control, control_branch, num_frames=num_frames, num_steps=num_steps,
        min_guidance=min_guidance, max_guidance=max_guidance, fps=fps, motion_bucket_id=motion_bucket_id,
        noise_aug_strength=noise_aug_strength, control_strength=control_strength, control_start=control_start,
        control_end=control_end, generator=generator, latents=latents, sigmas=sigmas, dual_clock=dual_clock,
        names=names)
    return run_sampling(backbone, request, callback, return_denoiser)


@torch.no_grad()
def decode_latents(backbone: SVDBackbone, latents: torch.Tensor, chunk_size: int | None = None,
                   callback: Callable[[int, int], None] | None = None, *, name: str = "latents") -> torch.Tensor:
    """Latents ``[B, F, C, h, w]`` -> frames ``[B, F, 3, H, W]`` float32 in [0, 1].

    Each video is decoded on its own, ``chunk_size`` frames at a time (all by default; smaller
    saves memory at some cost in temporal consistency), each chunk as one clip for the temporal
    decoder. ``callback(done, total)`` is called after each chunk. Latents with a NaN or an infinite value
    are refused (:class:`~interdyn.support.validation.InputError` naming ``name``): they would decode to an
    all-NaN video.
    """
    if not bool(torch.isfinite(latents).all()):
        bad = int((~torch.isfinite(latents)).sum())
        raise InputError(f"{name} holds {bad} NaN or infinite values (of {latents.numel()}): the sampling that made "
                         "them failed; it would decode to a NaN video")
    vae = backbone.vae
    batch, num_frames = latents.shape[:2]
    chunk_size = chunk_size or num_frames
    total, done, videos = batch * num_frames, 0, []
    for video in latents:
        flat = (1 / vae.config.scaling_factor * video).to(device=vae.device, dtype=vae.dtype)
        frames = []
        for start in range(0, num_frames, chunk_size):
            chunk = flat[start:start + chunk_size]
            frames.append(vae.decode(chunk, num_frames=chunk.shape[0]).sample.float())
            done += chunk.shape[0]
            if callback is not None:
                callback(done, total)
        videos.append(torch.cat(frames))
    return (torch.stack(videos) * 0.5 + 0.5).clamp(0, 1)


def generate_video(backbone: SVDBackbone, image: torch.Tensor, control: torch.Tensor | None = None,
                   control_branch=None, *, decode_chunk_size: int | None = None, **kwargs) -> torch.Tensor:
    """Image + control -> video frames ``[B, F, 3, H, W]`` in [0, 1]. See :func:`sample_latents`."""
    if decode_chunk_size is not None:
        check_count(decode_chunk_size, "decode_chunk_size")
    latents = sample_latents(backbone, image, control, control_branch, **kwargs)
    return decode_latents(backbone, latents, decode_chunk_size)
