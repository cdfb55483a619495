"""Writing outputs without destroying what the user did not ask to replace.

Every writer of the project (videos and frame folders, exports, evaluation outputs, probes,
data preparation, training runs) goes through these few rules:

* a **folder** we create gets a marker file (:data:`MARKER`) inside that names its **kind**
  (:data:`OUTPUT_KINDS`: a frame folder, a training run, an evaluation, ...); an existing folder is written
  into (or replaced) only when it is empty or holds an output of the same kind (or, for folders made by older
  versions, one of the files only that command writes there). A command never writes into or replaces another
  command's output: ``generate --out`` on a training run is refused, not a training run lost. A writer that
  replaces the whole folder also names what it writes there (``contents``), and refuses a folder holding
  anything else. Anything else is an :class:`OutputError` naming the folder: a mistyped ``--out`` must never
  delete someone's folder;
* **replacing our own output stays atomic**: the new content is written under a temporary name in
  the same folder and moved into place with :func:`os.replace` (a folder: the old one is moved
  aside first, then removed); on any error the temporary is removed and the old output is intact;
* a single existing **file** is replaced (atomically) only at the path the user gave; derived
  files live inside folders we own.

This module imports nothing heavy and nothing from ComfyUI.
"""
from __future__ import annotations

import contextlib
import errno
import re
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["MARKER", "OUTPUT_KINDS", "OutputError", "folder_kind", "is_ours", "check_output_folder", "claim_output_folder", "mark_folder",
           "replace_folder", "write_text_atomic", "write_bytes_atomic", "check_not_inside", "atomic_file", "atomic_folder",
           "readable_mode", "readable_tree"]

#: The file that says "interdyn made this folder" and which kind of output it is (a ``kind: NAME`` line).
MARKER = ".interdyn-output"

#: Every kind of output folder interdyn writes, with the words messages use for it.
OUTPUT_KINDS = {
    "frames": "the PNG frames of a video (interdyn generate, write_video)",
    "export": "an exported control branch (interdyn export --format official)",
    "training-run": "a training run (interdyn train)",
    "evaluation": "an evaluation (python -m training.evaluate)",
    "dataset": "a prepared dataset (interdyn prepare)",
    "dataset-clip": "one clip of a prepared dataset (interdyn prepare)",
    "probes": "probe results (interdyn probes)",
    "demo": "a demo (interdyn demo)",
    "tiny-models": "tiny test models (interdyn make-tiny)",
}

_MARKER_TEXT = "written by interdyn; outputs of this kind in this folder may be replaced by interdyn\n"
_MARKER_READ_LIMIT = 4096  # a marker is two short lines; never read a large file someone put there


class OutputError(ValueError):
    """An output path is not safe to write: it would destroy something we did not make."""


def _checked_kind(kind: str) -> str:
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"unknown output kind {kind!r}; one of {', '.join(OUTPUT_KINDS)}")
    return kind


def folder_kind(folder: str | os.PathLike) -> str | None:
    """The kind our marker in ``folder`` names; ``""`` for a marker of an older version (no kind line); ``None``
    when there is no marker."""
    marker = Path(folder) / MARKER
    if not marker.is_file():
        return None
    try:
        with open(marker, "rb") as f:
            text = f.read(_MARKER_READ_LIMIT).decode("utf-8", "replace")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("kind:"):
            return line[5:].strip()
    return ""


def is_ours(folder: str | os.PathLike, kind: str, legacy: Iterable[str] = ()) -> bool:
    """True when ``folder`` is an output of ``kind``: our marker names it, or (older outputs, whose marker names no
    kind or which have none) it holds one of the ``legacy`` names only that command writes."""
    folder = Path(folder)
    found = folder_kind(folder)
    if found:
        return found == _checked_kind(kind)
    return any((folder / name).exists() for name in legacy)


def _is_empty(folder: Path) -> bool:
    return next(iter(folder.iterdir()), None) is None


def _foreign_entries(folder: Path, contents) -> list[str]:
    """Names in ``folder`` (besides our marker) that ``contents`` (a regular expression matching the whole name)
    does not allow."""
    pattern = re.compile(contents) if isinstance(contents, str) else contents
    return sorted(e.name for e in folder.iterdir() if e.name != MARKER and not pattern.fullmatch(e.name))


