"""Dual-clock denoising: training-free motion control from a reference video (Time-to-Move).

Time-to-Move (Singer et al., ICLR 2026, arXiv 2511.08633) steers an image-to-video model with a crude
reference animation (:func:`interdyn.data.cut_and_drag.cut_and_drag`: the dragged object cut out of the first
frame and moved along the drive) and the region it moves in. Two noise levels, the paper's two clocks:

* ``sigma_weak`` (the paper's t_weak): sampling starts, for the whole video, from the reference's latents noised
  to this level (``x = x_ref + sigma_weak * n``) instead of from pure noise, skipping the steps above it: the
  whole video inherits the reference's coarse layout;
* ``sigma_strong`` (t_strong, lower): after every step whose new level is still at or above it, the latent
  inside the region is replaced by the reference noised to that new level with the same noise ``n``
  (``x_ref + sigma * n``): the dragged object is held to the reference until then. Below it everything is
  denoised freely, so the model repairs the crude cut-out (edges, lighting, the hole it left).

The region's pixel mask becomes a latent mask of whole cells (a cell is held when more than half of its pixels
are in the region). The reference's latents are the VAE posterior's mode, scaled as the sampler's latents.

Defaults: the authors' settings for Stable Video Diffusion (50 Karras steps from 700 to 0.002, the phases
starting at step 16 and step 21) as noise levels, so that they mean the same with any step count:
:data:`SVD_SIGMA_WEAK` = 74.54 and :data:`SVD_SIGMA_STRONG` = 30.99. A level that falls between two steps of
the schedule in use starts its phase at the first step at or below it.

With InterDyn's branch on (both given to :func:`interdyn.core.sampling.sample_latents`), the region is held to
the reference while the branch conditions every step on the drive, so the rest of the scene can react.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..support.validation import InputError, check_finite, check_image_tensor

__all__ = ["SVD_SIGMA_WEAK", "SVD_SIGMA_STRONG", "DualClock", "DualClockPlan", "check_dual_clock", "check_levels",
           "encode_reference", "latent_region", "plan_dual_clock"]

#: the authors' SVD defaults (step 16 and step 21 of 50 Karras steps, sigma 700 -> 0.002) as noise levels
SVD_SIGMA_WEAK = 74.54460144042969
SVD_SIGMA_STRONG = 30.993608474731445
_LEVEL_TOLERANCE = 1e-5  # relative: a level equal to a schedule entry (up to float32 rounding) is that entry


@dataclass(frozen=True)
class DualClock:
    """What dual-clock sampling needs: the reference video and its region, and the two levels.

    ``reference``: ``[B or 1, F, 3, H, W]`` in [0, 1] (a 4-D ``[F, 3, H, W]`` is one video); ``region``:
    ``[B or 1, F, H, W]`` in [0, 1] (> 0.5 is held). ``sigma_strong <= sigma_weak``, both in
    ``[0, sigma_max]``; ``sigma_strong = 0`` holds the region until the end (it is then the reference's
    latents exactly)."""

    reference: torch.Tensor
    region: torch.Tensor
    sigma_weak: float = SVD_SIGMA_WEAK
    sigma_strong: float = SVD_SIGMA_STRONG


#: the parameter names messages use by default (a node or the command line passes its own)
NAMES = {"reference": "reference", "region": "region", "sigma_weak": "sigma_weak", "sigma_strong": "sigma_strong"}


def check_levels(sigma_weak, sigma_strong, *, sigma_max: float | None = None,
                 names: dict | None = None) -> tuple[float, float]:
    """``(sigma_weak, sigma_strong)`` as floats, checked: finite, ``0 < sigma_weak``, ``0 <= sigma_strong <=
    sigma_weak``, both at most ``sigma_max`` when it is known (a front end checks the levels before loading the
    model, and :func:`check_dual_clock` again against the schedule). Raises
    :class:`~interdyn.support.validation.InputError` naming the caller's parameter (``names``: ``--sigma-weak``)."""
    n = lambda key: {**NAMES, **(names or {})}[key]  # noqa: E731
    weak = check_finite(sigma_weak, n("sigma_weak"))
    strong = check_finite(sigma_strong, n("sigma_strong"))
    for value, key in ((weak, "sigma_weak"), (strong, "sigma_strong")):
        if sigma_max is not None and not 0 <= value <= sigma_max:
            raise InputError(f"{n(key)} must be a noise level in [0, {sigma_max:g}] (the schedule's sigma_max), "
                             f"got {value}")
        if value < 0:
            raise InputError(f"{n(key)} must be a noise level >= 0, got {value}")
    if weak <= 0:
        raise InputError(f"{n('sigma_weak')} must be > 0: sampling starts at that noise level (0 would denoise "
                         "nothing)")
    if strong > weak:
        raise InputError(f"{n('sigma_strong')} ({strong}) must not be above {n('sigma_weak')} ({weak}): the region is "
                         "held to the reference from sigma_weak down to sigma_strong")
    return weak, strong


