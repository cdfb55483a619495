"""The built-in toy-physics model: a tiny InterDyn trained by this project on its synthetic collision world.

It ships inside the package (``interdyn/assets/toy_physics/``, about 6 MB of fp16 safetensors) so
that InterDyn can be seen working on a laptop CPU with no downloads: a driven disc enters, pushes a
free disc, and the free disc moves on. It is *not* a general model: 64x64 pixels, 8 frames,
flat-coloured discs and boxes only (see ``MODEL_CARD.md`` beside the weights, and
``training/toy/README.md`` for the recipe that made it).

Everywhere a model path is accepted (``load_svd_backbone``, ``load_control_branch``, the CLI's
``--svd`` / ``--interdyn``, the ComfyUI loader), the name :data:`TOY_PHYSICS` (``"builtin:toy-physics"``)
means these files. This module only names and finds them (it imports no model code);
:func:`interdyn.core.loading.load_toy_physics` loads them.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import safe_open

from ..support.errors import ModelLoadError

BUILTIN_PREFIX = "builtin:"
TOY_PHYSICS = "builtin:toy-physics"
ASSETS = Path(__file__).resolve().parents[1] / "assets"  # interdyn/assets
TOY_DIR = ASSETS / "toy_physics"
TOY_SVD = TOY_DIR / "svd"
TOY_BRANCH = TOY_DIR / "interdyn_toy_physics.safetensors"

#: How the toy model is sampled: its training resolution and clip length, SVD's micro-conditioning as
#: in training (6 fps clips -> fps 7 in diffusers' convention, motion bucket 40), and the step count
#: and guidance chosen on validation scenes (seeds 2_000_000+, not the probe scenes).
TOY_SIZE = (64, 64)  # (height, width) the toy model was trained at
TOY_SAMPLING = dict(num_frames=8, num_steps=16, min_guidance=1.0, max_guidance=2.0,
                    fps=7, motion_bucket_id=40, noise_aug_strength=0.02)

_BUILTINS = {TOY_PHYSICS: {"svd": TOY_SVD, "control": TOY_BRANCH}}


def is_builtin(name: str | os.PathLike | None) -> bool:
    """True for names like ``"builtin:toy-physics"`` (whether or not the files are present)."""
    return isinstance(name, str) and name.startswith(BUILTIN_PREFIX)


def toy_world() -> str:
    """The synthetic world (:data:`interdyn.data.synthetic.WORLDS`) the shipped toy model was trained on, as its
    control branch's provenance records it (``"world"``); weights that predate worlds were trained on ``"full"``."""
    try:
        with safe_open(str(TOY_BRANCH), "pt") as f:
            provenance = json.loads((f.metadata() or {}).get("provenance") or "{}")
    except (OSError, ValueError):
        return "full"
    world = provenance.get("world", "full") if isinstance(provenance, dict) else "full"
    return world if world in ("full", "toy") else "full"


def builtin_names() -> list[str]:
    return sorted(_BUILTINS)


def builtin_path(name: str, part: str) -> Path:
    """The file or folder of built-in model ``name``; ``part`` is ``"svd"`` or ``"control"``.

    Raises :class:`interdyn.core.loading.ModelLoadError` naming the path looked at when the name is
    unknown or the files are missing (e.g. a sparse checkout without ``interdyn/assets``)."""
    if name not in _BUILTINS:
        raise ModelLoadError(f"unknown built-in model {name!r}; built-in models: {', '.join(builtin_names())}.")
    path = _BUILTINS[name][part]
    if not path.exists():
        raise ModelLoadError(f"the {part} weights of built-in model {name!r} are missing: looked for {path}. "
                             "They ship with the package (interdyn/assets); reinstall it or check out the "
                             "repository with its assets.")
    return path

