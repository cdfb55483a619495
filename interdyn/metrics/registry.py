"""Table 1's metrics in one list: the network each needs, how one clip is scored, how clips are pooled, its column.

The evaluation runner (``training/evaluation``: per-clip cache, pooling, results, tables) and
:func:`interdyn.metrics.evaluate_videos` read only these lists (when they run: ``registry.FRAME_METRICS``, not a copy),
so a new metric is its function (in the module of its kind: :mod:`.image`, :mod:`.distribution`, :mod:`.video`,
:mod:`.motion`, ...) plus one entry here. Three kinds:

* :class:`FrameMetric`: scored on every frame after the first; the set's value is the mean over all those frames
  (SSIM, PSNR, LPIPS).
* :class:`FeatureDistances`: a network's features of the generated and the reference videos, pooled over the set,
  then a Frechet and a kernel distance between the two pools (FID/KID on Inception frames, FVD/KVD on I3D clips).
* :class:`ClipMetric`: one score per clip on the clip's object mask (first frame) with seeded sample points, averaged
  over the clips that have one (motion fidelity, with a point tracker).

:func:`pool` is the one place where per-clip scores become the set's values, for both callers.

Networks are named as :class:`training.evaluation.networks.MetricNetworks` names them (``lpips``, ``inception``,
``i3d``, ``tracker``); ``None`` needs none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ._video import frames_after_first, to_uint8
from .distribution import DistanceResult, extract_features, feature_statistics, frechet_distance, kernel_distance
from .image import lpips, psnr, ssim
from .motion import MotionFidelityResult, motion_fidelity
from .video import i3d_features


@dataclass(frozen=True)
class Column:
    """A column of Table 1: the key in the results, the header (with the better direction), the number format."""

    key: str
    header: str
    fmt: str


class TooFewSamples(ValueError):
    """The set is too small for a metric (:func:`pool` reports the reason for that metric and goes on)."""


@dataclass(frozen=True)
class FrameMetric:
    """``score(generated [N,F,3,H,W], reference, net, device) -> [N, F-1]`` per-frame scores; pooled by the mean."""

    column: Column
    score: Callable[..., torch.Tensor]
    network: str | None = None

    @property
    def key(self) -> str:
        return self.column.key

    @property
    def columns(self) -> tuple[Column]:
        return (self.column,)

    @property
    def keys(self) -> tuple[str]:
        return (self.key,)

    def pool(self, records: list[dict], **options) -> dict:
        """The mean over every frame of every clip (each record holds its clip's per-frame scores under :attr:`key`)."""
        return {self.key: float(np.concatenate([r[self.key] for r in records]).astype(np.float64).mean())}


@dataclass(frozen=True)
class FeatureDistances:
    """``features(net, video [F,3,H,W], device) -> np.ndarray``: ``[F-1, D]`` per frame (``per="frame"``, pooled
    by concatenation) or ``[D]`` per clip (``per="clip"``, pooled by stacking); the two distances use the pooled
    features' statistics with ``ddof``."""

    network: str
    frechet: Column
    kernel: Column
    features: Callable[..., np.ndarray]
    per: str
    ddof: int

    @property
    def columns(self) -> tuple[Column, Column]:
        return self.frechet, self.kernel

    @property
    def keys(self) -> tuple[str, str]:
        return self.frechet.key, self.kernel.key

    def stack(self, per_clip: list[np.ndarray]) -> np.ndarray:
        """The set's features from each clip's :attr:`features` (frames concatenated, or clips stacked), float64."""
        return (np.concatenate if self.per == "frame" else np.stack)(per_clip).astype(np.float64)

    def too_few(self, generated: np.ndarray, reference: np.ndarray) -> str | None:
        """Why the pooled features cannot give a covariance (fewer than 2 samples on a side), else None."""
        label = "/".join(k.upper() for k in self.keys)
        if self.per == "frame" and min(generated.shape[0], reference.shape[0]) < 2:
            return f"{label} need at least 2 frames on each side, got {generated.shape[0]}"
        if self.per == "clip" and generated.shape[0] < 2:
            return f"{label} need at least 2 clips, got {generated.shape[0]}"
        return None

    def distances(self, generated: np.ndarray, reference: np.ndarray, *, frames_per_clip: int, kid_subsets: int = 100,
                  kid_subset_size: int = 1000) -> tuple[DistanceResult, DistanceResult]:
        """The Frechet and kernel distances between pooled features (:meth:`stack`), as :mod:`interdyn.metrics`'
        own functions compute them (FID/KID: frames, ``ddof=1``; FVD/KVD: clips, ``ddof=0``)."""
        sizes = (generated.shape[0], reference.shape[0], frames_per_clip)
        frechet = frechet_distance(*feature_statistics(generated, ddof=self.ddof),
                                   *feature_statistics(reference, ddof=self.ddof))
        mean, std = kernel_distance(generated, reference, num_subsets=kid_subsets, subset_size=kid_subset_size)
        return DistanceResult(frechet, *sizes), DistanceResult(mean, *sizes, std=std)

    def pool(self, records: list[dict], *, check_sizes: bool = True, kid_subsets: int = 100,
             kid_subset_size: int = 1000) -> dict:
        """Both distances between the features of all clips (each record holds its clip's under
        ``<network>_gen`` and ``<network>_ref``, and its ``num_frames``)."""
        generated = self.stack([r[f"{self.network}_gen"] for r in records])
        reference = self.stack([r[f"{self.network}_ref"] for r in records])
        reason = self.too_few(generated, reference) if check_sizes else None
        if reason:
            raise TooFewSamples(reason)
        frames = generated.shape[0] // max(len(records), 1) if self.per == "frame" else records[0]["num_frames"]
        frechet, kernel = self.distances(generated, reference, frames_per_clip=frames, kid_subsets=kid_subsets,
                                         kid_subset_size=kid_subset_size)
        return {self.frechet.key: frechet, self.kernel.key: kernel}


@dataclass(frozen=True)
class ClipMetric:
    """``score(generated [N,F,3,H,W], reference, masks [N,H,W], net, *, num_points, seed) -> [N]`` float64: one score
    per clip from ``num_points`` points drawn on its object's first-frame mask (clip ``i`` with seed ``seed + i``),
    NaN where the mask has fewer pixels; the set's value is the mean over the clips that have a score."""

    column: Column
    score: Callable[..., np.ndarray]
    network: str

    @property
    def key(self) -> str:
        return self.column.key

    @property
    def columns(self) -> tuple[Column]:
        return (self.column,)

    @property
    def keys(self) -> tuple[str]:
        return (self.key,)

    def pool(self, records: list[dict], *, check_sizes: bool = True, **options) -> dict:
        """The mean over the clips with a score (each record holds its clip's under :attr:`key`, NaN if skipped),
        with the skipped clips' ``id``; a set where no clip has one is too small."""
        per_clip = [float(r[self.key]) if math.isfinite(r[self.key]) else None for r in records]
        scores = [s for s in per_clip if s is not None]
        skipped = [r["id"] for r, s in zip(records, per_clip) if s is None]
        if check_sizes and not scores:
            raise TooFewSamples("no clip has an object mask (mask_<object>) with enough pixels in its first frame "
                                f"({len(skipped)} clips skipped)")
        value = float(np.mean(scores)) if scores else math.nan
        return {self.key: MotionFidelityResult(value, per_clip, len(scores), len(skipped), skipped)}


def _inception_features(net, video: torch.Tensor, device=None) -> np.ndarray:
    return extract_features(net, to_uint8(frames_after_first(video[None])), batch_size=32, device=device).numpy()


def _i3d_features(net, video: torch.Tensor, device=None) -> np.ndarray:
    return i3d_features(video[None], net, device=device)[0].numpy()


def _motion_fidelity(generated, reference, masks, net, *, num_points: int = 100, seed: int = 0) -> np.ndarray:
    result = motion_fidelity(generated, reference, masks, tracker=net, num_points=num_points, seed=seed)
    return np.array([math.nan if v is None else v for v in result.per_clip], dtype=np.float64)


FRAME_METRICS: tuple[FrameMetric, ...] = (
    FrameMetric(Column("ssim", "SSIM↑", "{:.3f}"), lambda g, r, net, device: ssim(g, r, reduction="none")),
    FrameMetric(Column("psnr", "PSNR↑", "{:.2f}"), lambda g, r, net, device: psnr(g, r, reduction="none")),
    FrameMetric(Column("lpips", "LPIPS↓", "{:.3f}"),
                lambda g, r, net, device: lpips(g, r, net=net, reduction="none", device=device), network="lpips"),
)
FEATURE_METRICS: tuple[FeatureDistances, ...] = (
    FeatureDistances("inception", Column("fid", "FID↓", "{:.2f}"), Column("kid", "KID↓", "{:.3f}"),
                     _inception_features, per="frame", ddof=1),
    FeatureDistances("i3d", Column("fvd", "FVD↓", "{:.2f}"), Column("kvd", "KVD↓", "{:.2f}"),
                     _i3d_features, per="clip", ddof=0),
)
MOTION_FIDELITY = ClipMetric(Column("mf", "MF↑", "{:.3f}"), _motion_fidelity, network="tracker")
CLIP_METRICS: tuple[ClipMetric, ...] = (MOTION_FIDELITY,)


def metrics() -> tuple:
    """Every metric, in Table 1's order: the frame metrics, the feature distances, the clip metrics (read from the
    lists above when called, so that an entry added at run time, e.g. by a test, is there too)."""
    return (*FRAME_METRICS, *FEATURE_METRICS, *CLIP_METRICS)


def columns() -> tuple[Column, ...]:
    """Table 1's columns, in order (see :func:`metrics`)."""
    return tuple(c for m in metrics() for c in m.columns)


def pool(records: list[dict], *, unavailable: dict | None = None, check_sizes: bool = True, kid_subsets: int = 100,
         kid_subset_size: int = 1000) -> tuple[dict, dict]:
    """Every metric's value on the set from per-clip records: ``(values by key, reasons by key)``.

    A record is one clip's ``id``, ``num_frames`` and scores, stored as each kind's :meth:`pool` reads them.
    ``unavailable``: reasons by network name or metric key (a network that could not be loaded); those metrics are
    left out and their keys get the reason. With ``check_sizes`` a set too small for a metric gives its reason
    (:class:`TooFewSamples`) and the others are still pooled; without, the metric's own functions decide (the
    distances raise, a clip metric with no scored clip is NaN).
    """
    values: dict = {}
    missing = dict(unavailable or {})
    for metric in metrics():
        reason = missing.get(metric.network) if metric.network is not None else None
        if reason is not None or any(key in missing for key in metric.keys):
            for key in metric.keys:
                if reason is not None:
                    missing.setdefault(key, reason)
            continue
        try:
            values.update(metric.pool(records, check_sizes=check_sizes, kid_subsets=kid_subsets,
                                      kid_subset_size=kid_subset_size))
        except TooFewSamples as err:
            for key in metric.keys:
                missing[key] = str(err)
    keys = {key for metric in metrics() for key in metric.keys}
    for metric in metrics():  # a network's reason now stands under its metrics' keys
        if metric.network not in keys:
            missing.pop(metric.network, None)
    return values, missing


#: Table 1's columns as shipped
COLUMNS: tuple[Column, ...] = columns()
