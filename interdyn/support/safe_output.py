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
  files live inside folders we own;
* a **set** of outputs written together (a video and its comparison, the demo's videos and contact sheet, an
  evaluation's tables) is replaced as a whole or not at all (:func:`atomic_files`, :func:`move_into_place`);
* every command checks each output path first (:func:`check_output_path`: name and path length, parents that are
  files, devices, FIFOs and sockets, read-only folders), and removes the temporaries a killed run left
  (:func:`clean_stale_temporaries`); errors that mean the disk could not take a write become one line
  (:func:`storage_error`).

This module imports nothing heavy and nothing from ComfyUI.
"""
from __future__ import annotations

import contextlib
import errno
import re
import os
import shutil
import stat
import time
import uuid
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["MARKER", "OUTPUT_KINDS", "OutputError", "folder_kind", "is_ours", "check_output_folder", "claim_output_folder", "mark_folder",
           "replace_folder", "write_text_atomic", "write_bytes_atomic", "check_not_inside", "atomic_file", "atomic_folder",
           "atomic_files", "move_into_place", "temporary_name", "is_temporary_name", "clean_stale_temporaries",
           "STALE_AFTER_S", "check_output_path", "readable_mode", "readable_tree", "storage_error",
           "storage_message_or_raise", "special_file_kind"]

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


def is_ours(folder: str | os.PathLike, kind: str, signature_files: Iterable[str] = ()) -> bool:
    """True when ``folder`` is an output of ``kind``: our marker names it, or (older outputs, whose marker names no
    kind or which have none) it holds one of the ``signature_files``: names only that command writes there."""
    folder = Path(folder)
    found = folder_kind(folder)
    if found:
        return found == _checked_kind(kind)
    return any((folder / name).exists() for name in signature_files)


def _is_empty(folder: Path) -> bool:
    return next(iter(folder.iterdir()), None) is None


def _foreign_entries(folder: Path, contents) -> list[str]:
    """Names in ``folder`` (besides our marker) that ``contents`` (a regular expression matching the whole name)
    does not allow."""
    pattern = re.compile(contents) if isinstance(contents, str) else contents
    return sorted(e.name for e in folder.iterdir() if e.name != MARKER and not pattern.fullmatch(e.name))


def check_output_folder(path: str | os.PathLike, *, what: str = "output folder", kind: str,
                        signature_files: Iterable[str] = (), contents: str | re.Pattern | None = None) -> Path:
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
    if found == kind or older or any((path / name).exists() for name in signature_files):
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
                        signature_files: Iterable[str] = ()) -> Path:
    """:func:`check_output_folder`, then create the folder with our marker. Call before any compute."""
    return mark_folder(check_output_folder(path, what=what, kind=kind, signature_files=signature_files), kind=kind)


def check_not_inside(path: str | os.PathLike, protected: str | os.PathLike, *, what: str, protected_what: str) -> None:
    """Raise :class:`OutputError` if ``path`` is ``protected`` or lies inside it (symlinks resolved)."""
    p, q = Path(path).resolve(), Path(protected).resolve()
    if p == q or q in p.parents:
        raise OutputError(f"{what} {path} is {'the' if p == q else 'inside the'} {protected_what} {protected}: "
                          "writing there could destroy it; give a path outside it (nothing was written)")


def replace_folder(tmp: str | os.PathLike, path: str | os.PathLike, *, what: str = "output folder", kind: str,
                   signature_files: Iterable[str] = (), contents: str | re.Pattern | None = None,
                   mark: bool = True) -> Path:
    """Move the finished folder ``tmp`` to ``path`` (marking it an output of ``kind`` unless ``mark`` is False),
    replacing our own old output of that kind there.

    An existing ``path`` that :func:`check_output_folder` refuses raises :class:`OutputError` and ``tmp`` is
    left for the caller to remove. The old folder is moved aside first and only removed after the
    new one is in place.
    """
    tmp, path = Path(tmp), Path(path)
    check_output_folder(path, what=what, kind=kind, signature_files=signature_files, contents=contents)
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


#: errno values that mean "this disk cannot take the file", whatever the writer, and what the user can do
_STORAGE_ERRNOS = {errno.ENOSPC: ("the disk is full (no space left on device)",
                                  "free some space, or choose an output folder on another disk, and run again"),
                   errno.EDQUOT: ("the disk quota is exceeded", "free some space within your quota, or choose "
                                  "another output folder, and run again"),
                   errno.EROFS: ("the file system is read-only", "choose an output folder on a writable file system, "
                                 "or remount it writable, and run again"),
                   errno.EFBIG: ("the file is larger than the file system or the file-size limit allows",
                                 "raise the limit (ulimit -f) or choose an output folder on another file system, and "
                                 "run again")}
#: a write that failed without saying why: torch's zip writer checks its position after the OS refused a write
_WRITE_FAILED = -1
_STORAGE_MESSAGES = {**_STORAGE_ERRNOS, _WRITE_FAILED: (
    "the disk could not take the file (it is full, or the file is above a file-size limit)",
    "free some space or raise the limit (ulimit -f), or choose an output folder on another disk, and run again")}
# writers that do not raise OSError say it in their message: safetensors ("No space left on device (os error 28)",
# "File too large (os error 27)"), torch.save ("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
_STORAGE_TEXT = (("no space left on device", errno.ENOSPC), ("os error 28", errno.ENOSPC),
                 ("disk quota exceeded", errno.EDQUOT), ("os error 122", errno.EDQUOT),
                 ("read-only file system", errno.EROFS), ("os error 30", errno.EROFS),
                 ("file too large", errno.EFBIG), ("os error 27", errno.EFBIG),
                 ("inline_container.cc", _WRITE_FAILED), ("pytorchstreamwriter failed writing", _WRITE_FAILED))


def _storage_code(err: BaseException, depth: int = 0) -> tuple[int | None, BaseException]:
    """The storage errno ``err`` (or an error it was raised from) stands for, and that error; ``None`` if it is
    no storage error."""
    code = getattr(err, "errno", None)
    if code in _STORAGE_ERRNOS:
        return code, err
    text = str(err).lower()
    code = next((c for needle, c in _STORAGE_TEXT if needle in text), None)
    if code is not None:
        return code, err
    cause = err.__cause__ or err.__context__
    if cause is not None and cause is not err and depth < 8:
        return _storage_code(cause, depth + 1)
    return None, err


def _user_path(path: Path) -> Path:
    """The path the user asked for, from one with our temporary names in it (:func:`temporary_name`, the staging
    folders of :func:`atomic_files`): ``out/.clip.mp4.1a2b3c4d.tmp/.clip.5e6f7a8b.tmp.mp4`` -> ``out/clip.mp4``."""
    def plain(part: str) -> str:
        m = _TEMPORARY.fullmatch(part)
        return m.group("name") + (m.group("ext") or "") if m else part

    parts = list(path.parts)
    kept = []
    for i, part in enumerate(parts):
        if _TEMPORARY.fullmatch(part) and i + 1 < len(parts) and plain(parts[i + 1]) == plain(part):
            continue  # a staging folder holding the output itself
        kept.append(plain(part))
    return Path(*kept) if kept else path


def storage_error(err: BaseException, target: str | os.PathLike | None = None) -> str | None:
    """One line for an error that means the disk could not take a write (full, quota, read-only, a file-size
    limit), else ``None``; ``target``: the output the command was writing (a file, or a folder it writes into),
    named when the error does not say which file.

    Every writer in this project writes under a temporary name and renames it into place (:func:`atomic_file`,
    :func:`atomic_files`), so such an error leaves the earlier file as it was: the line says so.
    """
    code, found = _storage_code(err)
    if code is None:
        return None
    cause, advice = _STORAGE_MESSAGES[code]
    where = getattr(found, "filename", None) or getattr(err, "filename", None)
    if where:  # our temporary names: say the file the user asked for
        where = f" writing {_user_path(Path(os.fsdecode(where)))}"
    elif target is not None:
        where = f" writing {target}"
    else:
        where = ""
    return (f"{cause}{where}: nothing was replaced (files are written under a temporary name and renamed only when "
            f"complete); {advice}")


def storage_message_or_raise(err: BaseException, target: str | os.PathLike | None = None) -> str:
    """Inside an ``except Exception`` of a command's entry point: :func:`storage_error`'s line for ``err`` (naming
    ``target`` when the error names no file), or ``err`` raised again when it is not a storage error (a bug keeps
    its traceback)."""
    message = storage_error(err, target)
    if message is None:
        raise err
    return message


# ---------------------------------------------------------------------------- temporary names and stale ones
#: our temporary names: ``.NAME.<8 hex>.tmp`` (a file or a staging folder), ``.STEM.<8 hex>.tmp.EXT`` (a file whose
#: writer needs the extension) and ``.NAME.<8 hex>.old`` (an earlier output moved aside while it is replaced)
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<tag>[0-9a-f]{8})\.(?:tmp(?P<ext>\.[^./]+)?|old)")

#: a temporary of ours this old (seconds) in a folder no run holds a lock on is left by a killed run
STALE_AFTER_S = 3600.0


def temporary_name(path: str | os.PathLike, *, keep_suffix: bool = False, tag: str | None = None) -> Path:
    """The hidden temporary name beside ``path``: ``.NAME.<8 hex>.tmp``, or ``.STEM.<8 hex>.tmp.EXT`` when the
    writer needs the extension (video encoders pick the container by it); :func:`storage_error` maps both back and
    :func:`clean_stale_temporaries` recognises them. ``tag``: the 8 hex digits (the same on every rank of a run),
    else random."""
    path = Path(path)
    tag = uuid.uuid4().hex[:8] if tag is None else tag
    if not re.fullmatch(r"[0-9a-f]{8}", tag):
        raise ValueError(f"a temporary name's tag is 8 hexadecimal digits, got {tag!r}")
    if keep_suffix and path.suffix:
        return path.parent / f".{path.stem}.{tag}.tmp{path.suffix}"
    return path.parent / f".{path.name}.{tag}.tmp"


def is_temporary_name(name: str) -> bool:
    """True for the names :func:`temporary_name` (and the moved-aside ``.NAME.<8 hex>.old``) make."""
    return _TEMPORARY.fullmatch(name) is not None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stale_temporaries(folder: str | os.PathLike, *, older_than: float | None = STALE_AFTER_S,
                            names: Iterable[str] | None = None, recursive: bool = False) -> list[Path]:
    """Remove our own temporaries (:func:`temporary_name`) that a killed run left in ``folder``; returns them.

    ``older_than``: only those not changed for that many seconds (a folder nobody holds a lock on: a run writing
    there now is younger); ``None`` or 0: all of them (the caller holds the folder's lock, so no other run writes
    there). ``names``: only the temporaries of these output names (``clip.mp4`` -> ``.clip.mp4.<8 hex>.tmp``,
    ``.clip.<8 hex>.tmp.mp4``). ``recursive``: also in sub-folders (not following links). Nothing else is touched;
    a folder that cannot be read is skipped."""
    folder = Path(folder)
    wanted = None if names is None else set(names)
    now = time.time()
    removed: list[Path] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            m = _TEMPORARY.fullmatch(entry.name)
            if m is None:
                if recursive and entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                continue
            if wanted is not None and m.group("name") + (m.group("ext") or "") not in wanted:
                continue
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            if older_than and age < older_than:
                continue
            _remove(Path(entry.path))
            removed.append(Path(entry.path))
    return removed


# ---------------------------------------------------------------------------- checking an output path
#: the longest name of one path component and of a whole path (Linux; macOS allows 1024 for the path)
NAME_MAX, PATH_MAX = 255, 4096


def _name_limits(folder: Path) -> tuple[int, int]:
    try:
        return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        return NAME_MAX, PATH_MAX


def special_file_kind(mode: int) -> str | None:
    """What a file that is neither a regular file nor a folder is (``"a named pipe (FIFO)"``, ``"a character
    device"``, ...), from its ``st_mode``; ``None`` for a regular file or a folder. The outputs' check and the inputs'
    (:func:`interdyn.support.validation.check_input_path`) name such files with it."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode) else
            "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a special file")


def check_output_path(path: str | os.PathLike, what: str, *, folder: bool | None = None) -> Path:
    """The one check every command runs on each output path before any work; raises :class:`OutputError` in one
    line naming ``what`` (the caller's flag or key).

    Refused: a name longer than the file system allows (255 bytes) or a path longer than ``PATH_MAX``; a parent
    that is a file (or anything but a folder); an existing output that is not a regular file or folder (a device
    such as ``/dev/null``, a FIFO, a socket: writing "there" would replace it); a folder where a file is written
    (``folder=False``) or a file where a folder is (``folder=True``); a parent folder on a read-only file system
    or not writable. Nothing is created or changed. Returns ``path`` as a :class:`~pathlib.Path`."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        raise OutputError(f"{what} is empty; give a file or folder name")
    path = Path(text)
    absolute = Path(os.path.abspath(path))
    existing = absolute
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    name_max, path_max = _name_limits(existing if existing.is_dir() else existing.parent)
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > name_max:
            raise OutputError(f"{what} {part[:40]}...: that name is {size} bytes long and file systems allow "
                              f"{name_max}; give a shorter name (nothing was written)")
    if len(os.fsencode(str(absolute))) >= path_max:
        raise OutputError(f"{what}: the path is {len(os.fsencode(str(absolute)))} bytes long and this system allows "
                          f"{path_max - 1}; give a shorter path (nothing was written)")
    # every existing folder above the path must be a folder (a file or a FIFO as a parent cannot hold it)
    for parent in reversed(absolute.parents):
        if not os.path.lexists(parent):
            break
        if not parent.is_dir():
            kind = ("a file" if parent.is_file() else special_file_kind(os.stat(parent).st_mode) if parent.exists()
                    else "a broken symbolic link")
            raise OutputError(f"{what} {path}: {parent} is {kind}, not a folder, so nothing can be written inside it; "
                              "give another path (nothing was written)")
    if os.path.lexists(absolute):
        try:
            mode = os.stat(absolute).st_mode
        except OSError:
            mode = None  # a broken link: the writers refuse it with their own message
        kind = None if mode is None else special_file_kind(mode)
        if kind:
            raise OutputError(f"{what} {path} is {kind}, not a regular file or folder: an output never replaces it; "
                              "give a file or folder name (nothing was written)")
        if folder is False and mode is not None and stat.S_ISDIR(mode):
            raise OutputError(f"{what} {path} is an existing folder; give a file name (nothing was written)")
        if folder is True and mode is not None and stat.S_ISREG(mode):
            raise OutputError(f"{what} {path} is an existing file, not a folder; give a folder name (nothing was "
                              "written)")
    if absolute.is_dir() and folder is not False:
        writable = absolute  # written into
    else:
        writable = absolute.parent
        while not os.path.lexists(writable) and writable != writable.parent:
            writable = writable.parent
    if writable.is_dir():
        try:
            read_only = bool(os.statvfs(writable).f_flag & os.ST_RDONLY)
        except (OSError, AttributeError):
            read_only = False
        if read_only:
            raise OutputError(f"{what} {path}: {writable} is on a read-only file system; choose an output on a "
                              "writable one (nothing was written)")
        if not os.access(writable, os.W_OK | os.X_OK):
            raise OutputError(f"{what} {path}: cannot write into {writable} (not a writable folder); choose another "
                              "output (nothing was written)")
    return path


# ---------------------------------------------------------------------------- atomic writers
@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, keep_suffix: bool = False) -> Iterator[Path]:
    """``with atomic_file(path) as tmp: write(tmp)``: ``tmp`` is a temporary name in ``path``'s folder, renamed
    onto ``path`` with the umask's mode when the block succeeds and removed when it fails (the old ``path``
    is then intact). ``keep_suffix``: the temporary name ends with ``path``'s extension."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write the file {path}: a folder of that name is in the way (nothing was changed)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path, keep_suffix=keep_suffix)
    try:
        yield tmp
        readable_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _set_aside(path: Path, tag: str) -> Path:
    """Move (a folder) or hard-link (a file: it stays in place until the new one replaces it) ``path`` to
    ``.NAME.<tag>.old`` beside it; returns that name."""
    old = path.parent / f".{path.name}.{tag}.old"
    if path.is_file() and not path.is_symlink():
        try:
            os.link(path, old)
            return old
        except OSError:  # no hard links here (some network and FAT file systems): move it instead
            pass
    os.replace(path, old)
    return old


