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
    ``control`` paints the driven objects' masks in ``interdyn.control.CONTROL_PALETTE``
    colours on black (so one driven object is white), as
    :func:`interdyn.control.masks_to_control` does at inference time.

Entry points: :func:`simulate` (any objects you describe with :class:`SceneObject`),
:func:`default_scene` (the demo: a driven disc enters and pushes a free disc),
:func:`random_scene`, :func:`force_propagation_scene`, :func:`counterfactual_pair`, and
:func:`write_scene_folder` (the ``video.mp4`` / ``mask_hand.mp4`` / ``mask_<object>.mp4``
layout of the released InterDyn examples, plus ``control``, ``tracks.json``, ``meta.json``).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .control import CONTROL_PALETTE, masks_to_control
from .safe_output import write_text_atomic
from .video_io import write_video

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

#: Frame rate written with the scenes. The official loader needs a multiple of 6 (it
#: resamples to 6 fps); one synthetic frame is one model frame.
DEFAULT_FPS = 6.0


def _rgb(*values: int) -> tuple[float, float, float]:
    return tuple(v / 255.0 for v in values)  # 8-bit levels: survive uint8 round trips


#: Colours of free objects (8-bit levels; pairwise far apart).
OBJECT_COLOURS = (
    _rgb(220, 50, 47),  # red
    _rgb(38, 100, 220),  # blue
    _rgb(40, 170, 70),  # green
    _rgb(240, 200, 40),  # yellow
    _rgb(150, 70, 190),  # purple
    _rgb(245, 130, 30),  # orange
    _rgb(20, 170, 170),  # teal
    _rgb(235, 110, 180),  # pink
)
#: Colour of the (first) driven object in the RGB video: a skin tone, like a hand.
DRIVEN_COLOUR = _rgb(225, 172, 135)
#: Plain background colours the generators choose from.
BACKGROUND_COLOURS = (_rgb(40, 42, 50), _rgb(90, 95, 100), _rgb(200, 200, 190), _rgb(60, 75, 65))

_KINDS = ("disc", "box")


@dataclass(frozen=True)
class World:
    """What the scene generators may vary: the backgrounds, the free objects' colours, the shapes, the
    background texture and how many free objects a random scene holds.

    ``full`` is the whole world (the Synthetic Scene node, the evaluation examples); ``toy`` is the
    simplified world the built-in toy model is trained and probed on: one plain background, four
    well-separated colours, discs only, one or two free objects. The scenes still contain every
    situation the probes measure (pushes, chains, hit/miss pairs); only their appearance varies less,
    which is what lets a tiny model learn them on a CPU (``training/toy/README.md``)."""

    name: str
    backgrounds: tuple
    object_colours: tuple
    kinds: tuple = _KINDS
    textured: bool | None = None  # None: half of the random scenes are textured
    num_free: tuple[int, int] = (1, 3)

    def background(self, rng: np.random.Generator):
        """One background colour, drawn from ``rng`` (one draw whatever the number of backgrounds)."""
        return self.backgrounds[int(rng.integers(len(self.backgrounds)))]


FULL_WORLD = World("full", BACKGROUND_COLOURS, OBJECT_COLOURS)
TOY_WORLD = World("toy", BACKGROUND_COLOURS[:1], OBJECT_COLOURS[:4], kinds=("disc",), textured=False, num_free=(1, 2))
#: Worlds by name (``--world`` options, the ``world`` field of a model package's recipe).
WORLDS = {w.name: w for w in (FULL_WORLD, TOY_WORLD)}


def get_world(world: "World | str") -> World:
    """A :class:`World` or its name (``"full"``, ``"toy"``)."""
    if isinstance(world, World):
        return world
    if world not in WORLDS:
        raise ValueError(f"world must be one of {sorted(WORLDS)}, got {world!r}.")
    return WORLDS[world]
