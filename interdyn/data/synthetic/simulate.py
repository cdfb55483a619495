"""From described objects to a rendered scene: checks, colours, physics, rendering, control frames."""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import torch

from ...core.control import CONTROL_PALETTE, masks_to_control
from .objects import SceneObject, SyntheticScene
from .physics import run_physics
from .render import render_background, render_objects
from .worlds import (BACKGROUND_COLOURS, DEFAULT_FPS, DRIVEN_COLOUR, FULL_WORLD, OBJECT_COLOURS, OBJECT_KINDS, World,
                     get_world)

#: what an object's name may be (it names its mask: ``mask_<name>``)
_NAME_RE = re.compile(r"^[A-Za-z0-9_\- ]+$")


def _check_objects(objects: Sequence[SceneObject], height: int, width: int) -> list[str]:
    if len(objects) == 0:
        raise ValueError("a scene needs at least one object.")
    names = []
    for i, o in enumerate(objects):
        if o.kind not in OBJECT_KINDS:
            raise ValueError(f"objects[{i}].kind is {o.kind!r}; expected one of {OBJECT_KINDS}.")
        if o.kind == "disc" and not o.radius > 0:
            raise ValueError(f"objects[{i}] is a disc with radius {o.radius}; it must be positive.")
        if o.kind == "box" and not (o.half_size[0] > 0 and o.half_size[1] > 0):
            raise ValueError(f"objects[{i}] is a box with half_size {o.half_size}; both must be positive.")
        if o.path is not None:
            p = np.asarray(o.path, dtype=np.float64)
            if p.ndim != 2 or p.shape[1] != 3 or len(p) == 0:
                raise ValueError(f"objects[{i}].path must be a list of (t, x, y) waypoints, got shape {p.shape}.")
            if np.any(np.diff(p[:, 0]) <= 0):
                raise ValueError(f"objects[{i}].path times must increase strictly, got {p[:, 0].tolist()}.")
        else:
            ex, ey = o.extent()
            x, y = o.position
            if 2 * ex > width or 2 * ey > height:
                raise ValueError(f"objects[{i}] ({o.kind}) is larger than the {width}x{height} world.")
            if not (ex - 1e-6 <= x <= width - ex + 1e-6 and ey - 1e-6 <= y <= height - ey + 1e-6):
                raise ValueError(
                    f"free objects[{i}] at {tuple(o.position)} sticks out of the {width}x{height} walls "
                    f"(half extents {ex:.2f}, {ey:.2f})."
                )
        if o.name is None:
            name = f"{'driver' if o.driven else o.kind}{i}"
        else:
            name = str(o.name)
            if not _NAME_RE.match(name) or name == "hand":
                raise ValueError(
                    f"objects[{i}].name {name!r} must be letters, digits, '_', '-' or spaces, and not 'hand' "
                    "(mask_hand is the driven objects' union)."
                )
        if name in names:
            raise ValueError(f"two objects are named {name!r}; names must be unique.")
        names.append(name)
    return names


def pick_colours(objects: Sequence[SceneObject], background, rng: np.random.Generator | None,
                 palette: Sequence = OBJECT_COLOURS) -> np.ndarray:
    """One colour per object, ``[O, 3]``: its own ``colour`` if set; else :data:`DRIVEN_COLOUR` for the first driven
    object; else the next unused colour of ``palette`` that stands out from ``background`` (``rng`` shuffles the
    palette's order)."""
    order = list(range(len(palette)))
    if rng is not None:
        rng.shuffle(order)
    bg = np.asarray(background)
    pool = [palette[k] for k in order if np.abs(np.asarray(palette[k]) - bg).sum() > 0.3]
    out, used_driven = [], False
    for o in objects:
        if o.colour is not None:
            out.append(tuple(float(v) for v in o.colour))
        elif o.driven and not used_driven:
            out.append(DRIVEN_COLOUR)
            used_driven = True
        else:
            taken = set(out)
            choice = next((c for c in pool if c not in taken), None)
            if choice is None:
                raise ValueError(f"more than {len(pool)} objects need a colour; pass colour= for the rest.")
            out.append(choice)
    return np.asarray(out, dtype=np.float64)