def move_into_place(pairs: Iterable[tuple[str | os.PathLike, str | os.PathLike]], *,
                    tag: str | None = None) -> list[Path]:
    """Move each finished ``(temporary, final)`` file or folder into place: all of them, or none.

    Every existing final path is set aside first (``.NAME.<tag>.old``), then each temporary is renamed onto its
    final path; if any step fails, the temporaries that were moved go back to their temporary names and every old
    output is restored, and the error is raised (the caller removes the temporaries). The old outputs are removed
    last. An existing final folder is replaced only by a folder whose marker names the same kind, and a file only
    by a file. Returns the final paths."""
    pairs = [(Path(t), Path(p)) for t, p in pairs]
    tag = uuid.uuid4().hex[:8] if tag is None else tag
    for tmp, path in pairs:
        if not os.path.lexists(tmp):
            raise OutputError(f"{path}: its temporary {tmp.name} was not written")
        if os.path.lexists(path):
            if path.is_dir() != tmp.is_dir():
                kind = "folder" if path.is_dir() else "file"
                raise OutputError(f"cannot write {path}: a {kind} of that name is in the way (nothing was changed)")
            if path.is_dir() and folder_kind(path) != folder_kind(tmp):
                raise OutputError(f"cannot replace the folder {path}: it is not an output of the kind written there "
                                  "(nothing was changed)")
    aside: list[tuple[Path, Path]] = []
    placed: list[tuple[Path, Path]] = []
    try:
        for tmp, path in pairs:
            if os.path.lexists(path):
                aside.append((path, _set_aside(path, tag)))
        for tmp, path in pairs:
            os.replace(tmp, path)
            placed.append((tmp, path))
    except BaseException:
        for tmp, path in reversed(placed):
            with contextlib.suppress(OSError):
                os.replace(path, tmp)
        for path, old in reversed(aside):
            with contextlib.suppress(OSError):
                os.replace(old, path)
        raise
    for _, old in aside:
        _remove(old)
    return [path for _, path in pairs]


