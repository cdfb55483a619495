"""Inputs that are not regular files or folders are refused in one line naming the flag, before anything opens them.

Opening a named pipe (FIFO) for reading blocks until a writer comes: ``generate --control fifo`` hung forever. Every
flag of every command that reads a file or folder is given a FIFO (and the library's video reader one too). A watchdog
opens the FIFO for writing after a while, so a reader that blocks ends (and fails this test) instead of hanging the
test run.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

WAIT_S = 20  # a command refuses a FIFO in well under a second; one that opens it blocks until the watchdog writes


@contextlib.contextmanager
def watchdog(fifo: Path, seconds: float = WAIT_S):
    """After ``seconds``, open ``fifo`` for writing whenever a reader waits on it, so a blocked reader gets end of
    file; ``state["unblocked"]`` says whether it had to."""
    stop, state = threading.Event(), {"unblocked": False}

    def run() -> None:
        if stop.wait(seconds):
            return
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # fails (ENXIO) while no reader waits
            except OSError:
                time.sleep(0.05)
                continue
            os.close(fd)
            state["unblocked"] = True
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(2)


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


def _cli(argv):
    from interdyn.apps.cli import main

    return main(argv)


def _train(argv):
    from training.train import main

    return main(argv)


def _export(argv):
    from training.export import main

    return main(argv)


def _evaluate(argv):
    from training.evaluate import main

    return main(argv)


def _prepare(argv):
    from training.data.prepare import main

    return main(argv)


def _generate(i: Path, fifo: Path, flag: str, out: Path) -> list[str]:
    values = {"--svd": i / "models" / "svd_tiny", "--interdyn": i / "models" / "interdyn_tiny.safetensors",
              "--image": i / "in.png", "--control": i / "mask_hand.mp4"}
    if flag == "--control (a clip folder's mask_hand video)":
        clip = fifo.parent / "clip"
        clip.mkdir()
        os.replace(fifo, clip / "mask_hand.mp4")
        values["--control"] = clip
    else:
        values[flag] = fifo
    argv = ["generate"] + [str(x) for kv in values.items() for x in kv]
    return argv + ["--out", str(out), "--height", "64", "--width", "64", "--frames", "4", "--steps", "1"]


def _manifest(i: Path, fifo: Path, flag: str, out: Path) -> list[str]:
    fifo.rename(fifo.with_suffix(".csv"))  # a FIFO named like a manifest
    return ["generate", "--svd", str(i / "models" / "svd_tiny"), "--manifest", str(fifo.with_suffix(".csv"))]


def _train_argv(i: Path, fifo: Path, flag: str, out: Path) -> list[str]:
    extra = {"--config": [], "--data_root": ["--dataset", "folder"], "--init_control_branch": [],
             "--pretrained_model": [], "--resume": []}[flag]
    config = ["--config", "cpu_tiny"] if flag != "--config" else []
    return config + [flag, str(fifo), "--output_dir", str(out), "--max_steps", "1", "--report_to", "none",
                     "--progress_bar", "false", *extra]


def _evaluate_argv(i: Path, fifo: Path, flag: str, out: Path) -> list[str]:
    values = {"--data": str(i / "data")}
    values[flag] = str(fifo) if flag != "--generated" else f"mine={fifo}"
    return [x for kv in values.items() for x in kv] + ["--out", str(out), "--methods", "copy_first_frame"]


def _prepare_argv(i: Path, fifo: Path, flag: str, out: Path) -> list[str]:
    dataset, option = flag.split(" ")
    required = {"clevrer": ["--videos", "--annotations", "--proposals"], "dexycb": ["--root"],
                "ssv2": ["--videos", "--labels", "--boxes"]}[dataset]
    argv = [dataset, "--out", str(out)]
    for name in required + ([option] if option not in required else []):
        argv += [name, str(fifo) if name == option else str(i / "data")]
    return argv


#: (command, flag) -> (entry point, argv builder, the words the line must hold)
CASES = {
    **{("generate", flag): (_cli, _generate, flag.split(" ")[0])
       for flag in ("--image", "--control", "--control (a clip folder's mask_hand video)", "--svd", "--interdyn")},
    ("generate", "--manifest"): (_cli, _manifest, "--manifest"),
    ("probes", "--svd"): (_cli, lambda i, f, flag, o: ["probes", "--svd", str(f), "--out", str(o)], "--svd"),
    ("probes", "--interdyn"): (_cli, lambda i, f, flag, o: ["probes", "--interdyn", str(f), "--out", str(o)],
                               "--interdyn"),
    **{("train", flag): (_train, _train_argv, flag.lstrip("-"))
       for flag in ("--config", "--data_root", "--init_control_branch", "--pretrained_model", "--resume")},
    ("export", "--checkpoint"): (_export, lambda i, f, flag, o: ["--checkpoint", str(f), "--out",
                                                                 str(o / "b.safetensors")], "--checkpoint"),
    **{("evaluate", flag): (_evaluate, _evaluate_argv, flag)
       for flag in ("--data", "--svd", "--interdyn", "--generated", "--lpips-alexnet", "--inception", "--i3d",
                    "--cotracker-checkpoint")},
    **{("prepare", flag): (_prepare, _prepare_argv, flag.split(" ")[1])
       for flag in ("clevrer --videos", "clevrer --annotations", "clevrer --proposals", "dexycb --root",
                    "ssv2 --labels", "ssv2 --boxes", "ssv2 --sam2-checkpoint")},
}


@pytest.mark.parametrize("command,flag", list(CASES))
def test_a_named_pipe_as_an_input_is_refused_before_it_is_opened(command, flag, inputs, tmp_path, capsys):
    entry, argv, words = CASES[(command, flag)]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    arguments = argv(inputs, fifo, flag, tmp_path / "out")
    with watchdog(fifo if fifo.exists() else next(p for p in tmp_path.rglob("*") if p.is_fifo())) as state:
        try:
            code = entry(arguments)
        except SystemExit as exit_:
            code = exit_.code
    err = capsys.readouterr().err
    errors = [line for line in err.replace("\r", "\n").splitlines() if "error" in line]
    assert not state["unblocked"], f"{command} {flag}: it opened the FIFO and waited for a writer (it would hang)"
    assert code not in (0, None) and "Traceback" not in err, f"{command} {flag}: an error exit: {err[-800:]}"
    assert len(errors) == 1 and words in errors[0] and "named pipe" in errors[0], \
        f"one line naming {words} and saying it is a named pipe: {err[-800:]}"
    assert not (tmp_path / "out").exists(), "refused before anything was written"


def test_the_video_reader_refuses_a_named_pipe(tmp_path):
    from interdyn.data.video_io import VideoReadError, read_video, read_video_frames

    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    with watchdog(fifo) as state:
        for read in (read_video, lambda p: read_video_frames(p, [0])):
            with pytest.raises(VideoReadError, match="not a regular file"):
                read(fifo)
    assert not state["unblocked"], "the reader never opened the FIFO"
