"""Bad input and unsafe files, as a new user meets them: a clear message naming the argument, before any
compute, and nothing lost. Grouped by surface: command line, Python API, loaders, training/export, nodes.

Every case checks (1) the message and (2) that nothing the user had was changed. Models are never
needed for the refusals: loaders are replaced by functions that fail the test if called, or a
stand-in backbone with no model at all is passed, so validation is proven to come first.
"""
from __future__ import annotations

import json
import pickle
import socket
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import interdyn.core.loading as loading
from interdyn.apps.cli import main
from interdyn.core.loading import ModelLoadError, load_control_branch
from interdyn.support.safe_output import MARKER, OutputError
from interdyn.core.sampling import generate_video, sample_latents
from interdyn.support.validation import InputError
from interdyn.data.video_io import read_video, write_video
from conftest import Evil, snapshot
from conftest import tiny_run as tiny_checkpoint


@pytest.fixture
def no_models(monkeypatch):
    """Any model load fails the test: refusals must come before it."""
    def forbidden(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were validated")

    monkeypatch.setattr(loading, "load_svd_backbone", forbidden)
    monkeypatch.setattr(loading, "load_control_branch", forbidden)


# ================================================================================= command line
@pytest.fixture
def gen_files(tmp_path):
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "in.png")
    write_video(tmp_path / "hand.mp4", np.zeros((4, 64, 64, 3), np.uint8), fps=7, lossless=True)
    return tmp_path


def generate(files: Path, *extra: str, out: str | None = None) -> list[str]:
    return ["generate", "--svd", str(files / "svd"), "--image", str(files / "in.png"),
            "--out", out or str(files / "out.mp4"), "--height", "64", "--width", "64", "--frames", "2",
            "--steps", "1", *extra]


CLI_CASES = [  # (extra arguments, words the message must hold)
    (["--frames", "0"], ["--frames", "at least 1"]),
    (["--steps", "0"], ["--steps", "at least 1"]),
    (["--decode-chunk", "-1"], ["--decode-chunk", "at least 1"]),
    (["--max-guidance", "-5"], ["--max-guidance", ">= 1"]),
    (["--max-guidance", "nan"], ["--max-guidance", "finite"]),
    (["--min-guidance", "inf"], ["--min-guidance", "finite"]),
    (["--strength", "nan"], ["--strength", "finite"]),
    (["--noise-aug", "nan"], ["--noise-aug", "finite"]),
    (["--noise-aug", "-0.1"], ["--noise-aug", ">= 0"]),
    (["--fps", "0"], ["--fps", "> 0"]),
    (["--motion-bucket", "nan"], ["--motion-bucket", "finite"]),
    (["--control-start", "0.8", "--control-end", "0.2"], ["--control-start", "--control-end"]),
    (["--control-end", "1.5"], ["--control-end", "between 0"]),
    (["--seed", "-1"], ["--seed", "between 0"]),
    (["--height", "100"], ["--height", "multiple of 64"]),
    (["--width", "0"], ["--width", "at least 64"]),
]


@pytest.mark.parametrize("extra,words", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_generate_refuses_bad_numbers_with_the_flag_name_before_loading(gen_files, no_models, capsys, extra,
                                                                             words):
    code = main(generate(gen_files, *extra))
    err = capsys.readouterr().err
    assert code == 2, f"a user error exits 2, got {code}"
    assert all(w in err for w in words), f"the message names the flag and the rule {words}: {err!r}"
    assert err.count("\n") == 1 and "Traceback" not in err, f"one line, no traceback: {err!r}"
    assert not (gen_files / "out.mp4").exists(), "nothing is written"


def test_cli_generate_out_existing_folder_is_refused_and_kept(gen_files, precious, no_models, capsys):
    before = snapshot(precious)
    assert main(generate(gen_files, out=str(precious))) == 2
    err = capsys.readouterr().err
    assert str(precious) in err and "did not make" in err, f"the message names the folder: {err!r}"
    assert snapshot(precious) == before, "finding 1: a mistyped --out must not delete the user's folder"


@pytest.mark.parametrize("out,words", [("out.avi", ["--out", "unsupported extension '.avi'"]),
                                       ("out.mp4/", None)])
def test_cli_generate_out_extension_and_kind_checked_before_loading(gen_files, no_models, capsys, out, words):
    if words is None:  # an existing folder named like a video
        (gen_files / "out.mp4").mkdir()
        words = ["--out", "existing folder"]
    assert main(generate(gen_files, out=str(gen_files / out))) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), f"{words} in {err!r}"


