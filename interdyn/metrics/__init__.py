"""InterDyn's evaluation metrics: SSIM, PSNR, LPIPS, FID, KID, FVD, KVD and motion fidelity.

Videos are float tensors ``[N, F, 3, H, W]`` in [0, 1] (N clips of F frames). Frame-wise metrics
(SSIM, PSNR, LPIPS, FID, KID) exclude frame 0, the conditioning frame. Pretrained networks are
read from local files only (see :mod:`.weights`); every network can also be injected.
"""
from ._video import to_uint8
from .distribution import (
    DistanceResult,
    InceptionFeatures,
    feature_statistics,
    fid,
    frechet_distance,
    kernel_distance,
    kid,
    load_inception,
)
from .evaluate import EvaluationResult, evaluate_videos
from .image import load_lpips, lpips, psnr, ssim
from .motion import (
    MotionFidelityResult,
    motion_fidelity,
    motion_fidelity_from_tracks,
    sample_query_points,
    tracklet_correlation,
)
from .tracking import CoTrackerTracker, LucasKanadeTracker, Tracker
from .video import UntrustedWeightsError, fvd, i3d_features, kvd, load_i3d
from .weights import (ALEXNET_WEIGHTS, I3D_SHA256, I3D_WEIGHTS, INCEPTION_WEIGHTS, find_weights, hub_checkpoint_dir,
                      sha256_of)

__all__ = [
    "ALEXNET_WEIGHTS",
    "CoTrackerTracker",
    "DistanceResult",
    "EvaluationResult",
    "I3D_WEIGHTS",
    "INCEPTION_WEIGHTS",
    "InceptionFeatures",
    "LucasKanadeTracker",
    "MotionFidelityResult",
    "Tracker",
    "evaluate_videos",
    "feature_statistics",
    "fid",
    "find_weights",
    "I3D_SHA256",
    "sha256_of",
    "UntrustedWeightsError",
    "frechet_distance",
    "fvd",
    "hub_checkpoint_dir",
    "i3d_features",
    "kernel_distance",
    "kid",
    "kvd",
    "load_i3d",
    "load_inception",
    "load_lpips",
    "lpips",
    "motion_fidelity",
    "motion_fidelity_from_tracks",
    "psnr",
    "sample_query_points",
    "ssim",
    "to_uint8",
    "tracklet_correlation",
]