_NAME_RE = re.compile(r"^[A-Za-z0-9_\- ]+$")


# --------------------------------------------------------------------------- description


@dataclass
class SceneObject:
    """One object of a scene.

    kind: ``"disc"`` (uses ``radius``) or ``"box"`` (uses ``half_size`` = half width,
        half height, and ``angle`` in radians, fixed over time).
    position: ``(x, y)`` centre in pixels at frame 0 (free objects; a driven object starts
        where its path says).
    velocity: ``(vx, vy)`` in pixels per frame at frame 0 (free objects only).
    path: waypoints ``[(t, x, y), ...]`` with ``t`` in frames (increasing); given =
        the object is driven.
    colour: RGB in [0, 1] in the video; ``None`` picks one.
    mass: ``None`` = area (density 1). Ignored for driven objects (infinite).
    name: used for ``mask_<name>`` files; ``None`` = ``<kind><index>``.
    """

    kind: str = "disc"
    position: tuple[float, float] = (0.0, 0.0)
    velocity: tuple[float, float] = (0.0, 0.0)
    radius: float = 5.0
    half_size: tuple[float, float] = (5.0, 5.0)
    angle: float = 0.0
    path: Sequence[tuple[float, float, float]] | None = None
    colour: tuple[float, float, float] | None = None
    mass: float | None = None
    name: str | None = None

    @property
    def driven(self) -> bool:
        return self.path is not None

    def extent(self) -> tuple[float, float]:
        """Half extents of the axis-aligned bounding box (pixels)."""
        if self.kind == "disc":
            return float(self.radius), float(self.radius)
        c, s = abs(math.cos(self.angle)), abs(math.sin(self.angle))
        hw, hh = self.half_size
        return c * hw + s * hh, s * hw + c * hh

    def area(self) -> float:
        if self.kind == "disc":
            return math.pi * self.radius**2
        return 4.0 * self.half_size[0] * self.half_size[1]


@dataclass
class SyntheticScene:
    """A simulated, rendered clip. ``O`` objects (in :attr:`meta` ``["objects"]`` order),
    ``F`` frames of ``H x W`` pixels. Tensors are on the CPU.

    frames: ``[F, 3, H, W]`` float32 in [0, 1]
    masks: ``[O, F, H, W]`` bool, visible pixels of each object
    driven: ``[O]`` bool
    tracks: ``[O, F, 2]`` float32 centre ``(x, y)`` in pixels
    velocities: ``[O, F, 2]`` float32 pixels per frame
    control: ``[F, 3, H, W]`` float32 in [0, 1], driven objects only, on black
    meta: seed, fps, size, object kinds/sizes/colours/names, physics parameters,
        ``contacts`` (``[frame, i, j]``: objects ``i`` and ``j`` touched during the interval
        ending at ``frame``), ``preset``.
    """

    frames: torch.Tensor
    masks: torch.Tensor
    driven: torch.Tensor
    tracks: torch.Tensor
    velocities: torch.Tensor
    control: torch.Tensor
    meta: dict = field(default_factory=dict)

    # dict-style access, so code written for a plain dict works too
    def __getitem__(self, key: str):
        return self.as_dict()[key]

    def keys(self):
        return self.as_dict().keys()

    def as_dict(self) -> dict:
        return {
            "frames": self.frames, "masks": self.masks, "driven": self.driven, "tracks": self.tracks,
            "velocities": self.velocities, "control": self.control, "meta": self.meta,
        }

    @property
    def names(self) -> list[str]:
        return [o["name"] for o in self.meta["objects"]]

    @property
    def hand_mask(self) -> torch.Tensor:
        """``[F, H, W]`` bool: union of the driven objects' masks (the "hand")."""
        if not bool(self.driven.any()):
            return torch.zeros(self.masks.shape[1:], dtype=torch.bool)
        return self.masks[self.driven].any(dim=0)

    def frames_uint8(self) -> np.ndarray:
        """``[F, H, W, 3]`` uint8 RGB."""
        return (self.frames.permute(0, 2, 3, 1).numpy() * 255.0).round().astype(np.uint8)

    def first_contact(self, i: int, j: int) -> int | None:
        """Frame at the end of the interval in which objects ``i`` and ``j`` first touched."""
        pair = (min(i, j), max(i, j))
        frames = [f for f, a, b in self.meta["contacts"] if (a, b) == pair]
        return min(frames) if frames else None


