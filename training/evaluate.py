"""Evaluate InterDyn and its baselines as the paper does (Table 1 and Table S3).

    python -m training.evaluate --data ROOT --svd SVD_DIR --interdyn WEIGHTS --out OUT \\
        --methods interdyn,no_control,copy_first_frame \\
        --lpips-alexnet DIR --inception DIR --i3d DIR [--cotracker-code DIR --cotracker-checkpoint FILE]

    python -m training.evaluate --data ROOT --generated NAME=DIR --out OUT ...   # score existing videos

``ROOT`` is the generic clip layout (``ROOT/<id>/video.mp4``, ``mask_hand.mp4``, ``mask_<object>.mp4``),
read through :class:`training.data.folder.FolderClips` with a deterministic start frame. Each method's
videos go to ``OUT/generated/<method>/<id>/generated.mp4`` (lossless, so metrics read back exactly what
was generated; the same layout ``--generated`` reads), each clip's scores and network features to
``OUT/features/<method>/<id>.npz``; a rerun skips every video and feature it finds (features are
keyed by a hash of the pixels they were computed from and of the network that computed them).
Results: ``OUT/results.json``, ``OUT/table1.md`` (methods x SSIM, PSNR, LPIPS, FID, KID, FVD, KVD, MF)
and ``OUT/table_s3.md`` (motion fidelity per action class). Every file is written atomically.

Several processes: launch the same command with ``torchrun --nproc_per_node N`` (or ``accelerate launch``,
``--nnodes`` for several machines; see docs/scale.md). Each rank generates and scores every N-th clip into the
same per-clip files, then rank 0 pools the whole set and writes the tables once; the results do not depend on N
(the sampling seed is the same for every clip, the motion-fidelity seed comes from the clip's place in the
sorted list). A killed run loses at most the clips in flight; rerun with any N to finish. A second run on the
same ``OUT`` at the same time is refused (:class:`interdyn.distributed.OutputLock`).

Metric protocol (see :mod:`interdyn.metrics`): frame metrics and FID/KID on frames 1..F-1, FVD/KVD
on whole clips (StyleGAN-V), all pooled over the whole set exactly as
:func:`interdyn.metrics.evaluate_videos` would on the stacked clips; motion fidelity on 100 points of
the first-frame object masks (union of the clip's ``mask_<object>``), LK tracker unless CoTracker is
given. A metric whose network is missing is reported as unavailable, with the reason.

Methods: ``interdyn`` (control branch at strength 1), ``no_control`` (the same sampler and seed with
control strength 0: plain SVD), ``copy_first_frame``, ``coshand_independent`` and
``coshand_autoregressive`` (:mod:`training.baselines`, around the ``--coshand`` transition model),
plus any ``--generated`` folders.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from interdyn.metrics import LucasKanadeTracker, motion_fidelity, psnr, ssim
from interdyn.metrics import lpips as lpips_metric
from interdyn.metrics._video import frames_after_first, to_uint8
from interdyn.metrics.distribution import extract_features, feature_statistics, frechet_distance, kernel_distance
from interdyn.metrics.video import i3d_features
from interdyn.sampling import DEFAULTS, check_sampling_args, generate_video
from interdyn import distributed
from interdyn.safe_output import check_output_folder, claim_output_folder, write_bytes_atomic
from interdyn.validation import check_count
from interdyn.video_io import VIDEO_EXTENSIONS, read_video, write_video

from . import baselines

#: methods this runner can produce itself
METHODS = ("interdyn", "no_control", "copy_first_frame", "coshand_independent", "coshand_autoregressive")
DEFAULT_METHODS = ("interdyn", "no_control", "copy_first_frame")
DISPLAY_NAMES = {
    "interdyn": "InterDyn",
    "no_control": "SVD (no control)",
    "copy_first_frame": "Copy first frame",
    "coshand_independent": "CosHand-Independent",
    "coshand_autoregressive": "CosHand-Autoregressive",
}
#: Table 1's columns: (key in results, header, format)
TABLE1_COLUMNS = (
    ("ssim", "SSIM↑", "{:.3f}"),
    ("psnr", "PSNR↑", "{:.2f}"),
    ("lpips", "LPIPS↓", "{:.3f}"),
    ("fid", "FID↓", "{:.2f}"),
    ("kid", "KID↓", "{:.3f}"),
    ("fvd", "FVD↓", "{:.2f}"),
    ("kvd", "KVD↓", "{:.2f}"),
    ("mf", "MF↑", "{:.3f}"),
)
METRICS = tuple(c[0] for c in TABLE1_COLUMNS)
GENERATED_NAME = "generated"  # <dir>/<id>/generated.<ext>
CACHE_VERSION = 1


# ---------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class GenerationSettings:
    """How clips are read and videos generated; the paper's values by default.

    ``fps`` is the conditioning frame rate in diffusers' convention (the model gets ``fps - 1``);
    ``clip_fps`` the real frame rate the data clips are resampled to (6, as the official loader).
    Every clip is generated with the same ``seed``.
    """

    num_frames: int = DEFAULTS["num_frames"]
    height: int = DEFAULTS["height"]
    width: int = DEFAULTS["width"]
    num_steps: int = DEFAULTS["num_steps"]
    min_guidance: float = DEFAULTS["min_guidance"]
    max_guidance: float = DEFAULTS["max_guidance"]
    fps: float = DEFAULTS["fps"]
    motion_bucket_id: float = DEFAULTS["motion_bucket_id"]
    noise_aug_strength: float = DEFAULTS["noise_aug_strength"]
    seed: int = 42
    clip_fps: float = 6.0
    crop: str = "mask"

    def sampler_kwargs(self) -> dict:
        return dict(num_frames=self.num_frames, num_steps=self.num_steps, min_guidance=self.min_guidance,
                    max_guidance=self.max_guidance, fps=self.fps, motion_bucket_id=self.motion_bucket_id,
                    noise_aug_strength=self.noise_aug_strength)

    def for_method(self, method: str, extra: dict | None = None) -> dict:
        """What a method's cached videos depend on (compared on resume)."""
        data = dict(num_frames=self.num_frames, height=self.height, width=self.width, clip_fps=self.clip_fps,
                    crop=self.crop)
        if method in ("interdyn", "no_control"):
            data.update(self.sampler_kwargs(), seed=self.seed)
        elif method.startswith("coshand"):
            data.update(seed=self.seed)
        return {"method": method, **data, **(extra or {})}


