"""Generating each method's videos (InterDyn, no control, copy the first frame, the CosHand baselines, the
training-free drag alone and with InterDyn)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import torch

from interdyn.core import loading
from interdyn.core.dual_clock import DualClock
from interdyn.core.sampling import generate_video
from interdyn.data.cut_and_drag import composite_reference

from interdyn.support.safe_output import write_text_atomic

from .. import baselines
from .cache import json_default
from .data import driver_masks
from .settings import BRANCH_METHODS, DUAL_CLOCK_METHODS, METHODS, SAMPLED_METHODS, GenerationSettings


def drag_reference(sample: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference a training-free drag gets for an evaluation clip, as the probes give it for a scene
    (:func:`interdyn.apps.probes.drive_reference`): the first frame with the driver (the hand, the driven objects)
    pasted under its masks from the clip's own frames (:func:`interdyn.data.cut_and_drag.composite_reference`; a hand
    enters the picture, so it cannot be cut from the first frame). It carries the drive, never the reaction."""
    masks = driver_masks(sample["meta"])
    if masks is None or not bool((masks > 0.5).any()):
        raise ValueError(f"clip {sample['meta'].get('source')!r} has no driver mask (mask_hand): the dual-clock "
                         "methods drag the driver along it")
    frames = sample["frames"].float()
    return composite_reference(frames[0], frames, masks)


class MethodGenerators:
    """Produces one method's video for one clip; loads models on first use."""

    def __init__(self, svd, interdyn, coshand, settings: GenerationSettings, device, precision, decode_chunk_size,
                 on_step: Callable[[int, int], None] | None = None):
        self.svd, self.interdyn, self.coshand = svd, interdyn, coshand
        self.settings, self.device, self.precision = settings, device, precision
        self.decode_chunk_size, self.on_step = decode_chunk_size, on_step
        self._backbone = self._branch = None

    def backbone(self):
        if self._backbone is None:
            self._backbone = self.svd if not isinstance(self.svd, (str, os.PathLike)) else \
                loading.load_svd_backbone(self.svd, dtype=self.precision, device=self.device)
        return self._backbone

    def branch(self):
        if self._branch is None:
            backbone = self.backbone()
            self._branch = self.interdyn if not isinstance(self.interdyn, (str, os.PathLike)) else \
                loading.load_control_branch(self.interdyn, dtype=backbone.dtype, device=self.device, backbone=backbone)
        return self._branch

    def __call__(self, method: str, sample: dict) -> torch.Tensor:
        frames, control = sample["frames"], sample["control"]
        s = self.settings
        if method == "copy_first_frame":
            return baselines.copy_first_frame(frames)
        if method == "coshand_independent":
            return baselines.coshand_independent(self.coshand, frames[0], control, seed=s.seed)
        if method == "coshand_autoregressive":
            return baselines.coshand_autoregressive(self.coshand, frames[0], control, seed=s.seed)
        if method in SAMPLED_METHODS:
            callback = None
            if self.on_step is not None:
                callback = lambda info: self.on_step(info.step + 1, info.total)  # noqa: E731
            dual_clock = None
            if method in DUAL_CLOCK_METHODS:  # before the models load: a clip without a driver mask is refused first
                dual_clock = DualClock(*drag_reference(sample), s.sigma_weak, s.sigma_strong)
            backbone = self.backbone()
            branch = self.branch() if method in BRANCH_METHODS else None
            video = generate_video(backbone, frames[:1], control[None] if branch is not None else None, branch,
                                   control_strength=1.0 if branch is not None else 0.0, generator=s.seed,
                                   decode_chunk_size=self.decode_chunk_size, callback=callback, dual_clock=dual_clock,
                                   **s.sampler_kwargs())
            return video[0].float().cpu()
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def check_method_settings(folder: Path, wanted: dict) -> None:
    """Write ``folder/settings.json`` or check that cached videos were made with the same settings."""
    path = folder / "settings.json"
    if path.is_file():
        found = json.loads(path.read_text())
        diff = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
        if diff:
            detail = ", ".join(f"{k}: cached {a!r} vs now {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"{folder} holds videos generated with other settings ({detail}); use another --out "
                             "or delete that folder to regenerate")
        return
    write_text_atomic(path, json.dumps(wanted, indent=1, default=json_default) + "\n")