# --------------------------------------------------------------------------- physics


class _Body:
    __slots__ = ("kind", "x", "y", "vx", "vy", "r", "hw", "hh", "c", "s", "inv_m", "ex", "ey", "path")

    def __init__(self, o: SceneObject):
        self.kind = o.kind
        self.r = float(o.radius)
        self.hw, self.hh = (float(v) for v in o.half_size)
        self.c, self.s = math.cos(o.angle), math.sin(o.angle)
        self.ex, self.ey = o.extent()
        self.path = None if o.path is None else np.asarray(o.path, dtype=np.float64).reshape(-1, 3)
        if self.path is None:
            self.x, self.y = (float(v) for v in o.position)
            self.vx, self.vy = (float(v) for v in o.velocity)
            self.inv_m = 1.0 / float(o.mass if o.mass is not None else o.area())
        else:
            self.x, self.y = _path_position(self.path, 0.0)
            self.vx, self.vy = _path_velocity(self.path, 0.0)
            self.inv_m = 0.0


def _path_position(path: np.ndarray, t: float) -> tuple[float, float]:
    ts = path[:, 0]
    if t <= ts[0]:
        return float(path[0, 1]), float(path[0, 2])
    if t >= ts[-1]:
        return float(path[-1, 1]), float(path[-1, 2])
    k = int(np.searchsorted(ts, t, side="right")) - 1
    a = (t - ts[k]) / (ts[k + 1] - ts[k])
    return (float(path[k, 1] + a * (path[k + 1, 1] - path[k, 1])),
            float(path[k, 2] + a * (path[k + 1, 2] - path[k, 2])))


def _path_velocity(path: np.ndarray, t: float) -> tuple[float, float]:
    """Slope of the segment containing ``t`` (right-continuous); zero outside the path."""
    ts = path[:, 0]
    if t < ts[0] or t >= ts[-1]:
        return 0.0, 0.0
    k = int(np.searchsorted(ts, t, side="right")) - 1
    dt = ts[k + 1] - ts[k]
    return float((path[k + 1, 1] - path[k, 1]) / dt), float((path[k + 1, 2] - path[k, 2]) / dt)


def _disc_box(d: _Body, b: _Body):
    """Contact of disc ``d`` with box ``b``: (nx, ny, depth) with the normal from box to disc."""
    dx, dy = d.x - b.x, d.y - b.y
    px, py = b.c * dx + b.s * dy, -b.s * dx + b.c * dy  # disc centre in box coordinates
    qx, qy = min(max(px, -b.hw), b.hw), min(max(py, -b.hh), b.hh)
    if qx == px and qy == py:  # centre inside the box: leave through the nearest side
        if b.hw - abs(px) < b.hh - abs(py):
            lx, ly, depth = math.copysign(1.0, px), 0.0, d.r + b.hw - abs(px)
        else:
            lx, ly, depth = 0.0, math.copysign(1.0, py), d.r + b.hh - abs(py)
    else:
        ex, ey = px - qx, py - qy
        dist = math.hypot(ex, ey)
        if dist >= d.r:
            return None
        lx, ly, depth = ex / dist, ey / dist, d.r - dist
    return b.c * lx - b.s * ly, b.s * lx + b.c * ly, depth


