"""Shared pytest helpers: where the reference fixtures live, and CPU-friendly defaults."""
from __future__ import annotations

import os
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
