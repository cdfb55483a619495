"""One output-path check for every command: a bad output path is refused in one line, before any work.

Every command that writes (``generate --out`` and ``--report``, ``demo``, ``probes``, ``make-tiny``, ``train
--output_dir``, ``export --out`` in both formats, ``prepare --out``, ``evaluate --out``) is given each kind of bad
output path: a name longer than file systems allow, a parent that is a file, a character device (a copy of
``/dev/null``: as root, ``--report /dev/null`` replaced the system's) and a named pipe. Each must exit non-zero
with one ``error`` line naming the flag and the reason, no traceback, and leave the path as it was (before the fix,
several commands ended in ``OSError: [Errno 36]``, ``FileExistsError`` or ``NotADirectoryError``, and ``--report``
replaced a device with a JSON file).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

LONG = "n" * 300  # bytes; file systems allow 255 per name


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Tiny models, an image, a control video, a manifest and a fake checkpoint: what the commands read."""
    from interdyn.apps.cli import main
    from interdyn.data.video_io import write_video

    root = tmp_path_factory.mktemp("inputs")
    assert main(["make-tiny", str(root / "models")]) == 0
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(root / "in.png")
    masks = np.zeros((4, 64, 64, 3), np.uint8)
    masks[:, 20:40, 20:40] = 255
    write_video(root / "mask_hand.mp4", masks, fps=7, lossless=True)
    (root / "rows.csv").write_text(f"image,out\n{root / 'in.png'},{root / 'row_out.mp4'}\n")
    (root / "data").mkdir()
    return root


def _generate(inputs: Path, out: str) -> list[str]:
    return ["generate", "--svd", str(inputs / "models" / "svd_tiny"), "--interdyn",
            str(inputs / "models" / "interdyn_tiny.safetensors"), "--image", str(inputs / "in.png"), "--control",
            str(inputs / "mask_hand.mp4"), "--out", out, "--height", "64", "--width", "64", "--frames", "4",
            "--steps", "1"]


def _manifest(inputs: Path, report: str) -> list[str]:
    return ["generate", "--svd", str(inputs / "models" / "svd_tiny"), "--manifest", str(inputs / "rows.csv"),
            "--report", report, "--height", "64", "--width", "64", "--frames", "4", "--steps", "1"]


def _cli(argv):
    from interdyn.apps.cli import main

    return main(argv)


def _train(argv):
    from training.train import main

    return main(argv)


def _export(argv):
    from training.export import main

    return main(argv)


def _prepare(argv):
    from training.data.prepare import main

    return main(argv)


def _evaluate(argv):
    from training.evaluate import main

    return main(argv)


#: command -> (its entry point, the argument list with the output path put in, the flag's name in messages)
COMMANDS = {
    "generate --out": (_cli, lambda i, out: _generate(i, out), "--out"),
    "generate --report": (_cli, lambda i, out: _manifest(i, out), "--report"),
    "demo": (_cli, lambda i, out: ["demo", "--out", out, "--steps", "1", "--zoom", "1"], "--out"),
    "probes": (_cli, lambda i, out: ["probes", "--out", out, "--num-scenes", "1", "--steps", "1"], "--out"),
    "make-tiny": (_cli, lambda i, out: ["make-tiny", out], "out"),
    "train": (_train, lambda i, out: ["--config", "cpu_tiny", "--output_dir", out, "--max_steps", "1",
                                      "--report_to", "none", "--progress_bar", "false"], "output_dir"),
    "export": (_export, lambda i, out: ["--checkpoint", str(i / "no_checkpoint"), "--out", out], "--out"),
    "export --format official": (_export, lambda i, out: ["--checkpoint", str(i / "no_checkpoint"), "--out", out,
                                                          "--format", "official"], "--out"),
    "prepare": (_prepare, lambda i, out: ["synthetic", "--out", out, "--num-clips", "1"], "--out"),
    "evaluate": (_evaluate, lambda i, out: ["--data", str(i / "data"), "--out", out, "--methods",
                                            "copy_first_frame"], "--out"),
}


def _device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the numbers of /dev/null
    except (PermissionError, OSError) as err:
        pytest.skip(f"cannot make a device node here ({err})")


def _bad_path(kind: str, tmp_path: Path, command: str) -> tuple[Path, str]:
    """The bad output path of ``kind`` and the words the error must use."""
    file_like = command in ("generate --out", "generate --report", "export")
    suffix = ".json" if command == "generate --report" else ".safetensors" if command == "export" else \
        ".mp4" if command == "generate --out" else ""
    if kind == "too long":
        return tmp_path / (LONG + suffix), "bytes long"
    if kind == "file as parent":
        (tmp_path / "notes.txt").write_text("my notes")
        return tmp_path / "notes.txt" / ("out" + suffix), "not a folder"
    target = tmp_path / ("target" + (suffix if file_like else ""))
    if kind == "device":
        _device(target)
        return target, "character device"
    os.mkfifo(target)
    return target, "named pipe"


def _state(tmp_path: Path) -> dict:
    """Every entry under ``tmp_path`` with its type and (regular files) bytes."""
    out = {}
    for p in sorted(tmp_path.rglob("*")):
        mode = os.lstat(p).st_mode
        out[str(p.relative_to(tmp_path))] = (stat.S_IFMT(mode), p.read_bytes() if stat.S_ISREG(mode) else None)
    return out


@pytest.mark.parametrize("kind", ["too long", "file as parent", "device", "named pipe"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_refuses_a_bad_output_path_in_one_line(command, kind, inputs, tmp_path, capsys):
    entry, argv, flag = COMMANDS[command]
    work = tmp_path / "work"
    work.mkdir()
    out, reason = _bad_path(kind, work, command)
    before = _state(work)
    try:
        code = entry(argv(inputs, str(out)))
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    errors = [line for line in err.replace("\r", "\n").splitlines() if "error" in line]
    assert code not in (0, None), f"{command} with a {kind} output must fail, not run: {err[-600:]}"
    assert "Traceback" not in err and len(errors) == 1, f"one line, no traceback: {err[-1500:]}"
    assert flag in errors[0] and reason in errors[0], f"the line names {flag} and says why ({reason}): {errors[0]}"
    assert _state(work) == before, f"{command}: the {kind} path and everything beside it are as they were"


def test_the_check_refuses_a_path_longer_than_path_max(tmp_path):
    from interdyn.support.safe_output import OutputError, check_output_path

    deep = tmp_path.joinpath(*(["d" * 200] * 25), "out.mp4")  # every name fits, the whole path does not
    with pytest.raises(OutputError, match="--out: the path is .* bytes long"):
        check_output_path(deep, "--out")


def test_the_check_allows_new_files_and_folders_and_creates_nothing(tmp_path):
    from interdyn.support.safe_output import check_output_path

    for path, folder in ((tmp_path / "a" / "b" / "clip.mp4", False), (tmp_path / "run", True), (tmp_path, True)):
        assert check_output_path(path, "--out", folder=folder) == path
    assert sorted(tmp_path.iterdir()) == [], "a check never creates anything"
