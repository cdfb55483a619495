"""The Comfy Registry metadata in pyproject.toml, field by field, against the published specification, and the
node archive that `comfy node pack` / `comfy node publish` would make.

Sources (read for this test; nothing is fetched at run time):

* the Registry's pyproject specification, docs.comfy.org/registry/specifications (Comfy-Org/docs,
  ``registry/specifications.mdx``): ``name`` < 100 characters of letters, digits, ``-``, ``_``, ``.``, no two
  special characters in a row, starting with a letter, best without "ComfyUI"; ``version`` X.Y.Z;
  ``license`` a ``{file = ...}`` / ``{text = ...}`` table; ``[project.urls] Repository``; ``[tool.comfy]``
  ``PublisherId`` (required, "typically matching your GitHub username"), ``DisplayName``, ``Icon`` (a URL;
  SVG, PNG, JPG or GIF; at most 800 x 400 pixels), ``requires-comfyui`` (version specifiers such as
  ``">=1.0.0,<2.0.0"``);
* comfy-cli 1.23.0 (PyPI), the Registry's own tooling: ``comfy_cli/registry/config_parser.py``
  (``extract_node_configuration`` also accepts ``license = "MIT"`` as the licence text; ``validate_version``:
  each comma-separated part ``[==|>=|<=|!=|~=|>|<|<>|=]major.minor.patch[-suffix]``) and
  ``comfy_cli/file_utils.py`` (``zip_files``: the archive is the git-tracked files minus the gitwildmatch
  patterns of ``.comfyignore``, plus the ``includes`` folders).
"""
from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
COMFY = PYPROJECT["tool"]["comfy"]
ICON_TYPES = {".svg", ".png", ".jpg", ".jpeg", ".gif"}


def test_name_follows_the_registry_rules():
    name = PROJECT["name"]
    assert len(name) < 100, "the node id must be under 100 characters"
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", name), \
        (f"{name!r}: letters, digits, '-', '_', '.', starting with a letter, no two special characters in a row, "
         "not ending with one")
    assert "comfyui" not in name.lower(), f"{name!r}: the specification asks not to include 'ComfyUI' in the name"


def test_version_is_three_part_semver():
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"]), f"version X.Y.Z, got {PROJECT['version']!r}"


def test_licence_is_given_and_its_file_exists():
    licence = PROJECT["license"]
    if isinstance(licence, dict):
        assert set(licence) <= {"file", "text"} and any(licence.values()), f"license table needs file or text: {licence}"
        if "file" in licence:
            assert (REPO / licence["file"]).is_file(), f"license file {licence['file']} must exist"
    else:
        assert isinstance(licence, str) and licence.strip(), "license text (comfy-cli reads a string as the text)"
    for name in PROJECT.get("license-files", []):
        assert (REPO / name).is_file(), f"license-files names {name}, which must exist (it goes in the node archive)"
    assert PROJECT.get("description", "").strip(), "a description is recommended; ours says what the pack does"
    assert PROJECT.get("requires-python", "").startswith(">="), "requires-python is recommended"


def test_urls_are_real_addresses_or_left_for_the_publisher():
    urls = PROJECT.get("urls", {})
    for key, url in urls.items():
        parsed = urlparse(url)
        assert parsed.scheme == "https" and parsed.netloc, f"[project.urls] {key} must be an https address, got {url!r}"
    text = (REPO / "pyproject.toml").read_text()
    if "Repository" not in urls:
        assert "left for the publisher" in text, "no Repository: pyproject.toml must say the publisher adds it"


def test_publisher_id_and_display_name():
    publisher = COMFY.get("PublisherId", "")
    assert re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,38}", publisher), \
        f"PublisherId is required; a GitHub-username-like id (lowercase, digits, single hyphens), got {publisher!r}"
    assert COMFY.get("DisplayName", "").strip(), "DisplayName: the name people see in the Registry and Manager"


