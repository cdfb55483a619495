"""One call for all of InterDyn's metrics that the caller has the networks for."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .distribution import DistanceResult, FeatureExtractor, fid, kid
from .image import lpips, psnr, ssim
from .motion import MotionFidelityResult, motion_fidelity
from .tracking import Tracker
from .video import VideoDetector, fvd, kvd


@dataclass
class EvaluationResult:
    """Scores of one evaluation; a metric whose network was not supplied is None."""

    ssim: float
    psnr: float
    lpips: float | None = None
    fid: DistanceResult | None = None
    kid: DistanceResult | None = None
    fvd: DistanceResult | None = None
    kvd: DistanceResult | None = None
    motion_fidelity: MotionFidelityResult | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_videos(
    generated: torch.Tensor,
    reference: torch.Tensor,
    *,
    lpips_net=None,
    inception: FeatureExtractor | None = None,
    i3d: VideoDetector | None = None,
    masks: torch.Tensor | None = None,
    tracker: Tracker | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
) -> EvaluationResult:
    """SSIM and PSNR always; LPIPS with ``lpips_net`` (e.g. :func:`.image.load_lpips`), FID and KID with
    ``inception`` (e.g. :func:`.distribution.load_inception`), FVD and KVD with ``i3d`` (e.g.
    :func:`.video.load_i3d`), motion fidelity with ``masks`` and ``tracker``. Each metric uses the
    defaults of its own function."""
    result = EvaluationResult(ssim=ssim(generated, reference), psnr=psnr(generated, reference))
    if lpips_net is not None:
        result.lpips = lpips(generated, reference, net=lpips_net)
    if inception is not None:
        result.fid = fid(generated, reference, feature_extractor=inception)
        result.kid = kid(generated, reference, feature_extractor=inception, num_subsets=kid_subsets, subset_size=kid_subset_size)
    if i3d is not None:
        result.fvd = fvd(generated, reference, detector=i3d)
        result.kvd = kvd(generated, reference, detector=i3d, num_subsets=kid_subsets, subset_size=kid_subset_size)
    if masks is not None and tracker is not None:
        result.motion_fidelity = motion_fidelity(generated, reference, masks, tracker=tracker)
    return result
