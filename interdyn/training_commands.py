"""``interdyn train | export | evaluate | prepare``: the training package's own command lines, run from anywhere.

The options are the modules' own (``training.train``, ``training.export``, ``training.evaluate``,
``training.data.prepare``): this module only finds the package and hands the arguments over, so
``interdyn train --help`` and ``python -m training.train --help`` list the same options.

Which package: the repository's ``training/`` folder installs as ``interdyn_training`` (sam2's wheel owns
the top-level name ``training``; see the README). In a source checkout (the folder above this
``interdyn`` holds ``pyproject.toml`` and ``training/``) the checkout's folder is used, under the name
``training`` when that name finds it (as ``python -m training.*`` from the checkout does) and under
``interdyn_training`` otherwise; the package's imports are relative, so either name works.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

INSTALLED_NAME = "interdyn_training"

#: ``interdyn <command>`` -> (module of the training package, one-line help)
TRAINING_COMMANDS = {
    "train": ("train", "train the InterDyn control branch (accelerate; `--config cpu_tiny` is a short CPU run)"),
    "export": ("export", "export a training checkpoint's control branch to one .safetensors (or the official "
                         "folder format)"),
    "evaluate": ("evaluate", "score generated videos against ground truth (PSNR, SSIM, LPIPS, FID, FVD, motion "
                             "fidelity)"),
    "prepare": ("data.prepare", "prepare a real dataset (ssv2, clevrer, dexycb) in the training folder layout"),
}


def _checkout_training_folder() -> Path | None:
    """``<checkout>/training`` when this ``interdyn`` runs from a source tree, else ``None``."""
    root = Path(__file__).resolve().parent.parent
    folder = root / "training"
    if (root / "pyproject.toml").is_file() and (folder / "__init__.py").is_file():
        return folder
    return None


def _origin_folder(spec) -> Path | None:
    return Path(spec.origin).resolve().parent if spec is not None and spec.origin else None


def training_package() -> ModuleType:
    """The training package that belongs with this ``interdyn`` (see the module's docstring)."""
    folder = _checkout_training_folder()
    if folder is None:
        try:
            return importlib.import_module(INSTALLED_NAME)
        except ModuleNotFoundError as err:
            if err.name != INSTALLED_NAME:
                raise
            raise SystemExit(f"error: the training package ({INSTALLED_NAME}) is not installed beside interdyn "
                             f"({Path(__file__).resolve().parent}): install the `interdyn` distribution with pip, "
                             "or run from a git checkout") from None
    for name in ("training", INSTALLED_NAME):
        module = sys.modules.get(name)
        if module is not None and _origin_folder(getattr(module, "__spec__", None)) == folder:
            return module
    for name in ("training", INSTALLED_NAME):
        if name not in sys.modules and _origin_folder(importlib.util.find_spec(name)) == folder:
            return importlib.import_module(name)
    if INSTALLED_NAME in sys.modules:
        raise SystemExit(f"error: {INSTALLED_NAME} is already imported from "
                         f"{sys.modules[INSTALLED_NAME].__file__}, not from this checkout's {folder}")
    # `training` finds another package here (sam2's, or none): load the checkout's folder under the installed name
    spec = importlib.util.spec_from_file_location(INSTALLED_NAME, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[INSTALLED_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[INSTALLED_NAME]
        raise
    return module


def training_module(name: str) -> ModuleType:
    """``training.<name>`` of :func:`training_package` (e.g. ``"train"``, ``"data.prepare"``)."""
    return importlib.import_module(f"{training_package().__name__}.{name}")


def run_training_command(command: str, argv: list[str]) -> int:
    """``interdyn <command> ARGS``: the training module's ``main(ARGS)``, its usage line naming the command."""
    module = training_module(TRAINING_COMMANDS[command][0])
    return module.main(list(argv), prog=f"interdyn {command}")


def shipped_configs() -> dict[str, Path]:
    """The training and accelerate configs installed with the package, by name."""
    return training_module("config").shipped_configs()
