"""Work spread over torchrun processes (interdyn/support/distributed.py; evaluation, data preparation, generate --manifest).

The multi-process tests launch ``python -m torch.distributed.run --nproc_per_node 2 --standalone`` (gloo on
the CPU) on tests/scale_worker.py, and compare with the same calls in one process.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from interdyn.support import distributed as D
from interdyn.support.safe_output import OutputError

REPO = Path(__file__).resolve().parents[1]


def torchrun(job: dict, tmp_path: Path, nproc: int = 2, timeout: int = 300) -> None:
    """Run tests/scale_worker.py on ``nproc`` local processes; fail with their output if any fails."""
    path = tmp_path / f"job-{len(list(tmp_path.glob('job-*')))}.json"
    path.write_text(json.dumps(job))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                           "--standalone", str(REPO / "tests" / "scale_worker.py"), str(path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"torchrun with {nproc} processes failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


class single_thread:
    """One intra-op thread, as torchrun gives each worker: float kernels then match bit for bit."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


# ---------------------------------------------------------------------------- ranks, shards, lock
def test_context_comes_from_the_launcher_environment_and_defaults_to_one_process():
    assert D.context({}) == D.Context(0, 1, 0), "no launcher variables: rank 0 of 1"
    assert D.context({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "3"}) == D.Context(3, 8, 3), \
        "torchrun/accelerate set RANK, WORLD_SIZE, LOCAL_RANK"
    assert D.context({"RANK": "9", "WORLD_SIZE": "16", "LOCAL_RANK": "1"}).is_main is False, "rank 9 is not the main"
    with pytest.raises(ValueError, match="RANK=2 and WORLD_SIZE=2"):
        D.context({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        D.context({"WORLD_SIZE": "two"})


def test_shards_partition_the_items_for_every_process_count():
    items = [f"clip{i:03d}" for i in range(23)]
    for world in (1, 2, 3, 8, 40):
        shards = [D.shard(items, D.Context(r, world, r)) for r in range(world)]
        flat = sorted(x for s in shards for x in s)
        assert flat == items, f"{world} processes: every item exactly once, got {len(flat)} of {len(items)}"
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1, f"{world} processes: balanced shards, got sizes {sizes}"
    assert D.shard(items, D.Context(1, 2, 1)) == items[1::2], "rank r takes every N-th item from position r"


def test_a_second_run_on_the_same_folder_is_refused_until_the_first_ends(tmp_path):
    out = tmp_path / "out"
    with D.OutputLock(out, what="--out", claim=lambda p: p.mkdir()) as first:
        assert (out / D.LOCK_NAME).is_file() and first.run_id, "the run holds a lock file naming it"
        with pytest.raises(D.OutputBusyError, match=r"--out .*out is being written by another run") as info:
            with D.OutputLock(out, what="--out"):
                pass
        assert first.run_id in str(info.value) and str(out / D.LOCK_NAME) in str(info.value), \
            f"the error names the other run and the lock file to delete if it is stale: {info.value}"
    assert not (out / D.LOCK_NAME).exists(), "the lock is removed when the run ends"
    with D.OutputLock(out, what="--out") as again:
        assert again.run_id != first.run_id, "a later run gets the folder and its own run id"


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over_one_from_another_host_is_not(tmp_path):
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # that process has exited
    lock = tmp_path / D.LOCK_NAME
    lock.write_text(json.dumps({"run_id": "killed", "host": socket.gethostname(), "pid": pid, "started": 0}))
    with D.OutputLock(tmp_path) as run:
        assert json.loads(lock.read_text())["run_id"] == run.run_id, "a killed run's lock (same host) is replaced"
    lock.write_text(json.dumps({"run_id": "elsewhere", "host": "another-machine", "pid": 1, "started": 0}))
    with pytest.raises(D.OutputBusyError, match="host another-machine"):
        with D.OutputLock(tmp_path):
            pass
    assert json.loads(lock.read_text())["run_id"] == "elsewhere", "a refused run leaves the other run's lock alone"


def test_the_lock_runs_the_claim_first_so_a_foreign_folder_is_refused_without_a_lock_file(tmp_path):
    from interdyn.support.safe_output import claim_output_folder

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(OutputError, match="did not make"):
        with D.OutputLock(foreign, what="--out", claim=lambda p: claim_output_folder(p, what="--out", kind="evaluation")):
            pass
    assert sorted(p.name for p in foreign.iterdir()) == ["holiday.jpg"], "nothing written into a foreign folder"


def test_the_process_group_init_creates_is_destroyed_before_the_interpreter_shuts_down(tmp_path):
    """Without it gloo's threads outlive Python and a finished worker can abort ("terminate called without an
    active exception", SIGABRT): torchrun then reports the whole run as failed (seen in CI, pytorch issue 190489)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # WORLD_SIZE=2 makes init() join a group; the group itself is made of this one process (rank 0 of 1).
    code = ("import atexit, torch.distributed as dist\n"
            "from interdyn.support import distributed as D\n"
            "join = dist.init_process_group\n"
            "dist.init_process_group = lambda **kw: join(rank=0, world_size=1, **kw)\n"
            "D.init()\n"
            "assert dist.is_initialized(), 'init joined the group'\n"
            "atexit._run_exitfuncs()\n"
            "print('destroyed' if not dist.is_initialized() else 'still initialised')\n")
    env = dict(os.environ, RANK="0", WORLD_SIZE="2", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "destroyed", f"the exit handler of init() destroys the group: {proc.stdout}"


# ---------------------------------------------------------------------------- evaluation
METHODS = ["interdyn", "copy_first_frame"]
LABELS = ["pushing something", "hitting something", "pushing something", "rolling something"]


@pytest.fixture(scope="module")
def eval_world(tmp_path_factory):
    from interdyn.core.tiny import write_tiny_models
    from interdyn.data.synthetic import default_scene, write_scene_folder

    root = tmp_path_factory.mktemp("scale")
    models = write_tiny_models(root / "models", seed=0)
    for k, label in enumerate(LABELS):
        folder = write_scene_folder(default_scene(k, size=(64, 64), num_frames=8), root / "data" / f"clip{k}")
        (folder / "label.txt").write_text(label)
    return {"root": root, "data": root / "data", **models}


def _run_in_process(world, out, **kw):
    from scale_worker import evaluation_networks  # tests/ is on sys.path (pytest's rootdir-relative imports)
    from test_evaluate import SETTINGS
    from training import evaluate as E

    with single_thread():
        return E.evaluate(world["data"], METHODS, out_dir=out, svd=world["svd"], interdyn=world["interdyn"],
                          settings=SETTINGS, progress=False, **evaluation_networks(), **kw)


def _scores(per_clip: dict) -> dict:
    """Per-clip entries without the video path (which names the output folder)."""
    return {m: {i: {k: v for k, v in e.items() if k != "video"} for i, e in clips.items()}
            for m, clips in per_clip.items()}


def _npz(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.slow  # about a minute on 2 loaded cores: torchrun starts two Python processes
def test_evaluation_on_two_processes_equals_one_process_and_a_killed_run_resumes_with_another_count(eval_world,
                                                                                                      tmp_path):
    root = eval_world["root"]
    one = _run_in_process(eval_world, root / "one")
    # a run killed after two clips: 1 process, clips 0-1 done, and clip 1's interdyn scores lost in flight
    _run_in_process(eval_world, root / "resumed", limit=2)
    (root / "resumed" / "features" / "interdyn" / "clip1.npz").unlink()
    common = dict(data_root=str(eval_world["data"]), methods=METHODS, svd=str(eval_world["svd"]),
                  interdyn=str(eval_world["interdyn"]))
    torchrun({"evaluate": [dict(common, out_dir=str(root / "two")), dict(common, out_dir=str(root / "resumed"))]},
             tmp_path)

    for name in ("two", "resumed"):
        out = root / name
        other = json.loads((out / "results.json").read_text())
        assert _scores(other["per_clip"]) == _scores(json.loads(json.dumps(one["per_clip"]))), \
            f"{name}: per-clip scores (SSIM, PSNR, LPIPS, MF) are bit-for-bit those of one process"
        for method in METHODS:
            for key, value in one["methods"][method]["metrics"].items():
                a, b = E_value(value), E_value(other["methods"][method]["metrics"][key])
                assert b == pytest.approx(a, rel=1e-6, abs=1e-9), f"{name}: pooled {method} {key} {b} != {a}"
        assert (out / "table1.md").read_text() == (root / "one" / "table1.md").read_text(), f"{name}: Table 1 differs"
        assert (out / "table_s3.md").read_text() == (root / "one" / "table_s3.md").read_text(), \
            f"{name}: Table S3 differs"
        assert other["settings"]["num_clips"] == 4, f"{name}: every clip is in the tables"
        for k in range(4):
            a = _npz(root / "one" / "features" / "interdyn" / f"clip{k}.npz")
            b = _npz(out / "features" / "interdyn" / f"clip{k}.npz")
            for key in ("ssim", "psnr", "lpips", "inception", "i3d", "mf"):
                assert np.array_equal(a[key], b[key]), f"{name}: clip{k} {key} features differ from one process"
        assert not (out / D.LOCK_NAME).exists() and not (out / ".interdyn-progress").exists(), \
            f"{name}: the lock and the progress files are removed at the end"
    two = json.loads((root / "two" / "results.json").read_text())
    assert two["run"]["processes"] == 2 and two["run"]["generated"] == 8, \
        f"two processes made the 4 clips x 2 methods between them: {two['run']}"
    resumed = json.loads((root / "resumed" / "results.json").read_text())
    assert resumed["run"]["generated"] == 4 and resumed["run"]["cached"] == 4, \
        f"the resumed run generated only clips 2-3 and reused clips 0-1: {resumed['run']}"


def E_value(entry):
    return entry["value"] if isinstance(entry, dict) else entry


# ---------------------------------------------------------------------------- data preparation
def _same_folder_tree(a: Path, b: Path) -> None:
    from interdyn.data.video_io import read_video

    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert files_a == files_b, f"{b} holds other files than {a}: {sorted(set(files_a) ^ set(files_b))}"
    for rel in files_a:
        if rel.endswith(".mp4"):
            fa, fb = read_video(a / rel)[0], read_video(b / rel)[0]
            assert np.array_equal(fa, fb), f"{rel}: frames differ between one and two processes"
        else:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), f"{rel} differs between one and two processes"


def _prepare_argv(src: Path, name: str, out: Path) -> list[str]:
    if name == "clevrer":
        return ["clevrer", "--videos", str(src / "videos"), "--annotations", str(src / "ann"), "--proposals",
                str(src / "prop"), "--out", str(out), "--num-frames", "4", "--height", "48", "--width", "64"]
    return ["dexycb", "--root", str(src / "dex"), "--out", str(out), "--fps", "15", "--num-frames", "4", "--height",
            "48", "--width", "64"]


def _manifest_world(root: Path) -> dict:
    """Tiny models, a first frame, a control video, a corrupt 'video' and a manifest writer."""
    from PIL import Image

    from interdyn.core.tiny import write_tiny_models
    from interdyn.data.video_io import write_video

    root.mkdir(parents=True, exist_ok=True)
    models = write_tiny_models(root / "models", seed=0)
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(root / "image.png")
    control = np.zeros((4, 64, 64, 3), np.uint8)
    control[:, 10:30, 10:30] = 255
    write_video(root / "control.mp4", control, 7)
    (root / "corrupt.mp4").write_bytes(b"not a video")
    base = ["generate", "--svd", str(models["svd"]), "--interdyn", str(models["interdyn"]), "--frames", "4",
            "--height", "64", "--width", "64", "--steps", "1"]
    return {"root": root, "base": base}


def _write_manifest(path: Path, rows: list[dict]) -> Path:
    columns = sorted({k for r in rows for k in r})
    lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


MANIFEST_ROWS = [dict(image="image.png", control="control.mp4", out=f"out/clip{k}.mp4", seed=k) for k in range(3)] + \
    [dict(image="image.png", out="out/plain.mp4", seed=7, strength=0)]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """Inputs for prepare (clevrer, dexycb) and generate --manifest, each run once in this process and once
    under one torchrun with 2 processes."""
    from test_prepare_datasets import _clevrer_scene, _dex_camera
    from training.data.prepare import main as prepare

    from interdyn.apps.cli import main as interdyn_main

    src = tmp_path_factory.mktemp("two")
    for idx, (enter, collision) in enumerate([(5, 10), (0, 10), (5, 0), (4, 9), (6, 11)], start=1):
        _clevrer_scene(src, idx, enter_at=enter, collision=collision)   # kept, dropped, dropped, kept, kept
    seq = src / "dex" / "20200709-subject-01" / "20200709_141754"
    for cam, frames in (("836212060125", 10), ("839512060362", 3), ("840412060917", 9)):
        _dex_camera(seq / cam, frames)
    (seq / "meta.yml").write_text("ycb_ids: [3]\nycb_grasp_ind: 0\n")
    gen = _manifest_world(src / "gen")
    for name in ("one", "two"):
        _write_manifest(gen["root"] / f"{name}.csv", [dict(r, out=r["out"].replace("out/", f"{name}/"))
                                                       for r in MANIFEST_ROWS])
    (gen["root"] / "two").mkdir()
    # an earlier run's output (a 64x64 video, the row's size): must be skipped, not replaced
    from interdyn.data.video_io import write_video

    write_video(gen["root"] / "two" / "clip1.mp4", np.full((2, 64, 64, 3), 9, np.uint8), fps=7)
    (gen["root"] / "clip1_earlier.bytes").write_bytes((gen["root"] / "two" / "clip1.mp4").read_bytes())

    with single_thread():
        for name in ("clevrer", "dexycb"):
            assert prepare(_prepare_argv(src, name, src / f"{name}-one")) == 0, f"{name} in one process failed"
        assert interdyn_main(gen["base"] + ["--manifest", str(gen["root"] / "one.csv")]) == 0, "manifest failed"
    torchrun({"prepare": [_prepare_argv(src, name, src / f"{name}-two") for name in ("clevrer", "dexycb")],
              "generate": [gen["base"] + ["--manifest", str(gen["root"] / "two.csv"), "--report",
                                          str(gen["root"] / "two.json")]]}, src)
    return {"src": src, "gen": gen["root"]}


@pytest.mark.slow  # with the next test: one torchrun of 2 processes, about a minute on 2 loaded cores
def test_prepare_on_two_processes_writes_the_same_clips_and_summary_as_one(two_processes):
    src = two_processes["src"]
    for name, kept in (("clevrer", 3), ("dexycb", 2)):
        one, two = src / f"{name}-one", src / f"{name}-two"
        summary = json.loads((two / "summary.json").read_text())
        assert summary["kept"] == kept, f"{name}: the two ranks' clips are all counted: {summary}"
        _same_folder_tree(one, two)


@pytest.mark.slow
def test_generate_manifest_on_two_processes_writes_what_one_process_writes_and_skips_existing(two_processes):
    from interdyn.data.video_io import read_video

    gen = two_processes["gen"]
    report = json.loads((gen / "two.json").read_text())
    assert report["processes"] == 2 and report["counts"] == {"written": 3, "skipped": 1, "failed": 0}, \
        f"the rows were shared by 2 processes and the existing output skipped: {report}"
    assert (gen / "two" / "clip1.mp4").read_bytes() == (gen / "clip1_earlier.bytes").read_bytes(), \
        "an existing output is never replaced"
    # not bit-identity: the two runs batch rows differently, and float32 kernels round by batch size and thread
    # scheduling (a loaded machine gave non-identical bytes). The tolerance is what a real mistake cannot meet: the
    # same row must differ far less than two different rows (a wrong seed or a swapped row) do.
    videos = {(run, name): read_video(gen / run / name)[0].astype(np.int16)
              for run in ("one", "two") for name in ("clip0.mp4", "clip2.mp4", "plain.mp4")}
    same = {name: float(np.abs(videos["one", name] - videos["two", name]).mean())
            for name in ("clip0.mp4", "clip2.mp4", "plain.mp4")}
    swapped = float(np.abs(videos["one", "clip0.mp4"] - videos["two", "clip2.mp4"]).mean())
    print(f"\nmean |difference| in 8-bit levels, same row in 1 vs 2 processes: {same}; two different rows: {swapped:.2f}")
    assert max(same.values()) <= 2.0 and swapped >= 10 * max(max(same.values()), 0.5), \
        f"the row's seed, not the rank, decides the video: same row {same}, different rows {swapped:.2f}"


# ---------------------------------------------------------------------------- generate --manifest (one process)
@pytest.fixture(scope="module")
def manifest_world(tmp_path_factory):
    return _manifest_world(tmp_path_factory.mktemp("manifest"))


def test_a_bad_manifest_row_is_an_error_naming_row_and_column_before_any_model_loads(manifest_world, capsys):
    from interdyn.apps.cli import main

    root = manifest_world["root"]
    base = ["generate", "--svd", str(root / "no-such-model"), "--frames", "4", "--height", "64", "--width", "64"]
    cases = [([dict(image="image.png", out="a.mp4"), dict(image="missing.png", out="b.mp4")], "row 2, column image"),
             ([dict(image="image.png", out="a.mp4", steps=0)], "row 1, column steps must be at least 1"),
             ([dict(image="image.png", out="a.mp4", seed="x")], "row 1, column seed must be a whole number"),
             ([dict(image="image.png", out="a.mp4"), dict(image="image.png", out="a.mp4")],
              "row 2, column out"),
             ([dict(image="image.png", out="a.mp4", colour=1)], "row 1: unknown column 'colour'"),
             ([dict(image="image.png", out="")], "row 1, column out is empty")]
    for k, (rows, expected) in enumerate(cases):
        manifest = _write_manifest(root / f"bad{k}.csv", rows)
        assert main(base + ["--manifest", str(manifest)]) == 2, f"case {k}: a bad manifest exits 2"
        err = capsys.readouterr().err
        assert expected in err and "no-such-model" not in err, \
            f"case {k}: the error names the row and column, before the (missing) model is looked at: {err}"
    assert not list(root.glob("*.mp4")) or sorted(p.name for p in root.glob("*.mp4")) == ["control.mp4",
                                                                                          "corrupt.mp4"], \
        "nothing is written when the manifest is refused"


def test_a_failing_row_is_reported_and_the_other_rows_are_written(manifest_world, capsys):
    from interdyn.apps.cli import main

    root = manifest_world["root"]
    rows = [dict(image="image.png", control="control.mp4", out="run/a.mp4", seed=1),
            dict(image="image.png", control="corrupt.mp4", out="run/b.mp4", seed=2),
            dict(image="image.png", out="run/c.mp4", seed=3, strength=0)]
    manifest = _write_manifest(root / "rows.csv", rows)
    with single_thread():
        status = main(manifest_world["base"] + ["--manifest", str(manifest), "--report", str(root / "report.json")])
    out = capsys.readouterr()
    assert status == 1, "a failed row makes the exit status non-zero"
    assert (root / "run" / "a.mp4").is_file() and (root / "run" / "c.mp4").is_file(), "the other rows are written"
    assert not (root / "run" / "b.mp4").exists(), "the failed row leaves no output"
    report = json.loads((root / "report.json").read_text())
    assert report["counts"] == {"written": 2, "skipped": 0, "failed": 1}, f"per-row outcome: {report}"
    assert "VideoReadError" in report["rows"]["2"]["error"] and "row 2 failed" in out.out, \
        f"the failure is reported with its row: {report['rows']['2']} / {out.out}"
    assert not list((root / "run").glob(".*")), "no temporary files are left"


def test_a_jsonl_manifest_reads_like_a_csv_one(manifest_world):
    from interdyn.apps.batch import manifest_rows
    from interdyn.apps.cli import build_parser

    root = manifest_world["root"]
    (root / "rows.jsonl").write_text('{"image": "image.png", "out": "j/a.mp4", "seed": 5, "steps": 2}\n\n'
                                     '{"image": "image.png", "control": "control.mp4", "out": "j/b.mp4"}\n')
    args = build_parser().parse_args(manifest_world["base"] + ["--manifest", str(root / "rows.jsonl")])
    rows = manifest_rows(args.manifest, args)
    assert [r.number for r in rows] == [1, 2], "blank lines are not rows"
    assert rows[0].args.seed == 5 and rows[0].args.steps == 2 and rows[1].args.seed == 42, \
        "a row's own values win; the others come from the command line"
    assert rows[1].args.control == str(root / "control.mp4"), "relative paths are relative to the manifest"


def test_batched_rows_match_one_by_one_and_a_bad_row_in_a_batch_is_found(manifest_world, capsys):
    """``--batch-size``: consecutive rows share a sampler call, each with its own seed's noise, so the frames are
    those of one-by-one runs up to float32 rounding of a batched matrix product; a batch with a bad row falls
    back to one row at a time, so only that row fails."""
    from interdyn.apps.cli import main
    from interdyn.data.video_io import read_video

    root = manifest_world["root"]
    rows = [dict(image="image.png", control="control.mp4", out=f"{{run}}/{k}", seed=k) for k in (1, 2, 3)]
    for run, size in (("single", 1), ("batched", 3)):
        manifest = _write_manifest(root / f"{run}.csv", [dict(r, out=r["out"].format(run=run)) for r in rows])
        report = root / f"{run}.json"
        with single_thread():
            assert main(manifest_world["base"] + ["--manifest", str(manifest), "--report", str(report),
                                                  "--batch-size", str(size)]) == 0
    assert [r["batch"] for r in json.loads(report.read_text())["rows"].values()] == [3, 3, 3], "one call for three"
    for k in (1, 2, 3):
        single = read_video(root / "single" / str(k))[0].astype(int)
        batched = read_video(root / "batched" / str(k))[0].astype(int)
        assert np.abs(single - batched).max() <= 2, f"row {k}: the batch changes frames beyond rounding"
    assert np.abs(read_video(root / "batched" / "1")[0].astype(int)
                  - read_video(root / "batched" / "2")[0].astype(int)).max() > 2, "each row has its own noise"

    bad = [dict(r, out=r["out"].format(run="mixed")) for r in rows]
    bad[1]["control"] = "corrupt.mp4"
    manifest = _write_manifest(root / "mixed.csv", bad)
    with single_thread():
        assert main(manifest_world["base"] + ["--manifest", str(manifest), "--batch-size", "3"]) == 1
    assert "row 2 failed" in capsys.readouterr().out, "the bad row is named"
    assert sorted(p.name for p in (root / "mixed").iterdir()) == ["1", "3"], "the other rows are written"
