"""Each module's API is what it exports: no module of the project uses another module's private names.

A ``_name`` is its file's own business. When a second file needs it, it is shared: it gets a public name in the
module whose concern it is (or moves to the one file that uses it). Found statically with :mod:`ast`, over
``interdyn/``, ``nodes/`` and ``training/``: ``from x import _name``, ``x._name`` on an imported project module, and
an import of a private module (``interdyn.metrics._video``) from outside its own package.
"""
from __future__ import annotations

import ast
from pathlib import Path

from test_import_cycles import PACKAGES, _known_prefix, project_modules

REPO = Path(__file__).resolve().parents[1]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(node: ast.ImportFrom, package: str) -> str:
    """The absolute module name of a ``from ... import`` (relative levels resolved against ``package``)."""
    if not node.level:
        return node.module or ""
    parts = package.split(".") if package else []
    parts = parts[:max(len(parts) - (node.level - 1), 0)]
    return ".".join(parts + ([node.module] if node.module else []))


def _private_module_outside(target: str, importer_package: str, modules) -> str | None:
    """The private module in ``target``'s path (``a.b._c``) when the importer is not inside its package (``a.b``)."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if _private(part) and ".".join(parts[:i + 1]) in modules:
            owner = ".".join(parts[:i])
            if importer_package != owner and not importer_package.startswith(owner + "."):
                return ".".join(parts[:i + 1])
    return None


def private_name_uses(root: Path, packages=PACKAGES) -> list[str]:
    """``file:line: what`` for every use of another project module's private name or private module."""
    modules = project_modules(root, packages)
    found = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        where = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        module_aliases = set()  # local names bound to another project module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if _known_prefix(alias.name, modules) is None:
                        continue
                    hidden = _private_module_outside(alias.name, package, modules)
                    if hidden:
                        found.append(f"{where}:{node.lineno}: imports the private module {hidden}")
                    module_aliases.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, package)
                if _known_prefix(base, modules) is None:
                    continue
                hidden = _private_module_outside(base, package, modules)
                if hidden:
                    found.append(f"{where}:{node.lineno}: imports from the private module {hidden}")
                for alias in node.names:
                    full = f"{base}.{alias.name}" if base else alias.name
                    if full in modules:
                        hidden = _private_module_outside(full, package, modules)
                        if hidden:
                            found.append(f"{where}:{node.lineno}: imports the private module {hidden}")
                        module_aliases.add(alias.asname or alias.name)
                    elif _private(alias.name) and base != name:
                        found.append(f"{where}:{node.lineno}: imports {alias.name} from {base}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                    and node.value.id in module_aliases):
                found.append(f"{where}:{node.lineno}: uses {node.value.id}.{node.attr}")
    return sorted(found)


def test_no_module_uses_another_modules_private_names():
    found = private_name_uses(REPO)
    assert found == [], ("private names used across files; give each a public name where its concern lives (or "
                         "move it to the one file that uses it): " + "; ".join(found))


def test_the_private_name_check_catches_each_way_in(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    for init in (pkg / "__init__.py", pkg / "sub" / "__init__.py"):
        init.write_text("")
    (pkg / "sub" / "_helpers.py").write_text("def shared():\n    pass\n")
    (pkg / "sub" / "inside.py").write_text("from ._helpers import shared\n")  # its own package: allowed
    (pkg / "a.py").write_text("_hidden = 1\n__version__ = '1'\n")
    (pkg / "b.py").write_text("from .a import _hidden, __version__\n")
    (pkg / "c.py").write_text("from . import a\n\ndef f():\n    return a._hidden\n")
    (pkg / "d.py").write_text("from pkg.sub._helpers import shared\n")
    (pkg / "e.py").write_text("import pkg.sub._helpers\n")
    found = [f.split(": ", 1)[1] for f in private_name_uses(tmp_path, ("pkg",))]
    assert found == ["imports _hidden from pkg.a", "uses a._hidden", "imports from the private module pkg.sub._helpers",
                     "imports the private module pkg.sub._helpers"], \
        f"b (from-import), c (attribute), d and e (a private module from outside its package) are caught: {found}"


def test_support_errors_names_every_exception_of_the_library():
    """interdyn/support/errors.py is where a newcomer looks for the library's exceptions: it holds the shared one and
    names every other, where it lives (beside the one check that raises it)."""
    errors = REPO / "interdyn" / "support" / "errors.py"
    index = ast.get_docstring(ast.parse(errors.read_text(encoding="utf-8")))
    defined = {}
    for path in sorted((REPO / "interdyn").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            bases = [b.id if isinstance(b, ast.Name) else b.attr for b in getattr(node, "bases", ())
                     if isinstance(b, (ast.Name, ast.Attribute))]
            if isinstance(node, ast.ClassDef) and any(b.endswith(("Error", "Exception")) for b in bases):
                defined[node.name] = path.relative_to(REPO / "interdyn").with_suffix("").as_posix().replace("/", ".")
    assert {"ModelLoadError", "InputError", "OutputError"} <= set(defined), f"the scan sees the exceptions: {defined}"
    unnamed = {name: where for name, where in defined.items()
               if where != "support.errors" and f"``{where}.{name}``" not in index}
    assert unnamed == {}, f"exceptions that interdyn/support/errors.py does not name (with their module): {unnamed}"
