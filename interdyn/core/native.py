"""InterDyn as a control on a host's own SVD UNet (ComfyUI's native path): the maths, no ComfyUI.

A host such as ComfyUI runs SVD with every frame as one row of the batch (``N = videos x frames``,
the frames of a video adjacent, CFG halves stacked) and lets a control object return residuals in
a ``{"input": [...], "middle": [...], "output": [...]}`` dict that its UNet adds:

* ``"output"`` residuals are added to the stored skip connections as the decoder pops them, last
  skip first: the list holds one residual per skip *in encoder order* (skip 0 = the output of
  ``conv_in``) and the UNet pops from its end;
* ``"middle"`` is added once to the mid block's output;
* ``"input"`` would change the features flowing down the encoder; InterDyn never uses it.

Each skip residual is pre-multiplied by its residual multiplicity (:func:`~interdyn.models.unet.
skip_residual_multiplicities`: 4,4,4,4,3,3,3,2,2,2,1,1 for the official weights, all 1 for the
standard mode), so one addition by the host has the effect of the official release's repeated
additions, and by the control strength. The control CNN depends on the control frames only:
:func:`embed_control_frames` runs it once per video, the per-step call reuses its features.
"""
from __future__ import annotations

import torch

from .control import fit_to_size, normalize_control

CONTROL_KEYS = ("input", "middle", "output")


def prepare_control_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Control frames ``[F, 3, H, W]`` in [0, 1] fitted to ``height x width`` (scaled to cover, centre crop).

    Frames already at that size are returned unchanged.
    """
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or frames.shape[1] != 3:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"control frames must be [frames, 3, height, width] in [0, 1], got {shape}")
    if tuple(frames.shape[-2:]) == (height, width):
        return frames
    return fit_to_size(control=frames.float(), height=height, width=width, multiple_of=None)[1]


@torch.no_grad()
def embed_control_frames(branch, frames: torch.Tensor) -> torch.Tensor:
    """Control frames ``[F, 3, H, W]`` in [0, 1] -> the control CNN's features ``[F, C0, H/8, W/8]``.

    Run once per video; the features do not depend on the noise level.
    """
    control = normalize_control(frames.to(dtype=torch.float32))
    return branch.controlnet_cond_embedding(control.to(device=branch.device, dtype=branch.dtype))


def tile_features(features: torch.Tensor, rows: int, batched_number: int) -> torch.Tensor:
    """The control features repeated to a host batch of ``rows`` frames in ``batched_number`` CFG chunks.

    ``features`` hold one video's frames (repeated for every video of the batch) or every frame of
    one chunk (repeated for every chunk, e.g. the conditional and unconditional halves).
    """
    count = features.shape[0]
    if rows % max(batched_number, 1) == 0 and rows // max(batched_number, 1) % count == 0:
        return features.repeat(rows // count, 1, 1, 1)
    raise ValueError(f"the control has {count} frames but the video has {rows // max(batched_number, 1)}: give "
                     "Apply InterDyn one control frame per video frame (resample the control to the video's "
                     "frame count)")


@torch.no_grad()
def control_residuals(branch, features: torch.Tensor, x_in: torch.Tensor, timesteps: torch.Tensor,
                      context: torch.Tensor, time_embeds: torch.Tensor, num_frames: int,
                      strength: float = 1.0, out_dtype: torch.dtype | None = None) -> dict[str, list[torch.Tensor]]:
    """The residual dict for one host UNet call, scaled by ``strength`` and the residual multiplicities.

    ``x_in`` ``[N, C, h, w]``: the scaled noisy latent with the image latent concatenated on
    channels (what the UNet itself receives); ``timesteps`` ``[N]`` c_noise; ``context``
    ``[N, 1, D]`` CLIP image embeddings; ``time_embeds`` ``[N, 3 * d]`` the embedded added time ids;
    ``features`` ``[N, C0, h, w]`` from :func:`embed_control_frames` and :func:`tile_features`.
    Results are in ``out_dtype`` (the host UNet's compute dtype; default ``x_in``'s).
    """
    dtype, out_dtype = branch.dtype, out_dtype or x_in.dtype
    down, mid = branch.forward_frames(
        x_in.to(dtype), timesteps.to(device=x_in.device, dtype=torch.float32), context.to(dtype),
        time_embeds.to(dtype), features.to(dtype), num_frames, conditioning_scale=strength)
    counts = branch.residual_multiplicities()
    if len(counts) != len(down):
        raise ValueError(f"the branch gives {len(down)} skip residuals but its residual mode counts {len(counts)}")
    output = [(r * m if m != 1 else r).to(out_dtype) for r, m in zip(down, counts)]
    return {"input": [], "middle": [mid.to(out_dtype)], "output": output}


def sum_controls(control: dict, previous: dict | None) -> dict[str, list]:
    """``control`` plus an earlier control's residuals, position by position (a missing entry is none).

    As a host's chained ControlNets are summed: ``previous + ours`` where both exist, whichever
    exists otherwise.
    """
    out = {key: list(control.get(key, [])) for key in CONTROL_KEYS}
    if previous is None:
        return out
    for key in CONTROL_KEYS:
        ours = out[key]
        for i, prev in enumerate(previous.get(key, [])):
            if i >= len(ours):
                ours.append(prev)
            elif prev is not None:
                ours[i] = prev if ours[i] is None else prev + ours[i]
    return out
