"""How the project installs: the wheel's package list, the training package under its installed name, shipped
configs by name, and every ``interdyn`` subcommand's ``--help`` (the options are the training modules' own).

The end-to-end check (build the wheel, install it beside sam2 in a fresh virtual environment, run
``interdyn`` from another folder) is tests/test_wheel_install.py.
"""
from __future__ import annotations

import ast
import contextlib
import fnmatch
import io
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from interdyn.apps.cli import LIBRARY_COMMANDS, main
from interdyn.apps.plugins import GROUP, registered_commands
from training.commands import COMMANDS

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _folder_of(package: str) -> Path:
    """The source folder setuptools takes ``package`` from (``package-dir`` mapping, as setuptools applies it)."""
    mapping = SETUPTOOLS.get("package-dir", {})
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in mapping:
            return REPO / mapping[".".join(parts[:i])] / Path(*parts[i:])
    return REPO / Path(*parts)


def test_the_wheel_lists_every_subpackage_and_no_top_level_training():
    listed = {_folder_of(p).resolve() for p in SETUPTOOLS["packages"]}
    on_disk = {init.parent.resolve() for top in ("interdyn", "training") for init in (REPO / top).rglob("__init__.py")}
    assert on_disk - listed == set(), (f"sub-packages missing from [tool.setuptools] packages (the wheel would not "
                                       f"ship them): {sorted(str(p.relative_to(REPO)) for p in on_disk - listed)}")
    tops = {p.split(".")[0] for p in SETUPTOOLS["packages"]}
    assert "training" not in tops, "sam2's wheel owns the top-level package `training`; ours installs as interdyn_training"


def _absolute_training_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
        found += [f"{path.relative_to(REPO)}:{node.lineno} imports {n}" for n in names
                  if n == "training" or n.startswith("training.")]
    return found


def test_the_training_package_imports_itself_only_relatively():
    found = [hit for path in sorted((REPO / "training").rglob("*.py")) for hit in _absolute_training_imports(path)]
    assert not found, ("inside training/ an absolute `training...` import finds sam2's package once installed (ours is "
                       f"interdyn_training there); use a relative import: {found}")


def test_every_shipped_config_is_package_data_and_resolves_by_name():
    from training import config
    shipped = config.shipped_configs()
    assert {"cpu_tiny", "toy_physics", "two_gpus", "one_gpu", "accelerate/ddp_2gpus"} <= set(shipped), \
        f"the shipped configs are addressable by name; found {sorted(shipped)}"
    patterns = SETUPTOOLS["package-data"]["interdyn_training"]
    for name, path in shipped.items():
        rel = path.relative_to(REPO / "training").as_posix()
        assert any(fnmatch.fnmatch(rel, pattern) for pattern in patterns), \
            f"{rel} is not matched by package-data {patterns}: the wheel would not ship config {name!r}"
    assert config.resolve_config("cpu_tiny") == shipped["cpu_tiny"] == config.resolve_config("cpu_tiny.yaml")
    assert config.load_config("cpu_tiny").max_steps == 40, "loading by name reads the shipped cpu_tiny.yaml"
    with pytest.raises(FileNotFoundError, match="cpu_tiny, .*toy_physics"):
        config.resolve_config("no_such_config")


def _help(call) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_info:
        call()
    assert exit_info.value.code == 0, f"--help exits 0, got {exit_info.value.code}"
    return out.getvalue()


@pytest.mark.parametrize("command", LIBRARY_COMMANDS)
def test_the_library_commands_have_help(command):
    text = _help(lambda: main([command, "--help"]))
    assert text.startswith(f"usage: interdyn {command}"), f"`interdyn {command} --help` prints its usage: {text[:200]}"


@pytest.mark.parametrize("argv", [["train"], ["export"], ["evaluate"], ["prepare"], ["prepare", "ssv2"],
                                  ["prepare", "clevrer"], ["prepare", "dexycb"], ["prepare", "synthetic"],
                                  ["configs"]], ids=" ".join)
