"""The one sample format every training dataset yields, its check and collate function, and the
key arithmetic shared by the datasets (:mod:`training.data.datasets`, :mod:`training.data.folder`,
the preparers).

A sample is a dict:

* ``frames``: ``[F, 3, H, W]`` float32 in [0, 1], the video clip (frame 0 is the conditioning image);
* ``control``: ``[F, 3, H, W]`` float32 in [0, 1], the control frames (e.g. the hand mask in white);
* ``meta``: dict with at least ``source`` (an id: folder name, ``synthetic:<seed>/<index>``),
  ``label`` (free text, may be empty) and ``fps`` (the clip's real frame rate after resampling);
  optionally ``masks`` (``{name: [F, H, W] bool}``, object masks when known),
  ``motion_bucket_id`` and anything else a dataset knows.

This module imports no dataset: the datasets import it (one direction, no import circle).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["make_sample", "check_sample", "collate_samples", "split_key", "item_rng"]


def make_sample(frames: torch.Tensor, control: torch.Tensor, *, source: str, fps: float, label: str = "",
                masks: dict[str, torch.Tensor] | None = None, **meta) -> dict:
    """Build (and check) a sample in the common format."""
    info = {"source": str(source), "label": str(label), "fps": float(fps), **meta}
    if masks is not None:
        info["masks"] = {str(k): v.to(torch.bool) for k, v in masks.items()}
    return check_sample({"frames": frames.float().contiguous(), "control": control.float().contiguous(), "meta": info})


def check_sample(sample: dict) -> dict:
    """Raise a ValueError saying what is wrong with a sample; return it unchanged otherwise."""
    frames, control, meta = sample.get("frames"), sample.get("control"), sample.get("meta")
    if not torch.is_tensor(frames) or frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"sample frames must be a [F, 3, H, W] tensor, got "
                         f"{tuple(frames.shape) if torch.is_tensor(frames) else type(frames).__name__}")
    if not torch.is_tensor(control) or control.shape != frames.shape:
        raise ValueError(f"sample control must have the frames' shape {tuple(frames.shape)}, got "
                         f"{tuple(control.shape) if torch.is_tensor(control) else type(control).__name__}")
    if not isinstance(meta, dict) or not {"source", "label", "fps"} <= set(meta):
        raise ValueError(f"sample meta must be a dict with source, label and fps, got {meta!r}")
    for name, masks in (meta.get("masks") or {}).items():
        if tuple(masks.shape) != (frames.shape[0], *frames.shape[2:]):
            raise ValueError(f"mask {name!r} has shape {tuple(masks.shape)}, expected "
                             f"{(frames.shape[0], *frames.shape[2:])}")
    return sample


def collate_samples(samples: list[dict]) -> dict:
    """Stack samples: ``frames``/``control`` ``[B, F, 3, H, W]``, ``meta`` a list of the samples' dicts."""
    if not samples:
        raise ValueError("cannot collate an empty batch")
    shapes = {tuple(s["frames"].shape) for s in samples}
    if len(shapes) > 1:
        raise ValueError(f"samples of one batch must share [F, 3, H, W]; got {sorted(shapes)}")
    return {"frames": torch.stack([s["frames"] for s in samples]),
            "control": torch.stack([s["control"] for s in samples]),
            "meta": [s["meta"] for s in samples]}


def split_key(key: int, num_items: int) -> tuple[int, int]:
    """Sampler key -> ``(item index, epoch)``."""
    if num_items < 1:
        raise ValueError("the dataset is empty")
    return int(key) % num_items, int(key) // num_items


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of an item's random choices in an epoch."""
    return np.random.default_rng([int(seed), int(epoch), int(index), 0x1D])
