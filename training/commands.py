"""The training package's commands of the ``interdyn`` command line: ``train``, ``export``, ``evaluate``,
``prepare`` and ``configs``.

They are registered as entry points (group ``interdyn.commands`` in ``pyproject.toml``), so the library finds
them through the installed distribution's registry and never imports this package: dependencies run one way,
training -> interdyn. Each command is a :class:`Command`: a one-line help and ``run(argv, prog)``, which hands
every argument (``--help`` included) to the module's own parser, so ``interdyn train --help`` and
``python -m training.train --help`` list the same options.
"""
from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from pathlib import Path

from . import config


@dataclass(frozen=True)
class Command:
    """One ``interdyn <name>`` command: the module of this package whose ``main(argv, prog=...)`` runs it."""

    module: str
    help: str

    def run(self, argv: list[str], prog: str) -> int:
        # a module of this package, relative to it (installed as interdyn_training, `training` in a checkout)
        return importlib.import_module(f"{__package__}.{self.module}").main(list(argv), prog=prog)


train = Command("train", "train the InterDyn control branch (accelerate; `--config cpu_tiny` is a short CPU run)")
export = Command("export", "export a training checkpoint's control branch to one .safetensors (or the official "
                           "folder format)")
evaluate = Command("evaluate", "score generated videos against ground truth (PSNR, SSIM, LPIPS, FID, FVD, motion "
                               "fidelity)")
prepare = Command("data.prepare", "prepare a dataset (ssv2, clevrer, dexycb, synthetic) in the training folder "
                                  "layout")
configs = Command("commands", "list the shipped training and accelerate configs, or print one's path (for "
                              "`accelerate launch --config_file $(interdyn configs accelerate/ddp_2gpus)`)")

#: every command, by its name on the command line (what pyproject.toml registers)
COMMANDS = {"train": train, "export": export, "evaluate": evaluate, "prepare": prepare, "configs": configs}


def shipped_configs() -> dict[str, Path]:
    """The training and accelerate configs installed with the package, by name."""
    return config.shipped_configs()


def main(argv: list[str] | None = None, prog: str = "python -m training.commands") -> int:
    """``interdyn configs [NAME]``: list the shipped configs, or print one's path."""
    parser = argparse.ArgumentParser(prog=prog, description=configs.help)
    parser.add_argument("name", nargs="?", default=None, help="a config's name (e.g. cpu_tiny): print its path only")
    args = parser.parse_args(argv)
    found = shipped_configs()
    if args.name is None:
        width = max(map(len, found))
        for name, path in found.items():
            print(f"{name:{width}s}  {path}")
        return 0
    key = args.name[:-5] if args.name.endswith(".yaml") else args.name
    if key not in found:
        parser.exit(2, f"error: no shipped config named {args.name!r}; shipped: {', '.join(found)}\n")
    print(found[key])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
