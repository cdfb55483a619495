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


# ---------------------------------------------------------------------------- a FIFO inside a folder that is read
#: every file of an SVD diffusers folder that the loaders open (transformers and diffusers open some of them
#: themselves, where no check of ours runs: they must be refused before the folder is handed over)
SVD_FILES = ("model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
             "vae/diffusion_pytorch_model.safetensors", "image_encoder/config.json", "image_encoder/model.safetensors",
             "feature_extractor/preprocessor_config.json", "scheduler/scheduler_config.json")


def with_fifo(folder: Path, member: str, into: Path) -> Path:
    """A copy of ``folder`` in ``into`` whose ``member`` is a named pipe."""
    import shutil

    copy = into / folder.name
    shutil.copytree(folder, copy)
    (copy / member).unlink()
    os.mkfifo(copy / member)
    return copy


def one_error_line(err: str) -> str:
    lines = [line for line in err.replace("\r", "\n").splitlines() if "error" in line]
    assert len(lines) == 1 and "Traceback" not in err, f"one error line, no traceback: {err[-800:]}"
    return lines[0]


@pytest.mark.parametrize("member", SVD_FILES)
def test_a_named_pipe_inside_the_svd_folder_is_refused_naming_the_flag_and_the_file(member, inputs, tmp_path, capsys):
    """``--svd`` is a folder of files that diffusers and transformers open by name: a FIFO named like one of them
    (unet/diffusion_pytorch_model.safetensors) was reported as "missing" or "no weights", or, for model_index.json,
    not noticed at all; it is refused as what it is, with the flag and the file, before anything is read."""
    svd = with_fifo(inputs / "models" / "svd_tiny", member, tmp_path)
    argv = ["generate", "--svd", str(svd), "--image", str(inputs / "in.png"), "--out", str(tmp_path / "out.mp4"),
            "--height", "64", "--width", "64", "--frames", "2", "--steps", "1"]
    with watchdog(svd / member) as state:
        code = _cli(argv)
    line = one_error_line(capsys.readouterr().err)
    assert not state["unblocked"], "the FIFO was opened"
    assert code == 2 and "--svd" in line and member in line and "named pipe" in line, line
    assert not (tmp_path / "out.mp4").exists()


def test_a_named_pipe_inside_an_official_control_branch_folder_is_refused(inputs, tmp_path, capsys):
    """The official release's control branch is a folder (config.json + diffusion_pytorch_model.safetensors): a
    FIFO weights file was reported as "no weights"; it is refused naming ``--interdyn`` and the file."""
    branch = tmp_path / "controlnet"
    branch.mkdir()
    (branch / "config.json").write_text("{}")
    os.mkfifo(branch / "diffusion_pytorch_model.safetensors")
    argv = ["generate", "--svd", str(inputs / "models" / "svd_tiny"), "--interdyn", str(branch),
            "--image", str(inputs / "in.png"), "--control", str(inputs / "mask_hand.mp4"),
            "--out", str(tmp_path / "out.mp4"), "--height", "64", "--width", "64", "--frames", "2", "--steps", "1"]
    with watchdog(branch / "diffusion_pytorch_model.safetensors") as state:
        code = _cli(argv)
    line = one_error_line(capsys.readouterr().err)
    assert not state["unblocked"] and code == 2, line
    assert "--interdyn" in line and "diffusion_pytorch_model.safetensors" in line and "named pipe" in line, line


def _load_and_report(load, path, results) -> None:
    """In a forked child: ``load(path)``, then ``load(path, name="my_widget")``; each error's message is sent back."""
    from interdyn.support.validation import InputError

    for name in (None, "my_widget"):
        try:
            load(path) if name is None else load(path, name=name)
        except InputError as err:
            results.put(str(err))
        except Exception as err:  # noqa: BLE001 - reported to the test, which fails on it
            results.put(f"{type(err).__name__}: {err}")
        else:
            results.put("loaded")


@pytest.mark.parametrize("case", ["svd folder member", "svd single file", "branch file", "branch folder member"])
def test_the_loaders_refuse_a_named_pipe_in_the_callers_name(case, inputs, tmp_path):
    """Library callers (and the nodes, which pass their widget names) go through the loaders, which check the same
    way before anything opens: a single-file SVD checkpoint or a branch .safetensors that is a FIFO blocked
    ``load_svd_backbone`` / ``load_control_branch`` forever (safetensors opens it holding the GIL, so no watchdog
    thread can end the wait: the loader runs in a forked child with a time limit)."""
    import multiprocessing

    from interdyn.core import loading

    if case == "svd folder member":
        path = with_fifo(inputs / "models" / "svd_tiny", "unet/diffusion_pytorch_model.safetensors", tmp_path)
        fifo = path / "unet/diffusion_pytorch_model.safetensors"
    elif case == "branch folder member":
        path = tmp_path / "controlnet"
        path.mkdir()
        (path / "config.json").write_text("{}")
        fifo = path / "diffusion_pytorch_model.safetensors"
        os.mkfifo(fifo)
    else:
        path = fifo = tmp_path / ("svd.safetensors" if case == "svd single file" else "branch.safetensors")
        os.mkfifo(fifo)
    load = loading.load_svd_backbone if case.startswith("svd") else loading.load_control_branch
    context = multiprocessing.get_context("fork")  # the child has the modules already: no import time
    results = context.Queue()
    child = context.Process(target=_load_and_report, args=(load, path, results))
    child.start()
    child.join(WAIT_S)
    if child.is_alive():
        child.kill()
        pytest.fail(f"{load.__name__} opened the FIFO {fifo} and waited for a writer (it would hang)")
    lines = [results.get(timeout=5) for _ in range(2)]
    assert all("named pipe" in line and fifo.name in line for line in lines), lines
    assert lines[1].startswith("my_widget "), "the caller's name leads the message"


