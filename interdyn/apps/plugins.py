"""Commands that other packages add to the ``interdyn`` command line, found through the entry-point registry.

A distribution registers ``name = "package.module:object"`` under the group :data:`GROUP` (``interdyn.commands``);
the object has ``help`` (one line) and ``run(argv, prog) -> int``. The repository's training package registers
``train``, ``export``, ``evaluate``, ``prepare`` and ``configs`` this way (``training/commands.py``,
``pyproject.toml``), so this library never names or imports it: dependencies run one way, training -> interdyn.

The registry is the installed distributions' metadata: a checkout works once installed (``pip install -e .``).
"""
from __future__ import annotations

from importlib.metadata import EntryPoint, distributions

#: the entry-point group of ``interdyn`` sub-commands
GROUP = "interdyn.commands"
#: the names the training package registers: only used to explain their absence (a checkout not installed)
TRAINING_COMMAND_NAMES = ("train", "export", "evaluate", "prepare", "configs")


def registered_commands() -> dict[str, EntryPoint]:
    """``{name: entry point}`` of every registered command (the first registration of a name wins), by name.

    Every distribution's metadata on the path is read, not only the first of each name: a stale
    ``interdyn.egg-info`` left in a checkout by an older build would otherwise hide the installed registry."""
    found: dict[str, EntryPoint] = {}
    for dist in distributions():
        for entry in dist.entry_points.select(group=GROUP):
            found.setdefault(entry.name, entry)
    return dict(sorted(found.items()))


def load_command(name: str):
    """The registered command ``name`` (its ``help`` and ``run``); ``KeyError`` if none is registered."""
    return registered_commands()[name].load()


def missing_command_message(name: str) -> str:
    """What to say when ``interdyn NAME`` is not a command of the library and nothing registered it."""
    return (f"`interdyn {name}` is not a command of the library, and no installed package registers it (entry-point "
            f"group {GROUP}). The training commands (train, export, evaluate, prepare, configs) come with the "
            "interdyn distribution's training package: install the distribution (`pip install -e .` in a checkout), "
            "or run the module directly from a checkout (`python -m training.train --help`)")
