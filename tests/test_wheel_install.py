"""The wheel, installed as a user installs it: beside sam2, in a fresh virtual environment outside the
repository, used from another folder.

Builds the wheel from a copy of the sources (nothing is written into the checkout), lists it (no top-level
``training``: sam2's wheel owns that name), installs it with ``--no-deps`` into a venv made with
``--system-site-packages`` (torch, diffusers and sam2 come from this Python; nothing is downloaded), then
from an unrelated folder runs ``interdyn demo --steps 1`` and ``interdyn train --config cpu_tiny --max_steps 1``
and checks that ``import training`` there is still sam2's package with its own submodules.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "interdyn", "training"]  # what the build reads
TIMEOUT = 900


def _run(cmd, cwd, env, what):
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, f"{what} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def test_the_wheel_installs_beside_sam2_and_runs_from_another_folder(tmp_path):
    sam2_spec = importlib.util.find_spec("sam2")
    if sam2_spec is None:
        pytest.skip("sam2 is not installed (the README's test command installs it)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", OMP_NUM_THREADS="1")

    # 1. build the wheel from a copy of the sources (an in-tree build would write build/ into the checkout)
    src = tmp_path / "src"
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(source, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", tmp_path / "dist", src], tmp_path, env, "building the wheel")
    wheels = list((tmp_path / "dist").glob("interdyn-*.whl"))
    assert len(wheels) == 1, f"one interdyn wheel, got {wheels}"
    names = zipfile.ZipFile(wheels[0]).namelist()
    tops = sorted({n.split("/")[0] for n in names if "/" in n and ".dist-info/" not in n})
    assert tops == ["interdyn", "interdyn_training"], f"the wheel's top-level packages: {tops} (never `training`)"
    for needed in ["interdyn_training/configs/cpu_tiny.yaml", "interdyn_training/configs/toy_physics.yaml",
                   "interdyn_training/configs/two_gpus.yaml", "interdyn_training/configs/accelerate/ddp_2gpus.yaml",
                   "interdyn_training/train.py", "interdyn_training/data/prepare.py", "interdyn_training/toy/backbone.py",
                   "interdyn/assets/toy_physics/interdyn_toy_physics.safetensors", "interdyn/apps/cli.py"]:
        assert needed in names, f"the wheel must hold {needed}"

    # 2. a fresh venv outside the repository that sees this Python's packages (torch, sam2), and the wheel in it
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], tmp_path, env, "venv")
    python, interdyn = venv / "bin" / "python", venv / "bin" / "interdyn"
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", wheels[0]],
         tmp_path, env, "installing the wheel")
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        tmp_path, env, "purelib").strip())
    # --system-site-packages shows the BASE interpreter's packages: when these tests run inside a venv (the
    # README's usual setup), torch and sam2 live in that venv instead. List its site-packages as plain path
    # lines (no nested .pth processing, so the checkout's editable install stays out and the wheel is used).
    import site

    outer = [p for p in site.getsitepackages() if Path(p).is_dir() and Path(p).resolve() != purelib.resolve()]
    (purelib / "_outer_environment.pth").write_text("".join(f"{p}\n" for p in outer))
    assert not (purelib / "training").exists(), "installing us must not write a top-level training/ package"
    assert interdyn.is_file(), "the wheel installs the `interdyn` command"

    # 3. from another folder: which packages are imported, and sam2's training is still sam2's
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = ("import interdyn, interdyn_training, training, training.utils.distributed, training.utils.checkpoint_utils\n"
             "from interdyn.apps.plugins import load_command\n"
             "print(interdyn.__file__, interdyn_training.__file__, type(load_command('train')).__module__.split('.')[0],\n"
             "      training.__file__,\n"
             "      training.utils.distributed.__file__, training.utils.checkpoint_utils.__file__, sep='\\n')\n")
    lines = _run([python, "-c", probe], elsewhere, env, "importing from another folder").splitlines()
    ours, ours_training, used, theirs, *their_modules = [Path(p) for p in lines[:2]] + [lines[2]] + \
        [Path(p) for p in lines[3:]]
    assert purelib in ours.parents and purelib in ours_training.parents, \
        f"interdyn and interdyn_training come from the venv, got {ours} and {ours_training}"
    assert used == "interdyn_training", f"the installed interdyn uses interdyn_training, got {used}"
    sam2_root = Path(sam2_spec.origin).parent.parent
    assert theirs == sam2_root / "training" / "__init__.py", f"`import training` is sam2's package, got {theirs}"
    for module in their_modules:
        assert sam2_root / "training" in module.parents, f"sam2's training submodules are its own, got {module}"

    # 4. the commands, from that folder
    for command in (["--help"], ["train", "--help"], ["prepare", "ssv2", "--help"], ["configs", "cpu_tiny"]):
        text = _run([interdyn, *command], elsewhere, env, f"interdyn {' '.join(command)}")
        assert text.strip(), f"`interdyn {' '.join(command)}` prints something"
    assert Path(text.strip()).parent.parent == purelib / "interdyn_training", "configs are found in the package"
    _run([interdyn, "demo", "--steps", "1", "--out", "demo"], elsewhere, env, "interdyn demo --steps 1")
    demo = elsewhere / "demo"
    assert (demo / "hit.mp4").is_file() and (demo / "contact_sheet.png").is_file(), "the demo writes into the current folder"
    out = _run([interdyn, "train", "--config", "cpu_tiny", "--max_steps", "1", "--output_dir", "run"],
               elsewhere, env, "interdyn train --config cpu_tiny --max_steps 1")
    assert "done: step 1" in out, f"one training step from the shipped cpu_tiny config: {out[-500:]}"
    assert (elsewhere / "run").is_dir(), "the run is written relative to the current folder"
