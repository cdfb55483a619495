"""What a synthetic scene is made of: :class:`SceneObject` (a disc or box, free or driven along a path) and the
rendered result, :class:`SyntheticScene`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch


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
