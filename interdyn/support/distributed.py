"""Work over many items spread across torchrun / accelerate processes: ranks, shards, barriers, one lock.

The launchers (``torchrun``, ``python -m torch.distributed.run``, ``accelerate launch``) start one process
per GPU and tell each its place in the environment: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and
``MASTER_ADDR`` / ``MASTER_PORT`` for the process group). This module reads them; with none set it is
one process of one (rank 0 of 1) and nothing here needs :mod:`torch.distributed`.

The pattern every multi-item command follows (evaluation, data preparation, ``interdyn generate
--manifest``):

1. :func:`init` (joins the process group when ``WORLD_SIZE > 1``);
2. :class:`OutputLock` on the output folder: rank 0 claims the folder and writes a lock file naming
   this run; a second, separate run on the same folder gets a clear error instead of racing;
3. :func:`shard`: each rank takes every ``world_size``-th item of one deterministic list. Which rank
   does an item never changes the item's result (per-item seeds come from the item, never the rank),
   so the assignment only balances the load;
4. each item is written atomically and skipped when already there (a killed run loses at most the
   items in flight; a rerun with any number of processes finishes the rest);
5. :func:`barrier`, then rank 0 pools / merges once.

Stale locks: the lock file holds the host and process id of rank 0, and it appears whole or not at all (written
under a temporary name, then hard-linked into place; a lock that cannot be written, on a full disk, is never left
behind). A lock left by a killed run on the same host (that process id is gone), or an empty or unreadable one (left
by older versions on a full disk), is taken over with a one-line notice; a lock from another host cannot be checked
from here, and its error says which file to delete once no run is writing the folder. The run that takes the lock
removes the temporaries (:func:`interdyn.support.safe_output.clean_stale_temporaries`) and per-run progress files
that killed runs left in the folder: while it holds the lock no other run writes there.

Imports nothing heavy at module level (torch only inside the functions that need it).
"""
from __future__ import annotations

import atexit
import contextlib
import errno
import json
import os
import shutil
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from .safe_output import OutputError, clean_stale_temporaries, temporary_name, write_text_atomic

__all__ = ["Context", "context", "init", "barrier", "shard", "broadcast_text", "gather_texts", "rank_device", "OutputLock",
           "OutputBusyError", "LOCK_NAME", "ProgressFiles"]

T = TypeVar("T")

#: the lock file a run keeps in its output folder while it writes there
LOCK_NAME = ".interdyn-lock"


@dataclass(frozen=True)
class Context:
    """This process's place among the launched ones."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(env, name: str, default: int) -> int:
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer (set by torchrun/accelerate "
                         "launch; unset it to run one process)") from None


def _dist():
    try:
        import torch.distributed as dist  # on use, and optional (builds without it)
    except ImportError:  # pragma: no cover - torch without distributed support
        return None
    return dist if dist.is_available() else None


def context(env=None) -> Context:
    """Rank, world size and local rank: from the process group when one is initialised, else from the
    launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), else 0 of 1."""
    dist = _dist()
    if env is None and dist is not None and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size(), _env_int(os.environ, "LOCAL_RANK", 0))
    env = os.environ if env is None else env
    world = _env_int(env, "WORLD_SIZE", 1)
    rank = _env_int(env, "RANK", 0)
    local = _env_int(env, "LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK={rank} and WORLD_SIZE={world} do not describe a process of a launched group "
                         "(need 0 <= RANK < WORLD_SIZE)")
    return Context(rank, world, local)


def _backend_device(dist):
    import torch  # on use: the locks and shards of this module need no torch

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def init(backend: str | None = None, device: str | None = None) -> Context:
    """Join the launcher's process group when ``WORLD_SIZE > 1`` (no-op when already joined or alone).

    ``backend`` defaults to NCCL when ``device`` is CUDA (then the CUDA device is ``LOCAL_RANK``), else gloo.
    Gloo is enough for what this module sends (a barrier and a few bytes) whatever the compute device.
    """
    ctx = context()
    dist = _dist()
    if ctx.world_size == 1 or dist is None or dist.is_initialized():
        return ctx
    if backend is None:
        backend = "nccl" if device is not None and str(device).startswith("cuda") else "gloo"
    if backend == "nccl":
        import torch  # on use: the locks and shards of this module need no torch

        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(backend=backend, init_method="env://")
    atexit.register(_leave, dist)
    return context()


def _leave(dist) -> None:
    """Destroy the process group :func:`init` created while the interpreter is still whole.

    Left to interpreter shutdown, gloo's worker threads are torn down after Python and a process that did all its
    work can still die with ``terminate called without an active exception`` (SIGABRT; pytorch issue 190489),
    which torchrun reports as a failed run. Local only for gloo; a no-op when already destroyed.
    """
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op with one process or no process group)."""
    dist = _dist()
    if dist is not None and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def broadcast_text(text: str, src: int = 0) -> str:
    """Rank ``src``'s ``text`` on every rank (UTF-8 bytes in a tensor; no pickling)."""
    dist = _dist()
    if dist is None or not dist.is_initialized() or dist.get_world_size() == 1:
        return text
    import torch  # on use: the locks and shards of this module need no torch

    device = _backend_device(dist)
    data = text.encode("utf-8") if dist.get_rank() == src else b""
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    dist.broadcast(size, src)
    buf = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if dist.get_rank() == src and data:
        buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buf, src)
    return bytes(buf.cpu().tolist()).decode("utf-8")


