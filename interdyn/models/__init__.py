"""Models: the residual-injecting SVD UNet and the InterDyn control branch."""
from .controlnet import InterDynControlNet, InterDynControlNetOutput
from .unet import RESIDUAL_MODES, InterDynUNet, skip_residual_multiplicities

__all__ = ["InterDynControlNet", "InterDynControlNetOutput", "InterDynUNet", "RESIDUAL_MODES",
           "skip_residual_multiplicities"]
