"""Datasets and data generation for training the InterDyn control branch."""
from .synthetic import (
    SceneObject,
    SyntheticScene,
    counterfactual_pair,
    default_scene,
    force_propagation_scene,
    random_scene,
    simulate,
    write_scene_folder,
)

__all__ = [
    "SceneObject",
    "SyntheticScene",
    "simulate",
    "default_scene",
    "random_scene",
    "force_propagation_scene",
    "counterfactual_pair",
    "write_scene_folder",
]
