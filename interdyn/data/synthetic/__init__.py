"""A procedural 2D collision world: discs and boxes pushed by scripted "driven" objects.

InterDyn learns how a scene reacts to a driving motion. This world gives that signal in a
form a tiny model can learn on a CPU, and gives tests and physics probes a ground truth.

Physics
    Objects are discs or boxes (rectangles at a fixed angle; boxes translate but do not
    rotate, as if their moment of inertia were infinite). Contacts are exact for these
    shapes: disc-disc, disc-box (closest point) and box-box (separating axes). Contacts
    are resolved with impulses along the contact normal with a coefficient of
    ``restitution`` (1 = elastic) plus a positional correction; there is no tangential
    (Coulomb) friction between objects. ``friction`` is a velocity damping: the fraction
    of its speed a free object loses per frame. Free objects bounce off the four image
    borders (the walls) with the same restitution.

    *Driven* objects follow scripted piecewise-linear paths (``path`` = waypoints
    ``(t, x, y)``, ``t`` in frames; held still before the first and after the last). They
    are kinematic: infinite mass, they push free objects and ignore walls and each other
    (so they can enter from outside the frame). *Free* objects move under collisions only.

    Each frame interval is split into ``substeps`` integration steps with ``iterations``
    contact passes each. Everything is deterministic (no randomness in the simulation;
    ``seed`` only picks the background texture and, in the generators, the layout).

Units and conventions
    Positions are pixels, ``x`` to the right and ``y`` down; pixel ``(row i, col j)``
    covers ``[j, j+1) x [i, i+1)``, so its centre is ``(j + 0.5, i + 0.5)``. Velocities
    are pixels per frame. Frame ``f`` shows the state at time ``t = f``.

Rendering
    Objects are painted in list order (later on top) over a plain or lightly textured
    background, with ``antialias``-times supersampling (``1`` = hard edges). ``masks``
    are the *visible* pixels of each object: at least half of the pixel shows it (a pixel
    split evenly between two objects goes to the one on top), so masks never overlap.
    ``control`` paints the driven objects' masks in ``interdyn.core.control.CONTROL_PALETTE``
    colours on black (so one driven object is white), as
    :func:`interdyn.core.control.masks_to_control` does at inference time.

Entry points: :func:`simulate` (any objects you describe with :class:`SceneObject`),
:func:`default_scene` (the demo: a driven disc enters and pushes a free disc),
:func:`random_scene`, :func:`force_propagation_scene`, :func:`counterfactual_pair`, and
:func:`write_scene_folder` (the ``video.mp4`` / ``mask_hand.mp4`` / ``mask_<object>.mp4``
layout of the released InterDyn examples, plus ``control``, ``tracks.json``, ``meta.json``).

Modules: :mod:`.worlds` (colours and worlds), :mod:`.objects` (what a scene is made of), :mod:`.physics` (the
simulation), :mod:`.render` (frames and masks), :mod:`.simulate` (objects -> scene), :mod:`.scenes` (the
generators, presets and the training mix), :mod:`.writer` (the folder layout). Import from the package:
``from interdyn.data.synthetic import random_scene`` (the names below are its public API).
"""
from .objects import SceneObject, SyntheticScene
from .scenes import (SCENE_PRESETS, TRAINING_MIX, counterfactual_pair, dataset_scene_seed, default_scene,
                     force_propagation_scene, mixed_scene, random_scene, scene_for_preset)
from .simulate import simulate
from .worlds import (BACKGROUND_COLOURS, DEFAULT_FPS, DRIVEN_COLOUR, FULL_WORLD, OBJECT_COLOURS, TOY_WORLD, WORLDS,
                     World, get_world)
from .writer import write_scene_folder

__all__ = [
    "SceneObject",
    "SyntheticScene",
    "simulate",
    "default_scene",
    "random_scene",
    "force_propagation_scene",
    "counterfactual_pair",
    "dataset_scene_seed",
    "scene_for_preset",
    "mixed_scene",
    "TRAINING_MIX",
    "SCENE_PRESETS",
    "write_scene_folder",
    "OBJECT_COLOURS",
    "DRIVEN_COLOUR",
    "BACKGROUND_COLOURS",
    "DEFAULT_FPS",
    "World",
    "WORLDS",
    "FULL_WORLD",
    "TOY_WORLD",
    "get_world",
]