def test_the_model_loader_node_refuses_a_named_pipe_naming_its_widget(inputs, tmp_path, monkeypatch):
    """In ComfyUI the names come from the model folders: a FIFO listed under models/interdyn was reported as "not
    found" (it is listed, so the user sees it), and one inside an SVD diffusers folder as missing weights; the node
    names its widget, the file and what it is."""
    from test_nodes import import_pack

    pack = import_pack("pack_fifo")
    folders = tmp_path / "models"
    with_fifo(inputs / "models" / "svd_tiny", "vae/diffusion_pytorch_model.safetensors", folders / "diffusers")
    (folders / "interdyn").mkdir()
    os.mkfifo(folders / "interdyn" / "branch.safetensors")
    monkeypatch.setattr(pack.nodes.host, "model_folders", lambda kind: [str(folders / kind)])
    load = pack.nodes.FUNCTIONS["InterDynModelLoader"]
    assert "branch.safetensors" in pack.nodes.models.list_control_branches()
    for svd, branch, widget, file in (("svd_tiny", "none", "svd", "vae/diffusion_pytorch_model.safetensors"),
                                      ("builtin:toy-physics", "branch.safetensors", "interdyn", "branch.safetensors")):
        with watchdog(folders / ("diffusers/svd_tiny/" + file if widget == "svd" else "interdyn/" + file)) as state:
            with pytest.raises(ValueError, match="named pipe") as caught:
                load(svd, branch, "auto", False)
        assert not state["unblocked"]
        assert str(caught.value).startswith(f"{widget} ") and file in str(caught.value), caught.value


def test_a_named_pipe_among_the_training_clips_is_refused_before_training(inputs, tmp_path, capsys):
    """``data_root`` is read clip by clip during training: a FIFO object mask (mask_cube.mp4) in a clip folder was
    only found at the step that read it; it is refused before the run starts, naming data_root and the file."""
    from interdyn.data.video_io import write_video

    clip = tmp_path / "data" / "clip0"
    clip.mkdir(parents=True)
    write_video(clip / "video.mp4", np.zeros((8, 64, 64, 3), np.uint8), fps=7, lossless=True)
    write_video(clip / "mask_hand.mp4", np.zeros((8, 64, 64, 3), np.uint8), fps=7, lossless=True)
    os.mkfifo(clip / "mask_cube.mp4")
    argv = ["--config", "cpu_tiny", "--dataset", "folder", "--data_root", str(tmp_path / "data"), "--output_dir",
            str(tmp_path / "out"), "--max_steps", "1", "--report_to", "none", "--progress_bar", "false"]
    with watchdog(clip / "mask_cube.mp4") as state:
        try:
            code = _train(argv)
        except SystemExit as exit_:
            code = exit_.code
    line = one_error_line(capsys.readouterr().err)
    assert not state["unblocked"] and code not in (0, None), line
    assert "data_root" in line and "mask_cube.mp4" in line and "named pipe" in line, line
    assert not (tmp_path / "out").exists(), "refused before the run folder was made"


# ---------------------------------------------------------------------------- evaluate's input folders
def _evaluation_clip(root: Path) -> Path:
    """``root/data`` with one clip of the generic layout (video, hand mask, one object mask)."""
    from interdyn.data.video_io import write_video

    clip = root / "data" / "clip0"
    clip.mkdir(parents=True)
    for name in ("video.mp4", "mask_hand.mp4", "mask_cube.mp4"):
        write_video(clip / name, np.zeros((8, 64, 64, 3), np.uint8), fps=7, lossless=True)
    return root / "data"


#: evaluate's flag -> (the file made a FIFO, relative to the folder given, the methods that read the folder)
EVALUATE_FOLDERS = {
    "--data": ("clip0/mask_cube.mp4", "copy_first_frame"),
    "--svd": ("unet/diffusion_pytorch_model.safetensors", "no_control"),
    "--interdyn": ("diffusion_pytorch_model.safetensors", "interdyn"),
    "--generated": ("clip0/generated.mp4", None),
    "--lpips-alexnet": ("alexnet-owt-7be5be79.pth", "copy_first_frame"),
    "--inception": ("weights-inception-2015-12-05-6726825d.pth", "copy_first_frame"),
    "--i3d": ("i3d_torchscript.pt", "copy_first_frame"),
    "--cotracker-code": ("cotracker/__init__.py", "copy_first_frame"),
}