def _box_box(a: _Body, b: _Body):
    """Separating-axis test; (nx, ny, depth) with the normal from ``a`` to ``b``."""
    dx, dy = b.x - a.x, b.y - a.y
    best = None
    for ux, uy in ((a.c, a.s), (-a.s, a.c), (b.c, b.s), (-b.s, b.c)):
        ra = a.hw * abs(a.c * ux + a.s * uy) + a.hh * abs(-a.s * ux + a.c * uy)
        rb = b.hw * abs(b.c * ux + b.s * uy) + b.hh * abs(-b.s * ux + b.c * uy)
        proj = dx * ux + dy * uy
        overlap = ra + rb - abs(proj)
        if overlap <= 0.0:
            return None
        if best is None or overlap < best[2]:
            sign = 1.0 if proj >= 0.0 else -1.0
            best = (sign * ux, sign * uy, overlap)
    return best


def _contact(a: _Body, b: _Body):
    """(nx, ny, depth) with the unit normal pointing from ``a`` to ``b``, or None."""
    if a.kind == "disc" and b.kind == "disc":
        dx, dy = b.x - a.x, b.y - a.y
        dist = math.hypot(dx, dy)
        depth = a.r + b.r - dist
        if depth <= 0.0:
            return None
        if dist < 1e-9:
            return 1.0, 0.0, depth
        return dx / dist, dy / dist, depth
    if a.kind == "disc":  # disc a, box b: normal box->disc = b->a, flip it
        c = _disc_box(a, b)
        return None if c is None else (-c[0], -c[1], c[2])
    if b.kind == "disc":
        return _disc_box(b, a)
    return _box_box(a, b)


def _resolve(a: _Body, b: _Body, n, restitution: float) -> None:
    nx, ny, depth = n
    w = a.inv_m + b.inv_m
    if w == 0.0:
        return
    # push apart (all of it on the free object when the other one is driven)
    ca, cb = depth * a.inv_m / w, depth * b.inv_m / w
    a.x -= nx * ca
    a.y -= ny * ca
    b.x += nx * cb
    b.y += ny * cb
    vn = (b.vx - a.vx) * nx + (b.vy - a.vy) * ny
    if vn < 0.0:  # approaching: exchange an impulse along the normal
        j = -(1.0 + restitution) * vn / w
        a.vx -= j * a.inv_m * nx
        a.vy -= j * a.inv_m * ny
        b.vx += j * b.inv_m * nx
        b.vy += j * b.inv_m * ny


def _walls(b: _Body, width: float, height: float, restitution: float) -> None:
    if b.x < b.ex:
        b.x = b.ex
        if b.vx < 0.0:
            b.vx = -restitution * b.vx
    elif b.x > width - b.ex:
        b.x = width - b.ex
        if b.vx > 0.0:
            b.vx = -restitution * b.vx
    if b.y < b.ey:
        b.y = b.ey
        if b.vy < 0.0:
            b.vy = -restitution * b.vy
    elif b.y > height - b.ey:
        b.y = height - b.ey
        if b.vy > 0.0:
            b.vy = -restitution * b.vy


def _run_physics(objects: Sequence[SceneObject], height: int, width: int, num_frames: int,
                 restitution: float, friction: float, substeps: int, iterations: int):
    bodies = [_Body(o) for o in objects]
    n = len(bodies)
    pos = np.zeros((n, num_frames, 2))
    vel = np.zeros((n, num_frames, 2))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if bodies[i].inv_m + bodies[j].inv_m > 0]
    free = [b for b in bodies if b.inv_m > 0]
    dt = 1.0 / substeps
    damp = (1.0 - friction) ** dt
    contacts: set[tuple[int, int, int]] = set()

    def record(f: int) -> None:
        for k, b in enumerate(bodies):
            pos[k, f] = b.x, b.y
            vel[k, f] = b.vx, b.vy

    record(0)
    for f in range(1, num_frames):
        for s in range(substeps):
            t0 = (f - 1) + s * dt
            t1 = t0 + dt
            for b in bodies:
                if b.path is None:
                    b.vx *= damp
                    b.vy *= damp
                    b.x += b.vx * dt
                    b.y += b.vy * dt
                else:
                    b.x, b.y = _path_position(b.path, t1)
                    b.vx, b.vy = _path_velocity(b.path, 0.5 * (t0 + t1))
            for _ in range(iterations):
                for i, j in pairs:
                    c = _contact(bodies[i], bodies[j])
                    if c is not None:
                        contacts.add((f, i, j))
                        _resolve(bodies[i], bodies[j], c, restitution)
                for b in free:
                    _walls(b, width, height, restitution)
        for b in bodies:  # a driven object's velocity at the frame is the slope after it
            if b.path is not None:
                b.vx, b.vy = _path_velocity(b.path, float(f))
        record(f)
    return pos, vel, sorted(contacts)


