"""Whole-set metrics from the per-clip records (pooled by the registry, as :func:`interdyn.metrics.evaluate_videos`
pools them) and Table S3's motion fidelity per class."""
from __future__ import annotations

import numpy as np

from interdyn.metrics import DistanceResult, MotionFidelityResult, registry

from .networks import MetricNetworks


def pool_scores(records: list[dict], nets: MetricNetworks, *, kid_subsets: int = 100,
                kid_subset_size: int = 1000) -> tuple[dict, dict]:
    """Whole-set metrics from per-clip records, as ``results.json`` keeps them: ``(values, unavailable reasons)``.

    Pooled by :func:`interdyn.metrics.registry.pool`, as :func:`interdyn.metrics.evaluate_videos` pools its clips:
    frame metrics averaged over all frames, FID/KID and FVD/KVD from the features of all clips, MF averaged over the
    clips with an object mask of at least ``mf_points`` pixels. A metric the set is too small for is unavailable,
    with the reason.
    """
    values, missing = registry.pool(records, unavailable=nets.unavailable, kid_subsets=kid_subsets,
                                    kid_subset_size=kid_subset_size)
    return {key: _as_record(value) for key, value in values.items()}, missing


def _as_record(result):
    """A pooled value as ``results.json`` keeps it: a distance with its sizes (the kernel distance with its ``std``),
    a clip metric with the clips it scored and skipped, a frame metric as its number."""
    if isinstance(result, DistanceResult):
        sizes = dict(num_generated=result.num_generated, num_reference=result.num_reference,
                     frames_per_clip=result.frames_per_clip)
        return dict(value=result.value, **sizes) if result.std is None else dict(value=result.value, std=result.std,
                                                                                   **sizes)
    if isinstance(result, MotionFidelityResult):
        return dict(value=result.value, num_evaluated=result.num_evaluated, num_skipped=result.num_skipped,
                    skipped=result.skipped)
    return result


def metric_value(entry):
    """The number of a pooled metric as ``results.json`` keeps it (a plain number, or a record's ``value``), or None."""
    if entry is None:
        return None
    return entry["value"] if isinstance(entry, dict) else entry


def per_class_motion_fidelity(per_clip: dict, methods: list[str]) -> dict:
    """Table S3: ``{label: {"count": clips, "mf": {method: mean MF or None}, "evaluated": {method: n}}}`` (``"mf"``:
    motion fidelity's key in the registry)."""
    key = registry.MOTION_FIDELITY.key
    labels = {}
    for method in methods:
        for clip in per_clip[method].values():
            entry = labels.setdefault(clip["label"], {"ids": set(), "scores": {m: [] for m in methods}})
            entry["ids"].add(clip["id"])
            if clip.get(key) is not None:
                entry["scores"][method].append(clip[key])
    out = {}
    for label in sorted(labels):
        scores = labels[label]["scores"]
        out[label] = {"count": len(labels[label]["ids"]),
                      key: {m: (float(np.mean(s)) if s else None) for m, s in scores.items()},
                      "evaluated": {m: len(s) for m, s in scores.items()}}
    return out
