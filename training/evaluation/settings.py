"""The evaluation's vocabulary: the methods, Table 1's metrics and columns, and the generation settings every
method's videos are made with (recorded beside them, so a rerun never mixes settings)."""
from __future__ import annotations

from dataclasses import dataclass


from interdyn.metrics.registry import COLUMNS
from interdyn.core.dual_clock import SVD_SIGMA_STRONG, SVD_SIGMA_WEAK
from interdyn.core.sampling import DEFAULTS

#: methods this runner can produce itself
METHODS = ("interdyn", "no_control", "copy_first_frame", "coshand_independent", "coshand_autoregressive",
           "dual_clock", "interdyn_dual_clock")
DEFAULT_METHODS = ("interdyn", "no_control", "copy_first_frame")
#: the training-free rows (Time-to-Move's dual-clock denoising; the probes' names): the drag alone on plain SVD, and
#: with the InterDyn branch
DUAL_CLOCK_METHODS = ("dual_clock", "interdyn_dual_clock")
#: the methods sampled with SVD, and those of them that need the control branch
SAMPLED_METHODS = ("interdyn", "no_control", *DUAL_CLOCK_METHODS)
BRANCH_METHODS = ("interdyn", "interdyn_dual_clock")
DISPLAY_NAMES = {
    "interdyn": "InterDyn",
    "no_control": "SVD (no control)",
    "copy_first_frame": "Copy first frame",
    "coshand_independent": "CosHand-Independent",
    "coshand_autoregressive": "CosHand-Autoregressive",
    "dual_clock": "Training-free drag (dual clock, no branch)",
    "interdyn_dual_clock": "InterDyn + dual clock",
}
#: Table 1's columns: (key in results, header, format), from the metric registry (interdyn.metrics.registry)
TABLE1_COLUMNS = tuple((c.key, c.header, c.fmt) for c in COLUMNS)
METRICS = tuple(c[0] for c in TABLE1_COLUMNS)
GENERATED_NAME = "generated"  # <dir>/<id>/generated.<ext>
CACHE_VERSION = 1


@dataclass(frozen=True)
class GenerationSettings:
    """How clips are read and videos generated; the paper's values by default.

    ``fps`` is the conditioning frame rate in diffusers' convention (the model gets ``fps - 1``);
    ``clip_fps`` the real frame rate the data clips are resampled to (6, as the official loader).
    Every clip is generated with the same ``seed``. ``sigma_weak`` / ``sigma_strong``: the two levels of the
    dual-clock methods (:mod:`interdyn.core.dual_clock`; the authors' SVD settings by default).
    """

    num_frames: int = DEFAULTS["num_frames"]
    height: int = DEFAULTS["height"]
    width: int = DEFAULTS["width"]
    num_steps: int = DEFAULTS["num_steps"]
    min_guidance: float = DEFAULTS["min_guidance"]
    max_guidance: float = DEFAULTS["max_guidance"]
    fps: float = DEFAULTS["fps"]
    motion_bucket_id: float = DEFAULTS["motion_bucket_id"]
    noise_aug_strength: float = DEFAULTS["noise_aug_strength"]
    seed: int = 42
    clip_fps: float = 6.0
    crop: str = "mask"
    sigma_weak: float = SVD_SIGMA_WEAK
    sigma_strong: float = SVD_SIGMA_STRONG

    def sampler_kwargs(self) -> dict:
        return dict(num_frames=self.num_frames, num_steps=self.num_steps, min_guidance=self.min_guidance,
                    max_guidance=self.max_guidance, fps=self.fps, motion_bucket_id=self.motion_bucket_id,
                    noise_aug_strength=self.noise_aug_strength)

    def for_method(self, method: str, extra: dict | None = None) -> dict:
        """What a method's cached videos depend on (compared on resume)."""
        data = dict(num_frames=self.num_frames, height=self.height, width=self.width, clip_fps=self.clip_fps,
                    crop=self.crop)
        if method in SAMPLED_METHODS:
            data.update(self.sampler_kwargs(), seed=self.seed)
        if method in DUAL_CLOCK_METHODS:
            data.update(sigma_weak=self.sigma_weak, sigma_strong=self.sigma_strong)
        elif method.startswith("coshand"):
            data.update(seed=self.seed)
        return {"method": method, **data, **(extra or {})}