#: the command line's names of the levels (``interdyn probes``, ``interdyn evaluate``): messages use the caller's names
FLAG_NAMES = {"sigma_weak": "--sigma-weak", "sigma_strong": "--sigma-strong"}


def add_level_flags(parser, what: str) -> None:
    """Add ``--dual-clock`` (its help: ``what`` it adds) and the two levels ``--sigma-weak`` / ``--sigma-strong`` to
    an argparse ``parser``: the same flags in every command; read them with :func:`levels_from_flags`."""
    parser.add_argument("--dual-clock", action="store_true", help=what)
    parser.add_argument("--sigma-weak", type=float, default=None,
                        help="with --dual-clock: the paper's t_weak as a noise level (default: the authors' SVD "
                             f"setting, {SVD_SIGMA_WEAK:.2f})")
    parser.add_argument("--sigma-strong", type=float, default=None,
                        help="with --dual-clock: t_strong as a noise level (default: the authors' SVD setting, "
                             f"{SVD_SIGMA_STRONG:.2f})")


def levels_from_flags(requested: bool, sigma_weak: float | None, sigma_strong: float | None
                      ) -> tuple[float, float] | None:
    """``(sigma_weak, sigma_strong)`` of :func:`add_level_flags`' flags when the dual clock is ``requested`` (the
    authors' SVD levels where a flag is not given), checked by :func:`check_levels` in the flags' names; None when
    it is not, and then a level given alone is refused (it would be silently ignored)."""
    if not requested:
        for key, value in (("sigma_weak", sigma_weak), ("sigma_strong", sigma_strong)):
            if value is not None:
                raise InputError(f"{FLAG_NAMES[key]} needs --dual-clock")
        return None
    return check_levels(SVD_SIGMA_WEAK if sigma_weak is None else sigma_weak,
                        SVD_SIGMA_STRONG if sigma_strong is None else sigma_strong, names=FLAG_NAMES)


def check_dual_clock(dual_clock: DualClock, *, num_frames: int, batch: int, size: tuple[int, int],
                     sigma_max: float, names: dict | None = None) -> DualClock:
    """``dual_clock`` with 5-D reference and 4-D region, checked against the video to make (``num_frames``,
    ``batch``, ``size`` = (H, W)) and the schedule's ``sigma_max``; raises
    :class:`~interdyn.support.validation.InputError` naming the caller's parameter (``names``)."""
    n = lambda key: {**NAMES, **(names or {})}[key]  # noqa: E731
    if not isinstance(dual_clock, DualClock):
        raise InputError(f"dual_clock must be an interdyn.core.dual_clock.DualClock, got {type(dual_clock).__name__}")
    weak, strong = check_levels(dual_clock.sigma_weak, dual_clock.sigma_strong, sigma_max=sigma_max, names=names)
    reference, region = dual_clock.reference, dual_clock.region
    height, width = size
    if not isinstance(reference, torch.Tensor) or not isinstance(region, torch.Tensor):
        raise InputError(f"{n('reference')} and {n('region')} must be torch tensors")
    if reference.ndim == 4:
        reference = reference.unsqueeze(0)
    if region.ndim == 3:
        region = region.unsqueeze(0)
    if reference.ndim != 5 or reference.shape[2] != 3 or tuple(reference.shape[-2:]) != (height, width):
        raise InputError(f"{n('reference')} must be [batch, frames, 3, {height}, {width}] like the video, got shape "
                         f"{tuple(reference.shape)}")
    if region.ndim != 4 or tuple(region.shape[-2:]) != (height, width):
        raise InputError(f"{n('region')} must be [batch, frames, {height}, {width}] like the video, got shape "
                         f"{tuple(region.shape)}")
    for tensor, key in ((reference, "reference"), (region, "region")):
        if tensor.shape[1] != num_frames:
            raise InputError(f"{n(key)} has {tensor.shape[1]} frames but the video has {num_frames}: make the "
                             "reference from a drive of the video's frame count")
        if tensor.shape[0] not in (1, batch):
            raise InputError(f"{n(key)} has a batch of {tensor.shape[0]} but the video batch is {batch}")
    check_image_tensor(reference, n("reference"))
    check_image_tensor(region, n("region"))
    held = region > 0.5
    if not bool(held.any()):
        raise InputError(f"{n('region')} is empty: nothing would be held to the reference (draw or connect the "
                         "dragged object's masks)")
    if bool(held.all()):
        raise InputError(f"{n('region')} covers every pixel of every frame: the whole video would be the reference "
                         "(give the dragged object's masks, not a full frame)")
    return DualClock(reference, region, weak, strong)


