"""Shared conventions for the metrics: video layout, uint8 quantisation, frame selection."""
from __future__ import annotations

import torch


def check_videos(videos: torch.Tensor, name: str = "videos") -> torch.Tensor:
    """Validate a batch of clips ``[N, F, 3, H, W]`` (float, 0..1) and return it as float32."""
    if not isinstance(videos, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [N, F, 3, H, W], got {type(videos).__name__}")
    if videos.ndim != 5 or videos.shape[2] != 3:
        raise ValueError(f"{name} must have shape [N, F, 3, H, W] (N clips of F RGB frames), got {tuple(videos.shape)}")
    if not videos.is_floating_point():
        raise TypeError(f"{name} must be a float tensor with values in [0, 1], got dtype {videos.dtype}")
    return videos.float()


def check_pair(generated: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate generated and reference clips for paired (frame-by-frame) metrics."""
    generated = check_videos(generated, "generated")
    reference = check_videos(reference, "reference")
    if generated.shape != reference.shape:
        raise ValueError(
            f"paired metrics need generated and reference of the same shape, got {tuple(generated.shape)} "
            f"and {tuple(reference.shape)}"
        )
    if generated.shape[1] < 2:
        raise ValueError("clips need at least 2 frames: frame 0 is the conditioning frame and is excluded")
    return generated, reference


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round float images in [0, 1] to the 256 uint8 levels, kept as float: ``round(clamp(x)*255)/255``."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] as a uint8 tensor 0..255 (same rounding as :func:`quantize`)."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0).to(torch.uint8)


def frames_after_first(videos: torch.Tensor) -> torch.Tensor:
    """All frames except frame 0 (the conditioning frame), flattened: ``[N*(F-1), 3, H, W]``."""
    return videos[:, 1:].reshape(-1, *videos.shape[2:])
