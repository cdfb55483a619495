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
    assert {"interdyn.apps.cli", "training.train", "nodes.models"} <= set(graph), \
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


#: what each layer may import of the project (architecture.md): the library imports neither of the others
ALLOWED_LAYERS = {"interdyn": {"interdyn"}, "training": {"training", "interdyn"}, "nodes": {"nodes", "interdyn"}}
#: the installed name of training/ (pyproject.toml's package-dir) counts as the training layer
LAYER_NAMES = {"interdyn": "interdyn", "training": "training", "interdyn_training": "training", "nodes": "nodes"}
DYNAMIC_IMPORTERS = {"import_module", "__import__", "spec_from_file_location", "find_spec"}


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Static imports that go the wrong way between layers (e.g. ``interdyn`` -> ``training``)."""
    return [f"{module} imports {target}" for module, targets in sorted(graph.items()) for target in sorted(targets)
            if target.split(".")[0] not in ALLOWED_LAYERS[module.split(".")[0]]]


#: the library's packages by floor (architecture.md): a module imports its own package or a lower floor, never up
LIBRARY_FLOORS = {"support": 0, "models": 1, "metrics": 1, "single_file": 2, "core": 3, "data": 4, "apps": 5}


def floor_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports inside ``interdyn`` that climb a floor or cross sideways (e.g. ``support`` -> ``core``)."""
    def package(module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LIBRARY_FLOORS) else None

    found = []
    for module, targets in sorted(graph.items()):
        here = package(module) if module.startswith("interdyn.") else None
        if here is None:
            continue
        for target in sorted(targets):
            there = package(target) if target.startswith("interdyn.") else None
            if there is not None and there != here and LIBRARY_FLOORS[there] >= LIBRARY_FLOORS[here]:
                found.append(f"{module} imports {target}")
    return found


def test_library_imports_go_down_the_floors():
    """support <- models, metrics <- single_file <- core <- data <- apps: what a module needs lies below it, so each
    floor can be read, tested and moved without the ones above it."""
    graph = import_graph(REPO, ("interdyn",))
    packages = {p.name for p in (REPO / "interdyn").iterdir() if (p / "__init__.py").is_file()}
    assert set(LIBRARY_FLOORS) == packages, f"every package of the library has a floor: {sorted(packages)}"
    assert floor_violations(graph) == [], f"imports that climb a floor: {floor_violations(graph)}"
    assert floor_violations({"interdyn.support.x": {"interdyn.core.loading"}, "interdyn.core.y": {"interdyn.core.z"},
                             "interdyn.metrics.a": {"interdyn.models.unet"}}) == [
        "interdyn.metrics.a imports interdyn.models.unet", "interdyn.support.x imports interdyn.core.loading"]


def _literal_prefix(node: ast.AST) -> str | None:
    """The module name a dynamic import asks for, as far as the source says it: a string literal, the literal start
    of an f-string, ``"<package>"`` for an f-string starting with ``__package__`` (its own package); else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant):
            return first.value
        if isinstance(first, ast.FormattedValue) and isinstance(first.value, ast.Name) and first.value.id == "__package__":
            return "<package>"
    return None


def dynamic_import_violations(root: Path, packages=("interdyn", "nodes")) -> list[str]:
    """``importlib.import_module`` / ``__import__`` / ``spec_from_file_location`` / ``find_spec`` calls in a lower
    layer that reach a layer it may not import, or whose target the source does not say (the static graph above
    cannot see those, so they are refused here)."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
                if name not in DYNAMIC_IMPORTERS or not node.args:
                    continue
                where = f"{path.relative_to(root)}:{node.lineno}"
                if name == "spec_from_file_location":  # loads a file by path: the target is never checkable
                    found.append(f"{where}: {name} loads code by file path")
                    continue
                target = _literal_prefix(node.args[0])
                if target is None:
                    found.append(f"{where}: {name} of a name the source does not spell out")
                elif target != "<package>":
                    layer = LAYER_NAMES.get(target.split(".")[0])
                    if layer is not None and layer not in ALLOWED_LAYERS[package]:
                        found.append(f"{where}: {name}({target!r}) reaches the {layer} layer")
    return found


def test_layers_import_one_way_statically_and_dynamically():
    """interdyn is the bottom layer: it never imports training or nodes, not even through importlib (the training
    package adds its commands through the entry-point registry instead: interdyn/apps/plugins.py)."""
    assert not layer_violations(import_graph(REPO)), \
        f"imports against the layers (interdyn <- training, interdyn <- nodes): {layer_violations(import_graph(REPO))}"
    found = dynamic_import_violations(REPO)
    assert not found, f"dynamic imports that reach across the layers or hide their target: {found}"


def test_the_layer_check_catches_importlib_and_dunder_import(tmp_path):
    lib = tmp_path / "interdyn"
    lib.mkdir()
    (lib / "__init__.py").write_text("")
    (lib / "a.py").write_text("import importlib\ndef f():\n    return importlib.import_module('training.train')\n")
    (lib / "b.py").write_text("def g(n):\n    return __import__(n)\n")
    (lib / "c.py").write_text("import importlib.util\nS = importlib.util.spec_from_file_location('x', 'training/x.py')\n")
    (lib / "d.py").write_text("import importlib\nM = importlib.import_module(f'interdyn_training.{1}')\n")
    (lib / "ok.py").write_text("import importlib, importlib.util\nA = importlib.import_module(f'{__package__}.a')\n"
                               "B = importlib.util.find_spec('sam2._C')\n")
    found = dynamic_import_violations(tmp_path, ("interdyn",))
    assert [f.split(":")[0] for f in found] == ["interdyn/a.py", "interdyn/b.py", "interdyn/c.py", "interdyn/d.py"], \
        f"each of a-d reaches across or hides its target, ok.py does neither: {found}"
    graph = {"interdyn.x": {"training.train"}, "training.y": {"interdyn.x"}, "nodes.z": {"training.y"}}
    assert layer_violations(graph) == ["interdyn.x imports training.train", "nodes.z imports training.y"]