def gather_texts(text: str) -> list[str]:
    """Every rank's ``text``, in rank order, on every rank (UTF-8 bytes in tensors; no pickling)."""
    dist = _dist()
    if dist is None or not dist.is_initialized() or dist.get_world_size() == 1:
        return [text]
    import torch  # on use: the locks and shards of this module need no torch

    device = _backend_device(dist)
    data = text.encode("utf-8")
    world = dist.get_world_size()
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = max(int(s.item()) for s in sizes)
    buf = torch.zeros(longest, dtype=torch.uint8, device=device)
    if data:
        buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(device)
    bufs = [torch.zeros_like(buf) for _ in range(world)]
    dist.all_gather(bufs, buf)
    return [bytes(b[: int(n.item())].cpu().tolist()).decode("utf-8") for b, n in zip(bufs, sizes)]


def shard(items: Sequence[T], ctx: Context | None = None) -> list[T]:
    """This rank's items: every ``world_size``-th of ``items`` from position ``rank``.

    ``items`` must be in the same deterministic order on every rank (sorted ids, a manifest's rows). The
    shards of all ranks partition ``items``; which rank gets an item depends on N but an item's result
    must not (derive per-item seeds from the item, never from the rank).
    """
    ctx = ctx or context()
    return list(items)[ctx.rank::ctx.world_size]


def rank_device(device) -> str:
    """``cuda`` -> ``cuda:LOCAL_RANK`` when several processes were launched (one GPU each); else as given."""
    text = str(device)
    ctx = context()
    if ctx.world_size > 1 and text == "cuda":
        return f"cuda:{ctx.local_rank}"
    return text