def test_cli_generate_image_and_control_problems_are_named(gen_files, no_models, capsys):
    (gen_files / "frames").mkdir()
    cases = [(["--image", str(gen_files / "frames")], "--image", "is a folder"),
             (["--image", str(gen_files / "missing.png")], "--image", "does not exist"),
             (["--control", str(gen_files / "in.png"), "--interdyn", "x.safetensors"], "--control",
              "single image"),
             (["--control", str(gen_files / "hand.mp4")], "--control", "needs --interdyn"),
             (["--control", str(gen_files / "nope.mp4"), "--interdyn", "x"], "--control", "does not exist")]
    for extra, flag, words in cases:
        args = generate(gen_files)
        if extra[0] == "--image":
            args[args.index("--image") + 1] = extra[1]
        else:
            args += extra
        assert main(args) == 2, extra
        err = capsys.readouterr().err
        assert flag in err and words in err, f"{extra}: {err!r}"


def test_cli_generate_keeps_a_comparison_file_it_did_not_write(gen_files, no_models, capsys):
    """``--out clip.mp4`` also writes ``clip_comparison.mp4``: a file of that name without ``clip.mp4`` beside it
    is not from an earlier run, so it is not replaced."""
    theirs = gen_files / "out_comparison.mp4"
    theirs.write_bytes(b"someone else's video")
    assert main(generate(gen_files)) == 2
    err = capsys.readouterr().err
    assert str(theirs) in err and "not from an earlier run" in err, err
    assert theirs.read_bytes() == b"someone else's video"


