"""``interdyn generate --manifest rows.csv|rows.jsonl``: many clips, one row each, over one or many processes.

Columns: ``image`` and ``out`` (required), ``control``, ``seed`` and any of the per-row sampling values
:data:`ROW_PARAMETERS` (a row without them uses the command line's). Relative paths are relative to the
manifest's folder. The run:

1. reads and checks **every** row before any model loads; a bad row is one error naming the row and the
   column (``rows.csv row 3, column image: ... does not exist``);
2. takes this process's rows (:func:`interdyn.support.distributed.shard`: every N-th row under torchrun /
   ``accelerate launch``); the seed of a row is the row's (or ``--seed``), never the rank's;
3. skips rows whose ``out`` exists, generates the others, writes each output atomically
   (:func:`interdyn.data.video_io.write_video`); a row that fails is reported and the next row goes on;
   with ``--batch-size B``, up to B consecutive rows with the same size and sampling values share one sampler
   call (each row keeps its seed's noise; if the batch fails, its rows are run one by one to find the bad one);
4. prints one summary (rank 0, over all ranks) and exits 1 if any row failed (2 if the manifest was bad).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

# the loaders through their module: tests replace loading.load_svd_backbone to prove no model loads before the checks
from ..core import loading
from ..data.video_io import read_video_frames
from ..support import distributed
from .generation import CLI_NAMES, generate_clips, load_inputs, sampling_kwargs, validate_generate_args
from ..support.safe_output import (NAME_MAX, check_not_inside, check_output_path, clean_stale_temporaries,
                                   storage_error, write_text_atomic)
from ..support.validation import InputError, check_count, check_input_path

__all__ = ["ROW_PARAMETERS", "Row", "read_manifest", "manifest_rows", "run_manifest"]

#: per-row column -> (attribute of the generate command's arguments, type, the sampler's name for messages)
ROW_PARAMETERS = {
    "seed": ("seed", int, "generator"),
    "height": ("height", int, "height"),
    "width": ("width", int, "width"),
    "frames": ("frames", int, "num_frames"),
    "steps": ("steps", int, "num_steps"),
    "min_guidance": ("min_guidance", float, "min_guidance"),
    "max_guidance": ("max_guidance", float, "max_guidance"),
    "fps": ("fps", float, "fps"),
    "motion_bucket": ("motion_bucket", float, "motion_bucket_id"),
    "noise_aug": ("noise_aug", float, "noise_aug_strength"),
    "strength": ("strength", float, "control_strength"),
    "control_start": ("control_start", float, "control_start"),
    "control_end": ("control_end", float, "control_end"),
}
PATH_COLUMNS = ("image", "control", "out")
COLUMNS = PATH_COLUMNS + tuple(ROW_PARAMETERS)


@dataclass
class Row:
    """One manifest row: its number (1 = the first data row) and the generate arguments it stands for."""

    number: int
    args: argparse.Namespace

    @property
    def label(self) -> str:
        return f"row {self.number}"


def read_manifest(path) -> list[dict]:
    """The rows of a ``.csv`` (header line first) or ``.jsonl`` (one JSON object per line) file, as dicts."""
    path = check_input_path(path, "--manifest", what="a regular file (.csv or .jsonl)")
    if not path.is_file():
        raise InputError(f"--manifest {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise InputError(f"--manifest {path}: unsupported extension {suffix!r}; use .csv or .jsonl")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"--manifest {path} is not UTF-8 text (byte {err.start}); a manifest is a .csv or .jsonl "
                         "text file") from None
    if suffix == ".csv":
        rows = []
        n = 0
        try:
            for n, row in enumerate(csv.DictReader(text.splitlines()), start=1):
                if row.get(None):  # csv files the cells beyond the header's columns under None
                    raise InputError(f"--manifest {path} row {n}: more cells than columns in the header line")
                rows.append({k.strip(): v for k, v in row.items() if k is not None})
        except csv.Error as err:  # e.g. a cell longer than csv's field limit
            raise InputError(f"--manifest {path} row {n + 1}: not CSV ({err})") from None
        return rows
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate((line for line in text.splitlines() if line.strip()), start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"--manifest {path} row {n}: not JSON ({err.msg})") from None
            except RecursionError:  # lists or objects nested thousands deep
                raise InputError(f"--manifest {path} row {n}: nested too deep; a row is one flat JSON object "
                                 "{\"image\": ..., \"out\": ...}") from None
            if not isinstance(row, dict):
                raise InputError(f"--manifest {path} row {n}: a JSON object {{\"image\": ..., \"out\": ...}} per line")
            rows.append(row)
        return rows
    raise InputError(f"--manifest {path}: unsupported extension {suffix!r}; use .csv or .jsonl")


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def manifest_rows(path, base: argparse.Namespace) -> list[Row]:
    """Every row of the manifest checked (paths, values, outputs) and turned into generate arguments.

    Raises :class:`InputError` for the first bad row, naming the manifest, the row and the column."""
    path = Path(path)
    raw = read_manifest(path)
    if not raw:
        raise InputError(f"--manifest {path} has no rows")
    outs: dict[Path, int] = {}
    rows = []
    for n, entry in enumerate(raw, start=1):
        where = f"--manifest {path} row {n}"
        unknown = sorted(set(entry) - set(COLUMNS))
        if unknown:
            raise InputError(f"{where}: unknown column {unknown[0]!r}; columns are {', '.join(COLUMNS)}")
        args = argparse.Namespace(**vars(base))
        args.manifest = args.report = None
        names = dict(CLI_NAMES)
        for column in ("image", "out"):
            if _blank(entry.get(column)):
                raise InputError(f"{where}, column {column} is empty; every row needs an image and an out")
        for column in PATH_COLUMNS:
            value = entry.get(column)
            if column == "control" and _blank(value):
                args.control = None
                continue
            if not isinstance(value, str):
                raise InputError(f"{where}, column {column} must be a path (text), got {value!r:.80}")
            p = Path(str(value)).expanduser()
            setattr(args, column, str(p if p.is_absolute() else path.parent / p))
            names[column] = f"{where}, column {column}"
        for column, (attr, kind, sampler_name) in ROW_PARAMETERS.items():
            value = entry.get(column)
            if _blank(value):
                continue
            try:
                if isinstance(value, (bool, list, dict)):
                    raise ValueError
                number = kind(value) if not isinstance(value, str) else kind(value.strip())
                if kind is int and isinstance(value, float) and not value.is_integer():
                    raise ValueError
                if kind is float and not math.isfinite(number):
                    raise OverflowError
            except (TypeError, ValueError):
                what = "a whole number" if kind is int else "a number"
                raise InputError(f"{where}, column {column} must be {what}, got {value!r}") from None
            except OverflowError:  # 1e400 (JSON reads it as infinity) or an integer beyond any float
                shown = f"an integer of {len(str(value))} digits" if isinstance(value, int) else repr(value)
                raise InputError(f"{where}, column {column} must be a finite number, got {shown}") from None
            setattr(args, attr, number)
            names[sampler_name] = f"{where}, column {column}"
        out = Path(args.out)
        if out.resolve() in outs:
            raise InputError(f"{where}, column out {out} is also the out of row {outs[out.resolve()]}; give each row "
                             "its own output")
        outs[out.resolve()] = n
        if not out.exists():  # an existing output is skipped, never replaced: nothing to check
            validate_generate_args(args, names=names, comparison=False)
        elif not Path(args.image).is_file():
            raise InputError(f"{where}, column image {args.image} does not exist")
        rows.append(Row(n, args))
    return rows


class _Models:
    """The backbone and control branch, loaded once per process on first use (a rank with only skipped rows
    loads nothing)."""

    def __init__(self, args):
        self.args, self.backbone, self.branch = args, None, None

    def get(self, need_branch: bool):
        if self.backbone is None:
            self.backbone = loading.load_svd_backbone(self.args.svd, dtype=self.args.precision, device=self.args.device)
        if need_branch and self.branch is None:
            self.branch = loading.load_control_branch(self.args.interdyn, dtype=self.backbone.dtype,
                                                      device=self.args.device, backbone=self.backbone)
        return self.backbone, self.branch if need_branch else None


def _generate_group(group: list[Row], models: _Models) -> None:
    """One sampler call for the rows of ``group`` (one row, or a batch of rows with the same :func:`_batch_key`)."""
    clips = [row.args for row in group]
    images, controls = load_inputs(clips)
    backbone, branch = models.get(need_branch=controls is not None)
    generate_clips(backbone, branch, clips, images, controls)


def _batch_key(row: Row) -> tuple:
    """Rows with equal keys can share one sampler call: the same size, frame count and sampling values."""
    a = row.args
    return (a.height, a.width, a.frames, a.decode_chunk, a.fps, a.control is None,
            tuple(sorted(sampling_kwargs(a).items())))


def _groups(rows: list[Row], size: int) -> list[list[Row]]:
    """Consecutive rows with the same :func:`_batch_key`, at most ``size`` per group (row order kept)."""
    groups: list[list[Row]] = []
    for row in rows:
        if groups and len(groups[-1]) < size and _batch_key(groups[-1][0]) == _batch_key(row):
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def _not_this_rows_output(row) -> str | None:
    """Why an existing ``out`` cannot be an earlier run's result of this row (``None`` when it can): a row is
    skipped as done only when its output is a readable video of the row's size, never an unrelated file."""
    out = Path(row.args.out)
    try:
        first = read_video_frames(out, [0])
    except Exception as err:  # noqa: BLE001 - unreadable: not ours
        return (f"out {out} exists and is not a video ({type(err).__name__}: {str(err)[:120]}); it is not this row's "
                "earlier output, so it is left alone: move it away, or give the row another out")
    height, width = int(first.shape[1]), int(first.shape[2])
    if (height, width) != (row.args.height, row.args.width):
        return (f"out {out} exists and is a {width}x{height} video, not this row's {row.args.width}x"
                f"{row.args.height}: it is left alone; move it away, or give the row another out")
    return None


