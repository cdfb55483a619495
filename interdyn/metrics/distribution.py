"""Distribution metrics on frames: FID and unbiased KID, and the feature-space maths they share with
FVD/KVD (:mod:`.video`).

Frames 1..F-1 of every clip (frame 0, the conditioning frame, is excluded) are quantised to uint8
and embedded by an Inception-v3 feature extractor (2048-d pool features). The generated and the
reference frames are treated as two unpaired samples.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.linalg
import torch

from ..support.safe_load import UnreadableFileError, UnsafeFileError, weights_only_torch_load
from ._video import check_videos, frames_after_first, to_uint8
from .weights import INCEPTION_WEIGHTS, find_weights

#: images uint8 [B, 3, H, W] (0..255) -> features [B, D]
FeatureExtractor = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class DistanceResult:
    """A distribution distance and what it was computed on.

    ``value`` is the distance; ``std`` the standard deviation over subsets (KID/KVD only, else None).
    ``num_generated``/``num_reference`` count the samples compared: frames for FID/KID, clips for
    FVD/KVD. ``frames_per_clip`` is the number of frames used from each clip.
    """

    value: float
    num_generated: int
    num_reference: int
    frames_per_clip: int
    std: float | None = None

    def __float__(self) -> float:
        return float(self.value)


# ----------------------------------------------------------------------------------------------
# Feature-space maths


def feature_statistics(features, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``features`` [n, d] in float64.

    ``ddof=1`` is ``np.cov(features, rowvar=False)`` (pytorch-fid, torch-fidelity, torchmetrics FID);
    ``ddof=0`` is the biased covariance StyleGAN-V's FVD uses (``raw_cov/n - outer(mean, mean)``).
    """
    f = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"features must be [n, d], got shape {f.shape}")
    if f.shape[0] <= ddof:
        raise ValueError(f"need more than {ddof} feature vectors for a covariance, got {f.shape[0]}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False, ddof=ddof))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between Gaussians: ``|mu1-mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))``.

    ``sqrt(S1 S2)`` is ``scipy.linalg.sqrtm`` and its real part is kept, as StyleGAN-V and pytorch-fid
    do; if the product is singular enough to make it non-finite, ``1e-6 * I`` is added to both
    covariances first (pytorch-fid's fallback).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"statistics differ in shape: {mu1.shape}/{sigma1.shape} vs {mu2.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def _sqrtm(a: np.ndarray) -> np.ndarray:
    out = scipy.linalg.sqrtm(a)
    return out[0] if isinstance(out, tuple) else out


def kernel_distance(
    features1, features2, *, num_subsets: int = 100, subset_size: int = 1000, seed: int = 2020
) -> tuple[float, float]:
    """Unbiased squared MMD with the polynomial kernel ``k(x, y) = (x.y / d + 1)^3`` (KID, Bińkowski et al.).

    For each of ``num_subsets`` subsets, ``m = min(subset_size, n1, n2)`` rows are drawn without
    replacement from each set and the unbiased estimator
    ``sum_{i!=j} (k(x_i,x_j) + k(y_i,y_j)) / (m(m-1)) - 2 sum_{i,j} k(x_i,y_j) / m^2`` is computed.
    Returns (mean, std) over subsets. Rows are drawn with ``np.random.RandomState(seed)``, first from
    ``features1`` then from ``features2``, exactly as torch-fidelity's ``kid_features_to_metric``
    (whose default seed is 2020), so both draw the same subsets and agree to float precision.
    Values slightly below 0 are valid for samples of one distribution.
    """
    f1 = np.asarray(features1.detach().cpu() if isinstance(features1, torch.Tensor) else features1, np.float64)
    f2 = np.asarray(features2.detach().cpu() if isinstance(features2, torch.Tensor) else features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features must be [n1, d] and [n2, d], got {f1.shape} and {f2.shape}")
    m = min(subset_size, f1.shape[0], f2.shape[0])
    if m < 2:
        raise ValueError(f"the unbiased kernel distance needs at least 2 samples per set, got {f1.shape[0]}, {f2.shape[0]}")
    d = f1.shape[1]
    rng = np.random.RandomState(seed)
    mmds = np.zeros(num_subsets)
    for s in range(num_subsets):
        x = f1[rng.choice(f1.shape[0], m, replace=False)]
        y = f2[rng.choice(f2.shape[0], m, replace=False)]
        k_xx = (x @ x.T / d + 1.0) ** 3
        k_yy = (y @ y.T / d + 1.0) ** 3
        k_xy = (x @ y.T / d + 1.0) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        mmds[s] = within - 2.0 * k_xy.sum() / (m * m)
    return float(mmds.mean()), float(mmds.std())


# ----------------------------------------------------------------------------------------------
# Inception features


class InceptionFeatures(torch.nn.Module):
    """Inception-v3 2048-d pool features as FID defines them (torch-fidelity's TF-exact port).

    Input uint8 images [B, 3, H, W]; torch-fidelity resizes them to 299x299 with TF1-compatible
    bilinear interpolation and normalises to [-1, 1] itself.
    """

    def __init__(self, extractor: torch.nn.Module):
        super().__init__()
        self.extractor = extractor

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.extractor(images)[0].reshape(images.shape[0], -1)


def load_inception(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> InceptionFeatures:
    """The FID Inception-v3 from local weights, never downloading.

    Looks for ``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity / torchmetrics name) or
    ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid name; the same converted TF graph) at
    ``weights`` (file or folder), else in ``$TORCH_HOME/hub/checkpoints/``. Needs ``torch-fidelity``.
    """
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3  # optional (extra "eval")

    path = find_weights(INCEPTION_WEIGHTS, weights, what="FID Inception-v3")
    try:
        with weights_only_torch_load():
            extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                    feature_extractor_weights_path=str(path))
    except (UnreadableFileError, UnsafeFileError) as err:
        raise UnreadableFileError(f"cannot read the FID Inception-v3 weights: {err}") from None
    return InceptionFeatures(extractor).eval().to(device)


@torch.no_grad()
def extract_features(extractor: FeatureExtractor, images: torch.Tensor, batch_size: int, device=None) -> torch.Tensor:
    """Run ``extractor`` over uint8 ``images`` in batches; returns float64 features [n, d] on the CPU."""
    out = []
    for i in range(0, images.shape[0], batch_size):
        batch = images[i : i + batch_size]
        if device is not None:
            batch = batch.to(device)
        f = extractor(batch)
        out.append(torch.as_tensor(f).reshape(batch.shape[0], -1).double().cpu())
    return torch.cat(out)


def _frame_features(videos, extractor, batch_size, device, name):
    videos = check_videos(videos, name)
    if videos.shape[1] < 2:
        raise ValueError(f"{name}: clips need at least 2 frames (frame 0 is excluded)")
    return extract_features(extractor, to_uint8(frames_after_first(videos)), batch_size, device), videos.shape[1] - 1


def _resolve_inception(feature_extractor, inception_weights, device):
    if feature_extractor is not None:
        return feature_extractor
    return load_inception(inception_weights, device=device or "cpu")


def fid(
    generated: torch.Tensor,
    reference: torch.Tensor,
    *,
    feature_extractor: FeatureExtractor | None = None,
    inception_weights: str | os.PathLike | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> DistanceResult:
    """Fréchet Inception Distance between the frames (1..F-1) of generated and reference clips.

    Frames are quantised to uint8 and embedded by ``feature_extractor`` (any callable uint8
    [B,3,H,W] -> [B,D]; default :func:`load_inception` with ``inception_weights``). Statistics use
    the unbiased covariance, ``np.cov(rowvar=False)``, as pytorch-fid, torch-fidelity and
    torchmetrics do. ``num_generated``/``num_reference`` count frames.
    """
    extractor = _resolve_inception(feature_extractor, inception_weights, device)
    fg, frames = _frame_features(generated, extractor, batch_size, device, "generated")
    fr, _ = _frame_features(reference, extractor, batch_size, device, "reference")
    value = frechet_distance(*feature_statistics(fg, ddof=1), *feature_statistics(fr, ddof=1))
    return DistanceResult(value, fg.shape[0], fr.shape[0], frames)


def kid(
    generated: torch.Tensor,
    reference: torch.Tensor,
    *,
    feature_extractor: FeatureExtractor | None = None,
    inception_weights: str | os.PathLike | None = None,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> DistanceResult:
    """Unbiased Kernel Inception Distance between the frames (1..F-1) of generated and reference clips.

    Same features as :func:`fid`; the distance is :func:`kernel_distance` (cubic polynomial kernel,
    gamma 1/d, coef 1, ``num_subsets`` subsets of ``min(subset_size, n_gen, n_ref)`` frames).
    ``value`` is the mean over subsets, ``std`` their standard deviation.
    """
    extractor = _resolve_inception(feature_extractor, inception_weights, device)
    fg, frames = _frame_features(generated, extractor, batch_size, device, "generated")
    fr, _ = _frame_features(reference, extractor, batch_size, device, "reference")
    mean, std = kernel_distance(fg, fr, num_subsets=num_subsets, subset_size=subset_size, seed=seed)
    return DistanceResult(mean, fg.shape[0], fr.shape[0], frames, std=std)