# ComfyUI's own top-level modules (a checkout's folder on sys.path), and the files of the pack that may import them
COMFYUI_MODULES = {"comfy", "comfy_api", "comfy_execution", "comfy_extras", "comfy_config", "folder_paths",
                   "latent_preview", "node_helpers", "execution", "server"}
COMFYUI_CONTACT = {"nodes/host.py": {"comfy", "folder_paths", "latent_preview"},  # runtime: progress, devices, folders
                   "nodes/native_control.py": {"comfy"},  # the ControlBase subclass of the native path
                   "nodes/declarations.py": {"comfy_api"}}  # the V3 node declarations


def comfyui_imports(root: Path, packages=("interdyn", "nodes", "training")) -> list[str]:
    """Every import of a ComfyUI module outside the files allowed to make it (``COMFYUI_CONTACT``)."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in COMFYUI_MODULES and top not in COMFYUI_CONTACT.get(rel, set()):
                        found.append(f"{rel}:{node.lineno} imports {name}")
    return found


def test_comfyui_is_imported_in_three_files_only():
    """interdyn/ and training/ never import ComfyUI; in nodes/, host.py (runtime), native_control.py (the native
    control) and declarations.py (the V3 API) do, so that the nodes' functions import and run without ComfyUI."""
    assert comfyui_imports(REPO) == []


def test_the_comfyui_import_check_catches_a_stray_import(tmp_path):
    for folder, text in (("interdyn", "import folder_paths\n"), ("nodes", "from comfy_api.latest import io\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.py").write_text(text)
    (tmp_path / "nodes" / "declarations.py").write_text("from comfy_api.v0_0_2 import io\n")
    assert comfyui_imports(tmp_path, ("interdyn", "nodes")) == [
        "interdyn/x.py:1 imports folder_paths", "nodes/x.py:1 imports comfy_api.latest"]


def test_each_library_module_has_one_name():
    """The library was grouped by concern before its first release; its modules are imported only by their grouped
    names (``interdyn.core.sampling``), never by the flat ones from before (``interdyn.sampling``)."""
    import importlib

    import pytest

    loose = sorted(f.name for f in (REPO / "interdyn").glob("*.py") if f.name not in ("__init__.py", "__main__.py"))
    assert loose == [], f"every library module lives in its concern's package, found {loose} directly in interdyn/"
    for old in ("interdyn.sampling", "interdyn.probes", "interdyn.testing"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(old)


# ---------------------------------------------------------------------------- function-local imports
def _module_names(node: ast.AST, name: str, path: Path) -> list[str]:
    """The absolute module names an import statement of module ``name`` (at ``path``) reads."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if node.level:
        parts = package.split(".")[:max(len(package.split(".")) - (node.level - 1), 0)]
        return [".".join(parts + ([node.module] if node.module else []))]
    return [node.module or ""]


def local_imports(root: Path, packages=PACKAGES) -> list[tuple[str, int, list[str], bool]]:
    """``(file, line, modules, re-imported)`` for every import inside a function; ``re-imported``: the file already
    imports one of those modules at its top level."""
    found = []
    for name, path in project_modules(root, packages).items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        top = {m for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
               for m in _module_names(node, name, path)}
        for function in ast.walk(tree):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(function):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        modules = _module_names(node, name, path)
                        found.append((path.relative_to(root).as_posix(), node.lineno, modules,
                                      any(m in top for m in modules)))
    return sorted(set((f, line, tuple(m), again) for f, line, m, again in found))


def _says_why(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or on a line just above it within the same run of imports."""
    i = lineno - 1
    while i >= 0:
        text = lines[i].strip()
        if "#" in text:
            return True
        if i < lineno - 1 and not text.startswith(("import ", "from ")) and not text.endswith((",", ")")):
            return False
        i -= 1
    return False


#: every file's function-local imports were reviewed (issue 35): each remaining one says why it is not at the top
REVIEWED = ("interdyn/", "nodes/", "training/")


def test_no_function_re_imports_what_its_file_imports_at_the_top():
    """Issue 35: a function-local import of a module the file already imports at its top reads as if the module
    were optional or costly, and is neither; the names join the top-level import."""
    again = [f"{f}:{line} ({', '.join(m)})" for f, line, m, re_imported in local_imports(REPO) if re_imported]
    assert not again, f"function-local imports of a module the file imports at its top: {again}"


def test_every_function_local_import_left_in_the_reviewed_files_says_why():
    """Issue 35: in the reviewed files an import stays inside a function only for a reason (an optional dependency,
    a torch-free module, a cycle), written beside it; every other import is at the top."""
    silent = []
    for f, line, modules, _ in local_imports(REPO):
        if f.startswith(REVIEWED) and not _says_why((REPO / f).read_text(encoding="utf-8").splitlines(), line):
            silent.append(f"{f}:{line} ({', '.join(modules)})")
    assert not silent, f"function-local imports without a comment saying why: {silent}"