@pytest.mark.parametrize("flag", list(EVALUATE_FOLDERS))
def test_a_named_pipe_inside_an_evaluation_input_folder_is_refused_naming_the_flag(flag, inputs, tmp_path, capsys,
                                                                                    monkeypatch):
    """Issue 34: ``interdyn evaluate`` checked its input folders but not the files inside: a FIFO weights file in
    ``--svd`` was refused only by the loader, as "SVD backbone <path>" (a name the user never typed), after the
    clips were read; one in a metric weights folder was skipped as "not found" and the run went on. Every input
    folder's files are checked as generate and probes check theirs: one line naming the flag and the file, before
    any model loads and before anything is written."""
    import shutil

    from interdyn.core import loading

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the input folders were checked")

    monkeypatch.setattr(loading, "load_svd_backbone", no_loading)
    monkeypatch.setattr(loading, "load_control_branch", no_loading)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    member, methods = EVALUATE_FOLDERS[flag]
    data = _evaluation_clip(tmp_path)
    folder = {"--data": data, "--svd": tmp_path / "svd_tiny"}.get(flag, tmp_path / "given")
    if flag == "--svd":
        shutil.copytree(inputs / "models" / "svd_tiny", folder)
    (folder / member).parent.mkdir(parents=True, exist_ok=True)
    (folder / member).unlink(missing_ok=True)
    if flag == "--interdyn":
        (folder / "config.json").write_text("{}")
    os.mkfifo(folder / member)
    values = {"--data": data, "--svd": inputs / "models" / "svd_tiny", flag: folder}
    argv = [str(x) for kv in values.items() for x in kv]
    if flag == "--generated":
        argv[-1] = f"mine={folder}"
    argv += ["--out", str(tmp_path / "out"), "--frames", "4", "--height", "64", "--width", "64", "--clip-fps", "3",
             "--crop", "center", "--no-progress"] + (["--methods", methods] if methods else [])
    with watchdog(folder / member) as state:
        code = _evaluate(argv)
    line = one_error_line(capsys.readouterr().err)
    assert not state["unblocked"], f"{flag}: the FIFO {member} was opened"
    words = "--generated mine" if flag == "--generated" else flag
    assert code == 2 and line.startswith(f"error: {words} ") and member in line and "named pipe" in line, \
        f"one line that leads with the flag as typed and names the file inside: {line}"
    assert not (tmp_path / "out").exists(), "refused before anything was written"


@pytest.mark.parametrize("where", ["the file given", "the folder given", "the torch hub folder"])
def test_a_metric_weights_file_that_is_a_named_pipe_is_named_as_one_not_as_missing(where, tmp_path, monkeypatch):
    """Issue 34: the metric weights lookup (``interdyn.metrics.find_weights``, used by LPIPS, FID/KID and FVD/KVD
    for library callers and the evaluation runner) skipped a FIFO where the weights should be and reported the file
    as "not found" although it is there; it says what the file is instead, in one line naming it, and never opens
    it."""
    from interdyn.metrics import ALEXNET_WEIGHTS, find_weights
    from interdyn.support.validation import InputError

    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    given = {"the file given": tmp_path / "mine.pth", "the folder given": tmp_path / "weights",
             "the torch hub folder": None}[where]
    fifo = {"the file given": tmp_path / "mine.pth", "the folder given": tmp_path / "weights" / ALEXNET_WEIGHTS,
            "the torch hub folder": hub / ALEXNET_WEIGHTS}[where]
    fifo.parent.mkdir(exist_ok=True)
    os.mkfifo(fifo)
    with watchdog(fifo) as state:
        with pytest.raises(InputError) as caught:
            find_weights(ALEXNET_WEIGHTS, given, what="LPIPS AlexNet backbone")
    message = str(caught.value)
    assert not state["unblocked"], "the FIFO was opened"
    assert len(message.splitlines()) == 1 and str(fifo) in message, message
    assert "named pipe" in message and "not a regular file" in message and "not found" not in message, message


def test_the_evaluation_runner_reports_a_named_pipe_weights_file_as_such(tmp_path, monkeypatch):
    """The runner turns a metric network it cannot load into an unavailable metric with the reason: for a FIFO in
    the torch hub folder the reason was "weights not found"; it is now what the file is."""
    from interdyn.metrics import INCEPTION_WEIGHTS
    from training.evaluation.networks import resolve_networks

    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    os.mkfifo(hub / INCEPTION_WEIGHTS[0])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with watchdog(hub / INCEPTION_WEIGHTS[0]) as state:
        nets = resolve_networks()
    reason = nets.unavailable["inception"]
    assert not state["unblocked"] and nets.inception is None
    assert "named pipe" in reason and INCEPTION_WEIGHTS[0] in reason and "not found" not in reason, reason
    assert "not found" in nets.unavailable["lpips"], "a missing file is still reported as missing"