# ---------------------------------------------------------------------------- small utilities
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    write_bytes_atomic(path, data)


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _finite_or_none(x):
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _pixel_hash(video: torch.Tensor) -> str:
    """Hash of a clip's uint8 pixels (what every metric sees)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(tuple(video.shape)).encode())
    h.update(to_uint8(video.detach().float().cpu()).numpy().tobytes())
    return h.hexdigest()


def _safe_id(clip_id: str) -> str:
    """A clip id as a file name (ids are folder names already; synthetic ids contain ':' and '/')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in clip_id)


def _network_id(net) -> str:
    """Name of an injected network, for cache fingerprints."""
    return f"object:{type(net).__module__}.{type(net).__qualname__}"


# ---------------------------------------------------------------------------- metric networks
@dataclass
class MetricNetworks:
    """The networks the metrics need, each None when unavailable (with the reason in ``unavailable``).

    ``ids`` names each network (weights file or injected class) so cached features are only reused
    for the same network.
    """

    lpips: object = None
    inception: object = None
    i3d: object = None
    tracker: object = None
    tracker_name: str = ""
    unavailable: dict | None = None
    ids: dict | None = None
    devices: dict | None = None  # where to send inputs: the device for loaded networks, None (as given) for injected


def resolve_networks(*, lpips_net=None, lpips_alexnet=None, inception=None, inception_weights=None, i3d=None,
                     i3d_weights=None, tracker=None, cotracker_checkpoint=None, cotracker_code=None,
                     device: str | torch.device = "cpu", trust_i3d: bool = False) -> MetricNetworks:
    """Injected networks win; otherwise load each from the given path or the torch hub folder.

    Nothing is downloaded. A network that cannot be loaded makes its metrics unavailable, and the
    reason (the loader's error: which file, where it was looked for) is kept for the report.
    """
    from interdyn.metrics import (ALEXNET_WEIGHTS, I3D_WEIGHTS, INCEPTION_WEIGHTS, find_weights, load_i3d,
                                  load_inception, load_lpips)

    nets = MetricNetworks(unavailable={}, ids={}, devices={})

    def attempt(name, loader, filenames, path, what):
        try:
            found = find_weights(filenames, path, what=what)
            net = loader(found, device=device)
        except (FileNotFoundError, ImportError, OSError, RuntimeError, ValueError) as err:
            nets.unavailable[name] = f"{type(err).__name__}: {err}"
            return None
        nets.ids[name] = f"file:{Path(found).resolve()}"
        nets.devices[name] = device
        return net

    if lpips_net is not None:
        nets.lpips, nets.ids["lpips"] = lpips_net, _network_id(lpips_net)
    else:
        nets.lpips = attempt("lpips", load_lpips, ALEXNET_WEIGHTS, lpips_alexnet, "LPIPS AlexNet backbone")
    if inception is not None:
        nets.inception, nets.ids["inception"] = inception, _network_id(inception)
    else:
        nets.inception = attempt("inception", load_inception, INCEPTION_WEIGHTS, inception_weights, "FID Inception-v3")
    if i3d is not None:
        nets.i3d, nets.ids["i3d"] = i3d, _network_id(i3d)
    else:
        nets.i3d = attempt("i3d", lambda path, device: load_i3d(path, device=device, trust=trust_i3d), I3D_WEIGHTS,
                           i3d_weights, "FVD I3D (TorchScript)")

    if tracker is not None:
        nets.tracker, nets.tracker_name = tracker, type(tracker).__name__
    elif cotracker_checkpoint is not None:
        from interdyn.metrics import CoTrackerTracker

        if cotracker_code is not None and str(cotracker_code) not in sys.path:
            sys.path.insert(0, str(Path(cotracker_code).expanduser()))
        try:
            nets.tracker = CoTrackerTracker(cotracker_checkpoint, device=device)
            nets.tracker_name = f"CoTracker ({Path(cotracker_checkpoint).name})"
        except (FileNotFoundError, ImportError, OSError, RuntimeError, ValueError) as err:
            nets.unavailable["mf"] = f"{type(err).__name__}: {err}"
    else:
        nets.tracker, nets.tracker_name = LucasKanadeTracker(), "LucasKanadeTracker (OpenCV; the paper used CoTracker3)"
    if nets.tracker is not None:
        nets.ids["tracker"] = (f"file:{Path(cotracker_checkpoint).resolve()}" if cotracker_checkpoint and tracker is None
                               else _network_id(nets.tracker))
    return nets