def latent_region(region: torch.Tensor, factor: int) -> torch.Tensor:
    """``[B, F, H, W]`` pixel region -> ``[B, F, 1, H/factor, W/factor]`` float 0/1: a latent cell is held when more
    than half of its pixels are (> 0.5)."""
    pooled = F.avg_pool2d((region > 0.5).float().flatten(0, 1)[:, None], factor)
    return (pooled > 0.5).float().reshape(*region.shape[:2], 1, *pooled.shape[-2:])


@torch.no_grad()
def encode_reference(backbone, reference: torch.Tensor) -> torch.Tensor:
    """Reference frames ``[B, F, 3, H, W]`` in [0, 1] -> scaled latents ``[B, F, C, h, w]`` (float32; the VAE
    posterior's mode times its scaling factor, as the sampler's latents)."""
    vae = backbone.vae
    out = []
    for video in reference:
        x = (video * 2.0 - 1.0).to(device=vae.device, dtype=vae.dtype)
        out.append(vae.encode(x).latent_dist.mode().float() * vae.config.scaling_factor)
    return torch.stack(out)


@dataclass
class DualClockPlan:
    """Dual-clock sampling laid over a sigma schedule: start at ``sigmas[start]``; after the step that lands on
    ``sigmas[k]`` (k = step + 1), replace the region while ``k <= last_held``."""

    start: int
    last_held: int
    reference_latents: torch.Tensor  # [B, F, C, h, w]
    region: torch.Tensor             # [B or 1, F, 1, h, w]
    noise: torch.Tensor              # [B, F, C, h, w], the one noise of every re-noising

    def initial(self, sigmas: torch.Tensor) -> torch.Tensor:
        """The starting latents: the reference noised to the first level of the phase."""
        return self.reference_latents + sigmas[self.start] * self.noise

    def project(self, k: int, x: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
        """``x`` after the step that landed on ``sigmas[k]``: the region replaced by the reference at that level
        while the region is held, else ``x`` itself."""
        if k > self.last_held:
            return x
        held = self.reference_latents + sigmas[k] * self.noise
        return x * (1 - self.region) + held * self.region


def plan_dual_clock(sigmas: torch.Tensor, dual_clock: DualClock, reference_latents: torch.Tensor,
                    noise: torch.Tensor, factor: int) -> DualClockPlan:
    """Where the two phases fall on ``sigmas`` (decreasing, last 0): the start is the first level at or below
    ``sigma_weak``; the region is held after every step landing on a level at or above ``sigma_strong``
    (every step, the last one onto 0 included, when ``sigma_strong`` is 0)."""
    levels = sigmas.double().cpu()
    weak = dual_clock.sigma_weak * (1 + _LEVEL_TOLERANCE)
    strong = dual_clock.sigma_strong * (1 - _LEVEL_TOLERANCE)
    start = int(torch.nonzero(levels <= weak).flatten()[0])
    at_or_above = torch.nonzero(levels >= strong).flatten()
    last_held = int(at_or_above[-1]) if len(at_or_above) else -1
    region = latent_region(dual_clock.region, factor).to(reference_latents.device)
    return DualClockPlan(start, last_held, reference_latents, region, noise)
