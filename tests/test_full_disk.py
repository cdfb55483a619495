"""A full disk under every writer: the earlier output and checkpoint survive intact, nothing half-written is left
under the final name (nor a temporary file taking the space), and the error says the disk is full in one line.

A real small tmpfs, mounted for the test (needs root, as in CI's container; skipped with the reason otherwise),
filled to a few KiB before the second write; also an existing manifest output that is not a video.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interdyn.apps.cli import main
from interdyn.data.video_io import write_video

REPO = Path(__file__).resolve().parents[1]


def _mount(path: Path, size: str) -> str | None:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "mounting a small tmpfs needs root"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                          text=True)
    return None if done.returncode == 0 else f"could not mount a tmpfs: {done.stderr.strip()}"


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    reason = _mount(disk, "160m")
    if reason:
        pytest.skip(reason)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int = 8192) -> None:
    """Take all but ``leave`` bytes of the file system."""
    (disk / "filler.bin").unlink(missing_ok=True)
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with open(disk / "filler.bin", "wb") as f:
        chunk = b"\0" * (1 << 20)
        left = free - leave
        while left > 0:
            try:
                left -= f.write(chunk[: min(len(chunk), left)])
            except OSError:
                break


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "filler.bin"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    assert main(["make-tiny", str(root / "models")]) == 0
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(root / "in.png")
    masks = np.zeros((10, 64, 64, 3), np.uint8)
    for f in range(10):
        masks[f, 20:40, 4 + 4 * f: 24 + 4 * f] = 255
    write_video(root / "mask_hand.mp4", masks, fps=14, lossless=True)
    return root


def generate_args(tiny: Path, out: Path, seed: int) -> list[str]:
    return ["generate", "--svd", str(tiny / "models" / "svd_tiny"),
            "--interdyn", str(tiny / "models" / "interdyn_tiny.safetensors"), "--image", str(tiny / "in.png"),
            "--control", str(tiny), "--out", str(out), "--height", "64", "--width", "64", "--frames", "4",
            "--steps", "1", "--seed", str(seed)]


def test_generate_on_a_full_disk_keeps_the_earlier_video_and_says_so(small_disk, tiny, capsys):
    out = small_disk / "clip.mp4"
    assert main(generate_args(tiny, out, 1)) == 0
    before = snapshot(small_disk)
    fill(small_disk)
    code = main(generate_args(tiny, out, 2))
    err = capsys.readouterr().err
    assert code == 2 and "disk is full" in err and "Traceback" not in err, f"one line saying the disk is full: {err!r}"
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"writing {out}:" in errors[0], f"one line, naming the file asked for: {errors}"
    assert snapshot(small_disk) == before, "the earlier video and its comparison are intact, no temporary file left"


def test_a_manifest_on_a_full_disk_reports_each_row_and_keeps_what_was_written(small_disk, tiny, capsys):
    rows = small_disk / "rows.csv"
    rows.write_text("image,control,out,seed\n" + "".join(f"{tiny / 'in.png'},{tiny},{small_disk / f'c{k}.mp4'},{k}\n"
                                                        for k in range(2)))
    base = generate_args(tiny, small_disk / "unused.mp4", 0)
    base = base[:base.index("--image")] + ["--height", "64", "--width", "64", "--frames", "4", "--steps", "1"]
    assert main(base + ["--manifest", str(rows)]) == 0
    before = snapshot(small_disk)
    (small_disk / "c1.mp4").unlink()
    fill(small_disk, leave=4096)
    code = main(base + ["--manifest", str(rows)])
    err = capsys.readouterr()
    assert code == 1, "a failed row makes the run fail"
    assert "row 2 failed: the disk is full" in err.out, f"the summary names the row and the cause: {err.out!r}"
    after = snapshot(small_disk)
    assert after["c0.mp4"] == before["c0.mp4"] and "c1.mp4" not in after, "the done row stays, nothing half-written"
    assert not [n for n in after if n.endswith(".tmp")], f"no temporary file is left taking the space: {sorted(after)}"


def test_a_manifest_row_whose_output_is_an_unrelated_file_is_not_counted_done(tmp_path, tiny, capsys):
    rows = tmp_path / "rows.csv"
    (tmp_path / "notes.mp4").write_text("my notes, not a video")
    rows.write_text(f"image,control,out,seed\n{tiny / 'in.png'},{tiny},{tmp_path / 'notes.mp4'},1\n")
    base = generate_args(tiny, tmp_path / "unused.mp4", 0)
    base = base[:base.index("--image")] + ["--height", "64", "--width", "64", "--frames", "4", "--steps", "1"]
    code = main(base + ["--manifest", str(rows), "--report", str(tmp_path / "report.json")])
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == 1 and report["counts"] == {"written": 0, "skipped": 0, "failed": 1}, report
    assert "is not a video" in report["rows"]["1"]["error"] and "left alone" in report["rows"]["1"]["error"]
    assert (tmp_path / "notes.mp4").read_text() == "my notes, not a video", "the user's file is untouched"


def _train(out: Path, steps: int, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "training.train", "--config", str(REPO / "training" / "configs" / "cpu_tiny.yaml"),
            "--output_dir", str(out), "--max_steps", str(steps), "--checkpoint_every", "1", "--report_to", "none",
            "--progress_bar", "false", "--validation_every", "0", "--synthetic_num_scenes", "4", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(args, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_train_and_export_on_a_full_disk_keep_the_last_checkpoint_and_export(small_disk):
    run = small_disk / "run"
    first = _train(run, 1)
    assert first.returncode == 0, first.stderr[-2000:]
    exported = small_disk / "branch.safetensors"
    done = subprocess.run([sys.executable, "-m", "training.export", "--checkpoint", str(run), "--out", str(exported)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    before = snapshot(small_disk)
    fill(small_disk, leave=64 * 1024)
    second = _train(run, 2, "--resume", "latest")
    assert second.returncode == 2, f"a full disk is the user's to fix: exit 2\n{second.stderr[-2000:]}"
    assert "disk is full" in second.stderr and "Traceback" not in second.stderr, second.stderr[-2000:]
    after = snapshot(small_disk)
    kept = {n: b for n, b in before.items() if n.startswith("run/checkpoint-1/")}
    assert kept and all(after.get(n) == b for n, b in kept.items()), "checkpoint-1 is intact"
    assert not any("checkpoint-2" in n for n in after), f"no half-written checkpoint-2: {sorted(after)[:20]}"
    fill(small_disk, leave=4096)
    again = subprocess.run([sys.executable, "-m", "training.export", "--checkpoint", str(run), "--out",
                            str(exported), "--dtype", "fp16"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert again.returncode == 2 and "disk is full" in again.stderr and "Traceback" not in again.stderr, again.stderr
    assert exported.read_bytes() == before["branch.safetensors"], "the earlier export is intact"
    assert not [n for n in snapshot(small_disk) if n.endswith(".tmp")], "no temporary file is left"


# ---------------------------------------------------------------------------- two runs on the same output at once
def test_two_trainings_on_the_same_output_dir_at_once_the_second_is_refused(tmp_path):
    import time

    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "training.train", "--config",
                              str(REPO / "training" / "configs" / "cpu_tiny.yaml"), "--output_dir", str(run),
                              "--max_steps", "40", "--checkpoint_every", "10", "--report_to", "none",
                              "--progress_bar", "false", "--validation_every", "0", "--synthetic_num_scenes", "4"],
                             cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not (run / ".interdyn-lock").exists():  # the first run holds the folder
            assert first.poll() is None and time.time() < deadline, "the first run must start and take the lock"
            time.sleep(0.2)
        second = _train(run, 40, "--resume", "latest")
        assert second.returncode == 2 and "is being written by another run" in second.stderr, second.stderr[-1500:]
        assert "Traceback" not in second.stderr
    finally:
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, f"the first run is not disturbed:\n{err[-2000:]}"
    assert [p.name for p in sorted(run.glob("checkpoint-*"))][-1] == "checkpoint-40", "it finished its own work"
    steps = [int(line.split(",")[0]) for line in (run / "loss.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)), "one run's log, nothing interleaved"
    assert not (run / ".interdyn-lock").exists(), "the lock goes with the run"


def test_two_generates_to_the_same_out_at_once_both_leave_a_whole_video(tiny, tmp_path):
    from interdyn.data.video_io import read_video

    out = tmp_path / "same.mp4"
    cmd = [sys.executable, "-m", "interdyn"]
    procs = [subprocess.Popen(cmd + generate_args(tiny, out, seed), cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
             for seed in (1, 2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1][-500:] for r in results]
    video, _ = read_video(out)
    assert video.shape == (4, 64, 64, 3), "the last one renamed into place is whole"
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file is left"


def test_make_tiny_onto_a_read_only_file_system_says_so_in_one_line(small_disk, capsys):
    """It ended in a raw OSError traceback."""
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"could not remount the tmpfs read-only: {done.stderr.strip()}")
    code = main(["make-tiny", str(small_disk / "models")])
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "read-only" in lines[0] and "Traceback" not in err, err[-800:]
