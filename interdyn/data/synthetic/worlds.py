"""Worlds of the synthetic scenes: the colours, object kinds and object counts a scene may use (``full`` and the
built-in model's simpler ``toy``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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

OBJECT_KINDS = ("disc", "box")


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
    kinds: tuple = OBJECT_KINDS
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