# ---------------------------------------------------------------------------- data
def open_dataset(data_root, settings: GenerationSettings):
    """The clips of ``data_root`` (:class:`training.data.folder.FolderClips`), each starting at its first frame.

    Training draws a random start frame per clip; evaluation must see the same frames every run and
    for every method, so the clip starts at source frame 0 and is resampled to ``settings.clip_fps``.
    """
    from interdyn.control import resample_frame_indices

    from .data.folder import FolderClips

    class EvaluationClips(FolderClips):
        def frame_indices(self, index: int, epoch: int) -> list[int]:
            e = self.entries[index]
            return resample_frame_indices(e.num_frames, e.fps, self.fps, self.num_frames, 0)

    return EvaluationClips(data_root, num_frames=settings.num_frames, height=settings.height, width=settings.width,
                           fps=settings.clip_fps, crop=settings.crop)


def _clip_ids(dataset) -> list[str]:
    """Clip ids in dataset order: ``dataset.entries[i].id`` (FolderClips) or each sample's ``meta["source"]``."""
    entries = getattr(dataset, "entries", None)
    if entries is not None:
        return [str(e.id) for e in entries]
    return [str(dataset[i]["meta"]["source"]) for i in range(len(dataset))]


def _object_mask(meta: dict) -> torch.Tensor | None:
    """Union of the first-frame masks of the scene's objects (not the hand / driven objects), or None."""
    masks = meta.get("masks") or {}
    driven = set(meta.get("driven") or ()) | {"hand"}
    objects = [m[0].bool() for name, m in masks.items() if name not in driven]
    if not objects:
        return None
    return torch.stack(objects).any(0)


def find_generated_video(folder: Path, clip_id: str) -> Path | None:
    """``folder/<id>/generated.<ext>`` (any video extension, or a ``generated`` PNG folder), else None."""
    base = Path(folder) / clip_id
    for ext in VIDEO_EXTENSIONS:
        if (base / f"{GENERATED_NAME}{ext}").is_file():
            return base / f"{GENERATED_NAME}{ext}"
    if (base / GENERATED_NAME).is_dir():
        return base / GENERATED_NAME
    return None


def _read_clip(path: Path) -> torch.Tensor:
    frames, _ = read_video(path, as_tensor=True)
    return frames.permute(0, 3, 1, 2).float() / 255.0


# ---------------------------------------------------------------------------- per-clip cache
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
        _atomic_write_bytes(self.path, buf.getvalue())
        self.dirty = False


def _tag(*parts) -> str:
    return json.dumps([CACHE_VERSION, *parts], default=_json_default)


def _compact(features: np.ndarray) -> np.ndarray:
    """Store features as float32 when that is exact (networks output float32), halving the cache."""
    single = features.astype(np.float32)
    return single if np.array_equal(single.astype(features.dtype), features) else features


def _inception_features(net, video: torch.Tensor, device=None) -> np.ndarray:
    feats = extract_features(net, to_uint8(frames_after_first(video[None])), batch_size=32, device=device)
    return _compact(feats.numpy())


