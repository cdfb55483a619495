"""Shared pytest helpers: where the reference fixtures live, CPU-friendly defaults, and the user's files that
writers and loaders must leave alone."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INTERDYN_SHARED", REPO.parent / "shared"))
FIXTURES = SHARED / "fixtures"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def fixture_dir(name: str) -> Path:
    """Path of a reference fixture folder, or skip the test with the reason."""
    path = FIXTURES / name
    if not path.is_dir():
        pytest.skip(f"reference fixture {name!r} not found at {path} (set INTERDYN_SHARED to the shared/ folder)")
    return path


@pytest.fixture
def fresh_accelerate_state():
    """A new accelerate state around the test: it is a process-wide singleton, and training runs in-process."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes (to prove nothing was lost or changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def precious(tmp_path) -> Path:
    """A user's folder that is not ours."""
    folder = tmp_path / "holiday_photos"
    (folder / "2024").mkdir(parents=True)
    (folder / "beach.jpg").write_bytes(b"not really a jpeg, but precious")
    (folder / "2024" / "notes.txt").write_text("do not delete")
    return folder


def tiny_run(tiny_models: dict, root: Path, step: int = 3) -> Path:
    """A training run folder with one checkpoint holding what training.export reads (``tiny_models``: the paths
    :func:`interdyn.core.tiny.write_tiny_models` returns)."""
    ckpt = root / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (root / "loss.csv").write_text("step,loss\n1,0.5\n")
    shutil.copy(tiny_models["interdyn"], ckpt / "control_branch.safetensors")
    shutil.copy(Path(tiny_models["svd"]) / "unet" / "config.json", ckpt / "unet_config.json")
    (ckpt / "trainer_state.json").write_text(json.dumps({"step": step}))
    return ckpt


class Evil:
    """Unpickling this creates a file: proof that code from a crafted checkpoint ran."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


# With INTERDYN_REQUIRE_COMFYUI=1 (CI, where ../shared/comfyui exists) the tests that need a real ComfyUI may not
# skip: a skip there means CI did not test the pack the way users run it, so it fails with the skip's reason.
COMFYUI_TEST_FILES = {"test_comfyui_integration.py", "test_comfyui_native.py", "test_comfyui_browser.py"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and os.environ.get("INTERDYN_REQUIRE_COMFYUI") == "1"
            and Path(str(item.fspath)).name in COMFYUI_TEST_FILES):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped where CI requires the ComfyUI tests to run (INTERDYN_REQUIRE_COMFYUI=1): {reason}"
