"""After a killed or failed run, rerunning works with no hand cleanup and nothing stale is left.

* Temporaries: a run killed while writing (SIGKILL, power loss) leaves its hidden temporary names
  (``.NAME.<8 hex>.tmp``, ``.STEM.<8 hex>.tmp.EXT``, staging folders, ``.NAME.<8 hex>.old``); a 7.9 MB
  ``.branch.safetensors.*.tmp`` was never removed. The next run of the command removes its own stale ones: in a
  folder it holds the lock of (training, data preparation, evaluation) all of them, elsewhere (``export``,
  ``generate``) those of the names it writes once they are an hour old (a run writing them now is younger).
* Locks: an empty or unreadable lock (older versions, on a full disk) or one whose process is gone is taken over with
  a one-line notice; a lock of a live run is refused.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interdyn.support.distributed import LOCK_NAME, OutputBusyError, OutputLock

HOUR = 3600


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from interdyn.apps.cli import main
    from interdyn.data.video_io import write_video

    root = tmp_path_factory.mktemp("inputs")
    assert main(["make-tiny", str(root / "models")]) == 0
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "in.png")
    write_video(root / "mask_hand.mp4", np.zeros((4, 64, 64, 3), np.uint8), fps=7, lossless=True)
    return root


def _age(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def _leftover(folder: Path, name: str, *, age: float, size: int = 1024, holding: str | None = None) -> Path:
    """What a killed writer leaves: a temporary file, or a staging folder ``holding`` the output's own name."""
    path = folder / name
    if holding:
        path.mkdir()
        (path / holding).write_bytes(b"\0" * size)
    else:
        path.write_bytes(b"\0" * size)
    return _age(path, age)


def _user_file(path: Path, age: float) -> Path:
    path.write_text("the user's")
    return _age(path, age)


def _checkpoint(inputs: Path, run: Path) -> Path:
    """A training run folder with one checkpoint holding what export reads."""
    ckpt = run / "checkpoint-3"
    ckpt.mkdir(parents=True)
    (run / "loss.csv").write_text("step,loss\n1,0.5\n")
    shutil.copy(inputs / "models" / "interdyn_tiny.safetensors", ckpt / "control_branch.safetensors")
    shutil.copy(inputs / "models" / "svd_tiny" / "unet" / "config.json", ckpt / "unet_config.json")
    (ckpt / "trainer_state.json").write_text(json.dumps({"step": 3}))
    return ckpt


# ---------------------------------------------------------------------------- temporaries
def test_export_removes_the_temporaries_a_killed_export_left_for_its_file(inputs, tmp_path):
    from training.export import main as export

    ckpt = _checkpoint(inputs, tmp_path / "run")
    out = tmp_path / "out" / "branch.safetensors"
    out.parent.mkdir()
    stale = _leftover(out.parent, ".branch.safetensors.1a2b3c4d.tmp", age=2 * HOUR, size=1 << 20)
    young = _leftover(out.parent, ".branch.safetensors.5e6f7a8b.tmp", age=60)  # an export writing it now
    other = _leftover(out.parent, ".other.safetensors.1a2b3c4d.tmp", age=2 * HOUR)  # another output's
    mine = _user_file(out.parent / ".notes.txt", 2 * HOUR)
    assert export(["--checkpoint", str(ckpt), "--out", str(out)]) == 0
    assert not stale.exists(), "the killed export's temporary is removed"
    assert young.exists() and other.exists() and mine.exists(), "a young one, another name's, a user's file: kept"


def test_generate_removes_the_temporaries_a_killed_generate_left_for_its_files(inputs, tmp_path):
    from interdyn.apps.cli import main

    out = tmp_path / "clip.mp4"
    left = [_leftover(tmp_path, ".clip.mp4.1a2b3c4d.tmp", age=2 * HOUR, holding="clip.mp4"),
            _leftover(tmp_path, ".clip.5e6f7a8b.tmp.mp4", age=2 * HOUR),
            _leftover(tmp_path, ".clip_comparison.mp4.0a0b0c0d.old", age=2 * HOUR)]
    m = inputs / "models"
    assert main(["generate", "--svd", str(m / "svd_tiny"), "--interdyn", str(m / "interdyn_tiny.safetensors"),
                 "--image", str(inputs / "in.png"), "--control", str(inputs / "mask_hand.mp4"), "--out", str(out),
                 "--height", "64", "--width", "64", "--frames", "4", "--steps", "1"]) == 0
    assert not [p for p in left if p.exists()], f"stale temporaries left: {[p.name for p in left if p.exists()]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip_comparison.mp4"]


