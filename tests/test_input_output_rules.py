"""The rules that protect users, one each: outputs readable under the umask and written whole, images at their real
bit depth, an output never replacing an input, every float finite and in range, requested sizes within one memory
budget, and every user error one line naming the option, widget or argument as the caller wrote it.

The second bad-input report (issue 23): each test was written to fail on the code before its fix."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_saved_control_branch_is_readable_by_others_under_umask_022(tmp_path, umask_022):
    """Exported branches were created 0600 (the temporary file's mode survives the rename): a ComfyUI service
    account could not read a branch another user exported."""
    from interdyn.core.loading import save_control_branch
    from interdyn.core.tiny import build_tiny_backbone, build_tiny_control_branch

    path = save_control_branch(build_tiny_control_branch(build_tiny_backbone(0), 0), tmp_path / "b.safetensors")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)


def test_atomic_text_files_follow_the_umask(tmp_path, umask_022):
    from interdyn.support.safe_output import write_text_atomic

    path = write_text_atomic(tmp_path / "a.json", "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from interdyn.support.safe_output import atomic_file

    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        with atomic_file(target) as tmp:
            tmp.write_bytes(b"half")
            raise OSError("disk full")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_16_bit_png_frames_are_scaled_not_clipped_to_white(tmp_path):
    """A 16-bit PNG read through PIL's convert("RGB") became a white frame (99.5 % of pixels at 255)."""
    import numpy as np
    from PIL import Image

    from interdyn.data.video_io import read_video

    folder = tmp_path / "frames"
    folder.mkdir()
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520
    Image.fromarray(ramp).save(folder / "0.png")
    assert Image.open(folder / "0.png").mode.startswith("I"), "the test image is a 16-bit grey PNG"
    frames, _ = read_video(folder, fps=6)
    expected = np.rint(ramp / 65535 * 255).astype(np.uint8)
    assert np.abs(frames[0, ..., 0].astype(int) - expected).max() <= 1, "16-bit values scaled to 8 bits"
    assert (frames[0] == 255).mean() < 0.01


def test_write_video_refuses_float_frames_of_0_to_255(tmp_path):
    """0..255 floats were clipped to a white video while every other entry point refuses them."""
    import numpy as np

    from interdyn.data.video_io import write_video

    frames = np.full((2, 8, 8, 3), 128.0, dtype=np.float32)
    with pytest.raises(ValueError, match=r"float frames must be in \[0, 1\].*divide by 255"):
        write_video(tmp_path / "v.mp4", frames, fps=6)
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("fps", [-1, 0, float("nan")])
def test_read_video_refuses_a_non_positive_fps(tmp_path, fps):
    from interdyn.data.video_io import read_video

    with pytest.raises(ValueError, match="fps must be a positive"):
        read_video(tmp_path / "frames", fps=fps)


# ---------------------------------------------------------------- an output never replaces an input
def test_generate_out_equal_to_control_is_refused_and_the_control_kept(tmp_path, capsys, monkeypatch):
    """`generate --control in/ctl.mp4 --out in/ctl.mp4` overwrote the control video with the result."""
    import numpy as np
    from PIL import Image

    import interdyn.core.loading as loading
    from interdyn.apps.cli import main
    from interdyn.data.video_io import write_video

    monkeypatch.setattr(loading, "load_svd_backbone", lambda *a, **k: pytest.fail("a model loaded before the check"))
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "in.png")
    control = write_video(tmp_path / "ctl.mp4", np.zeros((2, 64, 64, 3), np.uint8), fps=7, lossless=True)
    before = control.read_bytes()
    code = main(["generate", "--svd", "x", "--interdyn", "y.safetensors", "--image", str(tmp_path / "in.png"),
                 "--control", str(control), "--out", str(control), "--height", "64", "--width", "64",
                 "--frames", "2", "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "--out" in err and "input --control" in err, err
    assert control.read_bytes() == before, "the control video is untouched"


def test_manifest_report_equal_to_manifest_is_refused_and_the_manifest_kept(tmp_path, capsys, monkeypatch):
    """`generate --manifest rows.csv --report rows.csv` replaced the manifest with the JSON report."""
    import numpy as np
    from PIL import Image

    import interdyn.core.loading as loading
    from interdyn.apps.cli import main

    monkeypatch.setattr(loading, "load_svd_backbone", lambda *a, **k: pytest.fail("a model loaded before the check"))
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "in.png")
    manifest = tmp_path / "rows.csv"
    manifest.write_text(f"image,out\n{tmp_path / 'in.png'},{tmp_path / 'o.mp4'}\n")
    before = manifest.read_text()
    code = main(["generate", "--svd", "x", "--manifest", str(manifest), "--report", str(manifest),
                 "--height", "64", "--width", "64", "--frames", "2", "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "--report" in err and "--manifest" in err, err
    assert manifest.read_text() == before


def test_make_tiny_refuses_a_folder_holding_the_users_files(tmp_path, capsys):
    """make-tiny overwrote a user's own interdyn_tiny.safetensors and svd_tiny/unet/config.json without a word."""
    from interdyn.apps.cli import main

    folder = tmp_path / "mine"
    (folder / "svd_tiny" / "unet").mkdir(parents=True)
    (folder / "svd_tiny" / "unet" / "config.json").write_text("my config")
    (folder / "interdyn_tiny.safetensors").write_bytes(b"my weights")
    assert main(["make-tiny", str(folder)]) == 2
    assert "error:" in capsys.readouterr().err
    assert (folder / "interdyn_tiny.safetensors").read_bytes() == b"my weights"
    assert (folder / "svd_tiny" / "unet" / "config.json").read_text() == "my config"
    again = tmp_path / "ours"
    assert main(["make-tiny", str(again)]) == 0 and main(["make-tiny", str(again)]) == 0, \
        "a folder make-tiny wrote is ours: a rerun replaces it"


def test_make_tiny_and_official_export_files_are_readable_by_others(tmp_path, umask_022):
    """safetensors' writer creates 0600 files whatever the umask: make-tiny's SVD folder and an official-format
    export were unreadable to a ComfyUI service account."""
    from interdyn.core.tiny import build_tiny_backbone, build_tiny_control_branch, write_tiny_models
    from training.export import write_official_folder

    paths = write_tiny_models(tmp_path / "tiny")
    backbone = build_tiny_backbone(0)
    branch = build_tiny_control_branch(backbone, 0, residual_mode="official")
    official = write_official_folder(branch, tmp_path / "official", dict(backbone.unet.config))
    files = [p for root in (paths["svd"], official) for p in root.rglob("*") if p.is_file()] + [paths["interdyn"]]
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert files and all(m == "0o644" for m in modes.values()), modes


# ---------------------------------------------------------------- every float finite, every value in range
@pytest.mark.parametrize("key,value", [("learning_rate", "nan"), ("learning_rate", "-1e-4"), ("ema_decay", "2"),
                                       ("checkpoints_keep", "-1"), ("adam_beta2", "inf"), ("max_grad_norm", "0"),
                                       ("noise_aug_max", "inf"), ("lr_warmup_steps", "-5")])
def test_training_refuses_impossible_values_by_key_before_building_models(capsys, key, value):
    """`--learning_rate nan` failed only inside torch after the models were built; `--ema_decay 2` and
    `--checkpoints_keep -1` were accepted and used."""
    from training.train import main as train_main

    assert train_main(["--config", "cpu_tiny", f"--{key}={value}"]) == 2
    err = capsys.readouterr().err
    assert key in err and "error" in err.lower(), err


class _NoBackbone:
    """Stands in for a backbone: any use means a check came too late."""

    def __getattr__(self, name):
        raise AssertionError(f"the backbone was used ({name}) before the arguments were checked")


@pytest.mark.parametrize("kwargs,words", [
    ({"sigmas": [5.0, -1.0, 0.0]}, "strictly decreasing"),
    ({"sigmas": [1.0, 2.0, 0.0]}, "strictly decreasing"),
    ({"latents": "nan"}, "NaN or infinite"),
    ({"control_strength": 1e30}, "control_strength must be between"),
])
def test_sampler_refuses_values_that_give_a_nan_video(kwargs, words):
    """generate_video(latents=<NaN>), sigmas=[5, -1, 0] and control_strength=1e30 returned non-finite videos."""
    import torch

    from interdyn.core.sampling import sample_latents
    from interdyn.support.validation import InputError

    if kwargs.get("latents") == "nan":
        kwargs = {"latents": torch.full((1, 2, 4, 8, 8), float("nan"))}
    with pytest.raises(InputError, match=words):
        sample_latents(_NoBackbone(), torch.rand(1, 3, 64, 64), num_frames=2, num_steps=1, **kwargs)


# ---------------------------------------------------------------- requested sizes against one memory budget
@pytest.fixture
def budget_4gb(monkeypatch):
    monkeypatch.setenv("INTERDYN_MEMORY_BUDGET_GB", "4")


def test_generate_refuses_a_size_beyond_the_memory_budget_before_loading(tmp_path, capsys, monkeypatch, budget_4gb):
    """--height 65536 --width 65536 tried 51 GB on a 23 GB machine and ended in a raw traceback."""
    import numpy as np
    from PIL import Image

    import interdyn.core.loading as loading
    from interdyn.apps.cli import main

    monkeypatch.setattr(loading, "load_svd_backbone", lambda *a, **k: pytest.fail("a model loaded before the check"))
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "in.png")
    code = main(["generate", "--svd", "x", "--image", str(tmp_path / "in.png"), "--out", str(tmp_path / "o.mp4"),
                 "--height", "65536", "--width", "65536", "--frames", "14"])
    err = capsys.readouterr().err
    assert code == 2 and "--height 65536" in err and "--width 65536" in err and "4.0 GB" in err, err
    assert "INTERDYN_MEMORY_BUDGET_GB" in err, "the message says how to change the budget"


def test_demo_zoom_beyond_the_budget_is_refused_before_sampling(tmp_path, capsys, monkeypatch, budget_4gb):
    """`demo --zoom 100000` sampled all three scenes first and then tried 157 GB."""
    import interdyn.core.loading as loading
    from interdyn.apps.cli import main

    monkeypatch.setattr(loading, "load_toy_physics", lambda *a, **k: pytest.fail("sampling began before the check"))
    assert main(["demo", "--zoom", "100000", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert "--zoom 100000" in err and "GB" in err, err


@pytest.mark.parametrize("call,words", [
    ("prepare_control", "num_frames 14 x height 1000000 x width 1000000"),
    ("animate_mask", "num_frames 10000000 x mask height 64 x mask width 64"),
])
def test_api_sizes_beyond_the_budget_are_refused_with_the_python_names(call, words, budget_4gb):
    """prepare_control(height=10**6, ...) asked for 16 TB; animate_mask(..., 10**7) for 327 GB."""
    import torch

    from interdyn.support.validation import InputError

    with pytest.raises(InputError, match=words):
        if call == "prepare_control":
            from interdyn.core.control import prepare_control
            prepare_control(masks=torch.zeros(4, 64, 64), source_fps=7, height=10**6, width=10**6)
        else:
            from interdyn.data.trajectory import animate_mask
            animate_mask(torch.ones(64, 64), [{"frame": 0, "x": 0, "y": 0}], 10**7)


def test_synthetic_scene_sizes_are_bounded_by_its_declaration():
    """The node once simulated for minutes with width 100000 and frames 10**6. ComfyUI refuses a widget value outside
    its declared range before any node runs (API-format prompts too: ``execution.validate_inputs``), so the
    declaration is the one check of the scene's sizes; the function keeps only the scene's own rules."""
    import uuid

    from test_nodes import declared, import_pack

    pack = import_pack(f"pack_{uuid.uuid4().hex[:8]}")
    inputs = declared(pack)["InterDynSyntheticScene"].INPUT_TYPES()["required"]
    bounds = {name: (inputs[name][1]["min"], inputs[name][1]["max"]) for name in ("width", "height", "frames")}
    assert bounds == {"width": (32, 1024), "height": (32, 1024), "frames": (2, 128)}, bounds
    with pytest.raises(ValueError, match="width must be at least 32 pixels for a scene with room for collisions"):
        pack.nodes.FUNCTIONS["InterDynSyntheticScene"]("push", 0, 16, 64, 8)


# ---------------------------------------------------------------- one line, naming the input, for every user error
def _generate_argv(tmp_path, *extra):
    import numpy as np
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "in.png")
    return ["generate", "--svd", "x", "--image", str(tmp_path / "in.png"), "--out", str(tmp_path / "o.mp4"),
            "--height", "64", "--width", "64", "--frames", "2", "--steps", "1", *extra]


@pytest.mark.parametrize("device,words", [("bogus", "--device 'bogus' is not a torch device"),
                                          ("cuda", "--device cuda: torch sees no CUDA GPU")])
def test_generate_names_a_device_this_machine_lacks(tmp_path, capsys, monkeypatch, device, words):
    """`--device cuda` without a GPU and `--device bogus` ended in raw tracebacks."""
    import torch

    import interdyn.core.loading as loading
    from interdyn.apps.cli import main

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    monkeypatch.setattr(loading, "load_svd_backbone", lambda *a, **k: pytest.fail("a model loaded before the check"))
    assert main(_generate_argv(tmp_path, "--device", device)) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err


def test_generate_names_an_output_name_too_long_for_the_file_system(tmp_path, capsys):
    from interdyn.apps.cli import main

    argv = _generate_argv(tmp_path)
    argv[argv.index("--out") + 1] = str(tmp_path / ("x" * 300 + ".mp4"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "255" in err, err


@pytest.mark.parametrize("content", [bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64])
def test_a_binary_manifest_is_named_in_one_line(tmp_path, capsys, content):
    """A random-bytes or PNG manifest gave a UTF-8 codec message naming neither the file nor the option."""
    from interdyn.apps.cli import main

    manifest = tmp_path / "rows.csv"
    manifest.write_bytes(content)
    assert main(["generate", "--svd", "x", "--manifest", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert f"--manifest {manifest} is not UTF-8 text" in err, err


def test_keyframes_nested_too_deeply_are_a_one_line_error():
    """A nested-bracket bomb in the keyframes widget raised RecursionError."""
    from interdyn.data.trajectory import parse_keyframes

    with pytest.raises(ValueError, match="nest too deeply"):
        parse_keyframes("[" * 100000 + "]" * 100000)


def test_mask_trajectory_node_names_an_empty_mask():
    """An empty MASK in Mask Trajectory raised IndexError."""
    import uuid

    import torch

    from test_nodes import import_pack

    node = import_pack(f"pack_{uuid.uuid4().hex[:8]}").nodes.FUNCTIONS["InterDynMaskTrajectory"]
    with pytest.raises(ValueError, match="mask is empty"):
        node(torch.zeros(0, 64, 64), '[{"frame": 0, "x": 0, "y": 0}]', 8, "bilinear")


def test_prepare_dexycb_on_a_missing_root_is_an_error_not_an_empty_success(tmp_path, capsys):
    """`prepare dexycb --root <path that does not exist>` reported `kept 0, dropped 0` and exited 0."""
    from training.data.prepare import main

    assert main(["dexycb", "--root", str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    assert "--root" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing is created for a run that cannot start"


def test_prepare_help_has_no_sphinx_markup(capsys):
    from training.data.prepare import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert ":mod:" not in out and "``" not in out, out[:400]


def test_a_branch_on_a_backbone_it_was_not_trained_on_warns_once(tmp_path, fresh_accelerate_state):
    """`make-tiny --seed 1` builds a backbone of the same shape as the one cpu_tiny trains on; a branch trained on
    the seed-0 backbone ran on it without a word."""
    import warnings

    from interdyn.core.loading import load_control_branch
    from interdyn.core.tiny import build_tiny_backbone
    from training.export import export
    from training.train import main as train_main

    assert train_main(["--config", "cpu_tiny", "--max_steps", "1", "--output_dir", str(tmp_path / "run"),
                       "--report_to", "none", "--progress_bar", "false"]) == 0
    branch_file = export(tmp_path / "run", tmp_path / "b.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the backbone it was trained on: no warning
        load_control_branch(branch_file, backbone=build_tiny_backbone(0))
    other = build_tiny_backbone(1)
    with pytest.warns(UserWarning, match="trained on another backbone"):
        load_control_branch(branch_file, backbone=other)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: a second load of the same pair stays quiet
        load_control_branch(branch_file, backbone=other)


# ---------------------------------------------------------------- nodes name their own widgets and inputs
@pytest.fixture(scope="module")
def node_classes():
    import uuid

    from test_nodes import import_pack

    return import_pack(f"pack_{uuid.uuid4().hex[:8]}").nodes.FUNCTIONS


def _from_masks(node_classes, **inputs):
    import torch

    args = dict(mask_1=torch.ones(8, 64, 64), width=64, height=64, frames=4, source_fps=7.0, target_fps=7.0,
                crop="center", start_frame=0)
    args.update(inputs)
    return node_classes["InterDynControlFromMasks"](**args)


def test_control_from_masks_names_a_short_mask_2(node_classes):
    """A shorter mask_2 was reported as `masks[1]`, without saying which input."""
    import torch

    with pytest.raises(ValueError, match="mask_2"):
        _from_masks(node_classes, frames=8, mask_2=torch.ones(2, 64, 64))
    with pytest.raises(ValueError, match="mask_3 is 32x32 but mask_1 is 64x64"):
        _from_masks(node_classes, mask_3=torch.ones(8, 32, 32))


def test_control_from_masks_names_its_image_input(node_classes):
    """The node said `video` for its `image` input."""
    import torch

    with pytest.raises(ValueError, match="image is 32x48 but the masks are 64x64"):
        _from_masks(node_classes, image=torch.rand(1, 48, 32, 3))


@pytest.mark.parametrize("text,words", [("max_steps: [1, 2\n", "is not valid YAML at line"),
                                        ("max_steps: !!python/object/apply:os.system ['true']\n", "is not valid YAML")])
def test_a_broken_training_config_is_named_in_one_line(tmp_path, capsys, text, words):
    """A YAML syntax error did not name the file; a refused tag gave a traceback."""
    from training.train import main as train_main

    config = tmp_path / "mine.yaml"
    config.write_text(text)
    assert train_main(["--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and words in err and "Traceback" not in err, err


def test_training_on_a_folder_without_usable_clips_is_one_line(tmp_path, capsys):
    """`--dataset folder` on an empty folder (or on clips too short for the frames asked) gave a traceback."""
    from training.train import main as train_main

    (tmp_path / "clips").mkdir()
    assert train_main(["--config", "cpu_tiny", "--dataset", "folder", "--data_root", str(tmp_path / "clips"),
                       "--output_dir", str(tmp_path / "run"), "--report_to", "none"]) == 2
    err = capsys.readouterr().err
    assert "data_root" in err and "no usable clip folder" in err and "Traceback" not in err, err


# ---------------------------------------------------------------------------- every option of train and prepare
def _train_option_cases():
    """(option, bad value): each numeric option of ``interdyn train`` with a wrong type, NaN/inf for floats, and
    an out-of-range value from the rule it must meet; each choice option with a value not in its list."""
    import dataclasses

    from training.config import TrainConfig, _field_types

    out_of_range = {
        "max_steps": "0", "num_frames": "0", "batch_size": "0", "gradient_accumulation_steps": "0",
        "checkpoint_every": "0", "log_every": "0", "vae_chunk": "0", "synthetic_num_scenes": "0",
        "checkpoints_keep": "-1", "lr_warmup_steps": "-1", "num_workers": "257", "validation_every": "-1",
        "seed": "-1", "tiny_seed": "-1", "learning_rate": "0", "ema_decay": "1", "adam_beta1": "1",
        "adam_beta2": "-0.1", "adam_epsilon": "0", "weight_decay": "-1", "max_grad_norm": "0", "height": "100",
        "width": "100", "image_dropout": "1.5", "p_std": "-1", "noise_aug_log_std": "-1", "noise_aug_min": "-1",
        "noise_aug_max": "-1", "control_cnn_channels": "16,0", "clip_fps": "0", "fps_conditioning": "0",
        "motion_bucket_id": "-1", "min_source_height": "-1", "min_source_width": "-1", "synthetic_cache": "-1",
        "validation_clips": "-1", "validation_num_steps": "0", "validation_min_guidance": "0.5",
        "validation_max_guidance": "0.5", "output_dir": "", "report_to": "",
    }
    cases = [(name, value) for name, value in out_of_range.items()]
    cases.append(("num_frames", "99999999999"))  # the memory budget
    for f in dataclasses.fields(TrainConfig):
        kind = str(_field_types()[f.name])
        if f.metadata.get("choices"):
            cases.append((f.name, "no-such-choice"))
        elif "bool" in kind:
            cases.append((f.name, "maybe"))
        elif "float" in kind:
            cases += [(f.name, "nan"), (f.name, "inf"), (f.name, "abc")]
        elif "int" in kind:
            cases += [(f.name, "abc"), (f.name, "1.5")]
    return cases


@pytest.mark.parametrize("name, value", _train_option_cases(), ids=lambda v: str(v))
def test_every_train_option_refuses_a_bad_value_in_one_line_naming_it(name, value, tmp_path, capsys):
    from training.train import main as train_main

    out = tmp_path / "run"
    argv = ["--config", str(REPO / "training" / "configs" / "cpu_tiny.yaml"), "--output_dir", str(out),
            f"--{name}", value]
    code = train_main(argv)
    err = capsys.readouterr().err
    assert code == 2, f"--{name} {value!r} must be refused, exit {code}: {err[-500:]}"
    assert name in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, \
        f"one line naming {name}: {err!r}"
    assert not out.exists(), "refused before any folder is made"


PREPARE_CASES = [  # (dataset, option, bad value)
    *[(d, "--fps", v) for d in ("ssv2", "clevrer", "dexycb", "synthetic") for v in ("nan", "inf", "0", "-2")],
    *[(d, o, v) for d in ("ssv2", "clevrer", "dexycb", "synthetic") for o in ("--num-frames", "--height", "--width")
      for v in ("0", "-1")],
    *[(d, "--limit", "0") for d in ("ssv2", "clevrer", "dexycb")],
    ("synthetic", "--height", "100000"), ("synthetic", "--width", "9000"), ("synthetic", "--num-clips", "0"), ("synthetic", "--seed", "-1"),
    ("ssv2", "--sam2-image-size", "0"), ("ssv2", "--min-height", "-1"), ("ssv2", "--min-width", "-5"),
    ("ssv2", "--box-frame-offset", "-1"), ("clevrer", "--seed", "-3"), ("dexycb", "--source-fps", "nan"),
    ("dexycb", "--source-fps", "0"),
]
PREPARE_REQUIRED = {"ssv2": ["--videos", "V", "--labels", "L", "--boxes", "B"],
                    "clevrer": ["--videos", "V", "--annotations", "A", "--proposals", "P"],
                    "dexycb": ["--root", "R"], "synthetic": []}


@pytest.mark.parametrize("dataset, option, value", PREPARE_CASES, ids=lambda v: str(v))
def test_every_prepare_option_refuses_a_bad_value_before_reading_anything(dataset, option, value, tmp_path, capsys):
    from training.data.prepare import main as prepare_main

    out = tmp_path / "out"
    # the inputs named here do not exist: the option must be refused first, by name
    code = prepare_main([dataset, *PREPARE_REQUIRED[dataset], "--out", str(out), option, value])
    err = capsys.readouterr().err
    assert code == 2 and option in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, \
        f"{dataset} {option} {value}: one line naming {option}: {err!r}"
    assert not out.exists()


def test_an_int8_control_branch_is_refused_in_one_line(tmp_path, capsys):
    """It ended in torch's load_state_dict traceback ("Only Tensors of floating point ... can require gradients")."""
    import numpy as np
    import torch
    from PIL import Image
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from interdyn.apps.cli import main

    assert main(["make-tiny", str(tmp_path / "m")]) == 0
    source = tmp_path / "m" / "interdyn_tiny.safetensors"
    with safe_open(str(source), "pt") as f:
        meta = f.metadata()
    save_file({k: (v * 100).to(torch.int8) for k, v in load_file(str(source)).items()}, str(tmp_path / "int8.safetensors"),
              metadata=meta)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "in.png")
    capsys.readouterr()
    code = main(["generate", "--svd", str(tmp_path / "m" / "svd_tiny"), "--interdyn", str(tmp_path / "int8.safetensors"),
                 "--image", str(tmp_path / "in.png"), "--out", str(tmp_path / "o.mp4"), "--height", "64", "--width", "64",
                 "--frames", "2", "--steps", "1"])
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "not floating point" in lines[0] and "Traceback" not in err, err[-800:]
    assert not (tmp_path / "o.mp4").exists()


@pytest.fixture(scope="module")
def one_step_run(tmp_path_factory):
    import subprocess
    import sys

    run = tmp_path_factory.mktemp("resume") / "run"
    done = subprocess.run(_train_cmd(run, 1), capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return run


def _train_cmd(run, steps, *extra):
    import sys

    return [sys.executable, "-m", "training.train", "--config", str(REPO / "training" / "configs" / "cpu_tiny.yaml"),
            "--output_dir", str(run), "--max_steps", str(steps), "--checkpoint_every", "1", "--report_to", "none",
            "--progress_bar", "false", "--validation_every", "0", "--synthetic_num_scenes", "4", *extra]


@pytest.mark.parametrize("name, damage, says", [
    ("model.safetensors", "symlink", "is a symbolic link (to /etc/passwd)"),
    ("optimizer.bin", "symlink", "is a symbolic link (to /etc/passwd)"),
    ("model.safetensors", "truncate", "model.safetensors is not a readable safetensors file"),
    ("optimizer.bin", "truncate", "optimizer.bin is damaged or not a torch file"),
])
def test_resuming_a_damaged_or_symlinked_checkpoint_names_the_file_in_one_line(one_step_run, name, damage, says):
    """A weights file that was a symlink to a system file ended in a safetensors header traceback naming no file;
    a truncated optimizer state in the weights-only unpickler's IndexError."""
    import shutil
    import subprocess

    target = one_step_run / "checkpoint-1" / name
    original = target.read_bytes()
    target.unlink()
    if damage == "symlink":
        target.symlink_to("/etc/passwd")
    else:
        target.write_bytes(original[: len(original) // 2])
    try:
        done = subprocess.run(_train_cmd(one_step_run, 2, "--resume", "latest"), capture_output=True, text=True,
                              cwd=REPO, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        target.unlink()
        target.write_bytes(original)
        shutil.rmtree(one_step_run / "checkpoint-2", ignore_errors=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr and len(lines) == 1, \
        done.stderr[-1500:]