@pytest.fixture
def no_toy_model(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the built-in model was loaded before the arguments were validated")

    monkeypatch.setattr(loading, "load_toy_physics", forbidden)


@pytest.mark.parametrize("extra,words", [(["--zoom", "0"], ["--zoom", "at least 1"]),
                                         (["--steps", "0"], ["--steps", "at least 1"]),
                                         (["--seed", "-1"], ["--seed", "between 0"])])
def test_cli_demo_checks_numbers_with_flag_names_before_loading(tmp_path, no_toy_model, capsys, extra, words):
    assert main(["demo", "--out", str(tmp_path / "demo"), *extra]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words) and "Traceback" not in err, f"{words} in {err!r}"
    assert not (tmp_path / "demo").exists(), "nothing is written"


def test_cli_demo_out_under_a_file_is_refused_before_loading(tmp_path, no_toy_model, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path / "notes.txt" / "demo")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "not a folder" in err, err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_demo_refuses_a_foreign_folder_before_loading(precious, no_toy_model, capsys):
    before = snapshot(precious)
    assert main(["demo", "--out", str(precious)]) == 2
    assert str(precious) in capsys.readouterr().err
    assert snapshot(precious) == before, "the demo must not write its videos into someone else's folder"


def test_run_demo_refuses_a_foreign_folder_with_python_names(precious, no_toy_model):
    from interdyn.apps.demo import run_demo

    with pytest.raises(OutputError, match="^out "):
        run_demo(precious)
    with pytest.raises(InputError, match="zoom"):
        run_demo(precious.parent / "new", zoom=0)
    assert not (precious.parent / "new").exists()


def test_cli_debug_flag_shows_the_traceback(gen_files, no_models):
    with pytest.raises(InputError, match="--frames"):
        main(generate(gen_files, "--frames", "0", "--debug"))


def test_cli_probes_zero_scenes_keeps_previous_results(tmp_path, no_models, capsys):
    out = tmp_path / "probes"
    out.mkdir()
    (out / "probes.json").write_text('{"previous": "results"}')
    before = snapshot(out)
    assert main(["probes", "--num-scenes", "0", "--out", str(out)]) == 2
    assert "--num-scenes" in capsys.readouterr().err
    assert snapshot(out) == before, "finding 4: --num-scenes 0 must not overwrite results with empty ones"


def test_cli_probes_refuses_a_foreign_folder_before_sampling(precious, no_models, capsys):
    before = snapshot(precious)
    assert main(["probes", "--num-scenes", "1", "--out", str(precious)]) == 2
    assert str(precious) in capsys.readouterr().err
    assert snapshot(precious) == before


# ================================================================================= Python API
def test_write_video_replaces_its_own_frame_folder_atomically(tmp_path):
    out = tmp_path / "frames"
    write_video(out, np.zeros((3, 8, 8, 3), np.uint8), fps=7)
    assert (out / MARKER).is_file(), "a frame folder we write carries our marker"
    write_video(out, np.full((2, 8, 8, 3), 255, np.uint8), fps=5)
    frames, fps = read_video(out)
    assert frames.shape[0] == 2 and frames.min() == 255 and fps == 5, "our own output is replaced"
    empty = tmp_path / "empty"
    empty.mkdir()
    write_video(empty, np.zeros((1, 8, 8, 3), np.uint8), fps=7)
    assert read_video(empty)[0].shape[0] == 1, "an empty folder has nothing to lose and is used"


NO_MODEL = SimpleNamespace(vae_scale_factor=8)  # any model access raises AttributeError
IMAGE = torch.rand(1, 3, 64, 64)
CONTROL = torch.rand(1, 2, 3, 64, 64)

API_CASES = [  # (kwargs for sample_latents, words in the message)
    (dict(image=(IMAGE * 255).to(torch.uint8)), ["image", "torch.uint8", "/ 255"]),
    (dict(image=IMAGE * 255), ["image", "0..255"]),
    (dict(image=IMAGE.clone().fill_(float("nan"))), ["image", "NaN"]),
    (dict(image=IMAGE[0, :1]), ["image", "[batch, 3, height, width]"]),
    (dict(image=IMAGE.numpy()), ["image", "torch.Tensor"]),
    (dict(control=(CONTROL * 255).to(torch.uint8)), ["control", "torch.uint8"]),
    (dict(control=CONTROL * float("inf")), ["control", "infinite"]),
    (dict(control=torch.rand(1, 5, 3, 64, 64)), ["control has 5 frames", "num_frames"]),
    (dict(num_frames=0), ["num_frames", "at least 1"]),
    (dict(num_steps=0), ["num_steps", "at least 1"]),
    (dict(max_guidance=-5.0), ["max_guidance", ">= 1"]),
    (dict(max_guidance=float("nan")), ["max_guidance", "finite"]),
    (dict(control_strength=float("nan")), ["control_strength", "finite"]),
    (dict(noise_aug_strength=float("nan")), ["noise_aug_strength", "finite"]),
    (dict(generator=-3), ["generator", "between 0"]),
    (dict(control_start=0.9, control_end=0.1), ["control_start", "control_end"]),
]


@pytest.mark.parametrize("kwargs,words", API_CASES, ids=[",".join(c[0]) + str(i) for i, c in enumerate(API_CASES)])
def test_sample_latents_validates_before_touching_the_model(kwargs, words):
    args = dict(image=IMAGE, control=CONTROL, control_branch=object(), num_frames=2, num_steps=1)
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        sample_latents(NO_MODEL, args.pop("image"), args.pop("control"), args.pop("control_branch"), **args)
    assert all(w in str(err.value) for w in words), f"{words} in {err.value}"


def test_generate_video_checks_decode_chunk_first():
    with pytest.raises(InputError, match="decode_chunk_size"):
        generate_video(NO_MODEL, IMAGE, decode_chunk_size=0, num_frames=2, num_steps=1)


def test_run_probes_and_write_report_refuse_what_would_lose_data(tmp_path, precious):
    from interdyn.apps import probes

    with pytest.raises(InputError, match="num_scenes"):
        probes.run_probes(lambda *a: None, num_scenes=0)
    report = probes.ProbeReport(settings={})
    before = snapshot(precious)
    with pytest.raises(OutputError, match="did not make"):
        probes.write_report(report, precious)
    assert snapshot(precious) == before


def test_masks_f1hw_are_not_read_as_objects_of_one_frame():
    """A mask video as [F, 1, H, W] (a channel dim) used to become F objects of 1 frame, silently."""
    from interdyn.core.control import masks_to_control

    with pytest.raises(ValueError, match=r"\[F, 1, H, W\]; squeeze dim 1"):
        masks_to_control(torch.zeros(5, 1, 16, 16))
    assert masks_to_control([torch.zeros(1, 16, 16), torch.ones(1, 16, 16)]).shape == (1, 3, 16, 16), \
        "several objects of one frame stay possible, as a list"


# ================================================================================= loaders
@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from interdyn.core.tiny import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny"))


def with_metadata(tiny_models, tmp_path, **changes) -> Path:
    from safetensors import safe_open
    from safetensors.torch import load_file

    src = tiny_models["interdyn"]
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
    meta.update(changes)
    path = tmp_path / "branch.safetensors"
    save_file(load_file(str(src)), str(path), metadata=meta)
    return path


@pytest.fixture
def network_blocked(monkeypatch):
    """Record (and refuse) every outgoing connection; make the hub libraries believe they are online."""
    attempts = []

    def connect(self, address, *args):
        attempts.append(address)
        raise OSError(f"test: network blocked ({address})")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, address: connect(self, address))
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: connect(None, address))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return attempts


