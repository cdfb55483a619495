"""``interdyn prepare synthetic``: scenes of the synthetic collision world in the folder layout.

Writes ``OUT/<preset>_<seed>/`` with ``video.mp4``, ``mask_hand.mp4`` (the driven objects), one
``mask_<object>.mp4`` per free object, ``control.mp4``, ``meta.json`` and ``label.txt`` (the preset), the layout
training's ``folder`` dataset and the evaluation runner read (:mod:`training.data.folder`). Nothing is
downloaded and no model is needed: this is how to try ``interdyn evaluate`` on a CPU. Scene seeds start at
``--seed`` (default 1 000 000: held out from the built-in toy model's training, see
:func:`interdyn.apps.probes.training_seeds`). Sharded over torchrun ranks like the other preparers.
"""
from __future__ import annotations

from pathlib import Path

from interdyn.data.synthetic import SCENE_PRESETS, get_world, scene_for_preset
from interdyn.support.validation import check_count, check_seed

from .clip_writer import PreparedRun, write_clip_folder

__all__ = ["prepare_synthetic", "prepare_synthetic_from_args"]


def prepare_synthetic(out_dir, *, num_clips: int, seed: int = 1_000_000, preset: str = "push", world: str = "toy",
                      num_frames: int = 8, height: int = 64, width: int = 64, fps: float = 6.0,
                      overwrite: bool = False) -> dict:
    """Write ``num_clips`` scenes ``scene_for_preset(preset, seed + i)`` of ``world``; returns the summary."""
    check_count(num_clips, "--num-clips")
    check_count(num_frames, "--num-frames", minimum=2)
    check_count(height, "--height")
    check_count(width, "--width")
    check_seed(seed, "--seed")
    if preset not in SCENE_PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(SCENE_PRESETS)}, got {preset!r}")
    world = get_world(world).name
    if not fps > 0:
        raise ValueError(f"--fps must be a positive number, got {fps}")
    seeds = [seed + i for i in range(num_clips)]
    with PreparedRun(out_dir, "synthetic", order=[f"{preset}_{s}" for s in seeds]) as run:
        for s in run.shard(seeds):
            folder = Path(out_dir) / f"{preset}_{s}"
            if (folder / "meta.json").is_file() and not overwrite:
                run.summary.keep()
                continue
            scene = scene_for_preset(preset, s, size=(height, width), num_frames=num_frames, fps=fps, world=world)
            free = {scene.names[k]: scene.masks[k] for k in range(len(scene.names)) if not bool(scene.driven[k])}
            meta = {"source": f"interdyn.synthetic:{world}/{preset}/{s}", "label": preset, "world": world,
                    "seed": s, "preset": preset}
            write_clip_folder(folder, scene.frames, scene.meta["fps"], scene.hand_mask.bool(), free, meta,
                              control=scene.control)
            run.summary.keep()
        return run.report()


def prepare_synthetic_from_args(args) -> dict:
    summary = prepare_synthetic(args.out, num_clips=args.num_clips, seed=args.seed, preset=args.preset,
                                world=args.world, num_frames=args.num_frames, height=args.height, width=args.width,
                                fps=args.fps, overwrite=args.overwrite)
    print(f"synthetic: {summary.get('kept', 0)} clips in {args.out}")
    return summary
