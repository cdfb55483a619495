"""pytest: collect the repository root as a plain folder, not as a Python package.

The root ``__init__.py`` is ComfyUI's entry point: ComfyUI imports the folder as a package whatever
its name. pytest would import that file as a module named after the folder, which fails when the name
is not an identifier (``ComfyUI-InterDyn``, the README's clone). The tests import the pack the way
ComfyUI does (``tests/test_nodes.py: import_pack``), so pytest never needs to.
"""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


class _RootIsAFolder:
    # registered as a plugin: a conftest's own hooks are not asked about the folder that holds it
    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path, parent):
        if Path(path).resolve() == ROOT:
            return pytest.Dir.from_parent(parent, path=path)
        return None


def pytest_configure(config):
    config.pluginmanager.register(_RootIsAFolder(), "interdyn-root-is-a-folder")