def test_config_that_is_a_hub_name_is_refused_without_going_online(tiny_models, tmp_path, network_blocked):
    path = with_metadata(tiny_models, tmp_path, config=json.dumps("stabilityai/stable-video-diffusion-img2vid"))
    with pytest.raises(ModelLoadError) as err:
        load_control_branch(path)
    assert str(path) in str(err.value) and "'config'" in str(err.value) and "JSON object" in str(err.value), \
        f"finding 3: the message names the file and the metadata entry: {err.value}"
    assert network_blocked == [], f"finding 3: no connection may be attempted, got {network_blocked}"


@pytest.mark.parametrize("key", ["config", "provenance"])
def test_malformed_metadata_json_names_the_file(tiny_models, tmp_path, key):
    path = with_metadata(tiny_models, tmp_path, **{key: "{not json"})
    with pytest.raises(ModelLoadError) as err:
        load_control_branch(path)
    assert str(path) in str(err.value) and repr(key) in str(err.value) and "not valid JSON" in str(err.value)


def test_folder_config_that_is_not_an_object_is_refused(tmp_path):
    folder = tmp_path / "controlnet"
    folder.mkdir()
    (folder / "config.json").write_text('["a list"]')
    save_file({"x": torch.zeros(1)}, str(folder / "diffusion_pytorch_model.safetensors"))
    with pytest.raises(ModelLoadError, match="must hold a JSON object"):
        load_control_branch(folder)


def test_every_loader_works_with_the_network_blocked(tiny_models, network_blocked):
    from interdyn.core.loading import load_svd_backbone

    backbone = load_svd_backbone(tiny_models["svd"])
    load_control_branch(tiny_models["interdyn"], backbone=backbone)
    backbone = load_svd_backbone("builtin:toy-physics")
    load_control_branch("builtin:toy-physics", backbone=backbone)
    assert network_blocked == [], f"loaders must never connect anywhere: {network_blocked}"


def test_untrusted_torchscript_is_not_loaded(tmp_path, monkeypatch):
    from interdyn.metrics import UntrustedWeightsError, load_i3d

    (tmp_path / "i3d_torchscript.pt").write_bytes(b"anything at all")
    calls = []
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: calls.append(a) or torch.nn.Identity())
    with pytest.raises(UntrustedWeightsError, match="--trust-i3d"):
        load_i3d(tmp_path)
    assert calls == [], "a TorchScript file with an unknown SHA-256 is never opened"
    from interdyn.metrics.weights import I3D_SIZE, sha256_of

    same_size = tmp_path / "i3d_torchscript.pt"
    with open(same_size, "wb") as f:
        f.truncate(I3D_SIZE)  # the published size, other bytes: the digest decides
    with pytest.raises(UntrustedWeightsError) as err:
        load_i3d(tmp_path)
    assert sha256_of(same_size) in str(err.value) and calls == [], err.value
    load_i3d(tmp_path, trust=True)
    assert len(calls) == 1, "trust=True (--trust-i3d) loads the file the user vouches for"


