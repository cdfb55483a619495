"""One call for all of InterDyn's metrics that the caller has the networks for: every metric of
:mod:`.registry` (the list the evaluation runner reads too), so a metric added there is computed here as well."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch

from . import registry
from .distribution import DistanceResult, FeatureExtractor
from .motion import MotionFidelityResult, motion_fidelity
from .tracking import Tracker
from .video import VideoDetector


@dataclass
class EvaluationResult:
    """Scores of one evaluation; a metric whose network was not supplied is None. ``extra``: the scores of metrics
    registered in :mod:`.registry` beyond the shipped ones, by their key."""

    ssim: float
    psnr: float
    lpips: float | None = None
    fid: DistanceResult | None = None
    kid: DistanceResult | None = None
    fvd: DistanceResult | None = None
    kvd: DistanceResult | None = None
    motion_fidelity: MotionFidelityResult | None = None
    extra: dict = field(default_factory=dict)

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
    networks: dict | None = None,
) -> EvaluationResult:
    """SSIM and PSNR always; LPIPS with ``lpips_net`` (e.g. :func:`.image.load_lpips`), FID and KID with
    ``inception`` (e.g. :func:`.distribution.load_inception`), FVD and KVD with ``i3d`` (e.g.
    :func:`.video.load_i3d`), motion fidelity with ``masks`` and ``tracker``; ``networks`` adds networks by the
    name a registered metric asks for. Each metric is computed as :mod:`.registry` defines it: frame metrics
    averaged over every frame after the first, distances between the features of all clips."""
    nets = {"lpips": lpips_net, "inception": inception, "i3d": i3d, **(networks or {})}
    scores: dict = {}
    for metric in registry.FRAME_METRICS:
        net = nets.get(metric.network) if metric.network is not None else None
        if metric.network is None or net is not None:
            scores[metric.key] = float(metric.score(generated, reference, net, None).double().mean())
    for metric in registry.FEATURE_METRICS:
        net = nets.get(metric.network)
        if net is None:
            continue
        fg = metric.pool([metric.features(net, clip, None) for clip in generated])
        fr = metric.pool([metric.features(net, clip, None) for clip in reference])
        frames = fg.shape[0] // len(generated) if metric.per == "frame" else generated.shape[1]
        scores[metric.frechet.key], scores[metric.kernel.key] = metric.distances(
            fg, fr, frames_per_clip=frames, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
    if masks is not None and tracker is not None:
        scores["motion_fidelity"] = motion_fidelity(generated, reference, masks, tracker=tracker)
    named = {f.name for f in fields(EvaluationResult)} - {"extra"}
    return EvaluationResult(**{k: v for k, v in scores.items() if k in named},
                            extra={k: v for k, v in scores.items() if k not in named})
