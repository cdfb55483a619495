"""Painting the simulated states into frames: backgrounds, supersampled objects, visible-pixel masks."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .objects import SceneObject


def render_background(height: int, width: int, colour, texture: float, seed: int) -> np.ndarray:
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


def render_objects(objects: Sequence[SceneObject], colours: np.ndarray, pos: np.ndarray, height: int, width: int,
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