# --------------------------------------------------------------------------- rendering


def _background(height: int, width: int, colour, texture: float, seed: int) -> np.ndarray:
    """``[H, W, 3]`` float64: ``colour`` times a smooth luminance pattern of amplitude ``texture``."""
    bg = np.broadcast_to(np.asarray(colour, np.float64), (height, width, 3)).copy()
    if texture > 0:
        rng = np.random.default_rng([int(seed), 0x7E47])
        cell = 8.0
        gh, gw = int(math.ceil(height / cell)) + 2, int(math.ceil(width / cell)) + 2
        grid = rng.uniform(-1.0, 1.0, (gh, gw))
        ys = (np.arange(height) + 0.5) / cell
        xs = (np.arange(width) + 0.5) / cell
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
        g = (grid[y0][:, x0] * (1 - fy) * (1 - fx) + grid[y0 + 1][:, x0] * fy * (1 - fx)
             + grid[y0][:, x0 + 1] * (1 - fy) * fx + grid[y0 + 1][:, x0 + 1] * fy * fx)
        bg = bg * (1.0 + texture * g[..., None])
    return np.clip(bg, 0.0, 1.0)


def _render(objects: Sequence[SceneObject], colours: np.ndarray, pos: np.ndarray, height: int, width: int,
            background: np.ndarray, antialias: int):
    """Paint objects in order; return frames ``[F, H, W, 3]`` and visible masks ``[O, F, H, W]``."""
    ss = int(antialias)
    num_objects, num_frames = pos.shape[:2]
    xs = (np.arange(width * ss) + 0.5) / ss
    ys = (np.arange(height * ss) + 0.5) / ss
    label = np.full((num_frames, height * ss, width * ss), -1, dtype=np.int16)
    for k, o in enumerate(objects):
        cx = pos[k, :, 0][:, None, None]
        cy = pos[k, :, 1][:, None, None]
        dx = xs[None, None, :] - cx
        dy = ys[None, :, None] - cy
        if o.kind == "disc":
            inside = dx * dx + dy * dy <= float(o.radius) ** 2
        else:
            c, s = math.cos(o.angle), math.sin(o.angle)
            hw, hh = o.half_size
            inside = (np.abs(c * dx + s * dy) <= hw) & (np.abs(-s * dx + c * dy) <= hh)
        label[inside] = k
    # coverage of each pixel by each object's visible part, in samples (0..ss*ss)
    cover = np.empty((num_objects, num_frames, height, width), dtype=np.float32)
    for k in range(num_objects):
        cover[k] = (label == k).reshape(num_frames, height, ss, width, ss).sum(axis=(2, 4), dtype=np.int32)
    cover /= ss * ss
    masks = cover >= 0.5
    taken = np.zeros(masks.shape[1:], dtype=bool)  # a pixel split 50/50 goes to the object on top
    for k in range(num_objects - 1, -1, -1):
        masks[k] &= ~taken
        taken |= masks[k]
    frames = np.einsum("ofhw,oc->fhwc", cover, colours.astype(np.float32))
    frames += (1.0 - cover.sum(axis=0))[..., None] * background.astype(np.float32)[None]
    np.clip(frames, 0.0, 1.0, out=frames)
    return frames, masks


