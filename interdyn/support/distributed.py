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

Stale locks: the lock file holds the host and process id of rank 0. A lock left by a killed run on the
same host (that process id is gone) is taken over with a message; a lock from another host cannot be
checked from here, and its error says which file to delete once no run is writing the folder.

Imports nothing heavy at module level (torch only inside the functions that need it).
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from .safe_output import OutputError, write_text_atomic

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
        import torch.distributed as dist
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
    import torch

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
        import torch

        torch.cuda.set_device(ctx.local_rank)
    dist.init_process_group(backend=backend, init_method="env://")
    return context()


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
    import torch

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
    import torch

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


class OutputLock:
    """``with OutputLock(folder, what="--out", claim=fn) as lock:`` one run at a time per output folder.

    Rank 0 calls ``claim(folder)`` (e.g. :func:`interdyn.support.safe_output.claim_output_folder`: refuse a folder
    we did not make) and then creates ``folder/.interdyn-lock`` atomically (``O_CREAT | O_EXCL``) with a
    fresh run id, host and process id; the run id is sent to the other ranks, which check that the lock
    file names it (the output folder must be on storage every rank sees). An error on rank 0 (a foreign
    folder, a busy folder) is raised on every rank, so no rank waits forever. On exit rank 0 removes the
    lock if it is still ours. ``lock.run_id`` names this run (for per-run temporary files).
    """

    def __init__(self, folder, *, what: str = "output folder", claim: Callable[[Path], object] | None = None,
                 ctx: Context | None = None):
        self.folder, self.what, self.claim = Path(folder), what, claim
        self.ctx = ctx or context()
        self.path = self.folder / LOCK_NAME
        self.run_id = ""

    # rank 0 -------------------------------------------------------------
    def _describe(self, info: dict) -> str:
        started = info.get("started")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) \
            else "?"
        return (f"run {info.get('run_id', '?')} (host {info.get('host', '?')}, process {info.get('pid', '?')}, "
                f"{info.get('world_size', '?')} process(es), started {when})")

    def _create(self) -> str:
        run_id = uuid.uuid4().hex[:12]
        info = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
                "world_size": self.ctx.world_size, "started": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    other = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    other = {}
                same_host = other.get("host") == socket.gethostname()
                pid = other.get("pid")
                if same_host and isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid):
                    print(f"[interdyn] {self.what} {self.folder}: taking over the lock of a run that is gone "
                          f"({self._describe(other)})", file=sys.stderr)
                    self.path.unlink(missing_ok=True)
                    continue
                raise OutputBusyError(
                    f"{self.what} {self.folder} is being written by another run: {self._describe(other)}. Wait for it "
                    f"to finish or give another folder; if no run is writing there any more (a killed run on "
                    f"another machine), delete {self.path} and start again") from None
            with os.fdopen(fd, "w") as f:
                json.dump(info, f)
            return run_id
        raise OutputBusyError(f"{self.what} {self.folder}: could not take the lock {self.path}")

    def __enter__(self) -> "OutputLock":
        if self.ctx.is_main:
            try:
                if self.claim is not None:
                    self.claim(self.folder)
                self.run_id = self._create()
                message = self.run_id
            except Exception as err:  # noqa: BLE001 - sent to the other ranks, then re-raised here
                broadcast_text("ERROR:" + f"{type(err).__name__}: {err}")
                raise
            broadcast_text(message)
            return self
        message = broadcast_text("")
        if message.startswith("ERROR:"):
            raise OutputError(f"rank 0 stopped before any work: {message[len('ERROR:'):]}")
        self.run_id = message
        try:
            found = json.loads(self.path.read_text()).get("run_id")
        except (OSError, ValueError):
            found = None
        if found != self.run_id:
            raise OutputBusyError(f"{self.what} {self.folder}: rank {self.ctx.rank} does not see this run's lock "
                                  f"{self.path} (found run {found!r}, expected {self.run_id!r}); every rank must "
                                  "see the same output folder (shared storage), and only one run may write it")
        return self

    def __exit__(self, *exc) -> None:
        if not self.ctx.is_main or not self.run_id:
            return
        try:
            if json.loads(self.path.read_text()).get("run_id") == self.run_id:
                self.path.unlink()
        except (OSError, ValueError):
            pass


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
        import shutil

        if self.ctx.is_main and self.dir.is_dir():
            shutil.rmtree(self.dir, ignore_errors=True)
            try:
                self.root.rmdir()
            except OSError:
                pass