def test_icon_exists_in_the_repository_and_fits_the_specification():
    icon = COMFY.get("Icon", "")
    assert icon, "Icon must be set"
    parsed = urlparse(icon)
    if parsed.scheme:
        assert parsed.scheme == "https", f"an Icon address must be https: {icon!r}"
        assert "Repository" in PROJECT.get("urls", {}), "an Icon address belongs with the Repository address"
        parts = Path(parsed.path).parts  # a raw address: /<owner>/<repo>/<branch>/docs/icon.png
        path = next((REPO / Path(*parts[k:]) for k in range(1, len(parts)) if (REPO / Path(*parts[k:])).is_file()),
                    REPO / parts[-1])
    else:
        assert "Repository" not in PROJECT.get("urls", {}), \
            "once Repository is filled in, Icon must be the raw https address of the icon file in it"
        path = REPO / icon
    assert path.suffix.lower() in ICON_TYPES, f"Icon must be SVG, PNG, JPG or GIF: {icon!r}"
    assert path.is_file(), f"the Icon file {path.relative_to(REPO)} must exist in the repository"
    if path.suffix.lower() != ".svg":
        with Image.open(path) as image:
            width, height = image.size
        assert width <= 800 and height <= 400, f"Icon at most 800x400 pixels, got {width}x{height}"


def test_requires_comfyui_is_a_valid_specifier():
    spec = COMFY.get("requires-comfyui", "")
    part = r"(?:(==|>=|<=|!=|~=|>|<|<>|=)\s*)?\d+\.\d+\.\d+(?:-[a-zA-Z0-9]+)?"
    assert spec and all(re.fullmatch(part, p.strip()) for p in spec.split(",")), \
        f"requires-comfyui: comma-separated [operator]X.Y.Z parts, got {spec!r}"


def _node_archive() -> set[str]:
    """The files `comfy node pack` would put in the archive (comfy-cli's zip_files, without writing a zip)."""
    pathspec = pytest.importorskip("pathspec", reason="pathspec (comfy-cli's matcher) is in the test extra")
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True, check=True)
        files = [line for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:  # not a git checkout: comfy-cli walks the folder
        files = [Path(root, f).relative_to(REPO).as_posix() for root, dirs, names in os.walk(REPO)
                 if ".git" not in Path(root).relative_to(REPO).parts for f in names]
    ignore = REPO / ".comfyignore"
    patterns = [line.strip() for line in ignore.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")] if ignore.is_file() else []
    spec = pathspec.PathSpec.from_lines("gitwildmatch", patterns)
    includes = [i.strip("/") for i in COMFY.get("includes", [])]
    kept = {f for f in files if (REPO / f).exists()
            and (not spec.match_file(f) or any(f == i or f.startswith(i + "/") for i in includes))}
    for include in includes:
        assert (REPO / include).exists(), f"[tool.comfy] includes names {include}, which does not exist"
    return kept


def test_the_node_archive_holds_what_comfyui_needs_and_nothing_else():
    files = _node_archive()
    for needed in ["__init__.py", "README.md", "LICENSE", "requirements.txt", "pyproject.toml",
                   "interdyn/core/sampling.py", "interdyn/assets/toy_physics/interdyn_toy_physics.safetensors",
                   "interdyn/assets/toy_physics/svd/unet/diffusion_pytorch_model.safetensors"]:
        assert needed in files, f"the node archive must hold {needed}"
    assert any(f.startswith("nodes/") for f in files), "the node archive must hold the nodes"
    assert any(f.startswith("workflows/") and f.endswith(".json") for f in files), "... and the example workflows"
    assert {"web/drive_editor.js", "web/drive_model.js"} <= files, "... and the page's extension (WEB_DIRECTORY)"
    unwanted = sorted(f for f in files if f.split("/")[0] in {"tests", "bench", "training", "docs", ".ci"})
    assert not unwanted, f"tests, benchmarks, training (code, recipe logs), docs and CI stay out: {unwanted[:10]}"