def simulate(objects: Sequence[SceneObject], *, size: tuple[int, int] = (64, 64), num_frames: int = 14,
             fps: float = DEFAULT_FPS, restitution: float = 1.0, friction: float = 0.0, substeps: int = 8,
             iterations: int = 4, background=BACKGROUND_COLOURS[0], texture: float = 0.0,
             antialias: int = 2, seed: int = 0, preset: str = "custom",
             colour_rng: np.random.Generator | None = None, world: World | str = FULL_WORLD) -> SyntheticScene:
    """Simulate and render ``objects`` for ``num_frames`` frames of ``size = (H, W)``.

    ``restitution`` in [0, 1] (1 = elastic), ``friction`` in [0, 1): fraction of speed a free
    object loses per frame. ``texture``: amplitude of the background's luminance pattern
    (0 = plain; 0.05 is light). ``antialias``: supersampling factor (1 = none). Objects without a
    ``colour`` get one of ``world``'s object colours (drawn with ``colour_rng``).
    """
    world = get_world(world)
    height, width = (int(v) for v in size)
    if height < 1 or width < 1 or num_frames < 1:
        raise ValueError(f"size must be positive and num_frames >= 1, got size={size}, num_frames={num_frames}.")
    if not 0.0 <= restitution <= 1.0:
        raise ValueError(f"restitution must be in [0, 1], got {restitution}.")
    if not 0.0 <= friction < 1.0:
        raise ValueError(f"friction is the fraction of speed lost per frame, in [0, 1); got {friction}.")
    if substeps < 1 or iterations < 1 or antialias < 1:
        raise ValueError("substeps, iterations and antialias must be >= 1.")
    names = _check_objects(objects, height, width)
    colours = pick_colours(objects, background, colour_rng, world.object_colours)
    pos, vel, contacts = run_physics(objects, height, width, num_frames, restitution, friction,
                                      substeps, iterations)
    bg = render_background(height, width, background, texture, seed)
    frames, masks = render_objects(objects, colours, pos, height, width, bg, antialias)

    driven = np.array([o.driven for o in objects], dtype=bool)
    driven_idx = np.flatnonzero(driven)
    # control: the driven masks coloured by the one function that builds control frames everywhere
    if len(driven_idx):
        control = masks_to_control(torch.from_numpy(masks[driven_idx])).permute(0, 2, 3, 1).numpy()
    else:
        control = np.zeros((num_frames, height, width, 3), dtype=np.float32)
    control_colours = {int(k): CONTROL_PALETTE[n] for n, k in enumerate(driven_idx)}

    meta_objects = []
    for k, o in enumerate(objects):
        entry = {
            "name": names[k], "kind": o.kind, "driven": bool(o.driven),
            "colour": [float(v) for v in colours[k]],
            "control_colour": list(control_colours[k]) if k in control_colours else None,
            "mass": None if o.driven else float(o.mass if o.mass is not None else o.area()),
        }
        if o.kind == "disc":
            entry["radius"] = float(o.radius)
        else:
            entry["half_size"] = [float(v) for v in o.half_size]
            entry["angle"] = float(o.angle)
        if o.driven:
            entry["path"] = [[float(v) for v in w] for w in o.path]
        meta_objects.append(entry)
    meta = {
        "preset": preset, "seed": int(seed), "fps": float(fps), "size": [height, width],
        "num_frames": int(num_frames), "objects": meta_objects,
        "restitution": float(restitution), "friction": float(friction), "substeps": int(substeps),
        "iterations": int(iterations), "antialias": int(antialias),
        "background": {"colour": [float(v) for v in background], "texture": float(texture)}, "world": world.name,
        "contacts": [list(c) for c in contacts],
        "units": "positions in pixels (x right, y down, pixel centres at +0.5); velocities in pixels/frame",
    }
    return SyntheticScene(
        frames=torch.from_numpy(frames.transpose(0, 3, 1, 2).copy()),
        masks=torch.from_numpy(masks),
        driven=torch.from_numpy(driven),
        tracks=torch.from_numpy(pos.astype(np.float32)),
        velocities=torch.from_numpy(vel.astype(np.float32)),
        control=torch.from_numpy(control.transpose(0, 3, 1, 2).copy()),
        meta=meta,
    )