def test_a_run_holding_the_lock_removes_every_temporary_of_killed_runs_in_its_folder(tmp_path, capsys):
    """No other run writes a locked folder, so every temporary of ours in it is stale, however young."""
    from training.data.prepare import main as prepare

    out = tmp_path / "data"
    assert prepare(["synthetic", "--out", str(out), "--num-clips", "1"]) == 0
    left = [_leftover(out, ".push_1000001.1a2b3c4d.tmp", age=5, holding="video.mp4"),
            _leftover(out / "push_1000000", ".video.5e6f7a8b.tmp.mp4", age=5),  # inside a clip folder
            _leftover(out, ".summary.json.0a0b0c0d.tmp", age=5)]
    (out / ".interdyn-progress" / "0123456789ab").mkdir(parents=True)  # a killed multi-process run's counters
    capsys.readouterr()
    assert prepare(["synthetic", "--out", str(out), "--num-clips", "2"]) == 0
    assert not [p for p in left if p.exists()] and not (out / ".interdyn-progress").exists()
    assert "removed 3 unfinished temporary file(s)" in capsys.readouterr().err, "said in one line"


def test_cleaning_touches_only_our_own_names(tmp_path):
    from interdyn.support.safe_output import clean_stale_temporaries

    kept = [".bashrc", ".clip.mp4.tmp", ".clip.mp4.1A2B3C4D.tmp", "clip.mp4.1a2b3c4d.tmp", ".clip.mp4.1a2b3c4.tmp",
            "notes.tmp", ".git"]
    for name in kept:
        _user_file(tmp_path / name, 2 * HOUR)
    link = tmp_path / ".clip.mp4.1a2b3c4d.tmp"
    os.symlink(tmp_path / "notes.tmp", link)  # a link with our name: the link goes, never its target
    _age(link, 2 * HOUR)
    assert clean_stale_temporaries(tmp_path) == [link]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


# ---------------------------------------------------------------------------- locks
@pytest.mark.parametrize("content", ["", '{"run_id": "ab', "\0\0\0\0", "[]"],
                         ids=["empty", "cut short", "zeros", "not an object"])
def test_an_empty_or_unreadable_lock_is_taken_over_with_a_notice(tmp_path, content, capsys):
    from training.data.prepare import main as prepare

    out = tmp_path / "data"
    assert prepare(["synthetic", "--out", str(out), "--num-clips", "1"]) == 0
    (out / LOCK_NAME).write_text(content)  # what a run stopped by a full disk left with older versions
    capsys.readouterr()
    assert prepare(["synthetic", "--out", str(out), "--num-clips", "2"]) == 0, "the rerun works, no hand cleanup"
    notices = [line for line in capsys.readouterr().err.splitlines() if "taking over the lock" in line]
    assert len(notices) == 1 and "empty or unreadable" in notices[0], notices
    assert not (out / LOCK_NAME).exists()


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_lock_whose_process_is_gone_is_taken_over_and_a_live_one_refused(tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    info = {"run_id": "0123456789ab", "host": socket.gethostname(), "world_size": 1, "started": time.time()}
    (folder / LOCK_NAME).write_text(json.dumps({**info, "pid": _dead_pid()}))
    with OutputLock(folder, what="--out") as lock:
        assert json.loads((folder / LOCK_NAME).read_text())["run_id"] == lock.run_id
    notice = capsys.readouterr().err
    assert "taking over the lock of run 0123456789ab" in notice and "is gone" in notice, notice
    for pid, host in ((os.getppid(), socket.gethostname()), (_dead_pid(), "another-machine")):
        (folder / LOCK_NAME).write_text(json.dumps({**info, "pid": pid, "host": host}))
        with pytest.raises(OutputBusyError, match="is being written by another run: run 0123456789ab"):
            with OutputLock(folder, what="--out"):
                pass
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == pid, "a live (or unknowable) lock is kept"
