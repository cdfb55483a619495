"""No command writes into or replaces another command's output folder.

Every output folder carries a marker naming its kind (:data:`interdyn.support.safe_output.OUTPUT_KINDS`). Each
command that writes a folder is tried against an output of every other kind, made by the function the command
itself uses (and against a copy of a training run from before markers named a kind, the case that lost a run:
``interdyn generate --out`` onto it replaced both checkpoints with 8 PNGs). Every attempt must be refused and leave
every byte of the victim as it was. Writers that replace a whole folder also refuse a folder of their own kind
holding a file they did not write.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import interdyn.core.loading as loading
from interdyn.data.video_io import write_video
from interdyn.support.safe_output import MARKER, OUTPUT_KINDS, OutputError, check_output_folder, folder_kind
from conftest import snapshot, tiny_run

OLDER_MARKER = "written by interdyn; outputs in this folder may be replaced by interdyn\n"  # before kinds


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Inputs the writers need (a tiny training checkpoint, an image, a control video), made once."""
    from interdyn.core.tiny import write_tiny_models

    root = tmp_path_factory.mktemp("sources")
    tiny = write_tiny_models(root / "tiny")
    ckpt = tiny_run(tiny, root / "run")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "in.png")
    write_video(root / "hand.mp4", np.zeros((2, 64, 64, 3), np.uint8), fps=7, lossless=True)
    src = {"tiny": tiny, "checkpoint": ckpt, "root": root}
    run_export(root / "export", src)  # the export victim, copied by each test (export loads a model)
    return src


# ------------------------------------------------------------------ the victims: one output of each kind
def _training_run(path: Path, src) -> None:
    from training.checkpoints import claim_run_folder

    claim_run_folder(path)
    shutil.copytree(src["checkpoint"], path / src["checkpoint"].name)
    (path / "loss.csv").write_text("step,loss\n1,0.5\n")
    (path / "config.yaml").write_text("max_steps: 3\n")


def _evaluation(path: Path, src) -> None:
    from interdyn.support.safe_output import claim_output_folder

    claim_output_folder(path, kind="evaluation")
    (path / "results.json").write_text("{}")
    (path / "features").mkdir()
    (path / "features" / "clip0.safetensors").write_bytes(b"features")


def _dataset(path: Path, src) -> None:
    from training.data.clip_writer import claim_prepared_folder

    claim_prepared_folder(path)
    (path / "summary.json").write_text("{}")
    (path / "clip0").mkdir()
    (path / "clip0" / "meta.json").write_text("{}")


def _frames(path: Path, src) -> None:
    write_video(path, np.full((3, 8, 8, 3), 7, np.uint8), fps=6)


def run_export(path: Path, src) -> None:
    from training.export import main as export_main

    assert export_main(["--checkpoint", str(src["checkpoint"]), "--out", str(path), "--format", "official"]) == 0


def _export(path: Path, src) -> None:
    shutil.copytree(src["root"] / "export", path)


def _probes(path: Path, src) -> None:
    from interdyn.apps.probes import PROBE_FILES
    from interdyn.support.safe_output import claim_output_folder

    claim_output_folder(path, kind="probes", signature_files=PROBE_FILES)
    (path / "probes.json").write_text("{}")


def _demo(path: Path, src) -> None:
    from interdyn.support.safe_output import claim_output_folder

    claim_output_folder(path, kind="demo")
    (path / "contact_sheet.png").write_bytes(b"png")
    (path / "hit.mp4").write_bytes(b"mp4")


def _tiny(path: Path, src) -> None:
    shutil.copytree(Path(src["tiny"]["svd"]).parent, path)


VICTIMS = {"training-run": _training_run, "evaluation": _evaluation, "dataset": _dataset, "frames": _frames,
           "export": _export, "probes": _probes, "demo": _demo, "tiny-models": _tiny}


def test_every_kind_has_a_victim():
    """The table below covers every kind the library knows (a new kind needs its row)."""
    assert set(VICTIMS) | {"dataset-clip"} == set(OUTPUT_KINDS)