# --------------------------------------------------------------------------- simulate


def _check_objects(objects: Sequence[SceneObject], height: int, width: int) -> list[str]:
    if len(objects) == 0:
        raise ValueError("a scene needs at least one object.")
    names = []
    for i, o in enumerate(objects):
        if o.kind not in _KINDS:
            raise ValueError(f"objects[{i}].kind is {o.kind!r}; expected one of {_KINDS}.")
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


def _pick_colours(objects: Sequence[SceneObject], background, rng: np.random.Generator | None,
                  palette: Sequence = OBJECT_COLOURS) -> np.ndarray:
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
    colours = _pick_colours(objects, background, colour_rng, world.object_colours)
    pos, vel, contacts = _run_physics(objects, height, width, num_frames, restitution, friction,
                                      substeps, iterations)
    bg = _background(height, width, background, texture, seed)
    frames, masks = _render(objects, colours, pos, height, width, bg, antialias)

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


# --------------------------------------------------------------------------- generators


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
        colours = _pick_colours([SceneObject(), SceneObject(path=[(0, 0, 0)])], bg, rng, world.object_colours)
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
    (``training.data.SyntheticClips``); :mod:`interdyn.probes` uses it to keep probe scenes held out."""
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
    height, width = size
    m = min(height, width)
    for k in kinds:
        if k not in _KINDS:
            raise ValueError(f"kinds must be from {_KINDS}, got {k!r}.")
    for attempt in range(max_attempts):
        rng = np.random.default_rng([int(seed), attempt, 4])
        n_free = int(rng.integers(num_free[0], num_free[1] + 1))
        n_driven = int(rng.integers(num_driven[0], num_driven[1] + 1))
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
        if len(free) < max(1, num_free[0]):
            continue
        driven: list[SceneObject] = []
        for _ in range(n_driven):
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
            driven.append(o)
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


# --------------------------------------------------------------------------- writing


def write_scene_folder(scene: SyntheticScene, folder, *, ext: str = ".mp4", crf: int = 18) -> Path:
    """Write ``scene`` in the released InterDyn examples' layout and return the folder.

    ``video<ext>`` (lossy, ``crf``), ``mask_hand<ext>`` (union of the driven objects, white on
    black), ``mask_<name><ext>`` per free object and ``control<ext>`` (the colour control
    frames; equals ``mask_hand`` for one driven object) — all masks lossless —, plus
    ``tracks.json`` (per object: name, driven, ``positions`` and ``velocities`` per frame) and
    ``meta.json`` (``scene.meta``). Each file is written atomically.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fps = scene.meta["fps"]
    write_video(folder / f"video{ext}", scene.frames, fps, crf=crf, layout="FCHW")
    write_video(folder / f"mask_hand{ext}", scene.hand_mask.numpy(), fps, lossless=True)
    for k, entry in enumerate(scene.meta["objects"]):
        if not entry["driven"]:
            write_video(folder / f"mask_{entry['name']}{ext}", scene.masks[k].numpy(), fps, lossless=True)
    control_u8 = (scene.control * 255.0).round().to(torch.uint8)
    write_video(folder / f"control{ext}", control_u8, fps, lossless=True, layout="FCHW")
    tracks = {
        "fps": fps,
        "units": scene.meta["units"],
        "objects": [
            {"name": e["name"], "driven": e["driven"], "positions": scene.tracks[k].tolist(),
             "velocities": scene.velocities[k].tolist()}
            for k, e in enumerate(scene.meta["objects"])
        ],
    }
    write_text_atomic(folder / "tracks.json", json.dumps(tracks, indent=1))
    write_text_atomic(folder / "meta.json", json.dumps(scene.meta, indent=1))
    return folder
