"""InterDyn Model Loader: SVD backbone + optional InterDyn control branch -> INTERDYN_MODEL."""
from __future__ import annotations

from . import models


def load(svd, interdyn, precision, keep_loaded):
    """InterDyn Model Loader: SVD backbone + optional control branch -> (model,)."""
    return (models.load_model(svd, interdyn, precision, keep_loaded),)