# ------------------------------------------------------------------ the writers: each command's own entry point
def _refused(call) -> str:
    """Run a writer; return its refusal message. A command-line entry point refuses with exit code 2 and one
    ``error:`` line; a library function with OutputError."""
    try:
        result = call()
    except OutputError as err:
        return str(err)
    except SystemExit as err:
        result = err.code
    assert result not in (0, None), "the write was not refused"
    return ""


def _cli(args, capsys) -> str:
    from interdyn.apps.cli import main

    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, f"exit code {code}: {err}"
    assert err.startswith("error: ") and "Traceback" not in err, err
    return err


def write_generate(path, src, capsys):
    root = src["root"]
    return _cli(["generate", "--svd", str(src["tiny"]["svd"]), "--image", str(root / "in.png"), "--out", str(path),
                 "--height", "64", "--width", "64", "--frames", "2", "--steps", "1"], capsys)


def write_frames(path, src, capsys):
    return _refused(lambda: write_video(path, np.zeros((2, 8, 8, 3), np.uint8), fps=6))


def write_export(path, src, capsys):
    from training.export import main as export_main

    code = export_main(["--checkpoint", str(src["checkpoint"]), "--out", str(path), "--format", "official"])
    err = capsys.readouterr().err
    assert code not in (0, None), err
    return err


def write_train(path, src, capsys):
    from training.checkpoints import check_run_folder, claim_run_folder

    return _refused(lambda: (check_run_folder(path, "latest"), claim_run_folder(path)))


def write_evaluate(path, src, capsys):
    from training.evaluation.runner import evaluate

    return _refused(lambda: evaluate(src["root"] / "no_data", ["copy_first_frame"], out_dir=path))


def write_prepare(path, src, capsys):
    from training.data.clip_writer import claim_prepared_folder

    return _refused(lambda: claim_prepared_folder(path))


def write_probes(path, src, capsys):
    return _cli(["probes", "--out", str(path), "--num-scenes", "1"], capsys)


def write_demo(path, src, capsys):
    return _cli(["demo", "--out", str(path)], capsys)


def write_make_tiny(path, src, capsys):
    from interdyn.core.tiny import write_tiny_models

    return _refused(lambda: write_tiny_models(path))


WRITERS = {"generate": (write_generate, "frames"), "write_video": (write_frames, "frames"),
           "export": (write_export, "export"), "train": (write_train, "training-run"),
           "evaluate": (write_evaluate, "evaluation"), "prepare": (write_prepare, "dataset"),
           "probes": (write_probes, "probes"), "demo": (write_demo, "demo"),
           "make-tiny": (write_make_tiny, "tiny-models")}


