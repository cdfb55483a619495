"""A user's folders survive every writer, and untrusted files run no code and reach no network.

A mistyped output folder is refused and kept (generate, ``write_video``, an official export; a run folder too), a
crafted training checkpoint runs none of its code when a run resumes from it, and a control branch's metadata cannot
make the loader go online. These reproduce findings 1-3 of the first bad-input report (issue 13) as a user meets them,
through interfaces older than the fix, so the file runs against the code before it too (at 99a7954 every test here
fails). The finer cases (every writer, every message) are in ``tests/test_bad_input.py``.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from conftest import Evil, snapshot, tiny_run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from interdyn.core.tiny import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny"))


# ---------------------------------------------------------------------------------------- a user's folders (finding 1)
def test_generate_out_existing_folder_keeps_it(tiny_models, tmp_path, precious):
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


def test_write_video_to_existing_folder_keeps_it(precious):
    from interdyn.data.video_io import write_video

    before = snapshot(precious)
    with pytest.raises(Exception) as err:
        write_video(precious, np.zeros((2, 8, 8, 3), np.uint8), fps=7)
    assert str(precious) in str(err.value), f"the refusal names the folder: {err.value}"
    assert snapshot(precious) == before, "write_video(<existing folder>) must not delete it"
    assert [p.name for p in precious.parent.iterdir() if p.name.startswith(".")] == [], "no temporary left"


@pytest.mark.parametrize("target", ["user_folder", "run_folder"])
def test_export_official_keeps_existing_folders(tiny_models, tmp_path, precious, target):
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


# ------------------------------------------------------------------------------------ a crafted checkpoint (finding 2)
def test_resume_from_a_crafted_checkpoint_runs_no_code(tmp_path, fresh_accelerate_state):
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


# ----------------------------------------------------------------------------------------- branch metadata (finding 3)
def test_branch_metadata_cannot_make_the_loader_go_online(tiny_models, tmp_path, monkeypatch):
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