def clip_scores(cache: ClipCache, generated: torch.Tensor, reference: torch.Tensor, ref_cache: ClipCache,
                nets: MetricNetworks, *, object_mask: torch.Tensor | None, mf_seed: int, mf_points: int,
                sources: dict | None = None) -> dict:
    """Scores and features of one clip, from the cache where the fingerprints match.

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

    for key, fn in (("ssim", ssim), ("psnr", psnr)):
        out[key] = lookup(cache, key, _tag(key, pair), key, lambda fn=fn: fn(g, r, reduction="none")[0].numpy())
    if nets.lpips is not None:
        out["lpips"] = lookup(cache, "lpips", _tag("lpips", pair, nets.ids["lpips"]), "lpips",
                              lambda: lpips_metric(g, r, net=nets.lpips, reduction="none", device=None)[0].numpy())
    if nets.inception is not None:
        for c, video, h, name in ((cache, generated, g_hash, "gen"), (ref_cache, reference, r_hash, "ref")):
            out[f"inception_{name}"] = lookup(
                c, "inception", _tag("inception", h, nets.ids["inception"]), f"inception_{name}",
                lambda video=video: _inception_features(nets.inception, video, nets.devices.get("inception")))
    if nets.i3d is not None:
        for c, video, h, name in ((cache, generated, g_hash, "gen"), (ref_cache, reference, r_hash, "ref")):
            out[f"i3d_{name}"] = lookup(
                c, "i3d", _tag("i3d", h, nets.ids["i3d"]), f"i3d_{name}",
                lambda video=video: _compact(i3d_features(video[None], nets.i3d,
                                                          device=nets.devices.get("i3d"))[0].numpy()))
    if nets.tracker is not None:
        mask_hash = None if object_mask is None else hashlib.blake2b(
            object_mask.numpy().tobytes() + str(tuple(object_mask.shape)).encode(), digest_size=16).hexdigest()

        def compute_mf():
            mf = math.nan
            if object_mask is not None:
                res = motion_fidelity(g, r, object_mask[None], tracker=nets.tracker, num_points=mf_points, seed=mf_seed)
                mf = res.value
            return np.float64(mf)

        out["mf"] = float(lookup(cache, "mf", _tag("mf", pair, nets.ids["tracker"], mask_hash, mf_seed, mf_points),
                                 "mf", compute_mf))
    return out


def load_clip_record(out_dir: Path, method: str, clip_id: str) -> dict:
    """A clip's pooling record (id, label, frames, video, scores and features) read back from its cache files.

    Written by whichever rank scored the clip in this run; every value is checked against the fingerprint
    the record names, so a stale or half-written cache is an error, never a silent mix."""
    cache = ClipCache(out_dir / "features" / method / f"{_safe_id(clip_id)}.npz")
    record = cache.record
    if record is None or record.get("id") != clip_id:
        raise RuntimeError(f"{cache.path}: no scores for clip {clip_id!r} of {method}; a process did not finish its "
                           "clips (rerun the same command to complete them)")
    ref_cache = ClipCache(out_dir / "features" / "_reference" / f"{_safe_id(clip_id)}.npz")
    out = {k: record[k] for k in ("id", "label", "num_frames", "video")}
    for name, (where, key, tag) in record["sources"].items():
        value = (cache if where == "clip" else ref_cache).get(key, tag)
        if value is None:
            raise RuntimeError(f"the cached {key} of clip {clip_id!r} ({method}) does not match its record; rerun the "
                               "same command to recompute it")
        out[name] = float(value) if name == "mf" else value
    return out


# ---------------------------------------------------------------------------- pooling
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
    for key in ("ssim", "psnr", "lpips"):
        if key in missing:
            continue
        values[key] = float(np.concatenate([r[key] for r in records]).astype(np.float64).mean())
    if "inception" in missing:
        missing.setdefault("fid", missing["inception"])
        missing.setdefault("kid", missing["inception"])
    else:
        fg = np.concatenate([r["inception_gen"] for r in records]).astype(np.float64)
        fr = np.concatenate([r["inception_ref"] for r in records]).astype(np.float64)
        frames = fg.shape[0] // max(n, 1)
        if min(fg.shape[0], fr.shape[0]) < 2:
            missing["fid"] = missing["kid"] = f"FID/KID need at least 2 frames on each side, got {fg.shape[0]}"
        else:
            values["fid"] = dict(value=frechet_distance(*feature_statistics(fg, ddof=1), *feature_statistics(fr, ddof=1)),
                                 num_generated=fg.shape[0], num_reference=fr.shape[0], frames_per_clip=frames)
            mean, std = kernel_distance(fg, fr, num_subsets=kid_subsets, subset_size=kid_subset_size)
            values["kid"] = dict(value=mean, std=std, num_generated=fg.shape[0], num_reference=fr.shape[0],
                                 frames_per_clip=frames)
    if "i3d" in missing:
        missing.setdefault("fvd", missing["i3d"])
        missing.setdefault("kvd", missing["i3d"])
    else:
        fg = np.stack([r["i3d_gen"] for r in records]).astype(np.float64)
        fr = np.stack([r["i3d_ref"] for r in records]).astype(np.float64)
        if n < 2:
            missing["fvd"] = missing["kvd"] = f"FVD/KVD need at least 2 clips, got {n}"
        else:
            frames = records[0]["num_frames"]
            values["fvd"] = dict(value=frechet_distance(*feature_statistics(fg, ddof=0), *feature_statistics(fr, ddof=0)),
                                 num_generated=n, num_reference=n, frames_per_clip=frames)
            mean, std = kernel_distance(fg, fr, num_subsets=kid_subsets, subset_size=kid_subset_size)
            values["kvd"] = dict(value=mean, std=std, num_generated=n, num_reference=n, frames_per_clip=frames)
    missing.pop("inception", None)
    missing.pop("i3d", None)
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


def _value(entry):
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


# ---------------------------------------------------------------------------- tables
def _fmt(value, spec: str) -> str:
    value = _value(value)
    if value is None or not math.isfinite(value):
        return "n/a"
    return spec.format(value)


def table1_markdown(results: dict) -> str:
    """Table 1 of the paper: one row per method, SSIM↑ PSNR↑ LPIPS↓ FID↓ KID↓ FVD↓ KVD↓ MF↑."""
    header = "| Method | " + " | ".join(c[1] for c in TABLE1_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(TABLE1_COLUMNS) + 1)]
    notes = {}
    for method, entry in results["methods"].items():
        cells = []
        for key, _, spec in TABLE1_COLUMNS:
            cells.append(_fmt(entry["metrics"].get(key), spec))
            if key in entry["unavailable"]:
                notes.setdefault(key, entry["unavailable"][key])
        lines.append(f"| {entry['name']} | " + " | ".join(cells) + " |")
    n = results["settings"]["num_clips"]
    lines += ["", f"{n} clips; {results['settings']['tracker']} for MF."]
    headers = {c[0]: c[1] for c in TABLE1_COLUMNS}
    by_reason: dict[str, list[str]] = {}
    for key, reason in notes.items():
        by_reason.setdefault(reason, []).append(headers[key])
    for reason, columns in by_reason.items():
        lines.append(f"- {', '.join(columns)} n/a: {reason}")
    return "\n".join(lines) + "\n"


def table_s3_markdown(results: dict) -> str:
    """Table S3 of the paper: mean motion fidelity per action class (one column per method)."""
    methods = list(results["methods"])
    names = [results["methods"][m]["name"] for m in methods]
    lines = ["| Class | Count | " + " | ".join(f"MF↑ {n}" for n in names) + " |",
             "|" + "---|" * (len(methods) + 2)]
    for label, entry in results["per_class"].items():
        cells = [_fmt(entry["mf"][m], "{:.3f}") for m in methods]
        lines.append(f"| {label or '(no label)'} | {entry['count']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- generation
class _Generators:
    """Produces one method's video for one clip; loads models on first use."""

    def __init__(self, svd, interdyn, coshand, settings: GenerationSettings, device, precision, decode_chunk_size,
                 on_step: Callable[[int, int], None] | None = None):
        self.svd, self.interdyn, self.coshand = svd, interdyn, coshand
        self.settings, self.device, self.precision = settings, device, precision
        self.decode_chunk_size, self.on_step = decode_chunk_size, on_step
        self._backbone = self._branch = None

    def backbone(self):
        if self._backbone is None:
            from interdyn.loading import load_svd_backbone

            self._backbone = self.svd if not isinstance(self.svd, (str, os.PathLike)) else \
                load_svd_backbone(self.svd, dtype=self.precision, device=self.device)
        return self._backbone

    def branch(self):
        if self._branch is None:
            from interdyn.loading import load_control_branch

            backbone = self.backbone()
            self._branch = self.interdyn if not isinstance(self.interdyn, (str, os.PathLike)) else \
                load_control_branch(self.interdyn, dtype=backbone.dtype, device=self.device, backbone=backbone)
        return self._branch

    def __call__(self, method: str, sample: dict) -> torch.Tensor:
        frames, control = sample["frames"], sample["control"]
        s = self.settings
        if method == "copy_first_frame":
            return baselines.copy_first_frame(frames)
        if method == "coshand_independent":
            return baselines.coshand_independent(self.coshand, frames[0], control, seed=s.seed)
        if method == "coshand_autoregressive":
            return baselines.coshand_autoregressive(self.coshand, frames[0], control, seed=s.seed)
        if method in ("interdyn", "no_control"):
            callback = None
            if self.on_step is not None:
                callback = lambda info: self.on_step(info.step + 1, info.total)  # noqa: E731
            backbone = self.backbone()
            branch = self.branch() if method == "interdyn" else None
            video = generate_video(backbone, frames[:1], control[None] if branch is not None else None, branch,
                                   control_strength=1.0 if branch is not None else 0.0, generator=s.seed,
                                   decode_chunk_size=self.decode_chunk_size, callback=callback, **s.sampler_kwargs())
            return video[0].float().cpu()
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def _check_method_settings(folder: Path, wanted: dict) -> None:
    """Write ``folder/settings.json`` or check that cached videos were made with the same settings."""
    path = folder / "settings.json"
    if path.is_file():
        found = json.loads(path.read_text())
        diff = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
        if diff:
            detail = ", ".join(f"{k}: cached {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"{folder} holds videos generated with other settings ({detail}); use another --out "
                             "or delete that folder to regenerate")
        return
    _atomic_write_text(path, json.dumps(wanted, indent=1, default=_json_default) + "\n")


