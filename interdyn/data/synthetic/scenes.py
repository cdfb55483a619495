"""Scene generators: the demo push, random scenes, force-propagation scenes, hit/miss counterfactual pairs,
chains, the presets and the training mix, each from a seed."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .objects import SceneObject, SyntheticScene
from .simulate import pick_colours, simulate
from .worlds import DEFAULT_FPS, FULL_WORLD, OBJECT_KINDS, World, get_world


def _place(side: str, along: float, cross: float, height: int, width: int) -> tuple[float, float]:
    """Canonical coordinates (``along`` = distance into the frame from ``side``) -> (x, y)."""
    if side == "left":
        return along, cross
    if side == "right":
        return width - along, cross
    if side == "top":
        return cross, along
    return cross, height - along


def _axes(side: str, height: int, width: int) -> tuple[float, float]:
    """(length along the motion, length across) for a driver entering from ``side``."""
    return (width, height) if side in ("left", "right") else (height, width)


_SIDES = ("left", "right", "top", "bottom")


def _push_layout(rng: np.random.Generator, height: int, width: int, num_frames: int):
    """A driven disc entering from a side toward a free disc at rest.

    Returns (side, driver radius, disc radius, driver path, disc centre, driver speed)."""
    side = _SIDES[int(rng.integers(4))]
    length, across = _axes(side, height, width)
    m = min(height, width)
    rd = float(rng.uniform(0.11, 0.15) * m)
    ra = float(rng.uniform(0.08, 0.12) * m)
    cross = float(rng.uniform(0.35, 0.65) * across)
    offset = float(rng.uniform(-0.4, 0.4) * (rd + ra))
    a_along = float(rng.uniform(0.3, 0.45) * length)
    start = -rd - 0.5  # fully outside the frame at t = 0
    speed = float(rng.uniform(0.045, 0.075) * length)  # pixels per frame (3-5 at 64 px)
    end_t = float(num_frames - 1)
    driver_path = [(0.0, *_place(side, start, cross, height, width)),
                   (end_t, *_place(side, start + speed * end_t, cross, height, width))]
    target_xy = _place(side, a_along, cross + offset, height, width)
    return side, rd, ra, driver_path, target_xy, speed


def default_scene(seed: int = 0, *, size: tuple[int, int] = (64, 64), num_frames: int = 14,
                  fps: float = DEFAULT_FPS, antialias: int = 2, max_attempts: int = 64,
                  world: World | str = FULL_WORLD) -> SyntheticScene:
    """The demo scene: a driven disc enters from a side (chosen by ``seed``), hits a free disc
    at rest, which moves on after the contact. Layouts are drawn from ``seed`` and retried
    deterministically until the contact happens at least 3 frames before the end and the
    free disc ends at least 3 pixels from where it started."""
    world = get_world(world)
    height, width = size
    for attempt in range(max_attempts):
        rng = np.random.default_rng([int(seed), attempt, 1])
        side, rd, ra, path, target, _ = _push_layout(rng, height, width, num_frames)
        restitution = float(rng.uniform(0.6, 0.9))
        friction = float(rng.uniform(0.02, 0.08))
        bg = world.background(rng)
        objects = [SceneObject("disc", position=target, radius=ra, name="disc"),
                   SceneObject("disc", radius=rd, path=path, name="driver")]
        scene = simulate(objects, size=size, num_frames=num_frames, fps=fps, restitution=restitution,
                         friction=friction, background=bg, antialias=antialias, seed=seed,
                         preset="default", colour_rng=rng, world=world)
        hit = scene.first_contact(0, 1)
        moved = float((scene.tracks[0, -1] - scene.tracks[0, 0]).norm())
        if hit is not None and hit <= num_frames - 4 and moved >= 3.0:
            scene.meta.update(attempt=attempt, driver_side=side)
            return scene
    raise RuntimeError(f"no default scene with a contact inside {num_frames} frames for seed {seed} "
                       f"after {max_attempts} layouts; use more frames or a larger size.")


def force_propagation_scene(seed: int = 0, *, size: tuple[int, int] = (64, 64), num_frames: int = 14,
                            fps: float = DEFAULT_FPS, antialias: int = 2,
                            max_attempts: int = 64, world: World | str = FULL_WORLD) -> SyntheticScene:
    """Probe: a driven disc enters, hits free disc ``A`` (object 0), which then hits free disc
    ``B`` (object 1); ``B`` is touched by ``A`` before the driver ever reaches it. Retried
    deterministically over layouts until that chain happens with ``B``'s contact at least
    2 frames before the end."""
    world = get_world(world)
    height, width = size
    m = min(height, width)
    for attempt in range(max_attempts):
        rng = np.random.default_rng([int(seed), attempt, 2])
        side = _SIDES[int(rng.integers(4))]
        length, across = _axes(side, height, width)
        rd, ra, rb = (float(rng.uniform(lo, hi) * m) for lo, hi in ((0.09, 0.12), (0.07, 0.09), (0.07, 0.09)))
        cross = float(rng.uniform(0.4, 0.6) * across)
        a_along = float(rng.uniform(0.25, 0.32) * length)
        b_along = a_along + ra + rb + float(rng.uniform(0.08, 0.2) * length)
        a_cross = cross + float(rng.uniform(-0.15, 0.15) * (rd + ra))
        b_cross = a_cross + float(rng.uniform(-0.15, 0.15) * (ra + rb))
        start = -rd - 0.5
        speed = float(rng.uniform(0.07, 0.1) * length)
        end_t = float(num_frames - 1)
        path = [(0.0, *_place(side, start, cross, height, width)),
                (end_t, *_place(side, start + speed * end_t, cross, height, width))]
        objects = [SceneObject("disc", position=_place(side, a_along, a_cross, height, width), radius=ra, name="A"),
                   SceneObject("disc", position=_place(side, b_along, b_cross, height, width), radius=rb, name="B"),
                   SceneObject("disc", radius=rd, path=path, name="driver")]
        bg = world.background(rng)
        scene = simulate(objects, size=size, num_frames=num_frames, fps=fps,
                         restitution=float(rng.uniform(0.85, 1.0)), friction=float(rng.uniform(0.0, 0.03)),
                         background=bg, antialias=antialias, seed=seed, preset="force_propagation",
                         colour_rng=rng, world=world)
        da, ab, db = scene.first_contact(0, 2), scene.first_contact(0, 1), scene.first_contact(1, 2)
        if (da is not None and ab is not None and da < ab <= num_frames - 3
                and (db is None or db > ab)):
            scene.meta.update(attempt=attempt, driver_side=side)
            return scene
    raise RuntimeError(f"no force-propagation layout for seed {seed} in {max_attempts} attempts "
                       f"at size {size} with {num_frames} frames.")


_COUNTERFACTUAL_MODES = ("redirect", "static", "remove")


def counterfactual_pair(seed: int = 0, *, mode: str = "redirect", size: tuple[int, int] = (64, 64),
                        num_frames: int = 14, fps: float = DEFAULT_FPS, antialias: int = 2,
                        max_attempts: int = 64, world: World | str = FULL_WORLD) -> tuple[SyntheticScene, SyntheticScene]:
    """Probe: two scenes with the same frame 0 and different driving motions.

    The first is :func:`default_scene`-like (the driver, starting outside the frame, hits the
    free disc). The second keeps everything else and changes the drive: ``"redirect"`` sends
    the driver from the same start in a direction that misses the disc; ``"static"`` keeps it
    at its (off-screen) start; ``"remove"`` deletes it (the second scene then has one object
    fewer). Frame 0 is identical because the driver is off-screen at ``t = 0``."""
    if mode not in _COUNTERFACTUAL_MODES:
        raise ValueError(f"mode must be one of {_COUNTERFACTUAL_MODES}, got {mode!r}.")
    world = get_world(world)
    height, width = size
    for attempt in range(max_attempts):
        rng = np.random.default_rng([int(seed), attempt, 3])
        side, rd, ra, path, target, speed = _push_layout(rng, height, width, num_frames)
        restitution = float(rng.uniform(0.6, 0.9))
        friction = float(rng.uniform(0.02, 0.08))
        bg = world.background(rng)
        colours = pick_colours([SceneObject(), SceneObject(path=[(0, 0, 0)])], bg, rng, world.object_colours)
        free = SceneObject("disc", position=target, radius=ra, name="disc", colour=tuple(colours[0]))
        start = path[0][1:]
        common = dict(size=size, num_frames=num_frames, fps=fps, restitution=restitution, friction=friction,
                      background=bg, antialias=antialias, seed=seed, world=world)

        def driver(p):
            return SceneObject("disc", radius=rd, path=p, name="driver", colour=tuple(colours[1]))

        factual = simulate([free, driver(path)], preset="counterfactual_factual", **common)
        if mode == "redirect":
            # turn the direction of motion by 50-70 degrees, away from the disc's side
            (t0, x0, y0), (t1, x1, y1) = path
            ux, uy = x1 - x0, y1 - y0
            tx, ty = target[0] - x0, target[1] - y0
            away = -1.0 if ux * ty - uy * tx > 0 else 1.0
            ang = away * math.radians(float(rng.uniform(50, 70)))
            rx, ry = ux * math.cos(ang) - uy * math.sin(ang), ux * math.sin(ang) + uy * math.cos(ang)
            other = [free, driver([(t0, x0, y0), (t1, x0 + rx, y0 + ry)])]
        elif mode == "static":
            other = [free, driver([(0.0, *start)])]
        else:
            other = [free]
        counter = simulate(other, preset=f"counterfactual_{mode}", **common)
        hit = factual.first_contact(0, 1)
        moved = float((factual.tracks[0, -1] - factual.tracks[0, 0]).norm())
        still = float((counter.tracks[0] - counter.tracks[0, :1]).norm(dim=-1).max())
        if hit is not None and hit <= num_frames - 4 and moved >= 3.0 and still < 1e-6:
            for s in (factual, counter):
                s.meta.update(attempt=attempt, driver_side=side, counterfactual=mode)
            return factual, counter
    raise RuntimeError(f"no counterfactual pair for seed {seed} (mode {mode!r}) in {max_attempts} attempts.")


def dataset_scene_seed(seed: int, index: int) -> int:
    """The scene seed of item ``index`` of a synthetic training dataset seeded with ``seed``
    (``training.data.SyntheticClips``); :mod:`interdyn.apps.probes` uses it to keep probe scenes held out."""
    return int(np.random.SeedSequence([int(seed), int(index), 0x5C]).generate_state(1)[0] >> 1)


#: Names of :func:`scene_for_preset` (the ComfyUI Synthetic Scene node lists them).
SCENE_PRESETS = ("push", "random", "chain", "hit", "miss")


def scene_for_preset(preset: str, seed: int, *, size: tuple[int, int] = (64, 64), num_frames: int = 8,
                     fps: float = DEFAULT_FPS, world: World | str = FULL_WORLD) -> SyntheticScene:
    """One scene by preset name: ``push`` (:func:`default_scene`), ``random`` (:func:`random_scene`),
    ``chain`` (:func:`force_propagation_scene`), or ``hit`` / ``miss``, the two scenes of
    :func:`counterfactual_pair` in ``redirect`` mode (same frame 0 for the same seed; the driver hits
    the disc, or is turned away and misses it). ``world``: see :class:`World`."""
    common = dict(size=size, num_frames=num_frames, fps=fps, world=world)
    if preset == "push":
        return default_scene(seed, **common)
    if preset == "random":
        return random_scene(seed, **common)
    if preset == "chain":
        return force_propagation_scene(seed, **common)
    if preset in ("hit", "miss"):
        pair = counterfactual_pair(seed, mode="redirect", **common)
        return pair[preset == "miss"]
    raise ValueError(f"preset must be one of {SCENE_PRESETS}, got {preset!r}.")


#: The training mix of the built-in toy model, by ``index % 10``: six random scenes (the probes'
#: distribution), two chains (driver -> A -> B) and one counterfactual pair (the hitting and the
#: missing drive of the same first frame), so that most clips hold a collision and some hold none.
TRAINING_MIX = ("random",) * 6 + ("chain",) * 2 + ("hit", "miss")


def mixed_scene(seed: int, index: int, *, size: tuple[int, int] = (64, 64), num_frames: int = 8,
                fps: float = DEFAULT_FPS, world: World | str = FULL_WORLD) -> SyntheticScene:
    """Scene ``seed`` of the preset ``TRAINING_MIX[index % 10]`` (see :func:`scene_for_preset`)."""
    return scene_for_preset(TRAINING_MIX[int(index) % len(TRAINING_MIX)], seed, size=size,
                            num_frames=num_frames, fps=fps, world=world)


def _overlaps(a: SceneObject, b: SceneObject, margin: float) -> bool:
    ea, eb = a.extent(), b.extent()
    (ax, ay), (bx, by) = a.position, b.position
    if a.kind == "disc" and b.kind == "disc":
        return math.hypot(ax - bx, ay - by) < a.radius + b.radius + margin
    return abs(ax - bx) < ea[0] + eb[0] + margin and abs(ay - by) < ea[1] + eb[1] + margin


def _random_free_objects(rng: np.random.Generator, n_free: int, kinds: Sequence[str],
                         size: tuple[int, int]) -> list[SceneObject]:
    """Up to ``n_free`` free objects of :func:`random_scene`, mostly at rest, not overlapping, a fifth of the frame
    kept clear along each wall (200 tries at most)."""
    height, width = size
    m = min(height, width)
    free: list[SceneObject] = []
    tries = 0
    while len(free) < n_free and tries < 200:
        tries += 1
        kind = kinds[int(rng.integers(len(kinds)))]
        o = SceneObject(kind)
        if kind == "disc":
            o.radius = float(rng.uniform(0.07, 0.12) * m)
        else:
            o.half_size = (float(rng.uniform(0.06, 0.11) * m), float(rng.uniform(0.06, 0.11) * m))
            o.angle = float(rng.uniform(0, math.pi / 2)) if rng.random() < 0.5 else 0.0
        ex, ey = o.extent()
        # keep a fifth of the frame free along each wall, for drivers to enter
        lo_x, hi_x = ex + 0.2 * width, width - ex - 0.2 * width
        lo_y, hi_y = ey + 0.2 * height, height - ey - 0.2 * height
        if lo_x >= hi_x or lo_y >= hi_y:
            continue
        o.position = (float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y)))
        if rng.random() < 0.3:
            o.velocity = tuple(float(v) for v in rng.uniform(-0.04, 0.04, 2) * m)
        if any(_overlaps(o, other, 1.0) for other in free):
            continue
        free.append(o)
    return free


def _random_driver(rng: np.random.Generator, free: list[SceneObject], kinds: Sequence[str], size: tuple[int, int],
                   num_frames: int) -> SceneObject:
    """A driven object of :func:`random_scene`: it enters from a side, aimed at one of the ``free`` objects, on a
    2-3 waypoint path (it may keep going, turn or retreat after the hit)."""
    height, width = size
    m = min(height, width)
    target = free[int(rng.integers(len(free)))]
    side = _SIDES[int(rng.integers(4))]
    kind = kinds[int(rng.integers(len(kinds)))]
    o = SceneObject(kind)
    if kind == "disc":
        o.radius = float(rng.uniform(0.1, 0.15) * m)
    else:
        o.half_size = (float(rng.uniform(0.08, 0.13) * m), float(rng.uniform(0.08, 0.13) * m))
    e_along = o.extent()[0] if side in ("left", "right") else o.extent()[1]
    start_along = float(rng.uniform(-e_along - 1.0, 0.2 * e_along))
    tx, ty = target.position
    t_along = tx if side == "left" else width - tx if side == "right" else ty if side == "top" else height - ty
    t_cross = ty if side in ("left", "right") else tx
    cross = t_cross + float(rng.uniform(-0.6, 0.6)) * (e_along + max(target.extent()))
    x0, y0 = _place(side, start_along, cross, height, width)
    t_hit = float(rng.uniform(0.25, 0.6) * (num_frames - 1))
    x1, y1 = _place(side, t_along, cross + float(rng.uniform(-0.2, 0.2)) * m, height, width)
    waypoints = [(0.0, x0, y0), (t_hit, x1, y1)]
    if rng.random() < 0.6 and t_hit < num_frames - 1:  # then keep going, turn, or retreat
        a = float(rng.uniform(-0.6, 0.6) * m)
        b = float(rng.uniform(-0.3, 0.3) * m)
        waypoints.append((float(num_frames - 1), x1 + (x1 - x0) * 0.5 + a, y1 + (y1 - y0) * 0.5 + b))
    o.path = waypoints
    return o


def random_scene(seed: int, *, size: tuple[int, int] = (64, 64), num_frames: int = 14,
                 num_free: tuple[int, int] | None = None, num_driven: tuple[int, int] = (1, 2),
                 kinds: Sequence[str] | None = None, fps: float = DEFAULT_FPS, antialias: int = 2,
                 textured: bool | None = None, require_contact: bool = True,
                 max_attempts: int = 64, world: World | str = FULL_WORLD) -> SyntheticScene:
    """A random scene: ``num_free`` (inclusive range) free discs/boxes, mostly at rest, some
    drifting, and ``num_driven`` driven objects that enter from the sides, each aimed at a free
    object, moving on a 2-3 waypoint path (they may stop or turn). Restitution, friction,
    background (plain or lightly textured unless ``textured`` is given) vary with ``seed``.
    With ``require_contact`` the layout is redrawn deterministically until a driven object
    touches a free one within the clip. ``num_free``, ``kinds`` and ``textured`` default to ``world``'s."""
    world = get_world(world)
    num_free = world.num_free if num_free is None else num_free
    kinds = world.kinds if kinds is None else kinds
    textured = world.textured if textured is None else textured
    for k in kinds:
        if k not in OBJECT_KINDS:
            raise ValueError(f"kinds must be from {OBJECT_KINDS}, got {k!r}.")
    for attempt in range(max_attempts):
        rng = np.random.default_rng([int(seed), attempt, 4])
        n_free = int(rng.integers(num_free[0], num_free[1] + 1))
        n_driven = int(rng.integers(num_driven[0], num_driven[1] + 1))
        free = _random_free_objects(rng, n_free, kinds, size)
        if len(free) < max(1, num_free[0]):
            continue
        driven = [_random_driver(rng, free, kinds, size, num_frames) for _ in range(n_driven)]
        starts = [SceneObject(d.kind, position=tuple(d.path[0][1:]), radius=d.radius, half_size=d.half_size,
                              angle=d.angle) for d in driven]
        if any(_overlaps(d, f, 0.5) for d in starts for f in free):
            continue  # a driver already overlapping a free object at frame 0
        objects = free + driven
        bg = world.background(rng)
        use_texture = bool(rng.random() < 0.5) if textured is None else bool(textured)
        scene = simulate(objects, size=size, num_frames=num_frames, fps=fps,
                         restitution=float(rng.uniform(0.5, 1.0)), friction=float(rng.uniform(0.0, 0.1)),
                         background=bg, texture=float(rng.uniform(0.03, 0.08)) if use_texture else 0.0,
                         antialias=antialias, seed=seed, preset="random", colour_rng=rng, world=world)
        n = len(free)
        touched = any(i < n <= j for _, i, j in scene.meta["contacts"])
        if touched or not require_contact:
            scene.meta.update(attempt=attempt)
            return scene
    raise RuntimeError(f"no random scene with a driven-free contact for seed {seed} in {max_attempts} attempts.")
