"""Motion fidelity (InterDyn, eqs. 1-2; the Motion Fidelity score of Yatim et al., CVPR 2024).

Per clip: ``num_points`` (100) query points are drawn on the object's first-frame mask and tracked
through the ground-truth clip (tracklets ``T``, n of them) and the generated clip (``T~``, m of them).
With ``v_k`` and ``v~_k`` the displacement of a tracklet from frame k-1 to frame k (k = 1..F-1),

    corr(tau, tau~) = 1/(F-1) * sum_k  (v_k . v~_k) / (|v_k| |v~_k|)                        (1)

    MF = 1/2 * ( 1/m sum_{tau~ in T~} max_{tau in T} corr(tau, tau~)
               + 1/n sum_{tau in T}  max_{tau~ in T~} corr(tau, tau~) )                     (2)

MF lies in [-1, 1]; identical tracklet sets give exactly 1. The reported score is the mean of the
per-clip MF over the clips that were evaluated.

Choices this implementation makes explicit:

* static steps: a displacement with norm <= ``static_eps`` (1e-6 px by default) is "static". Two static
  displacements have similarity 1 (both agree the point did not move); a static and a moving one
  have similarity 0; otherwise it is the cosine above. The reference code divides by the norm and
  returns NaN for a zero step. Raise ``static_eps`` to treat sub-pixel tracker jitter as static.
* visibility returned by the tracker is not used (the reference does not use it either).
* the reference code (diffusion-motion-transfer ``motion_fidelity_score.py``) evaluates only the
  first term of (2) and subtracts the identity matrix before the max, which only makes sense when
  a video is compared with itself; we implement the paper's symmetric formula.
* query points are pixel centres ``(x = column, y = row)`` of mask pixels, drawn uniformly without
  replacement with ``torch.Generator().manual_seed(seed + clip_index)``; a clip whose first-frame mask
  has fewer than ``num_points`` pixels is skipped and counted in the result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ._video import check_pair
from .tracking import Tracker


@dataclass(frozen=True)
class MotionFidelityResult:
    """``value``: mean MF over evaluated clips (NaN if none); ``per_clip``: MF per clip, None where
    skipped; ``skipped``: indices of clips whose first-frame mask had too few pixels."""

    value: float
    per_clip: list = field(default_factory=list)
    num_evaluated: int = 0
    num_skipped: int = 0
    skipped: list = field(default_factory=list)

    def __float__(self) -> float:
        return float(self.value)


def sample_query_points(mask: torch.Tensor, num_points: int = 100, seed: int = 0) -> torch.Tensor | None:
    """``num_points`` distinct pixel centres ``[P, 2]`` (x, y) inside ``mask`` [H, W], or None if the
    mask has fewer than ``num_points`` pixels."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be [H, W], got {tuple(mask.shape)}")
    mask = mask > 0.5 if mask.is_floating_point() else mask.bool()
    rows, cols = torch.nonzero(mask, as_tuple=True)
    if rows.numel() < num_points:
        return None
    g = torch.Generator().manual_seed(int(seed))
    pick = torch.randperm(rows.numel(), generator=g)[:num_points]
    return torch.stack([cols[pick], rows[pick]], dim=1).float()