def test_sam2_garbage_checkpoint_message_does_not_advise_weights_only_false(tmp_path):
    from interdyn.data.segmentation import _read_state_dict

    path = tmp_path / "sam2.1_hiera_tiny.pt"
    path.write_bytes(pickle.dumps(Evil(tmp_path / "pwned")))
    with pytest.raises(ValueError) as err:
        _read_state_dict(path)
    assert "weights_only=False" not in str(err.value) and "weights_only set to False" not in str(err.value), \
        f"never advise unsafe loading: {err.value}"
    assert not (tmp_path / "pwned").exists(), "nothing ran"


# ================================================================================= training and export
def test_export_official_refuses_a_foreign_folder(tiny_models, tmp_path, precious, capsys):
    from training.export import main as export_main

    ckpt = tiny_checkpoint(tiny_models, tmp_path / "run")
    before = snapshot(precious)
    assert export_main(["--checkpoint", str(ckpt), "--out", str(precious), "--format", "official"]) == 2
    assert str(precious) in capsys.readouterr().err
    assert snapshot(precious) == before, "finding 1: --format official must not delete an existing folder"


@pytest.mark.parametrize("where", ["run", "checkpoint", "inside_checkpoint"])
def test_export_refuses_out_in_the_run_or_checkpoint(tiny_models, tmp_path, where, capsys):
    from training.export import main as export_main

    run = tmp_path / "run"
    ckpt = tiny_checkpoint(tiny_models, run)
    out = {"run": run, "checkpoint": ckpt, "inside_checkpoint": ckpt / "control_branch.safetensors"}[where]
    before = snapshot(run)
    fmt = "single" if where == "inside_checkpoint" else "official"
    assert export_main(["--checkpoint", str(run), "--out", str(out), "--format", fmt]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and ("run folder" in err or "checkpoint folder" in err), err
    assert snapshot(run) == before, "finding 1: the run and its checkpoints are intact"


def test_export_official_replaces_its_own_previous_export(tiny_models, tmp_path):
    from training.export import export

    ckpt = tiny_checkpoint(tiny_models, tmp_path / "run")
    out = tmp_path / "exported"
    with pytest.warns(UserWarning):
        export(ckpt, out, format="official")
    (out / "config.json").write_text("{}")  # stale content of our own export
    with pytest.warns(UserWarning):
        export(ckpt, out, format="official")
    assert json.loads((out / "config.json").read_text())["_class_name"] == "ControlNetSDVModel", "replaced"
    load_control_branch(out)


def accelerate_checkpoint(tmp_path: Path):
    """A real accelerate checkpoint of a tiny model (no training): model, optimizer, scheduler, RNG."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    acc = Accelerator(cpu=True)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    model, opt, sched = acc.prepare(model, opt, sched)
    ckpt = tmp_path / "checkpoint-1"
    acc.save_state(str(ckpt))
    (ckpt / "trainer_state.json").write_text(json.dumps(
        {"step": 1, "epoch": 0, "batch_in_epoch": 1, "micro_step": 1, "micro_in_step": 0}))
    return acc, ckpt


@pytest.mark.parametrize("victim", ["custom_checkpoint_0.pkl", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"])
def test_resume_from_a_crafted_checkpoint_runs_no_code(tmp_path, victim):
    from training.checkpoints import CheckpointError, TrainingState, load_checkpoint

    acc, ckpt = accelerate_checkpoint(tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"state": Evil(marker)}, ckpt / victim)  # torch.save pickles: the classic malicious checkpoint
    state = TrainingState()
    if victim == "custom_checkpoint_0.pkl":  # never opened: resume reads trainer_state.json
        load_checkpoint(acc, ckpt, state, None, [])
        assert state.step == 1, "the counters come from trainer_state.json"
    else:
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(acc, ckpt, state, None, [])
        assert victim in str(err.value) and "nothing was unpickled" in str(err.value), err.value
    assert not marker.exists(), f"finding 2: resuming from a crafted {victim} must not run code"


def test_trainer_registers_nothing_for_pickled_checkpointing():
    """accelerate unpickles registered custom objects with weights_only=False on resume: register none."""
    import inspect

    import training.train as tt

    assert "register_for_checkpointing(" not in inspect.getsource(tt), \
        "finding 2: the loop counters and the EMA must be saved as JSON/safetensors, not as accelerate custom objects"


def test_training_output_dir_that_is_not_ours_is_refused(tmp_path, precious):
    from training.checkpoints import check_run_folder

    before = snapshot(precious)
    with pytest.raises(OutputError, match="output_dir"):
        check_run_folder(precious, None)
    assert snapshot(precious) == before


def test_training_existing_run_needs_resume(tmp_path, tiny_models):
    from training.checkpoints import CheckpointError, check_run_folder

    tiny_checkpoint(tiny_models, tmp_path / "run")
    with pytest.raises(CheckpointError, match="--resume latest"):
        check_run_folder(tmp_path / "run", None)
    check_run_folder(tmp_path / "run", "latest")


def test_training_cli_names_the_key_of_a_bad_number(capsys):
    from training.train import main as train_main

    assert train_main(["--config", "cpu_tiny", "--max_steps", "abc"]) == 2
    err = capsys.readouterr().err
    assert "max_steps" in err and "'abc'" in err and "Traceback" not in err, err


def test_a_run_killed_while_saving_is_cleaned_up_on_resume(tmp_path, fresh_accelerate_state):
    """Finding 7: the dead run's ``.tmp-checkpoint-*`` is removed and ``loss.csv`` holds each step once."""
    from accelerate.state import AcceleratorState, GradientState

    from training.train import main as train_main

    run = tmp_path / "run"
    args = ["--config", "cpu_tiny", "--output_dir", str(run), "--synthetic_num_scenes", "2",
            "--checkpoint_every", "1", "--validation_every", "0", "--report_to", "none", "--log_every", "1"]
    assert train_main([*args, "--max_steps", "1"]) == 0
    (run / ".tmp-checkpoint-2").mkdir()  # the kill came while step 2 was being saved ...
    (run / ".tmp-checkpoint-2" / "model.safetensors").write_bytes(b"half written")
    with open(run / "loss.csv", "a") as f:  # ... after step 2 was logged
        f.write("2,0.123\n")
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    assert train_main([*args, "--max_steps", "2", "--resume", "latest"]) == 0
    assert not (run / ".tmp-checkpoint-2").exists(), "the unfinished checkpoint is removed"
    steps = [line.split(",")[0] for line in (run / "loss.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2"], f"each step once, the dead run's row replaced: {steps}"


def test_loss_log_is_cut_back_to_the_resumed_step(tmp_path):
    from training.checkpoints import truncate_loss_log

    log = tmp_path / "loss.csv"
    log.write_text("step,loss\n1,0.5\n2,0.4\n3,0.3\n4,0.2\n")
    truncate_loss_log(log, 2)
    assert log.read_text() == "step,loss\n1,0.5\n2,0.4\n", "rows of the dead run after the checkpoint are dropped"


# ================================================================================= data preparation and evaluation
def test_prepare_refuses_a_foreign_out_folder(tmp_path, precious, capsys):
    from training.data.prepare import main as prepare_main

    (tmp_path / "dex").mkdir()
    before = snapshot(precious)
    assert prepare_main(["dexycb", "--root", str(tmp_path / "dex"), "--out", str(precious)]) == 2
    assert str(precious) in capsys.readouterr().err
    assert snapshot(precious) == before


def test_evaluate_refuses_a_foreign_out_folder(tmp_path, precious):
    from training.evaluate import evaluate

    before = snapshot(precious)
    with pytest.raises(OutputError, match="out_dir"):
        evaluate(tmp_path, out_dir=precious, generated={"x": tmp_path})
    assert snapshot(precious) == before


# ================================================================================= nodes
@pytest.fixture(scope="module")
def nodes():
    """The pack imported as ComfyUI imports a custom node folder; its functions by node name."""
    import importlib.util
    import sys
    import uuid

    repo = Path(__file__).resolve().parents[1]
    name = f"pack_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, repo / "__init__.py", submodule_search_locations=[str(repo)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules[name] = pack
    spec.loader.exec_module(pack)
    return pack.nodes.FUNCTIONS


def test_sampler_node_names_the_widget(nodes):
    InterDynSampler = nodes["InterDynSampler"]
    model = SimpleNamespace(control_branch=None, backbone=None)  # no model: the widgets are checked first
    with pytest.raises(ValueError, match="max_cfg"):
        InterDynSampler(model, torch.rand(1, 64, 64, 3), 64, 64, 2, 1, 1.0, float("nan"), 7, 40, 0.02, 0,
                        1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="frames must be at least 1"):
        InterDynSampler(model, torch.rand(1, 64, 64, 3), 64, 64, 0, 1, 1.0, 2.0, 7, 40, 0.02, 0,
                        1.0, 0.0, 1.0)


MASKS = torch.ones(4, 64, 64)
MASK_NODE_CASES = [  # (widget values changed, words the message must hold: the widget's name first)
    (dict(frames=0), ["frames must be at least 1"]),
    (dict(start_frame=10), ["start_frame", "mask_1", "4 frames"]),
    (dict(source_fps=0.0), ["source_fps must be > 0"]),
    (dict(target_fps=float("nan")), ["target_fps", "finite"]),
    (dict(objects_in_mask_1=0), ["objects_in_mask_1 must be at least 1"]),
    (dict(objects_in_mask_1=3), ["mask_1 has 4 frames", "objects_in_mask_1"]),
    (dict(mask_1=torch.full((4, 64, 64), float("nan"))), ["mask_1", "NaN"]),
    (dict(mask_2=MASKS * 255), ["mask_2", "divide by 255"]),
]


@pytest.mark.parametrize("change,words", MASK_NODE_CASES, ids=[next(iter(c[0])) + str(i) for i, c in
                                                               enumerate(MASK_NODE_CASES)])
def test_control_from_masks_node_names_the_widget(nodes, change, words):
    args = dict(mask_1=MASKS, width=64, height=64, frames=4, source_fps=7.0, target_fps=7.0, crop="center",
                start_frame=0, objects_in_mask_1=1)
    args.update(change)
    with pytest.raises(ValueError) as err:
        nodes["InterDynControlFromMasks"](**args)
    assert all(w in str(err.value) for w in words), f"{words} in {err.value}"


def test_other_nodes_name_their_widgets(nodes):
    renders = nodes["InterDynControlFromRenders"]
    with pytest.raises(ValueError, match="renders values range from 255"):
        renders(torch.full((4, 64, 64, 3), 255.0), 64, 64, 4, 7.0, 7.0, "center", 0)
    with pytest.raises(ValueError, match="start_frame must be a frame of renders"):
        renders(torch.rand(4, 64, 64, 3), 64, 64, 4, 7.0, 7.0, "center", 4)
    with pytest.raises(ValueError, match="frames must be at least 1"):
        nodes["InterDynMaskTrajectory"](torch.ones(1, 64, 64), "[]", 0, "linear")
    scene = nodes["InterDynSyntheticScene"]
    preset = "push"
    with pytest.raises(ValueError, match="frames must be at least 2"):
        scene(preset, 0, 64, 64, 1)
    with pytest.raises(ValueError, match="width must be at least 32"):
        scene(preset, 0, 10, 64, 4)


def test_one_frame_size_rule_names_the_callers_widgets_and_suggests_a_size():
    """interdyn.support.validation.check_frame_size is the one size check of the CLI, the sampler, the nodes, training
    configs and control fitting: it names the caller's own names, only the side that is wrong, and a size that works
    in the caller's order (width x height for ComfyUI's widgets)."""
    from interdyn.support.validation import InputError, check_frame_size

    assert check_frame_size(256, 384) == (256, 384)
    assert check_frame_size(None, 128, names=("--height", "--width")) == (None, 128), "None skips a side"
    with pytest.raises(InputError, match=r"^--height must be a multiple of 64 .*--height x --width is 100x64; "
                                         r"use e\.g\. 128x64"):
        check_frame_size(100, 64, names=("--height", "--width"))
    with pytest.raises(InputError, match=r"^height and width must be multiples of 64 .*width x height is 90x40; "
                                         r"use e\.g\. 128x64 \(the paper uses 384x256\)"):
        check_frame_size(40, 90, width_first=True)
    with pytest.raises(InputError, match=r"^width must be at least 64, got 0"):
        check_frame_size(64, 0)
    with pytest.raises(InputError, match=r"multiple of 8 \(the VAE and the control CNN.*use e\.g\. 256x384"):
        check_frame_size(250, 384, multiple_of=8)
    assert check_frame_size(7, 9, multiple_of=None) == (7, 9), "no multiple asked: any positive size"
