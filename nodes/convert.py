"""Layout conversions between ComfyUI's tensors and the library's (no arithmetic on values here).

ComfyUI: IMAGE ``[B, H, W, C]`` float in [0, 1], MASK ``[B, H, W]``, LATENT ``{"samples": ...}``,
video frames along the batch dimension. Library: frames ``[F, 3, H, W]``, masks ``[F, H, W]``,
latents ``[B, F, C, h, w]``.
"""
from __future__ import annotations

import torch

#: LATENT keys the sampler adds: frames per video (the batch holds videos one after another)
FRAMES_KEY = "interdyn_frames"


def image_to_frames(image: torch.Tensor, name: str = "image") -> torch.Tensor:
    """IMAGE ``[B, H, W, C]`` (C = 3, or 4 with alpha, dropped) -> ``[B, 3, H, W]`` float32 on the CPU."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a ComfyUI IMAGE tensor, got {type(image).__name__}")
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[-1] not in (3, 4):
        raise ValueError(f"{name} must be a ComfyUI IMAGE [batch, height, width, 3], got shape {tuple(image.shape)}")
    return image[..., :3].permute(0, 3, 1, 2).to(device="cpu", dtype=torch.float32).contiguous()


def frames_to_image(frames: torch.Tensor) -> torch.Tensor:
    """``[F, 3, H, W]`` -> IMAGE ``[F, H, W, 3]`` float32 on the CPU."""
    return frames.permute(0, 2, 3, 1).to(device="cpu", dtype=torch.float32).contiguous()


def mask_frames(mask: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """MASK ``[B, H, W]`` (or one ``[H, W]`` mask) -> ``[F, H, W]`` float32 on the CPU."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a ComfyUI MASK tensor, got {type(mask).__name__}")
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if mask.ndim != 3:
        raise ValueError(f"{name} must be a ComfyUI MASK [frames, height, width], got shape {tuple(mask.shape)}")
    if 0 in mask.shape:
        raise ValueError(f"{name} is empty (shape {tuple(mask.shape)}): connect a mask with at least one frame")
    return mask.to(device="cpu", dtype=torch.float32)


def split_objects(mask: torch.Tensor, num_objects: int, name: str = "mask") -> list[torch.Tensor]:
    """``[O*F, H, W]`` holding O objects one after another -> O tensors ``[F, H, W]``."""
    if num_objects < 1 or mask.shape[0] % num_objects:
        raise ValueError(f"{name} has {mask.shape[0]} frames, which do not split into {num_objects} objects of equal "
                         "length; objects_in_mask_1 must be the object count of the masks (e.g. SAM2 Video Masks' "
                         "object_count)")
    return list(mask.reshape(num_objects, -1, *mask.shape[1:]).unbind(0))


def latents_to_comfy(latents: torch.Tensor) -> dict:
    """``[B, F, C, h, w]`` -> LATENT with the frames of each video along the batch."""
    batch, frames = latents.shape[:2]
    return {"samples": latents.flatten(0, 1).to("cpu").contiguous(), FRAMES_KEY: int(frames),
            "batch_index": list(range(batch * frames))}


def comfy_to_latents(latent: dict) -> torch.Tensor:
    """LATENT from the InterDyn Sampler -> ``[B, F, C, h, w]``."""
    if not isinstance(latent, dict) or "samples" not in latent:
        raise TypeError("samples must be a ComfyUI LATENT (a dict with 'samples')")
    samples = latent["samples"]
    if FRAMES_KEY not in latent:
        raise ValueError("this LATENT does not come from the InterDyn Sampler (it has no 'interdyn_frames' entry): "
                         "InterDyn Decode decodes the sampler's video latents, which are in SVD's scaled latent space")
    frames = int(latent[FRAMES_KEY])
    if samples.ndim != 4 or frames < 1 or samples.shape[0] % frames:
        raise ValueError(f"LATENT samples of shape {tuple(samples.shape)} do not hold whole videos of {frames} frames")
    return samples.reshape(samples.shape[0] // frames, frames, *samples.shape[1:])
