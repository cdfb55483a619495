"""InterDyn Synthetic Scene: a scene of the built-in collision world -> first frame, driver masks, ground truth."""
from __future__ import annotations

from ..interdyn.core.builtin import toy_world
from ..interdyn.data.synthetic import WORLDS, scene_for_preset
from ..interdyn.support.validation import InputError, check_count, check_seed
from . import convert


def make(preset, seed, width, height, frames, world=None):
    """InterDyn Synthetic Scene: -> (first_frame, driver_masks, ground_truth, fps)."""
    check_count(frames, "frames", minimum=2)
    check_seed(seed, "seed")
    for name, v in (("width", width), ("height", height)):
        if check_count(v, name) < 32:
            raise InputError(f"{name} must be at least 32 pixels for a scene with room for collisions, got {v}")
        if v > 1024:
            raise InputError(f"{name} must be at most 1024 pixels (the widget's range), got {v}")
    if frames > 128:
        raise InputError(f"frames must be at most 128 (the widget's range), got {frames}")
    world = toy_world() if world is None else world
    if world not in WORLDS:
        raise InputError(f"world must be one of {', '.join(WORLDS)}, got {world!r}")
    scene = scene_for_preset(preset, seed, size=(height, width), num_frames=frames, world=world)
    return (convert.frames_to_image(scene.frames[:1]), scene.hand_mask.float(),
            convert.frames_to_image(scene.frames), float(scene.meta["fps"]))
