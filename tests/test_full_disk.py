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


# ---------------------------------------------------------------------------- a set of outputs: all replaced, or none
def used(path: Path) -> int:
    """Bytes ``path`` (a file, or every file under a folder) takes on a tmpfs: whole 4 KiB pages."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in files)


def outputs(disk: Path) -> dict[str, bytes]:
    """:func:`snapshot` without the pinned copies."""
    return {name: data for name, data in snapshot(disk).items() if not name.startswith("pinned/")}


def pin(disk: Path) -> None:
    """Hard-link every file on the disk into ``pinned/``: replacing a file then frees nothing, so the room left by
    :func:`fill` is exactly the room the new outputs get (an old writer freed the first file's old copy)."""
    for name in outputs(disk):
        target = disk / "pinned" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(disk / name, target)


def one_error_line(err: str) -> str:
    lines = [line for line in err.replace("\r", "\n").splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in err, f"one line, no traceback: {err[-1500:]}"
    return lines[0]


@pytest.mark.parametrize("suffix", [".mp4", ""], ids=["video file", "frame folder"])
def test_generate_on_a_full_disk_replaces_the_output_and_its_comparison_together_or_neither(small_disk, tiny,
                                                                                           tmp_path, suffix, capsys):
    """It replaced ``clip.mp4`` with the new seed, then failed on ``clip_comparison.mp4`` saying "nothing was
    replaced"; frame folders and their comparison folder the same."""
    from interdyn.apps.generation import comparison_path

    out = small_disk / f"clip{suffix}"
    assert main(generate_args(tiny, out, 1)) == 0
    scratch = tmp_path / f"clip{suffix}"  # the second run's outputs, written off the small disk: their size
    assert main(generate_args(tiny, scratch, 2)) == 0
    new_out, new_comparison = used(scratch), used(comparison_path(scratch))
    before = outputs(small_disk)
    pin(small_disk)
    fill(small_disk, leave=new_out + new_comparison // 2)  # room for the output, not for its comparison
    capsys.readouterr()
    code = main(generate_args(tiny, out, 2))
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "disk is full" in line and "nothing was replaced" in line, line
    assert outputs(small_disk) == before, "both earlier outputs intact (the message is true), nothing left behind"
    (small_disk / "filler.bin").unlink()
    assert main(generate_args(tiny, out, 2)) == 0, "with space again the same command works, no hand cleanup"
    changed = {n for n, b in outputs(small_disk).items() if before.get(n) != b}
    assert changed and all(n.startswith(out.name) or n.startswith(comparison_path(out).name) for n in changed), \
        f"both outputs replaced, nothing else written: {sorted(changed)}"


def test_demo_on_a_full_disk_replaces_its_videos_and_contact_sheet_together_or_none(small_disk, tmp_path, capsys):
    """``interdyn demo`` replaced three videos, then failed on the contact sheet."""
    demo = ["demo", "--steps", "1", "--zoom", "1"]
    out = small_disk / "demo"
    assert main(demo + ["--out", str(out), "--seed", "2000000"]) == 0
    scratch = tmp_path / "demo"
    assert main(demo + ["--out", str(scratch), "--seed", "2000001"]) == 0
    before = outputs(small_disk)
    pin(small_disk)
    fill(small_disk, leave=used(scratch / "hit.mp4") + used(scratch / "miss.mp4") // 2)  # room for the first only
    capsys.readouterr()
    code = main(demo + ["--out", str(out), "--seed", "2000001"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "disk is full" in line and "nothing was replaced" in line, line
    assert outputs(small_disk) == before, "every video and the sheet of the earlier demo are intact"


def test_a_set_of_files_on_a_full_disk_is_replaced_whole_or_not_at_all(small_disk):
    """The helper every multi-file writer uses (generate, demo, probes' two reports, evaluation's three tables)."""
    from interdyn.support.safe_output import atomic_files, storage_error

    paths = [small_disk / name for name in ("results.json", "table1.md", "table_s3.md")]
    for p in paths:
        p.write_text(f"old {p.name}")
    before = outputs(small_disk)
    pin(small_disk)
    fill(small_disk, leave=3 * 4096)
    with pytest.raises(OSError) as failed:
        with atomic_files(paths) as temporaries:
            for tmp, size in zip(temporaries, (4096, 4096, 64 * 1024)):  # the third does not fit
                tmp.write_bytes(b"n" * size)
    assert storage_error(failed.value) is not None
    assert outputs(small_disk) == before, "all three old files intact, no staging folder left"
    (small_disk / "filler.bin").unlink()
    with atomic_files(paths) as temporaries:
        for tmp in temporaries:
            tmp.write_text(f"new {tmp.name}")
    assert [p.read_text() for p in paths] == [f"new {p.name}" for p in paths]
    assert not [p for p in small_disk.iterdir() if p.name.startswith(".")], "no temporary left"


# ---------------------------------------------------------------------------- locks: whole or not at all
def test_a_lock_that_cannot_be_written_is_not_left_behind(small_disk):
    """The lock file was created first and written second: on a full disk an empty lock stayed and every rerun was
    refused as "being written by another run: run ? (host ?, process ?, ...)"."""
    from interdyn.support.distributed import LOCK_NAME, OutputLock
    from interdyn.support.safe_output import storage_error

    folder = small_disk / "out"
    folder.mkdir()
    fill(small_disk, leave=0)
    with pytest.raises(OSError) as failed:
        with OutputLock(folder, what="--out"):
            pass
    assert storage_error(failed.value) is not None, "a full disk, said as one"
    assert sorted(p.name for p in folder.iterdir()) == [], f"no lock, no temporary: {list(folder.iterdir())}"
    (small_disk / "filler.bin").unlink()
    with OutputLock(folder, what="--out") as lock:
        assert json.loads((folder / LOCK_NAME).read_text())["run_id"] == lock.run_id


def test_prepare_on_a_full_disk_is_one_line_and_reruns_once_space_is_freed(small_disk, capsys):
    """``prepare`` ended in ``OSError: [Errno 28]`` and left a lock that blocked every rerun."""
    from training.data.prepare import main as prepare

    out = small_disk / "data"
    assert prepare(["synthetic", "--out", str(out), "--num-clips", "2"]) == 0
    for leave, where in ((0, "the lock"), (24 * 1024, "the clips")):
        fill(small_disk, leave=leave)
        capsys.readouterr()
        code = prepare(["synthetic", "--out", str(out), "--num-clips", "12"])
        line = one_error_line(capsys.readouterr().err)
        assert code == 2 and "disk is full" in line, f"full disk at {where}: {line}"
        assert not (out / ".interdyn-lock").exists(), f"full disk at {where}: no lock is left behind"
        (small_disk / "filler.bin").unlink()
    assert prepare(["synthetic", "--out", str(out), "--num-clips", "12"]) == 0, "reruns with no hand cleanup"
    clips = [p for p in out.iterdir() if p.is_dir()]
    assert len(clips) == 12 and not [p for p in out.rglob(".*") if p.name != ".interdyn-output"], \
        f"every clip, nothing stale: {sorted(p.name for p in out.iterdir())}"


def test_evaluate_on_a_full_disk_is_one_line_and_reruns_once_space_is_freed(small_disk, tmp_path, capsys):
    from training.data.prepare import main as prepare
    from training.evaluate import main as evaluate

    data = tmp_path / "data"
    assert prepare(["synthetic", "--out", str(data), "--num-clips", "2"]) == 0
    out = small_disk / "evaluation"
    argv = ["--data", str(data), "--out", str(out), "--methods", "copy_first_frame", "--frames", "8", "--height",
            "64", "--width", "64", "--clip-fps", "6", "--no-progress"]
    fill(small_disk, leave=0)
    capsys.readouterr()
    code = evaluate(argv)
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "disk is full" in line, line
    (small_disk / "filler.bin").unlink()
    assert evaluate(argv) == 0, "reruns with no hand cleanup"
    assert (out / "results.json").is_file() and not (out / ".interdyn-lock").exists()


@pytest.mark.parametrize("command", ["prepare", "evaluate"])
def test_prepare_and_evaluate_onto_a_read_only_file_system_say_so_in_one_line(small_disk, tmp_path, command,
                                                                              capsys):
    """Both ended in ``OSError: [Errno 30] Read-only file system``."""
    from training.data.prepare import main as prepare
    from training.evaluate import main as evaluate

    data = tmp_path / "data"
    assert prepare(["synthetic", "--out", str(data), "--num-clips", "1"]) == 0
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"could not remount the tmpfs read-only: {done.stderr.strip()}")
    capsys.readouterr()
    if command == "prepare":
        code = prepare(["synthetic", "--out", str(small_disk / "data"), "--num-clips", "1"])
    else:
        code = evaluate(["--data", str(data), "--out", str(small_disk / "evaluation"), "--methods",
                         "copy_first_frame", "--frames", "8", "--height", "64", "--width", "64", "--clip-fps", "6"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2 and "read-only" in line and "--out" in line, line


# ---------------------------------------------------------------------------- file-size limits (ulimit -f)
def _limited(limit: int):
    import resource

    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return set_limit


def test_a_checkpoint_above_the_file_size_limit_is_one_line_and_keeps_the_last_one(tmp_path):
    """torch.save under a file-size limit (or on a full disk) ended in ``RuntimeError: [enforce fail at
    inline_container.cc:672] unexpected pos ...``; the optimizer file (16 MB) is the one above 12 MB here."""
    run = tmp_path / "run"
    assert _train(run, 1).returncode == 0
    before = snapshot(run)
    args = [sys.executable, "-m", "training.train", "--config", str(REPO / "training" / "configs" / "cpu_tiny.yaml"),
            "--output_dir", str(run), "--max_steps", "2", "--checkpoint_every", "1", "--report_to", "none",
            "--progress_bar", "false", "--validation_every", "0", "--synthetic_num_scenes", "4", "--resume", "latest"]
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=600, preexec_fn=_limited(12 << 20),
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and "file-size limit" in line and str(run) in line, line
    after = snapshot(run)
    assert {n: b for n, b in after.items() if n.startswith("checkpoint-1/")} == \
        {n: b for n, b in before.items() if n.startswith("checkpoint-1/")}, "checkpoint-1 intact"
    assert not [n for n in after if "checkpoint-2" in n or ".tmp" in n], f"nothing half-written: {sorted(after)}"


def test_export_above_the_file_size_limit_is_one_line_and_keeps_the_earlier_export(tmp_path):
    """It ended in ``SafetensorError ... File too large``."""
    run = tmp_path / "run"
    assert _train(run, 1).returncode == 0
    exported = tmp_path / "branch.safetensors"
    export = [sys.executable, "-m", "training.export", "--checkpoint", str(run), "--out", str(exported)]
    assert subprocess.run(export, capture_output=True, cwd=REPO, timeout=300).returncode == 0
    before = exported.read_bytes()
    done = subprocess.run(export + ["--dtype", "fp16"], capture_output=True, text=True, cwd=REPO, timeout=300,
                          preexec_fn=_limited(1 << 20))
    line = one_error_line(done.stderr)
    assert done.returncode == 2 and "file-size limit" in line and str(exported) in line, line
    assert exported.read_bytes() == before and not list(tmp_path.glob(".*tmp*")), "earlier export intact, no temporary"


def test_the_storage_errors_of_torch_and_safetensors_are_recognised(small_disk, tmp_path):
    """The texts of the writers that do not raise OSError, produced for real: torch's zip writer and safetensors on
    a full disk and under a file-size limit."""
    import resource

    import torch
    from safetensors.torch import save_file

    from interdyn.support.safe_output import storage_error

    tensor = torch.zeros(200_000)
    fill(small_disk, leave=64 * 1024)
    seen = []
    for write in (lambda p: torch.save({"t": tensor}, p), lambda p: save_file({"t": tensor}, str(p))):
        with pytest.raises(Exception) as full:  # noqa: B017 - torch raises RuntimeError, safetensors its own type
            write(small_disk / "x.bin")
        seen.append(full.value)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        for write in (lambda p: torch.save({"t": tensor}, p), lambda p: save_file({"t": tensor}, str(p))):
            with pytest.raises(Exception) as limited:  # noqa: B017
                write(tmp_path / "x.bin")
            seen.append(limited.value)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    for err in seen:
        assert storage_error(err, tmp_path) is not None, f"not recognised as a storage error: {err!r}"