def check_output_folder(path: str | os.PathLike, *, what: str = "output folder", kind: str,
                        legacy: Iterable[str] = (), contents: str | re.Pattern | None = None) -> Path:
    """Raise :class:`OutputError` unless ``path`` is missing, an empty folder or an output of ``kind``
    (:data:`OUTPUT_KINDS`; see :func:`is_ours`).

    ``contents``: for writers that replace the whole folder, a regular expression of every name they write there;
    a folder holding any other name is refused even when it is of the same kind (a file the user put there
    would be deleted). ``what`` is the caller's name for the path (``--out``, ``out_dir``, ...), used in the
    message. Nothing is created or changed.
    """
    path = Path(path)
    kind = _checked_kind(kind)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{what} {path} is a broken symbolic link; give another path")
    if not path.exists():
        return path
    if not path.is_dir():
        raise OutputError(f"{what} {path} is an existing file, not a folder; give a folder name (nothing was "
                          "written)")
    if _is_empty(path):
        return path
    found = folder_kind(path)
    if found and found != kind:
        held = OUTPUT_KINDS.get(found, f"an interdyn output of the kind {found!r}")
        raise OutputError(
            f"{what} {path} holds {held}; this command writes {OUTPUT_KINDS[kind]} and never writes into or "
            "replaces another command's output, nothing was changed. Give a new folder name")
    older = found == "" and contents is not None  # an older marker: the folder's names tell what it is
    if found == kind or older or any((path / name).exists() for name in legacy):
        foreign = _foreign_entries(path, contents) if contents is not None else []
        if foreign:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            raise OutputError(
                f"{what} {path} holds {foreign[0]}{more}, which this command did not write; writing "
                f"{OUTPUT_KINDS[kind]} replaces the whole folder, so it refuses, nothing was changed. Move those "
                "files out or give a new folder name")
        return path
    if found == "":
        raise OutputError(
            f"{what} {path} was made by an older version of interdyn that did not record which command wrote it, "
            f"and nothing in it shows it is {OUTPUT_KINDS[kind]}: refusing to write into or replace it, nothing "
            "was changed. Give a new folder name")
    raise OutputError(
        f"{what} {path} is an existing folder that interdyn did not make (no {MARKER} file in it) and it is not "
        f"empty: refusing to write into or replace it, nothing was changed. Give a new folder name")


def mark_folder(folder: str | os.PathLike, *, kind: str) -> Path:
    """Create ``folder`` (and parents) if needed and put our marker naming ``kind`` in it; returns the folder.
    Call only after :func:`check_output_folder` allowed ``folder`` for ``kind``."""
    folder = Path(folder)
    kind = _checked_kind(kind)
    folder.mkdir(parents=True, exist_ok=True)
    if folder_kind(folder) != kind:  # new, or an older marker without a kind
        write_text_atomic(folder / MARKER, f"{_MARKER_TEXT}kind: {kind}\n")
    return folder


def claim_output_folder(path: str | os.PathLike, *, what: str = "output folder", kind: str,
                        legacy: Iterable[str] = ()) -> Path:
    """:func:`check_output_folder`, then create the folder with our marker. Call before any compute."""
    return mark_folder(check_output_folder(path, what=what, kind=kind, legacy=legacy), kind=kind)


def check_not_inside(path: str | os.PathLike, protected: str | os.PathLike, *, what: str, protected_what: str) -> None:
    """Raise :class:`OutputError` if ``path`` is ``protected`` or lies inside it (symlinks resolved)."""
    p, q = Path(path).resolve(), Path(protected).resolve()
    if p == q or q in p.parents:
        raise OutputError(f"{what} {path} is {'the' if p == q else 'inside the'} {protected_what} {protected}: "
                          "writing there could destroy it; give a path outside it (nothing was written)")


def replace_folder(tmp: str | os.PathLike, path: str | os.PathLike, *, what: str = "output folder", kind: str,
                   legacy: Iterable[str] = (), contents: str | re.Pattern | None = None, mark: bool = True) -> Path:
    """Move the finished folder ``tmp`` to ``path`` (marking it an output of ``kind`` unless ``mark`` is False),
    replacing our own old output of that kind there.

    An existing ``path`` that :func:`check_output_folder` refuses raises :class:`OutputError` and ``tmp`` is
    left for the caller to remove. The old folder is moved aside first and only removed after the
    new one is in place.
    """
    tmp, path = Path(tmp), Path(path)
    check_output_folder(path, what=what, kind=kind, legacy=legacy, contents=contents)
    if mark:
        mark_folder(tmp, kind=kind)
    if not path.exists():
        os.replace(tmp, path)
        return path
    old = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.old"  # ours, removed below
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return path