def tracklet_correlation(tracks_a: torch.Tensor, tracks_b: torch.Tensor, static_eps: float = 1e-6) -> torch.Tensor:
    """Eq. (1) for every pair: ``[n, m]`` matrix of ``corr(tau_i, tau~_j)`` for tracks ``[F, n, 2]`` and
    ``[F, m, 2]`` (same F), with the static-step rule of the module docstring."""
    if tracks_a.ndim != 3 or tracks_b.ndim != 3 or tracks_a.shape[0] != tracks_b.shape[0] or tracks_a.shape[2] != 2:
        raise ValueError(f"tracks must be [F, P, 2] with the same F, got {tuple(tracks_a.shape)}, {tuple(tracks_b.shape)}")
    if tracks_a.shape[0] < 2:
        raise ValueError("tracks need at least 2 frames to have a displacement")
    va = (tracks_a[1:] - tracks_a[:-1]).double()  # [K, n, 2]
    vb = (tracks_b[1:] - tracks_b[:-1]).double()
    na, nb = va.norm(dim=-1), vb.norm(dim=-1)  # [K, n]
    static_a, static_b = na <= static_eps, nb <= static_eps
    ua = torch.where(static_a[..., None], torch.zeros_like(va), va / na.clamp_min(static_eps)[..., None])
    ub = torch.where(static_b[..., None], torch.zeros_like(vb), vb / nb.clamp_min(static_eps)[..., None])
    sim = torch.einsum("kic,kjc->kij", ua, ub).clamp(-1.0, 1.0)  # moving vs static -> 0
    sim = sim + (static_a[:, :, None] & static_b[:, None, :]).double()  # static vs static -> 1
    return sim.mean(dim=0)


def motion_fidelity_from_tracks(
    reference_tracks: torch.Tensor, generated_tracks: torch.Tensor, static_eps: float = 1e-6
) -> float:
    """Eq. (2) for one clip from ground-truth tracks ``[F, n, 2]`` and generated tracks ``[F, m, 2]``."""
    corr = tracklet_correlation(reference_tracks, generated_tracks, static_eps)  # [n, m]
    generated_term = corr.max(dim=0).values.mean()  # 1/m sum over tau~ of max over tau
    reference_term = corr.max(dim=1).values.mean()  # 1/n sum over tau of max over tau~
    return float(0.5 * (generated_term + reference_term))


def _first_frame_masks(masks: torch.Tensor, n: int, hw: tuple[int, int]) -> torch.Tensor:
    if masks.ndim == 4:  # [N, F, H, W] or [N, 1, H, W]
        masks = masks[:, 0]
    if masks.ndim != 3 or masks.shape[0] != n or tuple(masks.shape[1:]) != tuple(hw):
        raise ValueError(f"masks must be [N, H, W] or [N, F, H, W] matching the clips (N={n}, HxW={hw}), got {tuple(masks.shape)}")
    return masks


def motion_fidelity(
    generated: torch.Tensor,
    reference: torch.Tensor,
    masks: torch.Tensor,
    *,
    tracker: Tracker,
    num_points: int = 100,
    seed: int = 0,
    static_eps: float = 1e-6,
) -> MotionFidelityResult:
    """Motion fidelity of generated clips against ground truth, ``[N, F, 3, H, W]`` float 0..1.

    Args:
        masks: the object's mask in frame 0 of each clip, ``[N, H, W]`` (or ``[N, F, H, W]``, of
            which frame 0 is used); bool, or float thresholded at 0.5.
        tracker: a :class:`.tracking.Tracker`; InterDyn used CoTracker3 (:class:`CoTrackerTracker`),
            :class:`LucasKanadeTracker` needs no weights.
        num_points: query points per clip (100 in the paper); clips whose mask has fewer pixels are
            skipped and counted.

    The same query points are tracked through both clips, starting at frame 0.
    """
    generated, reference = check_pair(generated, reference)
    n = generated.shape[0]
    masks = _first_frame_masks(masks, n, generated.shape[-2:])
    per_clip: list = []
    skipped: list[int] = []
    for i in range(n):
        queries = sample_query_points(masks[i], num_points, seed + i)
        if queries is None:
            per_clip.append(None)
            skipped.append(i)
            continue
        ref_tracks, _ = tracker.track(reference[i], queries)
        gen_tracks, _ = tracker.track(generated[i], queries)
        per_clip.append(motion_fidelity_from_tracks(ref_tracks, gen_tracks, static_eps))
    scores = [s for s in per_clip if s is not None]
    value = sum(scores) / len(scores) if scores else math.nan
    return MotionFidelityResult(value, per_clip, len(scores), len(skipped), skipped)
