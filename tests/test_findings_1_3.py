"""Findings 1-3 of the bad-input report (issue 13), reproduced exactly as a user meets them.

These tests use only interfaces that existed before the fix (the ``interdyn`` CLI, ``write_video``,
``training.export``, ``training.train``, ``load_control_branch``), so the same file runs against the code
before and after it. Against 99a7954 (the last commit before the fix) every test here fails: the folder is
deleted, the crafted checkpoint runs its code, the loader goes online. The finer cases (every writer, every
message) are in ``tests/test_bad_input.py``.
"""
from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes (to prove nothing was lost or changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def precious(tmp_path) -> Path:
    """A user's folder that is not ours."""
    folder = tmp_path / "holiday_photos"
    (folder / "2024").mkdir(parents=True)
    (folder / "beach.jpg").write_bytes(b"not really a jpeg, but precious")
    (folder / "2024" / "notes.txt").write_text("do not delete")
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from interdyn.core.tiny import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def accelerate_state():
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


# ------------------------------------------------------------------------------------------------ finding 1
def test_finding1_generate_out_existing_folder_keeps_it(tiny_models, tmp_path, precious):
    """`interdyn generate ... --out <existing folder>` (no extension = PNG frames) used to replace the folder."""
    from interdyn.apps.cli import main
    from interdyn.data.video_io import write_video

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "in.png")
    write_video(tmp_path / "hand.mp4", np.zeros((2, 64, 64, 3), np.uint8), fps=7, lossless=True)
    before = snapshot(precious)
    try:
        main(["generate", "--svd", str(tiny_models["svd"]), "--interdyn", str(tiny_models["interdyn"]),
              "--image", str(tmp_path / "in.png"), "--control", str(tmp_path / "hand.mp4"), "--out", str(precious),
              "--height", "64", "--width", "64", "--frames", "2", "--steps", "1"])
    except SystemExit:
        pass
    assert snapshot(precious) == before, "a mistyped --out must not delete or change the user's folder"


def test_finding1_write_video_to_existing_folder_keeps_it(precious):
    from interdyn.data.video_io import write_video

    before = snapshot(precious)
    with pytest.raises(Exception) as err:
        write_video(precious, np.zeros((2, 8, 8, 3), np.uint8), fps=7)
    assert str(precious) in str(err.value), f"the refusal names the folder: {err.value}"
    assert snapshot(precious) == before, "write_video(<existing folder>) must not delete it"
    assert [p.name for p in precious.parent.iterdir() if p.name.startswith(".")] == [], "no temporary left"


def tiny_run(tiny_models, root: Path, step: int = 3) -> Path:
    """A training run folder with one checkpoint holding what training.export reads."""
    ckpt = root / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (root / "loss.csv").write_text("step,loss\n1,0.5\n")
    shutil.copy(tiny_models["interdyn"], ckpt / "control_branch.safetensors")
    shutil.copy(Path(tiny_models["svd"]) / "unet" / "config.json", ckpt / "unet_config.json")
    (ckpt / "trainer_state.json").write_text(json.dumps({"step": step}))
    return ckpt


@pytest.mark.parametrize("target", ["user_folder", "run_folder"])
def test_finding1_export_official_keeps_existing_folders(tiny_models, tmp_path, precious, target):
    """`training.export --format official --out <existing folder>` used to delete it; with --out = the run
    folder, the whole run, checkpoints included."""
    from training.export import main as export_main

    ckpt = tiny_run(tiny_models, tmp_path / "run")
    folder = precious if target == "user_folder" else tmp_path / "run"
    before = snapshot(folder)
    try:
        code = export_main(["--checkpoint", str(ckpt), "--out", str(folder), "--format", "official"])
    except SystemExit as exit_:
        code = exit_.code
    assert snapshot(folder) == before, f"export --out {target} must leave it intact"
    assert code not in (0, None), "the refusal is an error exit"


# ------------------------------------------------------------------------------------------------ finding 2
class Evil:
    """Unpickling this creates a file: proof that code from the checkpoint ran."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_finding2_resume_from_a_crafted_checkpoint_runs_no_code(tmp_path, accelerate_state):
    """`training.train --resume` used to unpickle custom_checkpoint_0.pkl (weights_only=False): a shared
    checkpoint folder could run a shell command."""
    from accelerate.state import AcceleratorState, GradientState

    from training.train import main as train_main

    run = tmp_path / "run"
    args = ["--config", str(REPO / "training" / "configs" / "cpu_tiny.yaml"), "--output_dir", str(run),
            "--synthetic_num_scenes", "2", "--checkpoint_every", "1", "--validation_every", "0",
            "--report_to", "none"]
    assert train_main([*args, "--max_steps", "1"]) == 0
    ckpt = run / "checkpoint-1"
    assert ckpt.is_dir(), f"the first run wrote a checkpoint: {sorted(p.name for p in run.iterdir())}"
    marker = tmp_path / "pwned"
    torch.save({"state": Evil(marker)}, ckpt / "custom_checkpoint_0.pkl")  # as a crafted shared checkpoint would
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    try:
        train_main([*args, "--max_steps", "2", "--resume", "latest"])
    except Exception:  # a refusal is fine; running the planted code is not
        pass
    assert not marker.exists(), "resuming from a crafted checkpoint ran code from it"


# ------------------------------------------------------------------------------------------------ finding 3
def test_finding3_branch_metadata_cannot_make_the_loader_go_online(tiny_models, tmp_path, monkeypatch):
    """A `.safetensors` whose `config` metadata is a JSON string (a hub repo name) used to reach
    `from_config`, which contacted the hub."""
    from interdyn.core.loading import load_control_branch

    attempts = []

    def connect(self, address, *args):
        attempts.append(address)
        raise OSError(f"test: network blocked ({address})")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: connect(None, address))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    with safe_open(str(tiny_models["interdyn"]), framework="pt") as f:
        meta = dict(f.metadata())
    meta["config"] = json.dumps("stabilityai/stable-video-diffusion-img2vid")
    path = tmp_path / "branch.safetensors"
    save_file(load_file(str(tiny_models["interdyn"])), str(path), metadata=meta)
    with pytest.raises(Exception) as err:
        load_control_branch(path)
    assert attempts == [], f"no connection may be attempted, got {attempts}"
    assert str(path) in str(err.value) and "config" in str(err.value), f"the message names the file: {err.value}"