def readable_mode(path: str | os.PathLike) -> None:
    """Give a file we wrote the mode a new file gets under the user's umask (``0666 & ~umask``): temporary
    files are created private (0600) and a rename keeps that, so a ComfyUI service account could not read a
    branch another user exported."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def readable_tree(folder: str | os.PathLike) -> Path:
    """:func:`readable_mode` for every file under ``folder`` (a model folder we just wrote: safetensors'
    writer creates its files 0600 whatever the umask)."""
    folder = Path(folder)
    for f in folder.rglob("*"):
        if f.is_file() and not f.is_symlink():
            readable_mode(f)
    return folder


#: errno values that mean "this disk cannot take the file", whatever the writer
_STORAGE_ERRNOS = {errno.ENOSPC: "the disk is full (no space left on device)",
                   errno.EDQUOT: "the disk quota is exceeded",
                   errno.EROFS: "the file system is read-only",
                   errno.EFBIG: "the file is larger than the file system allows"}
# writers that do not raise OSError say it in their message (safetensors: "No space left on device (os error 28)")
_STORAGE_TEXT = (("no space left on device", errno.ENOSPC), ("os error 28", errno.ENOSPC),
                 ("disk quota exceeded", errno.EDQUOT), ("read-only file system", errno.EROFS))


def storage_error(err: BaseException) -> str | None:
    """One line for an error that means the disk could not take a write (full, quota, read-only), else ``None``.

    Every writer in this project writes under a temporary name and renames it into place
    (:func:`atomic_file`), so such an error leaves the earlier file as it was: the line says so.
    """
    code = getattr(err, "errno", None)
    if code not in _STORAGE_ERRNOS:
        text = str(err).lower()
        code = next((c for needle, c in _STORAGE_TEXT if needle in text), None)
        cause = err.__cause__ or err.__context__
        if code is None and cause is not None and cause is not err:
            return storage_error(cause)
    if code not in _STORAGE_ERRNOS:
        return None
    where = getattr(err, "filename", None)
    if where:  # our temporary names, ".NAME.<8 hex>.tmp" and ".STEM.<8 hex>.tmp.EXT": say the file the user asked for
        path = Path(where)
        m = re.fullmatch(r"\.(.+)\.[0-9a-f]{8}\.tmp(\.[^.]+)?", path.name)
        where = path.with_name(m.group(1) + (m.group(2) or "")) if m else path
    where = f" writing {where}" if where else ""
    return (f"{_STORAGE_ERRNOS[code]}{where}: nothing was replaced (files are written under a temporary name and "
            "renamed only when complete); free some space, or choose another output folder, and run again")


def storage_message_or_raise(err: BaseException) -> str:
    """Inside an ``except Exception`` of a command's entry point: :func:`storage_error`'s line for ``err``, or
    ``err`` raised again when it is not a storage error (a bug keeps its traceback)."""
    message = storage_error(err)
    if message is None:
        raise err
    return message


def _temporary_name(path: Path, keep_suffix: bool = False) -> Path:
    """The hidden temporary name beside ``path``: ``.NAME.<8 hex>.tmp``, or ``.STEM.<8 hex>.tmp.EXT`` when the
    writer needs the extension (video encoders pick the container by it); :func:`storage_error` maps both back."""
    tag = uuid.uuid4().hex[:8]
    if keep_suffix and path.suffix:
        return path.parent / f".{path.stem}.{tag}.tmp{path.suffix}"
    return path.parent / f".{path.name}.{tag}.tmp"


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, keep_suffix: bool = False) -> Iterator[Path]:
    """``with atomic_file(path) as tmp: write(tmp)``: ``tmp`` is a temporary name in ``path``'s folder, renamed
    onto ``path`` with the umask's mode when the block succeeds and removed when it fails (the old ``path``
    is then intact). ``keep_suffix``: the temporary name ends with ``path``'s extension."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write the file {path}: a folder of that name is in the way (nothing was changed)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path, keep_suffix)
    try:
        yield tmp
        readable_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, what: str = "output folder", kind: str, legacy: Iterable[str] = (),
                  contents: str | re.Pattern | None = None, mark: bool = True) -> Iterator[Path]:
    """``with atomic_folder(path, kind=...) as tmp: write files into tmp``: the folder appears whole or not at all.

    ``path`` is checked first (:func:`check_output_folder`: missing, empty, or an output of ``kind`` holding only
    ``contents``). ``tmp`` is a new hidden folder beside it; when the block succeeds its files get the umask's
    mode and it replaces ``path`` (:func:`replace_folder`, which marks it; with ``mark=False`` no marker is
    written, for folders read by others, e.g. dataset clips). On any error ``tmp`` is removed and the old
    ``path`` is intact."""
    path = Path(path)
    check_output_folder(path, what=what, kind=kind, legacy=legacy, contents=contents)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    tmp.mkdir()
    try:
        yield tmp
        readable_tree(tmp)
        replace_folder(tmp, path, what=what, kind=kind, legacy=legacy, contents=contents, mark=mark)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` under a temporary name in the same folder, then rename it into place."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """:func:`write_bytes_atomic` of UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"))
