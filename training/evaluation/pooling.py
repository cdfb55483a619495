"""Whole-set metrics from the per-clip records, pooled as :func:`interdyn.metrics.evaluate_videos` pools them."""
from __future__ import annotations

import math

import numpy as np

from interdyn.metrics import registry

from .networks import MetricNetworks


def pool_scores(records: list[dict], nets: MetricNetworks, *, kid_subsets: int = 100,
                kid_subset_size: int = 1000) -> tuple[dict, dict]:
    """Whole-set metrics from per-clip records: ``(values, unavailable reasons)``.

    Pooled as :func:`interdyn.metrics.evaluate_videos` pools them: frame metrics averaged over all
    frames, FID/KID and FVD/KVD from the features of all clips, MF averaged over the clips with an
    object mask of at least ``mf_points`` pixels.
    """
    values: dict = {}
    missing = dict(nets.unavailable or {})
    n = len(records)
    for metric in registry.FRAME_METRICS:  # the mean over every frame of every clip
        if metric.key in missing or (metric.network is not None and metric.network in missing):
            continue
        values[metric.key] = float(np.concatenate([r[metric.key] for r in records]).astype(np.float64).mean())
    for metric in registry.FEATURE_METRICS:  # distances between the pooled features
        name = metric.network
        if name in missing:
            for key in metric.keys:
                missing.setdefault(key, missing[name])
            continue
        fg = metric.pool([r[f"{name}_gen"] for r in records])
        fr = metric.pool([r[f"{name}_ref"] for r in records])
        reason = metric.too_few(fg, fr)
        if reason:
            for key in metric.keys:
                missing[key] = reason
            continue
        frames = fg.shape[0] // max(n, 1) if metric.per == "frame" else records[0]["num_frames"]
        frechet, kernel = metric.distances(fg, fr, frames_per_clip=frames, kid_subsets=kid_subsets,
                                           kid_subset_size=kid_subset_size)
        values[metric.frechet.key], values[metric.kernel.key] = _as_record(frechet), _as_record(kernel)
    for metric in registry.FEATURE_METRICS:
        missing.pop(metric.network, None)
    if "mf" not in missing:
        scores = [r["mf"] for r in records if math.isfinite(r["mf"])]
        skipped = [r["id"] for r in records if not math.isfinite(r["mf"])]
        if scores:
            values["mf"] = dict(value=float(np.mean(scores)), num_evaluated=len(scores), num_skipped=len(skipped),
                                skipped=skipped)
        else:
            missing["mf"] = ("no clip has an object mask (mask_<object>) with enough pixels in its first frame "
                             f"({len(skipped)} clips skipped)")
    return values, missing


def _as_record(result) -> dict:
    """A distance as ``results.json`` keeps it (the kernel distance with its ``std``)."""
    sizes = dict(num_generated=result.num_generated, num_reference=result.num_reference,
                 frames_per_clip=result.frames_per_clip)
    return dict(value=result.value, **sizes) if result.std is None else dict(value=result.value, std=result.std, **sizes)


def metric_value(entry):
    """The number of a pooled metric as ``results.json`` keeps it (a plain number, or a record's ``value``), or None."""
    if entry is None:
        return None
    return entry["value"] if isinstance(entry, dict) else entry


def per_class_motion_fidelity(per_clip: dict, methods: list[str]) -> dict:
    """``{label: {"count": clips, "mf": {method: mean MF or None}, "evaluated": {method: n}}}``."""
    labels = {}
    for method in methods:
        for clip in per_clip[method].values():
            entry = labels.setdefault(clip["label"], {"ids": set(), "scores": {m: [] for m in methods}})
            entry["ids"].add(clip["id"])
            if clip.get("mf") is not None:
                entry["scores"][method].append(clip["mf"])
    out = {}
    for label in sorted(labels):
        scores = labels[label]["scores"]
        out[label] = {"count": len(labels[label]["ids"]),
                      "mf": {m: (float(np.mean(s)) if s else None) for m, s in scores.items()},
                      "evaluated": {m: len(s) for m, s in scores.items()}}
    return out