# ---------------------------------------------------------------------------- the output-folder lock
class OutputBusyError(OutputError):
    """Another run is writing the same output folder."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


#: folders of per-run files inside a locked output folder (:class:`ProgressFiles`, data preparation's counts)
RUN_FILE_FOLDERS = (".interdyn-progress", ".interdyn-parts")
_LOCK_READ_LIMIT = 4096  # a lock is one short JSON line
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


class OutputLock:
    """``with OutputLock(folder, what="--out", claim=fn) as lock:`` one run at a time per output folder.

    Rank 0 calls ``claim(folder)`` (e.g. :func:`interdyn.support.safe_output.claim_output_folder`: refuse a folder
    we did not make) and then creates ``folder/.interdyn-lock`` (``name``) naming a fresh run id, host and process
    id: written whole under a temporary name and hard-linked into place, so the lock exists only complete (a write
    that fails, on a full disk, leaves no lock). A lock whose process is gone (same host) or that is empty or
    unreadable is taken over with a notice. ``subject``: what messages say is taken (default ``what`` and the
    folder). With ``clean`` (output folders of ours), rank 0 then removes the
    temporaries and per-run files that killed runs left in the folder. The run id is sent to the other ranks, which
    check that the lock file names it (the output folder must be on storage every rank sees). An error on rank 0 (a
    foreign folder, a busy folder) is raised on every rank, so no rank waits forever. On exit rank 0 removes the lock
    if it is still ours. ``lock.run_id`` names this run (for per-run temporary files).
    """

    def __init__(self, folder, *, what: str = "output folder", claim: Callable[[Path], object] | None = None,
                 ctx: Context | None = None, name: str = LOCK_NAME, clean: bool = True, subject: str | None = None):
        self.folder, self.what, self.claim = Path(folder), what, claim
        self.subject = subject or f"{what} {self.folder}"  # what messages say is taken
        self.ctx = ctx or context()
        self.path = self.folder / name
        self.clean = clean
        self.run_id = ""

    # rank 0 -------------------------------------------------------------
    def _describe(self, info: dict) -> str:
        started = info.get("started")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) \
            else "?"
        return (f"run {info.get('run_id', '?')} (host {info.get('host', '?')}, process {info.get('pid', '?')}, "
                f"{info.get('world_size', '?')} process(es), started {when})")

    @staticmethod
    def _read_bytes(path: Path) -> bytes | None:
        """The lock's bytes (``None`` when it is gone); never blocks, whatever the file is."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        try:
            return os.read(fd, _LOCK_READ_LIMIT)
        finally:
            os.close(fd)

    @staticmethod
    def _parse(data: bytes | None) -> dict | None:
        try:
            info = json.loads(data.decode("utf-8")) if data else None
        except (UnicodeDecodeError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    @staticmethod
    def _stale_reason(info: dict | None) -> str | None:
        """Why the lock described by ``info`` is left by a run that is gone, or ``None`` when it may be alive."""
        if info is None:
            return "the lock file is empty or unreadable (a run that stopped while writing it)"
        pid = info.get("pid")
        if info.get("host") == socket.gethostname() and isinstance(pid, int) and not isinstance(pid, bool) \
                and pid != os.getpid() and not _pid_alive(pid):
            return f"its process {pid} is gone"
        return None

    def _write_exclusive(self, data: bytes) -> bool:
        """Without hard links: create the lock exclusively and write it, removing it again if the write fails."""
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        return True

    def _write_whole(self, data: bytes) -> bool:
        """Create the lock holding ``data``, whole, if there is none; ``False`` when one exists."""
        tmp = temporary_name(self.path)
        try:
            with open(tmp, "xb") as f:  # a full disk fails here, before any lock exists
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, self.path)  # atomic, and refuses an existing lock
            except FileExistsError:
                return False
            except OSError as err:
                if err.errno not in _NO_HARD_LINKS:
                    raise
                return self._write_exclusive(data)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def _take_over(self, seen: bytes | None) -> bool:
        """Remove the stale lock whose bytes were ``seen``, unless another run replaced it meanwhile (then it is put
        back); ``True`` when it was removed."""
        aside = temporary_name(self.path)
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True  # another run took it over first: try again
        if self._read_bytes(aside) != seen:  # a fresh lock of another run: give it back
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
            aside.unlink(missing_ok=True)
            return False
        aside.unlink(missing_ok=True)
        return True

    def _create(self) -> str:
        run_id = uuid.uuid4().hex[:12]
        info = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
                "world_size": self.ctx.world_size, "started": time.time()}
        data = json.dumps(info).encode("utf-8")
        for _ in range(4):
            if self._write_whole(data):
                return run_id
            seen = self._read_bytes(self.path)
            if seen is None:
                continue  # removed between the two calls: try again
            other = self._parse(seen)
            reason = self._stale_reason(other)
            if reason is not None:
                if self._take_over(seen):
                    which = f"of {self._describe(other)}" if other else str(self.path)
                    print(f"[interdyn] {self.subject}: taking over the lock {which}: {reason}",
                          file=sys.stderr)
                    continue
                other = self._parse(self._read_bytes(self.path)) or {}
            raise OutputBusyError(
                f"{self.subject} is being written by another run: {self._describe(other or {})}. Wait "
                f"for it to finish or give another folder; if no run is writing there any more (a killed run on "
                f"another machine), delete {self.path} and start again") from None
        raise OutputBusyError(f"{self.subject}: could not take the lock {self.path}")

    def _clean(self) -> None:
        """Rank 0, holding the lock: what killed runs left in the folder (temporaries, per-run progress files)."""
        removed = clean_stale_temporaries(self.folder, older_than=None, recursive=True)
        for name in RUN_FILE_FOLDERS:
            if (self.folder / name).is_dir() and not (self.folder / name).is_symlink():
                shutil.rmtree(self.folder / name, ignore_errors=True)
        if removed:
            print(f"[interdyn] {self.subject}: removed {len(removed)} unfinished temporary file(s) of an "
                  "interrupted run", file=sys.stderr)

    def __enter__(self) -> "OutputLock":
        if self.ctx.is_main:
            try:
                if self.claim is not None:
                    self.claim(self.folder)
                self.run_id = self._create()
                if self.clean:
                    self._clean()
                message = self.run_id
            except Exception as err:  # noqa: BLE001 - sent to the other ranks, then re-raised here
                if self.run_id:
                    self._release()
                broadcast_text("ERROR:" + f"{type(err).__name__}: {err}")
                raise
            broadcast_text(message)
            return self
        message = broadcast_text("")
        if message.startswith("ERROR:"):
            raise OutputError(f"rank 0 stopped before any work: {message[len('ERROR:'):]}")
        self.run_id = message
        found = (self._parse(self._read_bytes(self.path)) or {}).get("run_id")
        if found != self.run_id:
            raise OutputBusyError(f"{self.what} {self.folder}: rank {self.ctx.rank} does not see this run's lock "
                                  f"{self.path} (found run {found!r}, expected {self.run_id!r}); every rank must "
                                  "see the same output folder (shared storage), and only one run may write it")
        return self

    def _release(self) -> None:
        if (self._parse(self._read_bytes(self.path)) or {}).get("run_id") == self.run_id:
            self.path.unlink(missing_ok=True)

    def __exit__(self, *exc) -> None:
        if not self.ctx.is_main or not self.run_id:
            return
        with contextlib.suppress(OSError):
            self._release()


