"""Per-clip scores and network features, cached on disk keyed by the pixels' hash and the network (a rerun skips
what it finds)."""
from __future__ import annotations

import hashlib
import io
import json
import math
from pathlib import Path

import numpy as np
import torch

from interdyn.metrics import registry, to_uint8
from interdyn.support.safe_output import write_bytes_atomic

from .networks import MetricNetworks
from .settings import CACHE_VERSION

#: the features/ subfolder of the reference clips' features (shared by every method)
REFERENCE = "_reference"


def json_default(o):
    """``json.dumps``' ``default`` for the runner's records: numpy scalars as numbers, paths as strings."""
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _pixel_hash(video: torch.Tensor) -> str:
    """Hash of a clip's uint8 pixels (what every metric sees)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(tuple(video.shape)).encode())
    h.update(to_uint8(video.detach().float().cpu()).numpy().tobytes())
    return h.hexdigest()


def _safe_id(clip_id: str) -> str:
    """A clip id as a file name (ids are folder names already; synthetic ids contain ':' and '/')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in clip_id)


def clip_cache(out_dir: Path, method: str, clip_id: str) -> ClipCache:
    """The cache of one clip: ``out_dir/features/<method>/<id>.npz`` (``method`` :data:`REFERENCE`: the reference
    clip's features)."""
    return ClipCache(Path(out_dir) / "features" / method / f"{_safe_id(clip_id)}.npz")


class ClipCache:
    """``OUT/features/<method>/<id>.npz``: per-clip scores and features, each entry tagged with the
    fingerprint (pixels + network + protocol) it was computed for."""

    def __init__(self, path: Path):
        self.path = path
        self.arrays: dict[str, np.ndarray] = {}
        self.tags: dict[str, str] = {}
        self.record: dict | None = None  # the clip's entry for pooling (see _clip_record), method caches only
        self.dirty = False
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    self.tags = json.loads(str(data["__tags__"]))
                    if "__record__" in data.files:
                        self.record = json.loads(str(data["__record__"]))
                    self.arrays = {k: data[k] for k in data.files if k not in ("__tags__", "__record__")}
            except (OSError, ValueError, KeyError, json.JSONDecodeError):
                self.arrays, self.tags, self.record = {}, {}, None  # unreadable (e.g. an older format): recompute

    def get(self, key: str, tag: str):
        if self.tags.get(key) == tag and key in self.arrays:
            return self.arrays[key]
        return None

    def put(self, key: str, tag: str, value) -> np.ndarray:
        self.arrays[key] = np.asarray(value)
        self.tags[key] = tag
        self.dirty = True
        return self.arrays[key]

    def set_record(self, record: dict) -> None:
        if record != self.record:
            self.record = record
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        buf = io.BytesIO()
        extra = {} if self.record is None else {"__record__": np.asarray(json.dumps(self.record))}
        np.savez(buf, __tags__=np.asarray(json.dumps(self.tags)), **extra, **self.arrays)
        write_bytes_atomic(self.path, buf.getvalue())
        self.dirty = False


def _tag(*parts) -> str:
    return json.dumps([CACHE_VERSION, *parts], default=json_default)


def _compact(features: np.ndarray) -> np.ndarray:
    """Store features as float32 when that is exact (networks output float32), halving the cache."""
    single = features.astype(np.float32)
    return single if np.array_equal(single.astype(features.dtype), features) else features


def clip_scores(cache: ClipCache, generated: torch.Tensor, reference: torch.Tensor, ref_cache: ClipCache,
                nets: MetricNetworks, *, object_mask: torch.Tensor | None, mf_seed: int, mf_points: int,
                sources: dict | None = None) -> dict:
    """Scores and features of one clip, from the cache where the fingerprints match (the clip metrics draw
    ``mf_points`` points on ``object_mask`` with seed ``mf_seed``).

    ``sources`` (optional, filled in): for each returned key, ``(cache, key, tag)`` with cache ``"clip"`` or
    ``"ref"``: where the value lives, so that pooling can read it back (:func:`load_clip_record`)."""
    g_hash, r_hash = _pixel_hash(generated), _pixel_hash(reference)
    pair = (g_hash, r_hash)
    out = {}
    sources = {} if sources is None else sources
    g, r = generated[None], reference[None]

    def lookup(c: ClipCache, key: str, tag: str, name: str, compute):
        value = c.get(key, tag)
        sources[name] = ("clip" if c is cache else "ref", key, tag)
        return value if value is not None else c.put(key, tag, compute())

    for metric in registry.FRAME_METRICS:  # the registry's per-frame metrics: one array of per-frame scores per clip
        net = None if metric.network is None else getattr(nets, metric.network)
        if metric.network is not None and net is None:
            continue
        ids = () if metric.network is None else (nets.ids[metric.network],)
        out[metric.key] = lookup(cache, metric.key, _tag(metric.key, pair, *ids), metric.key,
                                 lambda metric=metric, net=net: metric.score(g, r, net, None)[0].numpy())
    for metric in registry.FEATURE_METRICS:  # features of both videos; the reference's in the reference cache
        name, net = metric.network, getattr(nets, metric.network)
        if net is None:
            continue
        for c, video, h, side in ((cache, generated, g_hash, "gen"), (ref_cache, reference, r_hash, "ref")):
            out[f"{name}_{side}"] = lookup(
                c, name, _tag(name, h, nets.ids[name]), f"{name}_{side}",
                lambda video=video, metric=metric, net=net: _compact(metric.features(net, video,
                                                                                     nets.devices.get(name))))
    mask_hash = None if object_mask is None else hashlib.blake2b(
        object_mask.numpy().tobytes() + str(tuple(object_mask.shape)).encode(), digest_size=16).hexdigest()
    for metric in registry.CLIP_METRICS:  # one score per clip on its object mask (NaN without one)
        key, net = metric.key, getattr(nets, metric.network)
        if net is None:
            continue

        def score(metric=metric, net=net):
            if object_mask is None:
                return np.float64(math.nan)
            return np.float64(metric.score(g, r, object_mask[None], net, num_points=mf_points, seed=mf_seed)[0])

        out[key] = float(lookup(cache, key, _tag(key, pair, nets.ids[metric.network], mask_hash, mf_seed, mf_points),
                                key, score))
    return out


def load_clip_record(out_dir: Path, method: str, clip_id: str) -> dict:
    """A clip's pooling record (id, label, frames, video, scores and features) read back from its cache files.

    Written by whichever rank scored the clip in this run; every value is checked against the fingerprint
    the record names, so a stale or half-written cache is an error, never a silent mix."""
    cache = clip_cache(out_dir, method, clip_id)
    record = cache.record
    if record is None or record.get("id") != clip_id:
        raise RuntimeError(f"{cache.path}: no scores for clip {clip_id!r} of {method}; a process did not finish its "
                           "clips (rerun the same command to complete them)")
    ref_cache = clip_cache(out_dir, REFERENCE, clip_id)
    out = {k: record[k] for k in ("id", "label", "num_frames", "video")}
    clip_keys = {m.key for m in registry.CLIP_METRICS}  # one number per clip
    for name, (where, key, tag) in record["sources"].items():
        value = (cache if where == "clip" else ref_cache).get(key, tag)
        if value is None:
            raise RuntimeError(f"the cached {key} of clip {clip_id!r} ({method}) does not match its record; rerun the "
                               "same command to recompute it")
        out[name] = float(value) if name in clip_keys else value
    return out
