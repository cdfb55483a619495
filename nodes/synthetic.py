"""InterDyn Synthetic Scene: a scene of the built-in collision world -> first frame, driver masks, ground truth."""
from __future__ import annotations

from ..interdyn.core.builtin import toy_world
from ..interdyn.data.synthetic import scene_for_preset
from ..interdyn.support.validation import InputError, check_count, check_seed
from . import convert


def make(preset, seed, width, height, frames, world=None):
    """InterDyn Synthetic Scene: -> (first_frame, driver_masks, ground_truth, fps).

    The widgets' ranges and choices are the declaration's (ComfyUI refuses a value outside them before the node
    runs, as for every node); the checks here are the scene's own rules, in the widgets' names, and ``world`` is
    checked by the library (:func:`interdyn.data.synthetic.get_world`)."""
    check_count(frames, "frames", minimum=2)
    check_seed(seed, "seed")
    for name, v in (("width", width), ("height", height)):
        if check_count(v, name) < 32:
            raise InputError(f"{name} must be at least 32 pixels for a scene with room for collisions, got {v}")
    world = toy_world() if world is None else world
    scene = scene_for_preset(preset, seed, size=(height, width), num_frames=frames, world=world)
    return (convert.frames_to_image(scene.frames[:1]), scene.hand_mask.float(),
            convert.frames_to_image(scene.frames), float(scene.meta["fps"]))