def run_manifest(args) -> int:
    """``interdyn generate --manifest``: see the module's docstring. Returns the exit status."""
    t0 = time.time()
    check_count(getattr(args, "batch_size", 1), "--batch-size")
    if args.report:
        check_output_path(args.report, "--report", folder=False)
        check_not_inside(args.report, args.manifest, what="--report", protected_what="--manifest")
    rows = manifest_rows(args.manifest, args)  # every row, before any model loads
    ctx = distributed.init(device=args.device)
    with _manifest_lock(Path(args.manifest), ctx):
        return _run_rows(args, rows, ctx, t0)


def _manifest_lock(manifest: Path, ctx):
    """One run at a time per manifest: :class:`interdyn.support.distributed.OutputLock` on a lock file beside the
    manifest (``.NAME.interdyn-lock``), so a second run on the same manifest is refused instead of generating every
    row again. A manifest in a folder this user cannot write into runs without the lock, with a note."""
    folder = manifest.absolute().parent
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    if read_only or not os.access(folder, os.W_OK | os.X_OK):
        if ctx.is_main:
            print(f"note: --manifest {manifest}: its folder is not writable, so this run cannot lock it; a second "
                  "run on the same manifest at the same time would generate the same rows", file=sys.stderr)
        return contextlib.nullcontext()
    name = f".{manifest.name}.interdyn-lock"
    if len(os.fsencode(name)) > NAME_MAX - 20:  # room for the lock's own temporary name
        name = f".interdyn-lock-{hashlib.sha256(os.fsencode(manifest.name)).hexdigest()[:16]}"
    return distributed.OutputLock(folder, what="--manifest", ctx=ctx, name=name, clean=False,
                                  subject=f"--manifest {manifest} (its rows' outputs)")


