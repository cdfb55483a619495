"""Writing a scene in the released InterDyn examples' folder layout."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ...support.safe_output import write_text_atomic
from ..video_io import write_video
from .objects import SyntheticScene


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
