"""The library's old module names, from before it was grouped by concern, keep working.

``interdyn.sampling`` is the same module object as ``interdyn.core.sampling`` (so code, pickled names and
``monkeypatch.setattr("interdyn.sampling.x", ...)`` written against the flat layout behave as before): a finder,
first on ``sys.meta_path``, answers every old name (and its submodules) with the module at its new place.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old name -> new name; every target lies inside ``interdyn``
MOVED = {
    **{f"interdyn.{m}": f"interdyn.core.{m}" for m in ("sampling", "control", "native", "loading", "builtin")},
    **{f"interdyn.{m}": f"interdyn.data.{m}" for m in ("trajectory", "shapes", "segmentation", "video_io", "synthetic")},
    **{f"interdyn.{m}": f"interdyn.apps.{m}"
       for m in ("cli", "batch", "demo", "probes", "contact_sheet", "generation", "plugins")},
    **{f"interdyn.{m}": f"interdyn.support.{m}"
       for m in ("distributed", "safe_output", "safe_load", "validation", "errors", "testing")},
}


def new_name(fullname: str) -> str | None:
    """Where an old module name lives now (``None`` for a name that did not move). Every moved module sat directly
    under ``interdyn``, so its old name is the first two parts; the rest is a submodule's path."""
    parts = fullname.split(".")
    old = ".".join(parts[:2])
    if len(parts) < 2 or old not in MOVED:
        return None
    return ".".join([MOVED[old], *parts[2:]])


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old name with the module already imported (or imported now) under its new name."""

    def find_spec(self, fullname, path=None, target=None):
        if new_name(fullname) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(new_name(spec.name))

    def exec_module(self, module):
        pass  # the module ran under its new name


def install() -> None:
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())