def _run_rows(args, rows: list[Row], ctx, t0: float) -> int:
    """This process's rows of a checked manifest, generated and reported (holding the manifest's lock)."""
    args.device = distributed.rank_device(args.device)
    for row in rows:
        row.args.device = args.device
    outcome: dict[int, dict] = {}
    pending = _pending_rows(distributed.shard(rows, ctx), args.manifest, outcome)
    _clean_killed_rows(pending)
    progress = tqdm(total=len(pending), desc=f"generate (rank {ctx.rank}/{ctx.world_size})" if ctx.world_size > 1
                    else "generate", unit="clip", disable=not ctx.is_main)
    _generate_rows(pending, _Models(args), getattr(args, "batch_size", 1) or 1, args.manifest, outcome, progress)
    progress.close()
    every = {}
    for text in distributed.gather_texts(json.dumps(outcome)):
        every.update({int(k): v for k, v in json.loads(text).items()})
    if ctx.is_main:
        _report(args, every, num_rows=len(rows), processes=ctx.world_size, seconds=time.time() - t0)
    distributed.barrier()
    return 1 if any(o["status"] == "failed" for o in every.values()) else 0


def _clean_killed_rows(pending: list[Row]) -> None:
    """Remove the temporaries a killed run left beside the outputs of these rows (older than an hour:
    :func:`interdyn.support.safe_output.clean_stale_temporaries`)."""
    by_folder: dict[Path, set[str]] = {}
    for row in pending:
        out = Path(row.args.out)
        by_folder.setdefault(out.parent, set()).add(out.name)
    for folder, names in by_folder.items():
        clean_stale_temporaries(folder, names=names)


