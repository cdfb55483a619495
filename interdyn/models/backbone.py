"""The frozen SVD backbone as one object: UNet, temporal VAE, CLIP image encoder and settings."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

# CLIPImageProcessor settings of SVD's feature_extractor (OpenAI CLIP normalisation)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# scheduler_config.json of the SVD releases (diffusers EulerDiscreteScheduler): EDM Euler over
# Karras sigmas 700 -> 0.002, v-prediction, continuous timesteps c_noise = 0.25 ln(sigma)
SVD_SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "final_sigmas_type": "zero", "interpolation_type": "linear",
    "num_train_timesteps": 1000, "prediction_type": "v_prediction", "set_alpha_to_one": False, "sigma_max": 700.0,
    "sigma_min": 0.002, "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
    "timestep_type": "continuous", "trained_betas": None, "use_karras_sigmas": True,
}


@dataclass
class SVDBackbone:
    """Everything of Stable Video Diffusion the sampler needs.

    ``sigma_min``/``sigma_max`` come from the scheduler config (EDM Karras schedule);
    ``clip_mean``/``clip_std``/``clip_size`` from the feature extractor.
    """

    unet: torch.nn.Module
    vae: torch.nn.Module
    image_encoder: torch.nn.Module
    clip_mean: tuple[float, float, float] = CLIP_MEAN
    clip_std: tuple[float, float, float] = CLIP_STD
    clip_size: int = 224
    sigma_min: float = 0.002
    sigma_max: float = 700.0
    rho: float = 7.0
    source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return self.vae.config.latent_channels

    def to(self, device=None, dtype=None) -> "SVDBackbone":
        """Move the modules (the VAE keeps float32 when it was loaded so for stability)."""
        self.unet.to(device=device, dtype=dtype)
        self.image_encoder.to(device=device, dtype=dtype)
        keep_fp32 = self.vae.dtype == torch.float32 and self.extra.get("vae_upcast", False)
        self.vae.to(device=device, dtype=None if keep_fp32 else dtype)
        return self
