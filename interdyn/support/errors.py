"""Exceptions shared by several library modules (kept here so that none of them imports another for it)."""
from __future__ import annotations

__all__ = ["ModelLoadError"]


class ModelLoadError(ValueError):
    """A model file is missing or is not what was expected; the message says which and what to do."""
