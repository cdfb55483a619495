"""Every number is range-checked where it enters (command line, YAML config, manifest), nesting is bounded, and a
value past the checks is one line naming the flag, key or column, never a raw traceback.

Before the fix, ``train --seed 4294967296`` and a YAML ``seed`` of 10**23 reached numpy's "Seed must be between 0 and
2**32 - 1", a YAML file nested 10 000 deep a RecursionError, a manifest row with ``"height": 1e400`` an
OverflowError, ``prepare --fps 1e308`` PyAV's OverflowError and ``make-tiny --seed 2**64`` torch's "Overflow when
unpacking long long". Every numeric option of every command is given 1e400 and 2**64 here.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

HUGE = ("1e400", str(2**64))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from interdyn.apps.cli import main
    from interdyn.data.video_io import write_video

    root = tmp_path_factory.mktemp("inputs")
    assert main(["make-tiny", str(root / "models")]) == 0
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "in.png")
    write_video(root / "mask_hand.mp4", np.zeros((4, 64, 64, 3), np.uint8), fps=7, lossless=True)
    (root / "data").mkdir()
    return root


def _run(entry, argv, capsys) -> tuple[int, list[str], str]:
    try:
        code = entry(argv)
    except SystemExit as exit_:  # argparse: "argument --height: invalid int value: '1e400'"
        code = exit_.code
    err = capsys.readouterr().err
    return code, [line for line in err.replace("\r", "\n").splitlines() if "error" in line], err


def _check(code, errors, err, name: str, accepted: bool = False) -> None:
    assert "Traceback" not in err, f"{name}: no raw traceback: {err[-1500:]}"
    if code in (0, None):
        assert accepted, f"{name}: a value past its range must be refused, it ran: {err[-500:]}"
        return
    assert len(errors) == 1 and name in errors[0], f"one line naming {name}: {errors or err[-800:]}"


# ---------------------------------------------------------------------------- interdyn generate, demo, probes, make-tiny
GENERATE_FLAGS = ("--height", "--width", "--frames", "--steps", "--min-guidance", "--max-guidance", "--fps",
                  "--motion-bucket", "--noise-aug", "--strength", "--control-start", "--control-end", "--seed",
                  "--decode-chunk", "--batch-size")


def _cli(argv):
    from interdyn.apps.cli import main

    return main(argv)


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("flag", GENERATE_FLAGS)
def test_generate_refuses_each_number_past_its_range(flag, value, inputs, tmp_path, capsys):
    m = inputs / "models"
    argv = ["generate", "--svd", str(m / "svd_tiny"), "--interdyn", str(m / "interdyn_tiny.safetensors"), "--image",
            str(inputs / "in.png"), "--control", str(inputs / "mask_hand.mp4"), "--out", str(tmp_path / "o.mp4"),
            "--height", "64", "--width", "64", "--frames", "4", "--steps", "1", flag, value]
    # a decode chunk larger than the video decodes it at once: a meaning, not an error
    _check(*_run(_cli, argv, capsys), flag, accepted=flag == "--decode-chunk" and value != "1e400")


@pytest.mark.parametrize("command,flag", [("demo", "--seed"), ("demo", "--steps"), ("demo", "--zoom"),
                                          ("probes", "--num-scenes"), ("probes", "--seed"), ("probes", "--steps"),
                                          ("make-tiny", "--seed")])
@pytest.mark.parametrize("value", HUGE)
def test_demo_probes_and_make_tiny_refuse_each_number_past_its_range(command, flag, value, tmp_path, capsys):
    argv = [command] + ([str(tmp_path / "out")] if command == "make-tiny" else ["--out", str(tmp_path / "out")])
    _check(*_run(_cli, argv + [flag, value], capsys), flag)
    assert not (tmp_path / "out").exists(), "refused before anything was written"


# ---------------------------------------------------------------------------- manifest rows
def _manifest_argv(inputs: Path, manifest: Path) -> list[str]:
    m = inputs / "models"
    return ["generate", "--svd", str(m / "svd_tiny"), "--interdyn", str(m / "interdyn_tiny.safetensors"),
            "--manifest", str(manifest), "--height", "64", "--width", "64", "--frames", "4", "--steps", "1"]


def _columns():
    from interdyn.apps.batch import ROW_PARAMETERS

    return list(ROW_PARAMETERS)


@pytest.mark.parametrize("text", ["1e400", str(2**64), "-" + str(2**64)])
@pytest.mark.parametrize("column", _columns())
@pytest.mark.parametrize("form", ["jsonl", "csv"])
def test_a_manifest_number_past_its_range_is_one_line_naming_the_column(form, column, text, inputs, tmp_path,
                                                                        capsys):
    row = {"image": str(inputs / "in.png"), "control": str(inputs / "mask_hand.mp4"), "out": str(tmp_path / "o.mp4")}
    if form == "jsonl":  # JSON reads 1e400 as infinity and 2**64 as an exact integer
        manifest = tmp_path / "rows.jsonl"
        manifest.write_text(json.dumps(row)[:-1] + f', "{column}": {text}}}\n')
    else:
        manifest = tmp_path / "rows.csv"
        manifest.write_text(",".join([*row, column]) + "\n" + ",".join([*row.values(), text]) + "\n")
    _check(*_run(_cli, _manifest_argv(inputs, manifest), capsys), f"column {column}")
    assert not (tmp_path / "o.mp4").exists()


def test_a_manifest_row_nested_thousands_deep_is_one_line(inputs, tmp_path, capsys):
    manifest = tmp_path / "rows.jsonl"
    manifest.write_text('{"image": "in.png", "out": "o.mp4", "seed": ' + "[" * 10_000 + "]" * 10_000 + "}\n")
    _check(*_run(_cli, _manifest_argv(inputs, manifest), capsys), "row 1")


# ---------------------------------------------------------------------------- the training config
def _numeric_fields() -> list[str]:
    from training.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    numeric = []
    for f in dataclasses.fields(TrainConfig):
        kinds = set(typing.get_args(hints[f.name])) or {hints[f.name]}
        if kinds & {int, float}:
            numeric.append(f.name)
    return numeric


@pytest.mark.parametrize("value", HUGE + ("-" + str(2**64),))
@pytest.mark.parametrize("key", _numeric_fields())
def test_every_numeric_config_key_past_its_range_is_refused_naming_it(key, value, tmp_path):
    from training.config import parse_args

    with pytest.raises(ValueError, match=key) as refused:
        parse_args(["--config", "cpu_tiny", "--output_dir", str(tmp_path / "run"), f"--{key}", value])
    assert "\n" not in str(refused.value), "one line"


def test_train_seed_past_numpys_range_is_one_line(tmp_path, capsys):
    from training.train import main

    code = main(["--config", "cpu_tiny", "--output_dir", str(tmp_path / "run"), "--seed", "4294967296"])
    err = capsys.readouterr().err
    assert code == 2 and "seed must be between 0 and 4294967295" in err and "Traceback" not in err, err[-800:]
    assert not (tmp_path / "run").exists()


CONFIG_FILES = {"seed 10**23": ("seed: 100000000000000000000000\n", "seed"),
                "max_steps 1e400": ("max_steps: 1.0e+400\n", "max_steps"),
                "learning_rate 1e400": ("learning_rate: 1.0e+400\n", "learning_rate"),
                "tiny_seed 2**64": (f"tiny_seed: {2**64}\n", "tiny_seed"),
                "a 400-digit channel width": ("control_cnn_channels: [" + "1" * 400 + "]\n", "control_cnn_channels"),
                "10 000 nested lists": ("output_dir: " + "[" * 10_000 + "]" * 10_000 + "\n", "nests"),
                "200 nested block lists": ("a:\n" + "".join("  " * d + "- \n" for d in range(1, 200)), "nests")}


@pytest.mark.parametrize("case", list(CONFIG_FILES))
def test_a_config_file_past_the_checks_is_one_line_naming_the_key(case, tmp_path):
    from training.config import load_config

    text, key = CONFIG_FILES[case]
    path = tmp_path / "config.yaml"
    path.write_text("pretrained_model: tiny\n" + text)
    with pytest.raises(ValueError, match=key) as refused:
        load_config(path, {"output_dir": str(tmp_path / "run")})
    assert "\n" not in str(refused.value), "one line"


def test_an_unquoted_no_in_yaml_says_to_quote_it(tmp_path):
    from training.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text("pretrained_model: tiny\nmixed_precision: no\n")
    with pytest.raises(ValueError, match='quote it, e.g. mixed_precision: "no"'):
        load_config(path, {"output_dir": str(tmp_path / "run")})
    path.write_text('pretrained_model: tiny\nmixed_precision: "no"\n')
    assert load_config(path, {"output_dir": str(tmp_path / "run")}).mixed_precision == "no"


# ---------------------------------------------------------------------------- prepare, evaluate
PREPARE_FLAGS = ("--fps", "--num-frames", "--height", "--width", "--limit", "--num-clips", "--seed")


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("flag", PREPARE_FLAGS)
def test_prepare_refuses_each_number_past_its_range(flag, value, tmp_path, capsys):
    from training.data.prepare import main

    argv = ["synthetic", "--out", str(tmp_path / "out"), "--num-clips", "1", flag, value]
    # --limit caps the number of source videos: any larger value means "all of them"
    _check(*_run(main, argv, capsys), flag, accepted=flag == "--limit" and value != "1e400")


EVALUATE_FLAGS = ("--limit", "--kid-subsets", "--kid-subset-size", "--mf-points", "--frames", "--height", "--width",
                  "--clip-fps", "--steps", "--min-guidance", "--max-guidance", "--fps", "--motion-bucket",
                  "--noise-aug", "--seed", "--decode-chunk")


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("flag", EVALUATE_FLAGS)
def test_evaluate_refuses_each_number_past_its_range(flag, value, inputs, tmp_path, capsys):
    from training.evaluate import main

    argv = ["--data", str(inputs / "data"), "--out", str(tmp_path / "out"), "--methods", "copy_first_frame",
            flag, value]
    code, errors, err = _run(main, argv, capsys)
    if flag in ("--limit", "--decode-chunk") and value != "1e400":  # "at most" values: the empty data is the error
        assert code == 2 and len(errors) == 1 and "no usable clip" in errors[0] and "Traceback" not in err, err[-800:]
        return
    _check(code, errors, err, flag)


# ---------------------------------------------------------------------------- resuming
def test_resuming_with_max_steps_below_the_checkpoints_step_is_refused_in_one_line(tmp_path):
    """It exited 0 and printed ``loss nan`` (and rewrote the run's config.yaml with the smaller max_steps)."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    run = tmp_path / "run"
    train = [sys.executable, "-m", "training.train", "--config", "cpu_tiny", "--output_dir", str(run),
             "--checkpoint_every", "2", "--report_to", "none", "--progress_bar", "false", "--validation_every", "0",
             "--synthetic_num_scenes", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert subprocess.run(train + ["--max_steps", "2"], capture_output=True, cwd=repo, env=env,
                          timeout=600).returncode == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    done = subprocess.run(train + ["--max_steps", "1", "--resume", "latest"], capture_output=True, text=True,
                          cwd=repo, env=env, timeout=600)
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-1500:]
    assert "checkpoint-2 is at step 2, past max_steps 1" in errors[0], errors[0]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before, "the run is left as it was"
    again = subprocess.run(train + ["--max_steps", "2", "--resume", "latest"], capture_output=True, text=True,
                           cwd=repo, env=env, timeout=600)
    assert again.returncode == 0 and "loss nan" not in again.stdout, "at max_steps already: the checkpoint's loss"


# ---------------------------------------------------------------------------- the nodes' JSON text widgets
BIG_INT = "1" + "0" * 400  # JSON reads it as an int beyond any float: math.isfinite raised OverflowError on it
DEEP = "[" * 50_000 + "]" * 50_000


def _text_widgets():
    from interdyn.data.segmentation import parse_prompts
    from interdyn.data.shapes import parse_shape
    from interdyn.data.trajectory import parse_coordinates, parse_keyframes

    coordinates = lambda text: parse_coordinates(text, 64, 64)  # noqa: E731
    return {
        "keyframes frame 2**64": (parse_keyframes, f'[{{"frame": {2**64}}}]', "frame"),
        "keyframes frame 10**400": (parse_keyframes, f'[{{"frame": {BIG_INT}}}]', "frame"),
        "keyframes x 10**400": (parse_keyframes, f'[{{"frame": 0, "x": {BIG_INT}}}]', ".x"),
        "keyframes x 1e400": (parse_keyframes, '[{"frame": 0, "x": 1e400}]', ".x"),
        "keyframes deep": (parse_keyframes, DEEP, "deeply"),
        "shape x 10**400": (parse_shape, '{"size": [64, 64], "shapes": [{"type": "rect", "x": %s, "y": 1, "w": 4, '
                                         '"h": 4}]}' % BIG_INT, ".x"),
        "shape size 10**400": (parse_shape, '{"size": [%s, 64], "shapes": []}' % BIG_INT, "size"),
        "shape deep": (parse_shape, DEEP, "deeply"),
        "coordinates x 10**400": (coordinates, f'[{{"x": {BIG_INT}, "y": 1}}, {{"x": 1, "y": 1}}]', "finite"),
        "coordinates deep in Python's quotes": (coordinates, "[" * 50_000 + "{'x': 1}" + "]" * 50_000, "deeply"),
        "prompts box 10**400": (parse_prompts, f'[{{"box": [{BIG_INT}, 1, 2, 3]}}]', "box"),
        "prompts deep": (parse_prompts, DEEP, "deeply"),
    }


@pytest.mark.parametrize("case", list(_text_widgets()))
def test_the_nodes_json_text_refuses_huge_numbers_and_deep_nesting_in_one_line(case):
    """Issue 34 item 7, checked by class on the nodes' JSON widgets (Mask Trajectory's and the Drive Editor's
    keyframes, the Drive Editor's shape and coordinates, SAM2 Video Masks' prompts): a keyframe frame of 2**64 gave
    torch's raw "int too big to convert", an integer of 400 digits Python's OverflowError, prompts nested 50 000
    deep a RecursionError. Each is a ValueError (InterDyn.InputError in ComfyUI) naming the field."""
    parse, text, words = _text_widgets()[case]
    with pytest.raises(ValueError) as caught:
        parse(text)
    message = str(caught.value)
    assert words in message and "\n" not in message, message
