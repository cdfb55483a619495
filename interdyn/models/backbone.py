"""The frozen SVD backbone as one object: UNet, temporal VAE, CLIP image encoder and settings."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

# CLIPImageProcessor settings of SVD's feature_extractor (OpenAI CLIP normalisation)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


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
