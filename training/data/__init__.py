"""Datasets and data generation for training the InterDyn control branch."""
from .synthetic import *  # noqa: F401,F403  (the collision world, interdyn.synthetic)
from .synthetic import __all__  # noqa: F401
