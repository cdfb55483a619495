"""InterDyn Synthetic Scene: a scene of the built-in collision world -> first frame, driver masks, ground truth."""
from __future__ import annotations

from ..interdyn.builtin import toy_world
from ..interdyn.synthetic import SCENE_PRESETS, WORLDS, scene_for_preset
from ..interdyn.validation import InputError, check_count, check_seed
from . import convert


class InterDynSyntheticScene:
    DESCRIPTION = ("A scene of InterDyn's synthetic collision world (the one the built-in toy-physics model was "
                   "trained on), simulated with exact 2D physics: the first frame to animate, the masks of the "
                   "driven object(s) (the 'hand'), and the simulated video as ground truth. Seeds from 1000000 "
                   "were never seen in training. Needs no files.")
    CATEGORY = "InterDyn"
    FUNCTION = "make"
    RETURN_TYPES = ("IMAGE", "MASK", "IMAGE", "FLOAT")
    RETURN_NAMES = ("first_frame", "driver_masks", "ground_truth", "fps")
    OUTPUT_TOOLTIPS = ("Frame 0 of the scene [1, H, W, 3]: the image to animate.",
                       "The driven objects' masks, one per frame [frames, H, W]: the driving motion.",
                       "The simulated video [frames, H, W, 3], to compare with the generated one.",
                       "The scene's frame rate (one simulated frame per video frame).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "preset": (list(SCENE_PRESETS), {
                "default": "push",
                "tooltip": "push: a driven disc enters and pushes a free disc. random: 1-3 free discs/boxes and "
                           "1-2 drivers (the training distribution). chain: the driver hits disc A, which hits disc "
                           "B. hit / miss: a counterfactual pair, the same first frame for the same seed; the "
                           "driver hits the disc, or is turned away and misses it."}),
            "seed": ("INT", {"default": 1000000, "min": 0, "max": 2**31 - 1, "control_after_generate": True,
                             "tooltip": "Layout, colours and physics parameters. Seeds >= 1000000 are held out from "
                                        "the built-in model's training."}),
            "width": ("INT", {"default": 64, "min": 32, "max": 1024, "step": 32,
                              "tooltip": "Width in pixels (the built-in model works at 64)."}),
            "height": ("INT", {"default": 64, "min": 32, "max": 1024, "step": 32,
                               "tooltip": "Height in pixels (the built-in model works at 64)."}),
            "frames": ("INT", {"default": 8, "min": 2, "max": 128,
                               "tooltip": "Number of frames (the built-in model works with 8)."}),
        }, "optional": {
            "world": (list(WORLDS), {
                "default": toy_world(),
                "tooltip": "toy: the built-in model's world (one background, four colours, discs, 1-2 free "
                           "objects); full: every background, colour and shape of the collision world. Default: "
                           "the world the shipped built-in model was trained on."}),
        }}

    def make(self, preset, seed, width, height, frames, world=None):
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