def _pending_rows(rows: list[Row], manifest, outcome: dict) -> list[Row]:
    """The rows still to generate; rows whose output exists are recorded in ``outcome`` as skipped (a video of
    the row's size from an earlier run) or failed (something else is in the way)."""
    pending = []
    for row in rows:
        if not Path(row.args.out).exists():
            pending.append(row)
            continue
        problem = _not_this_rows_output(row)
        if problem is None:
            outcome[row.number] = {"status": "skipped", "out": row.args.out,
                                   "reason": "output exists (a video of the row's size from an earlier run)"}
        else:
            outcome[row.number] = {"status": "failed", "out": row.args.out, "error": problem}
            print(f"error: --manifest {manifest} {row.label}: {problem}", file=sys.stderr, flush=True)
    return pending


def _generate_rows(pending: list[Row], models, batch_size: int, manifest, outcome: dict, progress) -> None:
    """Generate the rows in batches of compatible rows; a batch that fails is retried row by row, so that one bad
    row fails alone and the others are written. Each row's outcome goes to ``outcome``."""
    def one_by_one(group: list[Row]) -> None:
        for row in group:
            start = time.time()
            try:
                _generate_group([row], models)
            except KeyboardInterrupt:
                raise
            except Exception as err:  # noqa: BLE001 - one bad row must not stop the others; reported below
                text = storage_error(err) or f"{type(err).__name__}: {err}"
                outcome[row.number] = {"status": "failed", "out": row.args.out, "error": text}
                print(f"error: --manifest {manifest} {row.label}: {text}", file=sys.stderr, flush=True)
            else:
                outcome[row.number] = {"status": "written", "out": row.args.out,
                                       "seconds": round(time.time() - start, 2)}
            progress.update(1)

    for group in _groups(pending, batch_size):
        if len(group) == 1:
            one_by_one(group)
            continue
        start = time.time()
        try:
            _generate_group(group, models)
        except KeyboardInterrupt:
            raise
        except Exception:  # noqa: BLE001 - find the failing row(s): the rows again, one at a time
            one_by_one([row for row in group if not Path(row.args.out).exists()])
            continue
        seconds = round((time.time() - start) / len(group), 2)
        for row in group:
            outcome[row.number] = {"status": "written", "out": row.args.out, "seconds": seconds, "batch": len(group)}
        progress.update(len(group))


def _report(args, every: dict[int, dict], *, num_rows: int, processes: int, seconds: float) -> None:
    """Rank 0: the summary line, each failed row, and ``--report`` (JSON, written atomically)."""
    failed = sorted(n for n, o in every.items() if o["status"] == "failed")
    counts = {s: sum(o["status"] == s for o in every.values()) for s in ("written", "skipped", "failed")}
    print(f"manifest {args.manifest}: {num_rows} rows on {processes} process(es): {counts['written']} "
          f"written, {counts['skipped']} skipped (output exists), {counts['failed']} failed; {seconds:.1f}s")
    for n in failed:
        print(f"  row {n} failed: {every[n]['error']}")
    if args.report:
        report = {"manifest": str(args.manifest), "processes": processes, "seconds": round(seconds, 2),
                  "counts": counts, "rows": {str(n): every[n] for n in sorted(every)}}
        write_text_atomic(args.report, json.dumps(report, indent=1) + "\n")