def test_the_training_commands_have_the_modules_own_options(argv):
    import importlib

    text = _help(lambda: main([*argv, "--help"]))
    module = importlib.import_module(f"training.{COMMANDS[argv[0]].module}")
    own = _help(lambda: module.main([*argv[1:], "--help"]))
    command = " ".join(argv)
    assert text.startswith(f"usage: interdyn {command}"), f"the usage line names `interdyn {command}`: {text[:200]}"
    assert own.startswith("usage: python -m training."), f"python -m's own usage line is unchanged: {own[:120]}"
    # the options and sub-command choices each lists (usage lines wrap differently: the progs differ in length)
    options = lambda t: set(re.findall(r"(?<![\w-])--?[A-Za-z][\w-]*|\{[\w,]+\}", t))  # noqa: E731
    own = own.replace("python -m ", "")
    assert options(text) == options(own), \
        (f"`interdyn {command}` must offer exactly the module's options (it hands the arguments over); "
         f"differences: {sorted(options(text) ^ options(own))}")


def test_the_top_level_help_lists_every_command():
    text = _help(lambda: main(["--help"]))
    for command in [*LIBRARY_COMMANDS, *COMMANDS]:
        assert command in text, f"`interdyn --help` lists `{command}`"


def test_the_registry_offers_exactly_the_training_packages_commands():
    """pyproject.toml registers every command of training/commands.py (and nothing else) in the group interdyn reads;
    the installed metadata (this checkout's editable install or the wheel) says the same."""
    declared = PYPROJECT["project"]["entry-points"][GROUP]
    assert declared == {name: f"interdyn_training.commands:{name}" for name in COMMANDS}, \
        f"pyproject.toml's [project.entry-points.{GROUP!r}] must list training.commands.COMMANDS: {declared}"
    installed = registered_commands()
    assert set(installed) == set(COMMANDS), \
        f"the installed metadata registers {sorted(installed)}; reinstall (`pip install -e .`) after changing them"
    assert not set(COMMANDS) & set(LIBRARY_COMMANDS), "a registered name must not shadow a library command"


def test_without_the_registry_the_training_commands_say_how_to_get_them(monkeypatch, capsys):
    """A checkout used without installing it has no entry points: `interdyn train` explains, in one line, instead of
    an argparse 'invalid choice' or a traceback; the library's own commands still work."""
    from interdyn.apps import plugins

    monkeypatch.setattr(plugins, "distributions", lambda: [])
    assert main(["train", "--config", "cpu_tiny"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: `interdyn train`") and "pip install -e ." in err and "python -m training.train" in err \
        and err.count("\n") == 1, err
    assert "train" not in _help(lambda: main(["--help"])).split("make-tiny", 1)[1], "unregistered: not listed"


def test_a_checkout_run_from_another_folder_uses_its_own_training_folder(tmp_path):
    """Outside the repository `training` is sam2's (or nothing); the registered commands must still run the
    checkout's training/ (installed editable as interdyn_training) and leave `import training` alone. No torch."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "interdyn").symlink_to(REPO / "interdyn", target_is_directory=True)
    code = ("import importlib.util, sys\n"
            "from interdyn.apps.plugins import load_command\n"
            "command = load_command('configs')\n"
            "owner = sys.modules[type(command).__module__]\n"
            "spec = importlib.util.find_spec('training')\n"
            "print(owner.__name__, owner.__file__, owner.shipped_configs()['cpu_tiny'], spec and spec.origin,\n"
            "      'torch' in sys.modules, sep='\\n')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    name, module_file, cpu_tiny, other, torch_loaded = out.stdout.splitlines()
    assert name == "interdyn_training.commands", f"the registry loads the installed name, got {name}"
    assert Path(module_file) == REPO / "training" / "commands.py", f"the checkout's training/ is used, got {module_file}"
    assert Path(cpu_tiny) == REPO / "training" / "configs" / "cpu_tiny.yaml"
    assert other in ("None", "") or Path(other).parent != REPO / "training", \
        f"`import training` outside the checkout is not ours (sam2's or nothing), got {other}"
    assert torch_loaded == "False", "listing the commands imports no torch: `interdyn --help` stays quick"

def test_a_stale_egg_info_in_the_checkout_does_not_hide_the_registry(tmp_path, monkeypatch):
    """An older build can leave interdyn.egg-info (console script only) in a checkout, found before the installed
    metadata when the checkout is on sys.path (pytest, `python -m` from the checkout): the commands stay registered."""
    stale = tmp_path / "interdyn.egg-info"
    stale.mkdir()
    (stale / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: interdyn\nVersion: 0.0.1\n")
    (stale / "entry_points.txt").write_text("[console_scripts]\ninterdyn = interdyn.apps.cli:main\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from importlib.metadata import distribution

    assert distribution("interdyn").version == "0.0.1", "the stale metadata is the first one found (the setup)"
    assert set(registered_commands()) == set(COMMANDS), "the installed registry is still read"
