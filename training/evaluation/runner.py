"""The evaluation runner: generate, score and pool every method over the clips, over one or many processes."""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from interdyn.core.dual_clock import check_levels
from interdyn.core.sampling import check_sampling_args
from interdyn.support import distributed
from interdyn.metrics import registry
from interdyn.support.safe_output import atomic_files, check_output_folder, check_output_path, claim_output_folder
from interdyn.support.validation import SAMPLING_BOUNDS, InputError, check_count, check_range
from interdyn.data.video_io import write_video

from .. import baselines
from .cache import REFERENCE, ClipCache, clip_cache, clip_scores, json_default, load_clip_record
from .data import clip_ids, find_generated_video, object_mask, open_dataset, read_clip
from .generation import MethodGenerators, check_method_settings
from .networks import resolve_networks
from .pooling import per_class_motion_fidelity, pool_scores
from .settings import (BRANCH_METHODS, DEFAULT_METHODS, DISPLAY_NAMES, GENERATED_NAME, METHODS, SAMPLED_METHODS,
                       GenerationSettings)
from .tables import table1_markdown, table_s3_markdown


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
            only ``generated`` is given); ``dual_clock`` (the training-free drag on plain SVD) and
            ``interdyn_dual_clock`` (with the branch) sample from each clip's drag reference
            (:func:`training.evaluation.generation.drag_reference`) at ``settings.sigma_weak`` / ``sigma_strong``.
        out_dir: where videos, per-clip features, ``results.json``, ``table1.md`` and ``table_s3.md`` go.
        svd, interdyn: the SVD backbone folder/file and the control branch weights (paths, or loaded
            models); needed by ``interdyn`` and ``interdyn_dual_clock`` (both), ``no_control`` and ``dual_clock``
            (svd).
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
        ``out_dir`` must be new, empty or an evaluation folder of ours (:mod:`interdyn.support.safe_output`).
        dataset: a ready dataset in the common sample format (default :func:`open_dataset`).

    Returns the results dict that is also written to ``out_dir/results.json``.
    """
    t0 = time.time()
    settings = settings or GenerationSettings()
    out_dir = check_output_path(out_dir, "out_dir", folder=True)
    check_evaluation_numbers(settings, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, mf_points=mf_points,
                             limit=limit, decode_chunk_size=decode_chunk_size)
    methods, generated, coshand = _checked_request(methods, generated, svd=svd, interdyn=interdyn, coshand=coshand)
    ctx = distributed.init(device=device)
    device = distributed.rank_device(device)
    # before the data
    check_output_folder(out_dir, what="out_dir", kind="evaluation", signature_files=EVALUATION_SIGNATURE_FILES)
    dataset = dataset if dataset is not None else open_dataset(data_root, settings)
    ids = clip_ids(dataset)[: None if limit is None else int(limit)]
    if not ids:
        raise ValueError(f"no clips found in {data_root}")
    all_methods = methods + list(generated)
    _check_generated_complete(generated, ids)
    video_dirs = {**{m: out_dir / "generated" / m for m in methods}, **generated}
    method_settings = _method_settings(methods, settings, coshand)

    def check_existing() -> None:  # our folder, made with the same settings as the videos already in it
        for m in methods:
            check_method_settings(video_dirs[m], method_settings[m])

    def claim(folder: Path) -> None:  # rank 0, before any compute
        claim_output_folder(folder, what="out_dir", kind="evaluation", signature_files=EVALUATION_SIGNATURE_FILES)
        check_existing()

    with distributed.OutputLock(out_dir, what="out_dir", claim=claim, ctx=ctx) as lock:
        if not ctx.is_main:
            check_output_folder(out_dir, what="out_dir", kind="evaluation", signature_files=EVALUATION_SIGNATURE_FILES)
            check_existing()
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


#: what only an evaluation writes at the top of its folder: a folder holding one is an evaluation of ours even
#: without our marker (older versions)
EVALUATION_SIGNATURE_FILES = ("results.json", "generated", "features")


#: the largest values of evaluate()'s counts (beyond them a run asks for more memory or time than any machine has)
MAX_KID_SUBSETS, MAX_KID_SUBSET_SIZE, MAX_MF_POINTS = 100_000, 100_000, 10_000


def check_evaluation_numbers(settings: GenerationSettings, *, kid_subsets, kid_subset_size, mf_points, limit,
                             decode_chunk_size, names: dict | None = None) -> None:
    """Every number of an evaluation (the sampling settings, the metrics' counts, ``limit``), finite and in range,
    before anything is read; ``names`` maps evaluate()'s names to the caller's (``--kid-subsets``)."""
    n = lambda key: (names or {}).get(key, key)  # noqa: E731
    check_sampling_args(names=names, **settings.sampler_kwargs(), generator=settings.seed,
                        decode_chunk_size=decode_chunk_size, height=settings.height, width=settings.width)
    if check_range(settings.clip_fps, n("clip_fps"), 0, SAMPLING_BOUNDS["fps"]) <= 0:
        raise InputError(f"{n('clip_fps')} must be > 0 frames per second, got {settings.clip_fps}")
    # the dual-clock methods' levels (the schedule's sigma_max is checked again when the backbone is known)
    check_levels(settings.sigma_weak, settings.sigma_strong, names={k: n(k) for k in ("sigma_weak", "sigma_strong")})
    check_count(kid_subsets, n("kid_subsets"), maximum=MAX_KID_SUBSETS)
    check_count(kid_subset_size, n("kid_subset_size"), maximum=MAX_KID_SUBSET_SIZE)
    check_count(mf_points, n("mf_points"), maximum=MAX_MF_POINTS)
    if limit is not None:
        check_count(limit, n("limit"))


def _checked_request(methods, generated, *, svd, interdyn, coshand) -> tuple[list[str], dict[str, Path], object]:
    """The methods to generate, the ``--generated`` folders and the CosHand model, checked before anything loads."""
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
    sampled = [m for m in methods if m in SAMPLED_METHODS]
    if sampled and svd is None:
        raise ValueError(f"method(s) {', '.join(sampled)} need the SVD backbone (--svd)")
    branched = [m for m in methods if m in BRANCH_METHODS]
    if branched and interdyn is None:
        raise ValueError(f"method(s) {', '.join(branched)} need the control branch weights (--interdyn)")
    if any(m.startswith("coshand") for m in methods):
        if coshand is None:
            raise ValueError("the CosHand baselines need a state transition model (--coshand module:function)")
        if isinstance(coshand, str):
            coshand = baselines.load_transition(coshand)
    for name, folder in generated.items():
        if not folder.is_dir():
            raise FileNotFoundError(f"--generated folder for {name!r} does not exist: {folder}")
    return methods, generated, coshand


def _check_generated_complete(generated: dict[str, Path], ids: list[str]) -> None:
    missing = {m: [i for i in ids if find_generated_video(folder, i) is None] for m, folder in generated.items()}
    missing = {m: v for m, v in missing.items() if v}
    if missing:
        detail = "; ".join(f"{m}: {len(v)} missing (e.g. {v[:3]})" for m, v in missing.items())
        raise FileNotFoundError(f"--generated folders lack videos for some clips ({detail}); expected "
                                f"<folder>/<id>/{GENERATED_NAME}.mp4")


def _method_settings(methods: list[str], settings: GenerationSettings, coshand) -> dict[str, dict]:
    """What each generated method's videos are made with (recorded beside them, checked when a run resumes)."""
    name = getattr(coshand, "__qualname__", type(coshand).__name__) if coshand is not None else None
    extra = {"coshand": f"{getattr(coshand, '__module__', '')}:{name}"}
    return {m: settings.for_method(m, extra if m.startswith("coshand") else None) for m in methods}


def _evaluate_clips(ctx, lock, dataset, ids, methods, all_methods, video_dirs, *, out_dir, data_root, svd, interdyn,
                    coshand, generated, settings, device, precision, decode_chunk_size, nets_kwargs, kid_subsets,
                    kid_subset_size, mf_points, mf_seed, progress, t0) -> dict | None:
    """This rank's shard of the clips (generated, scored, written per clip), a barrier, then rank 0 pools
    every clip's record and writes the results; returns them on rank 0 (None elsewhere)."""
    nets = resolve_networks(device=device, **nets_kwargs)
    if ctx.is_main:
        for key, reason in (nets.unavailable or {}).items():
            print(f"[evaluate] {key} unavailable: {reason}", file=sys.stderr)

    counter = distributed.ProgressFiles(out_dir, lock.run_id, ctx)
    bar = tqdm(total=len(ids) * len(all_methods), desc="evaluate" if ctx.world_size == 1 else
               f"evaluate ({ctx.world_size} processes)", unit="video", disable=not (progress and ctx.is_main))
    current = ["", ""]  # method and clip shown in the progress bar
    generator = MethodGenerators(svd, interdyn, coshand, settings, device, precision, decode_chunk_size,
                                 on_step=lambda i, n: bar.set_postfix_str(f"{current[0]} {current[1]} step {i}/{n}"))
    by_index = {i: k for k, i in enumerate(clip_ids(dataset))}
    for clip_id in distributed.shard(ids, ctx):
        index = by_index[clip_id]
        sample = dataset[index]
        if str(sample["meta"]["source"]) != clip_id:
            raise RuntimeError(f"dataset item {index} is {sample['meta']['source']!r}, expected {clip_id!r}")
        ref_cache = clip_cache(out_dir, REFERENCE, clip_id)
        for method in all_methods:
            current[:] = [method, clip_id]
            bar.set_postfix_str(f"{method} {clip_id}")
            made = _score_clip(method, clip_id, sample, video_dirs[method], ref_cache, generator, nets, out_dir=out_dir,
                               settings=settings, mf_seed=mf_seed + index, mf_points=mf_points)
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
    run = {"seconds": round(time.time() - t0, 2), "processes": ctx.world_size,
           "generated": counts.get("generated", 0), "cached": counts.get("cached", 0)}
    settings_record = {**asdict(settings), "data_root": str(data_root), "num_clips": len(ids),
                       "tracker": nets.tracker_name or "none", "networks": nets.ids, "kid_subsets": kid_subsets,
                       "kid_subset_size": kid_subset_size, "mf_points": mf_points, "mf_seed": mf_seed,
                       "methods": all_methods, "generated_folders": {k: str(v) for k, v in generated.items()}}
    results = _pool_results(out_dir, ids, all_methods, nets, settings_record, run, kid_subsets=kid_subsets,
                            kid_subset_size=kid_subset_size)
    counter.cleanup()
    distributed.barrier()  # the other ranks read results.json after this
    return results


def _score_clip(method, clip_id, sample, folder: Path, ref_cache: ClipCache, generator, nets, *, out_dir: Path,
                settings: GenerationSettings, mf_seed: int, mf_points: int) -> bool:
    """Generate (unless it is on disk) and score one method's video of one clip; its record and features go to
    ``out_dir/features/<method>/``. Returns whether the video was generated now. ``mf_seed`` comes from the
    clip's place in the sorted clip list, never from the rank."""
    meta = sample["meta"]
    reference = sample["frames"].float()
    path = find_generated_video(folder, clip_id)
    made = path is None
    if made:  # only our own methods get here (missing --generated videos were refused before)
        path = write_video(folder / clip_id / f"{GENERATED_NAME}.mp4", generator(method, sample), fps=meta["fps"],
                           lossless=True)
    video = read_clip(path)
    if video.shape != reference.shape:
        raise ValueError(f"{path} has frames {tuple(video.shape)} but the reference clip {clip_id!r} is "
                         f"{tuple(reference.shape)} ([F, 3, H, W]); generate at the evaluation size "
                         f"({settings.num_frames} frames, {settings.height}x{settings.width}) or change it")
    cache = clip_cache(out_dir, method, clip_id)
    sources: dict = {}
    clip_scores(cache, video, reference, ref_cache, nets, object_mask=object_mask(meta), mf_seed=mf_seed,
                mf_points=mf_points, sources=sources)
    cache.set_record({"id": clip_id, "label": str(meta.get("label", "")), "num_frames": int(video.shape[0]),
                      "video": str(path), "sources": {k: list(v) for k, v in sources.items()}})
    ref_cache.save()  # before the record that points into it
    cache.save()
    return made


def _pool_results(out_dir: Path, ids: list[str], all_methods: list[str], nets, settings_record: dict, run: dict, *,
                  kid_subsets: int, kid_subset_size: int) -> dict:
    """Rank 0, after every clip is on disk: pool each method's clip records into ``results.json``, Table 1 and
    Table S3 (written atomically); returns the results."""
    records = {m: [load_clip_record(out_dir, m, clip_id) for clip_id in ids] for m in all_methods}
    results = {"settings": settings_record, "unavailable": dict(nets.unavailable or {}), "methods": {},
               "per_clip": {}, "run": run}
    for method in all_methods:
        values, missing = pool_scores(records[method], nets, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
        results["methods"][method] = {"name": DISPLAY_NAMES.get(method, method), "num_clips": len(records[method]),
                                      "metrics": {c.key: values.get(c.key) for c in registry.columns()},
                                      "unavailable": missing}
        results["per_clip"][method] = {
            r["id"]: {"id": r["id"], "label": r["label"], "video": r["video"],
                      **{m.key: float(np.mean(r[m.key])) if m.key in r else None for m in registry.FRAME_METRICS},
                      **{m.key: _finite_or_none(r.get(m.key)) for m in registry.CLIP_METRICS}}
            for r in records[method]}
    results["per_class"] = per_class_motion_fidelity(results["per_clip"], all_methods)
    texts = {"results.json": json.dumps(results, indent=1, default=json_default) + "\n",
             "table1.md": table1_markdown(results), "table_s3.md": table_s3_markdown(results)}
    with atomic_files([out_dir / name for name in texts]) as temporaries:  # the three replaced together, or none
        for tmp, text in zip(temporaries, texts.values()):
            tmp.write_text(text, encoding="utf-8")
    return results


def _finite_or_none(x):
    return None if x is None or not math.isfinite(float(x)) else float(x)
