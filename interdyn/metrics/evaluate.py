"""One call for all of InterDyn's metrics that the caller has the networks for: every metric of
:mod:`.registry` (the list the evaluation runner reads too), so a metric added there is computed here as well."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch

from . import registry
from .distribution import DistanceResult, FeatureExtractor
from .motion import MotionFidelityResult
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
    averaged over every frame after the first, distances between the features of all clips, clip metrics averaged
    over the clips they score (pooled by :func:`.registry.pool`, as the evaluation runner pools its clips)."""
    nets = {"lpips": lpips_net, "inception": inception, "i3d": i3d, "tracker": tracker, **(networks or {})}
    records = [{"id": i, "num_frames": generated.shape[1]} for i in range(generated.shape[0])]
    absent = {}  # networks not given: their metrics are left out
    for metric in registry.FRAME_METRICS:
        net = nets.get(metric.network) if metric.network is not None else None
        if metric.network is not None and net is None:
            absent[metric.network] = "not given"
            continue
        for record, scores in zip(records, metric.score(generated, reference, net, None)):
            record[metric.key] = scores.detach().cpu().numpy()
    for metric in registry.FEATURE_METRICS:
        net = nets.get(metric.network)
        if net is None:
            absent[metric.network] = "not given"
            continue
        for side, videos in (("gen", generated), ("ref", reference)):
            for record, clip in zip(records, videos):
                record[f"{metric.network}_{side}"] = metric.features(net, clip, None)
    for metric in registry.CLIP_METRICS:
        net = nets.get(metric.network)
        if net is None or masks is None:
            absent[metric.key] = "not given"
            continue
        for record, score in zip(records, metric.score(generated, reference, masks, net)):
            record[metric.key] = score
    scores, _ = registry.pool(records, unavailable=absent, check_sizes=False, kid_subsets=kid_subsets,
                              kid_subset_size=kid_subset_size)
    scores = {RESULT_FIELDS.get(k, k): v for k, v in scores.items()}
    named = {f.name for f in fields(EvaluationResult)} - {"extra"}
    return EvaluationResult(**{k: v for k, v in scores.items() if k in named},
                            extra={k: v for k, v in scores.items() if k not in named})


#: the field of :class:`EvaluationResult` of a registry key where the two differ
RESULT_FIELDS = {registry.MOTION_FIDELITY.key: "motion_fidelity"}