@contextlib.contextmanager
def atomic_files(paths: Iterable[str | os.PathLike]) -> Iterator[list[Path]]:
    """``with atomic_files([a, b]) as (tmp_a, tmp_b): write each``: a set of outputs replaced as a whole or not at all.

    Each yielded path has its output's own name (the writer sees the extension, or none for a frame folder) inside a
    hidden staging folder beside it (``.NAME.<8 hex>.tmp``, on the same file system). When the block succeeds,
    every written file gets the umask's mode and :func:`move_into_place` puts them all in place; when the block or
    a rename fails (a full disk on the third file), every staging folder is removed and every earlier output is
    left exactly as it was. Two outputs may not share a path."""
    paths = [Path(p) for p in paths]
    if len({p.absolute() for p in paths}) != len(paths):
        raise OutputError(f"two outputs of one set share a path: {[str(p) for p in paths]}")
    for path in paths:
        if path.is_dir() and path.suffix:
            raise OutputError(f"cannot write the file {path}: a folder of that name is in the way (nothing was "
                              "changed)")
    tag = uuid.uuid4().hex[:8]
    stages: list[Path] = []
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            stage = temporary_name(path, tag=tag)
            stage.mkdir()
            stages.append(stage)
        temporaries = [stage / path.name for stage, path in zip(stages, paths)]
        yield temporaries
        for tmp in temporaries:
            if tmp.is_dir():
                readable_tree(tmp)
            elif tmp.exists():
                readable_mode(tmp)
        move_into_place(zip(temporaries, paths), tag=tag)
    finally:
        for stage in stages:
            shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, what: str = "output folder", kind: str,
                  signature_files: Iterable[str] = (), contents: str | re.Pattern | None = None,
                  mark: bool = True) -> Iterator[Path]:
    """``with atomic_folder(path, kind=...) as tmp: write files into tmp``: the folder appears whole or not at all.

    ``path`` is checked first (:func:`check_output_folder`: missing, empty, or an output of ``kind`` holding only
    ``contents``). ``tmp`` is a new hidden folder beside it; when the block succeeds its files get the umask's
    mode and it replaces ``path`` (:func:`replace_folder`, which marks it; with ``mark=False`` no marker is
    written, for folders read by others, e.g. dataset clips). On any error ``tmp`` is removed and the old
    ``path`` is intact."""
    path = Path(path)
    check_output_folder(path, what=what, kind=kind, signature_files=signature_files, contents=contents)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    tmp.mkdir()
    try:
        yield tmp
        readable_tree(tmp)
        replace_folder(tmp, path, what=what, kind=kind, signature_files=signature_files, contents=contents, mark=mark)
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
