"""No import circles among the project's modules (the architecture's rule), found statically.

Every ``import`` / ``from ... import`` in ``interdyn/``, ``training/`` and ``nodes/`` counts, also the ones
inside functions: a lazy import hides a circle at import time but keeps the two modules tangled
(each needs the other to be understood, tested or moved). Reads the files with :mod:`ast`; imports
nothing of the project, so it takes milliseconds.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("interdyn", "training", "nodes")


def project_modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file under ``root/<package>``."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _known_prefix(name: str, modules) -> str | None:
    """The longest prefix of ``name`` that is a project module (``None`` for other libraries)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imported_modules(name: str, path: Path, modules) -> set[str]:
    """The project modules that module ``name`` (at ``path``) imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                base_parts = base_parts[:max(len(base_parts) - (node.level - 1), 0)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import sub` imports the submodule when there is one, else a name of pkg
            candidates = [f"{base}.{alias.name}" if base else alias.name for alias in node.names]
            targets = [c if c in modules else base for c in candidates]
        else:
            continue
        for target in targets:
            known = _known_prefix(target, modules)
            if known is not None and known != name:
                found.add(known)
    return found


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    modules = project_modules(root, packages)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(cycles)


def test_the_project_has_no_import_cycles():
    graph = import_graph(REPO)
    assert {"interdyn.cli", "training.train", "nodes.models"} <= set(graph), \
        f"the scan must see the project's packages, saw only {sorted(graph)[:10]}..."
    cycles = import_cycles(graph)
    assert not cycles, ("modules that import each other (directly or through others; lazy imports count): "
                        + "; ".join(" <-> ".join(c) for c in cycles)
                        + ". Move what both need into a third module that imports neither.")


def test_the_cycle_finder_finds_lazy_and_relative_cycles(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")  # lazy and two levels up
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text("from . import a\nimport os\n")  # imports into the cycle, is not part of it
    cycles = import_cycles(import_graph(tmp_path, ("pkg",)))
    assert cycles == [["pkg.a", "pkg.c", "pkg.sub.b"]], \
        f"a -> sub.b -> (lazily) c -> a is one cycle and d is outside it; the finder reported {cycles}"