# ---------------------------------------------------------------------------- the runner
def evaluate(
    data_root,
    methods: Iterable[str] | None = None,
    *,
    out_dir,
    svd=None,
    interdyn=None,
    generated: dict | None = None,
    coshand=None,
    settings: GenerationSettings | None = None,
    device: str | torch.device = "cpu",
    precision: str = "auto",
    decode_chunk_size: int | None = None,
    lpips_net=None,
    lpips_alexnet=None,
    inception=None,
    inception_weights=None,
    i3d=None,
    i3d_weights=None,
    tracker=None,
    cotracker_checkpoint=None,
    cotracker_code=None,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    mf_points: int = 100,
    mf_seed: int = 0,
    limit: int | None = None,
    dataset=None,
    progress: bool = True,
    trust_i3d: bool = False,
) -> dict:
    """Generate (or read) every method's videos for the clips of ``data_root`` and score them.

    Args:
        methods: names from :data:`METHODS` (default: interdyn, no_control, copy_first_frame; none when
            only ``generated`` is given).
        out_dir: where videos, per-clip features, ``results.json``, ``table1.md`` and ``table_s3.md`` go.
        svd, interdyn: the SVD backbone folder/file and the control branch weights (paths, or loaded
            models); needed by ``interdyn`` (both) and ``no_control`` (svd).
        generated: ``{method name: folder}`` of videos made elsewhere, ``folder/<id>/generated.mp4``.
        coshand: the state transition model of the CosHand baselines: a callable or ``"module:function"``
            (see :func:`training.baselines.call_transition`).
        settings: :class:`GenerationSettings` (the paper's by default).
        lpips_net, inception, i3d, tracker: injected metric networks; otherwise loaded from
            ``lpips_alexnet``, ``inception_weights``, ``i3d_weights`` (file or folder) or the torch hub
            folder, and CoTracker from ``cotracker_checkpoint`` (+ ``cotracker_code``) else Lucas-Kanade.
        mf_points, mf_seed: motion fidelity query points per clip; clip ``i`` samples them with seed
            ``mf_seed + i`` (as :func:`interdyn.metrics.motion_fidelity` on the whole set).
        limit: evaluate only the first ``limit`` clips (ids sorted as the dataset lists them).
        trust_i3d: load an ``i3d_weights`` TorchScript file whose SHA-256 is not the published one.
        ``out_dir`` must be new, empty or an evaluation folder of ours (:mod:`interdyn.safe_output`).
        dataset: a ready dataset in the common sample format (default :func:`open_dataset`).

    Returns the results dict that is also written to ``out_dir/results.json``.
    """
    t0 = time.time()
    settings = settings or GenerationSettings()
    generated = {str(k): Path(v) for k, v in (generated or {}).items()}
    methods = list(methods) if methods is not None else ([] if generated else list(DEFAULT_METHODS))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)} (or pass --generated)")
    clash = set(methods) & set(generated)
    if clash:
        raise ValueError(f"{sorted(clash)} is both a method to generate and a --generated folder; rename the folder")
    if not methods and not generated:
        raise ValueError("nothing to evaluate: give methods and/or generated folders")
    if any(m in ("interdyn", "no_control") for m in methods) and svd is None:
        raise ValueError("methods interdyn and no_control need the SVD backbone (--svd)")
    if "interdyn" in methods and interdyn is None:
        raise ValueError("method interdyn needs the control branch weights (--interdyn)")
    if any(m.startswith("coshand") for m in methods):
        if coshand is None:
            raise ValueError("the CosHand baselines need a state transition model (--coshand module:function)")
        if isinstance(coshand, str):
            coshand = baselines.load_transition(coshand)
    for name, folder in generated.items():
        if not folder.is_dir():
            raise FileNotFoundError(f"--generated folder for {name!r} does not exist: {folder}")

    if limit is not None:
        check_count(limit, "limit")
    check_sampling_args(**settings.sampler_kwargs(), generator=settings.seed, decode_chunk_size=decode_chunk_size,
                        height=settings.height, width=settings.width)
    ctx = distributed.init(device=device)
    device = distributed.rank_device(device)
    out_dir = Path(out_dir)
    check_output_folder(out_dir, what="out_dir", legacy=("results.json", "generated", "features"))  # before the data
    dataset = dataset if dataset is not None else open_dataset(data_root, settings)
    ids = _clip_ids(dataset)
    if limit is not None:
        ids = ids[: int(limit)]
    if not ids:
        raise ValueError(f"no clips found in {data_root}")
    all_methods = methods + list(generated)

    video_dirs = {m: out_dir / "generated" / m for m in methods}
    video_dirs.update(generated)
    coshand_name = getattr(coshand, "__qualname__", type(coshand).__name__) if coshand is not None else None
    method_settings = {m: settings.for_method(m, {"coshand": f"{getattr(coshand, '__module__', '')}:{coshand_name}"}
                                              if m.startswith("coshand") else None) for m in methods}
    missing = {m: [i for i in ids if find_generated_video(generated[m], i) is None] for m in generated}
    missing = {m: v for m, v in missing.items() if v}
    if missing:
        detail = "; ".join(f"{m}: {len(v)} missing (e.g. {v[:3]})" for m, v in missing.items())
        raise FileNotFoundError(f"--generated folders lack videos for some clips ({detail}); expected "
                                f"<folder>/<id>/{GENERATED_NAME}.mp4")

    def claim(folder: Path) -> None:  # rank 0, before any compute: our folder, same settings as its videos
        claim_output_folder(folder, what="out_dir", legacy=("results.json", "generated", "features"))
        for m in methods:
            _check_method_settings(video_dirs[m], method_settings[m])

    with distributed.OutputLock(out_dir, what="out_dir", claim=claim, ctx=ctx) as lock:
        if not ctx.is_main:
            check_output_folder(out_dir, what="out_dir", legacy=("results.json", "generated", "features"))
            for m in methods:
                _check_method_settings(video_dirs[m], method_settings[m])
        results = _evaluate_clips(
            ctx, lock, dataset, ids, methods, all_methods, video_dirs, out_dir=out_dir, data_root=data_root,
            svd=svd, interdyn=interdyn, coshand=coshand, generated=generated, settings=settings, device=device,
            precision=precision, decode_chunk_size=decode_chunk_size, nets_kwargs=dict(
                lpips_net=lpips_net, lpips_alexnet=lpips_alexnet, inception=inception,
                inception_weights=inception_weights, i3d=i3d, i3d_weights=i3d_weights, tracker=tracker,
                cotracker_checkpoint=cotracker_checkpoint, cotracker_code=cotracker_code, trust_i3d=trust_i3d),
            kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, mf_points=mf_points, mf_seed=mf_seed,
            progress=progress, t0=t0)
    if not ctx.is_main:  # rank 0 wrote results.json before the last barrier
        results = json.loads((out_dir / "results.json").read_text())
    return results


