"""The 2D rigid-body simulation of the synthetic world: exact disc/box contacts, impulses with restitution,
velocity damping, walls; driven objects are kinematic (see the package's docstring for the conventions)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .objects import SceneObject


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


def run_physics(objects: Sequence[SceneObject], height: int, width: int, num_frames: int,
                restitution: float, friction: float, substeps: int, iterations: int):
    """Simulate ``objects`` for ``num_frames`` frames (the package docstring's physics): positions and velocities
    ``[O, F, 2]`` and the sorted contacts ``(frame, i, j)``."""
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