# ---------------------------------------------------------------------------- progress across ranks
class ProgressFiles:
    """Each rank's counters in ``folder/.interdyn-progress/<run id>/rank-<r>.json`` (tiny atomic writes);
    rank 0 sums them for a global progress bar and the run's totals. :meth:`cleanup` (rank 0, after the
    last barrier) removes this run's folder."""

    def __init__(self, folder, run_id: str, ctx: Context | None = None):
        self.ctx = ctx or context()
        self.root = Path(folder) / ".interdyn-progress"
        self.dir = self.root / (run_id or "single")
        self.counts: dict[str, int] = {}

    def add(self, **counts: int) -> None:
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + int(v)
        if self.ctx.world_size > 1:
            write_text_atomic(self.dir / f"rank-{self.ctx.rank}.json", json.dumps(self.counts))

    def total(self) -> dict[str, int]:
        """Counters summed over the ranks (this rank's own with one process)."""
        if self.ctx.world_size == 1:
            return dict(self.counts)
        out: dict[str, int] = {}
        for p in sorted(self.dir.glob("rank-*.json")):
            try:
                data = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            for k, v in data.items():
                out[k] = out.get(k, 0) + int(v)
        return out

    def cleanup(self) -> None:
        if self.ctx.is_main and self.dir.is_dir():
            shutil.rmtree(self.dir, ignore_errors=True)
            try:
                self.root.rmdir()
            except OSError:
                pass