def _evaluate_clips(ctx, lock, dataset, ids, methods, all_methods, video_dirs, *, out_dir, data_root, svd, interdyn,
                    coshand, generated, settings, device, precision, decode_chunk_size, nets_kwargs, kid_subsets,
                    kid_subset_size, mf_points, mf_seed, progress, t0) -> dict | None:
    """This rank's shard of the clips (generated, scored, written per clip), a barrier, then rank 0 pools
    every clip's record and writes the results; returns them on rank 0 (None elsewhere)."""
    nets = resolve_networks(device=device, **nets_kwargs)
    if ctx.is_main:
        for key, reason in (nets.unavailable or {}).items():
            print(f"[evaluate] {key} unavailable: {reason}", file=sys.stderr)

    from tqdm.auto import tqdm

    counter = distributed.ProgressFiles(out_dir, lock.run_id, ctx)
    bar = tqdm(total=len(ids) * len(all_methods), desc="evaluate" if ctx.world_size == 1 else
               f"evaluate ({ctx.world_size} processes)", unit="video", disable=not (progress and ctx.is_main))
    current = ["", ""]  # method and clip shown in the progress bar
    generator = _Generators(svd, interdyn, coshand, settings, device, precision, decode_chunk_size,
                            on_step=lambda i, n: bar.set_postfix_str(f"{current[0]} {current[1]} step {i}/{n}"))
    by_index = {i: k for k, i in enumerate(_clip_ids(dataset))}
    for clip_id in distributed.shard(ids, ctx):
        index = by_index[clip_id]
        sample = dataset[index]
        meta = sample["meta"]
        if str(meta["source"]) != clip_id:
            raise RuntimeError(f"dataset item {index} is {meta['source']!r}, expected {clip_id!r}")
        reference = sample["frames"].float()
        object_mask = _object_mask(meta)
        ref_cache = ClipCache(out_dir / "features" / "_reference" / f"{_safe_id(clip_id)}.npz")
        for method in all_methods:
            current[:] = [method, clip_id]
            bar.set_postfix_str(f"{method} {clip_id}")
            path = find_generated_video(video_dirs[method], clip_id)
            made = path is None
            if made:  # only our own methods get here (missing --generated videos were refused above)
                video = generator(method, sample)
                path = write_video(video_dirs[method] / clip_id / f"{GENERATED_NAME}.mp4", video, fps=meta["fps"],
                                   lossless=True)
            video = _read_clip(path)
            if video.shape != reference.shape:
                raise ValueError(f"{path} has frames {tuple(video.shape)} but the reference clip {clip_id!r} is "
                                 f"{tuple(reference.shape)} ([F, 3, H, W]); generate at the evaluation size "
                                 f"({settings.num_frames} frames, {settings.height}x{settings.width}) or change it")
            cache = ClipCache(out_dir / "features" / method / f"{_safe_id(clip_id)}.npz")
            sources: dict = {}
            # the motion-fidelity seed comes from the clip's place in the sorted clip list: never from the rank
            clip_scores(cache, video, reference, ref_cache, nets, object_mask=object_mask, mf_seed=mf_seed + index,
                        mf_points=mf_points, sources=sources)
            cache.set_record({"id": clip_id, "label": str(meta.get("label", "")), "num_frames": int(video.shape[0]),
                              "video": str(path), "sources": {k: list(v) for k, v in sources.items()}})
            ref_cache.save()  # before the record that points into it
            cache.save()
            counter.add(done=1, generated=int(made), cached=int(not made))
            if ctx.is_main:
                bar.n = min(bar.total, counter.total().get("done", 0))
                bar.refresh()
    distributed.barrier()  # every clip of every rank is on disk
    if not ctx.is_main:
        bar.close()
        distributed.barrier()  # rank 0 writes the results
        return None
    counts = counter.total()
    bar.n = bar.total
    bar.close()
    records = {m: [load_clip_record(out_dir, m, clip_id) for clip_id in ids] for m in all_methods}

    results = {
        "settings": {**asdict(settings), "data_root": str(data_root), "num_clips": len(ids),
                     "tracker": nets.tracker_name or "none", "networks": nets.ids, "kid_subsets": kid_subsets,
                     "kid_subset_size": kid_subset_size, "mf_points": mf_points, "mf_seed": mf_seed,
                     "methods": all_methods, "generated_folders": {k: str(v) for k, v in generated.items()}},
        "unavailable": dict(nets.unavailable or {}),
        "methods": {},
        "per_clip": {},
        "run": {"seconds": round(time.time() - t0, 2), "processes": ctx.world_size,
                "generated": counts.get("generated", 0), "cached": counts.get("cached", 0)},
    }
    for method in all_methods:
        values, missing = pool_scores(records[method], nets, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
        results["methods"][method] = {"name": DISPLAY_NAMES.get(method, method), "num_clips": len(records[method]),
                                      "metrics": {k: values.get(k) for k in METRICS}, "unavailable": missing}
        results["per_clip"][method] = {
            r["id"]: {"id": r["id"], "label": r["label"], "video": r["video"],
                      "ssim": float(np.mean(r["ssim"])), "psnr": float(np.mean(r["psnr"])),
                      "lpips": float(np.mean(r["lpips"])) if "lpips" in r else None,
                      "mf": _finite_or_none(r.get("mf"))}
            for r in records[method]}
    results["per_class"] = per_class_motion_fidelity(results["per_clip"], all_methods)
    _atomic_write_text(out_dir / "results.json", json.dumps(results, indent=1, default=_json_default) + "\n")
    _atomic_write_text(out_dir / "table1.md", table1_markdown(results))
    _atomic_write_text(out_dir / "table_s3.md", table_s3_markdown(results))
    counter.cleanup()
    distributed.barrier()  # the other ranks read results.json after this
    return results


# ---------------------------------------------------------------------------- command line
def _parse_generated(values: list[str]) -> dict:
    out = {}
    for v in values or []:
        name, sep, folder = v.partition("=")
        if not sep:
            name, folder = Path(v).name, v
        if not name or name in out:
            raise SystemExit(f"error: --generated {v!r}: give each folder a distinct NAME=DIR")
        out[name] = folder
    return out


def build_parser(prog: str = "python -m training.evaluate") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog,
                                description="Generate and score InterDyn and baselines (the paper's Table 1 and S3).")
    p.add_argument("--data", required=True, help="clips in the generic layout: ROOT/<id>/video.mp4, mask_hand.mp4, "
                                                 "mask_<object>.mp4")
    p.add_argument("--out", required=True, help="output folder (videos, feature cache, results.json, table1.md, "
                                                "table_s3.md); rerun with the same folder to resume")
    p.add_argument("--svd", help="SVD backbone: diffusers folder or single-file checkpoint")
    p.add_argument("--interdyn", help="InterDyn control branch: official controlnet folder or our .safetensors")
    p.add_argument("--methods", help=f"comma-separated, from {','.join(METHODS)} (default: "
                                     f"{','.join(DEFAULT_METHODS)}; none when only --generated is given)")
    p.add_argument("--generated", action="append", metavar="[NAME=]DIR",
                   help="score videos made elsewhere: DIR/<id>/generated.mp4 (repeatable; NAME defaults to DIR's name)")
    p.add_argument("--coshand", help="state transition model of the CosHand baselines, module:function or "
                                     "file.py:function, called as f(image, control_t, source_control=, t=, seed=)")
    p.add_argument("--limit", type=int, help="evaluate only the first N clips")
    g = p.add_argument_group("metric weights (never downloaded; default: $TORCH_HOME/hub/checkpoints)")
    g.add_argument("--lpips-alexnet", help="alexnet-owt-7be5be79.pth or its folder (LPIPS)")
    g.add_argument("--inception", help="weights-inception-2015-12-05-6726825d.pth or its folder (FID, KID)")
    g.add_argument("--i3d", help="i3d_torchscript.pt or its folder (FVD, KVD); loaded only if it is the published file "
                                 "(SHA-256 checked) unless --trust-i3d")
    g.add_argument("--trust-i3d", action="store_true",
                   help="load an --i3d TorchScript file whose SHA-256 is not the published one (it is code: only files "
                        "you trust)")
    g.add_argument("--cotracker-code", help="folder that makes `import cotracker` work (a co-tracker clone)")
    g.add_argument("--cotracker-checkpoint", help="CoTracker3 checkpoint, e.g. scaled_offline.pth (MF; default: "
                                                  "OpenCV Lucas-Kanade, no weights)")
    g.add_argument("--kid-subsets", type=int, default=100, help="KID/KVD subsets (default %(default)s)")
    g.add_argument("--kid-subset-size", type=int, default=1000, help="KID/KVD subset size (default %(default)s)")
    g.add_argument("--mf-points", type=int, default=100, help="MF query points per clip (default %(default)s)")
    d = GenerationSettings()
    s = p.add_argument_group("clips and sampling (defaults are the paper's)")
    s.add_argument("--frames", type=int, default=d.num_frames, help="frames per clip (default %(default)s)")
    s.add_argument("--height", type=int, default=d.height, help="height, multiple of 64 (default %(default)s)")
    s.add_argument("--width", type=int, default=d.width, help="width, multiple of 64 (default %(default)s)")
    s.add_argument("--clip-fps", type=float, default=d.clip_fps, help="real frame rate clips are resampled to "
                                                                       "(default %(default)s)")
    s.add_argument("--crop", default=d.crop, choices=["mask", "center"], help="spatial crop (default %(default)s)")
    s.add_argument("--steps", type=int, default=d.num_steps, help="Euler steps (default %(default)s)")
    s.add_argument("--min-guidance", type=float, default=d.min_guidance, help="CFG on the first frame")
    s.add_argument("--max-guidance", type=float, default=d.max_guidance, help="CFG on the last frame")
    s.add_argument("--fps", type=float, default=d.fps, help="conditioning fps, diffusers' convention (model gets fps-1)")
    s.add_argument("--motion-bucket", type=float, default=d.motion_bucket_id, help="SVD motion bucket id")
    s.add_argument("--noise-aug", type=float, default=d.noise_aug_strength, help="noise augmentation of frame 0")
    s.add_argument("--seed", type=int, default=d.seed, help="sampling seed, the same for every clip")
    s.add_argument("--decode-chunk", type=int, default=None, help="frames decoded at a time (default: all)")
    s.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    s.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"], help="model precision")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m training.evaluate") -> int:
    args = build_parser(prog).parse_args(argv)
    generated = _parse_generated(args.generated)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    settings = GenerationSettings(num_frames=args.frames, height=args.height, width=args.width, num_steps=args.steps,
                                  min_guidance=args.min_guidance, max_guidance=args.max_guidance, fps=args.fps,
                                  motion_bucket_id=args.motion_bucket, noise_aug_strength=args.noise_aug,
                                  seed=args.seed, clip_fps=args.clip_fps, crop=args.crop)
    try:
        results = evaluate(args.data, methods, out_dir=args.out, svd=args.svd, interdyn=args.interdyn,
                           generated=generated, coshand=args.coshand, settings=settings, device=args.device,
                           precision=args.precision, decode_chunk_size=args.decode_chunk,
                           lpips_alexnet=args.lpips_alexnet, inception_weights=args.inception, i3d_weights=args.i3d,
                           cotracker_checkpoint=args.cotracker_checkpoint, cotracker_code=args.cotracker_code,
                           kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size,
                           mf_points=args.mf_points, limit=args.limit, progress=not args.no_progress,
                           trust_i3d=args.trust_i3d)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not distributed.context().is_main:
        return 0
    print(table1_markdown(results))
    print(table_s3_markdown(results))
    out = Path(args.out)
    print(f"wrote {out / 'results.json'}, {out / 'table1.md'}, {out / 'table_s3.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
