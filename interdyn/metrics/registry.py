"""Table 1's metrics in one list: the network each needs, how one clip is scored, how clips are pooled, its column.

The evaluation runner (``training/evaluation``: per-clip cache, pooling, results, tables) reads only this list (when
it runs: ``registry.FRAME_METRICS``, not a copy), so a new metric is its function (in the module of its kind: :mod:`.image`, :mod:`.distribution`, :mod:`.video`, ...) plus
one entry here. Three kinds:

* :class:`FrameMetric`: scored on every frame after the first; the set's value is the mean over all those frames
  (SSIM, PSNR, LPIPS).
* :class:`FeatureDistances`: a network's features of the generated and the reference videos, pooled over the set,
  then a Frechet and a kernel distance between the two pools (FID/KID on Inception frames, FVD/KVD on I3D clips).
* :data:`MOTION_FIDELITY`: scored per clip on its object mask with a point tracker, averaged over the clips that
  have one (its scoring needs the masks and the tracker's seeds, so the runner calls it by name).

Networks are named as :class:`training.evaluation.networks.MetricNetworks` names them (``lpips``, ``inception``,
``i3d``, ``tracker``); ``None`` needs none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ._video import frames_after_first, to_uint8
from .distribution import DistanceResult, extract_features, feature_statistics, frechet_distance, kernel_distance
from .image import lpips, psnr, ssim
from .video import i3d_features


@dataclass(frozen=True)
class Column:
    """A column of Table 1: the key in the results, the header (with the better direction), the number format."""

    key: str
    header: str
    fmt: str


@dataclass(frozen=True)
class FrameMetric:
    """``score(generated [N,F,3,H,W], reference, net, device) -> [N, F-1]`` per-frame scores; pooled by the mean."""

    column: Column
    score: Callable[..., torch.Tensor]
    network: str | None = None

    @property
    def key(self) -> str:
        return self.column.key


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
    def keys(self) -> tuple[str, str]:
        return self.frechet.key, self.kernel.key

    def pool(self, per_clip: list[np.ndarray]) -> np.ndarray:
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
        """The Frechet and kernel distances between pooled features (:meth:`pool`), as :mod:`interdyn.metrics`'
        own functions compute them (FID/KID: frames, ``ddof=1``; FVD/KVD: clips, ``ddof=0``)."""
        sizes = (generated.shape[0], reference.shape[0], frames_per_clip)
        frechet = frechet_distance(*feature_statistics(generated, ddof=self.ddof),
                                   *feature_statistics(reference, ddof=self.ddof))
        mean, std = kernel_distance(generated, reference, num_subsets=kid_subsets, subset_size=kid_subset_size)
        return DistanceResult(frechet, *sizes), DistanceResult(mean, *sizes, std=std)


def _inception_features(net, video: torch.Tensor, device=None) -> np.ndarray:
    return extract_features(net, to_uint8(frames_after_first(video[None])), batch_size=32, device=device).numpy()


def _i3d_features(net, video: torch.Tensor, device=None) -> np.ndarray:
    return i3d_features(video[None], net, device=device)[0].numpy()


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
MOTION_FIDELITY = Column("mf", "MF↑", "{:.3f}")



def columns() -> tuple[Column, ...]:
    """Table 1's columns, in order: the frame metrics, the feature distances, motion fidelity (read from the lists
    above when called, so that an entry added at run time, e.g. by a test, has its column too)."""
    return (*(m.column for m in FRAME_METRICS), *(c for m in FEATURE_METRICS for c in (m.frechet, m.kernel)),
            MOTION_FIDELITY)


#: Table 1's columns as shipped
COLUMNS: tuple[Column, ...] = columns()