@pytest.fixture
def no_models(monkeypatch):
    """A refusal comes before any model loads (and a test never samples by mistake)."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a model was loaded before the output folder was checked")

    monkeypatch.setattr(loading, "load_svd_backbone", forbidden)
    monkeypatch.setattr(loading, "load_control_branch", forbidden)


CROSS = [(w, v) for w, (_, kind) in WRITERS.items() for v in VICTIMS if v != kind]


@pytest.mark.parametrize("writer,victim", CROSS, ids=[f"{w}-onto-{v}" for w, v in CROSS])
def test_no_command_writes_into_another_commands_output(writer, victim, sources, tmp_path, capsys, no_models):
    """Writer ``writer`` onto an output of kind ``victim``: refused, naming what the folder holds; every file of
    the victim unchanged."""
    path = tmp_path / "victim"
    VICTIMS[victim](path, sources)
    assert folder_kind(path) == victim, "the victim carries its kind"
    before = snapshot(path)
    message = WRITERS[writer][0](path, sources, capsys)
    assert snapshot(path) == before, f"{writer} changed the {victim} output"
    assert "never writes into or replaces another command's output" in message, message
    assert OUTPUT_KINDS[victim].split(" (")[0] in message, f"the message names what the folder holds: {message}"


OLDER = [(w, v) for w, (_, kind) in WRITERS.items() for v in ("training-run", "evaluation") if v != kind]


@pytest.mark.parametrize("writer,victim", OLDER, ids=[f"{w}-onto-older-{v}" for w, v in OLDER])
def test_outputs_of_an_older_version_are_not_taken_by_other_commands(writer, victim, sources, tmp_path, capsys,
                                                                     no_models):
    """A training run or evaluation whose marker predates kinds (every output then looked "ours" to every
    command: this is how `generate --out` replaced a run's checkpoints with PNGs) is refused by every other
    command, and left intact."""
    path = tmp_path / "victim"
    VICTIMS[victim](path, sources)
    (path / MARKER).write_text(OLDER_MARKER)
    assert folder_kind(path) == ""
    before = snapshot(path)
    WRITERS[writer][0](path, sources, capsys)
    assert snapshot(path) == before, f"{writer} changed the older {victim} output"


def test_each_command_still_replaces_its_own_output(sources, tmp_path):
    """The positive side: a frame folder and an official export are replaced by a new one of the same kind; a
    training run is accepted by train; an older frame folder (marker without a kind, only frames in it) too."""
    from training.checkpoints import check_run_folder

    frames = tmp_path / "frames"
    _frames(frames, sources)
    write_video(frames, np.full((2, 8, 8, 3), 200, np.uint8), fps=6)
    assert sorted(p.name for p in frames.iterdir()) == [MARKER, "00000.png", "00001.png", "fps.txt"]
    export = tmp_path / "export"
    _export(export, sources)
    run_export(export, sources)
    assert folder_kind(export) == "export"
    run = tmp_path / "run"
    _training_run(run, sources)
    check_run_folder(run, "latest")
    older = tmp_path / "older_frames"
    _frames(older, sources)
    (older / MARKER).write_text(OLDER_MARKER)
    write_video(older, np.zeros((1, 8, 8, 3), np.uint8), fps=6)
    assert folder_kind(older) == "frames", "a replaced older folder gets its kind"


@pytest.mark.parametrize("writer", ["frames", "export"])
def test_whole_folder_writers_refuse_a_folder_holding_a_users_file(writer, sources, tmp_path, capsys):
    """A frame folder or an export folder of ours into which the user put a file is not replaced (replacing it
    would delete the file), with a message naming the file."""
    path = tmp_path / "out"
    VICTIMS[writer](path, sources)
    (path / "my_notes.txt").write_text("mine")
    before = snapshot(path)
    message = (write_frames if writer == "frames" else write_export)(path, sources, capsys)
    assert snapshot(path) == before
    assert "my_notes.txt" in message and "did not write" in message, message


def test_clip_folders_of_a_dataset_keep_foreign_files(tmp_path):
    """`prepare --overwrite` replaces a clip folder only when it holds nothing but a clip's files."""
    import torch

    from training.data.clip_writer import write_clip_folder

    clip = tmp_path / "clip0"
    video, hand = torch.zeros(2, 3, 16, 16), torch.zeros(2, 16, 16, dtype=torch.bool)
    write_clip_folder(clip, video, 6.0, hand)
    write_clip_folder(clip, video, 6.0, hand)  # a clip of ours: replaced
    assert not (clip / MARKER).exists(), "a clip folder carries no marker (others read it)"
    (clip / "annotations.json").write_text("{}")
    before = snapshot(clip)
    with pytest.raises(OutputError, match="annotations.json"):
        write_clip_folder(clip, video, 6.0, hand)
    assert snapshot(clip) == before


def test_a_marker_naming_an_unknown_kind_is_refused(tmp_path):
    """A folder whose marker names a kind this version does not know (a newer interdyn's) is nobody's to take."""
    path = tmp_path / "newer"
    path.mkdir()
    (path / MARKER).write_text("written by interdyn\nkind: something-new\n")
    (path / "data.bin").write_bytes(b"x")
    with pytest.raises(OutputError, match="something-new"):
        check_output_folder(path, what="--out", kind="frames")
    assert (path / "data.bin").read_bytes() == b"x"
