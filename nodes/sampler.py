"""InterDyn Sampler (image + control -> video LATENT) and InterDyn Decode (LATENT -> IMAGE frames)."""
from __future__ import annotations

import torch

from ..interdyn.core.control import fit_to_size
from ..interdyn.core.sampling import check_sampling_args, decode_latents, sample_latents
from . import convert, host
from .control import check_size


def sample(model, image, width, height, frames, steps, min_cfg, max_cfg, fps, motion_bucket_id, noise_aug_strength,
           seed, control_strength, control_start, control_end, control=None):
    """InterDyn Sampler: the first frame and the control frames -> video ``LATENT`` (a 1-tuple)."""
    check_size(width, height)
    # every widget checked before anything runs; messages name the widgets
    check_sampling_args(names=WIDGET_NAMES, num_frames=frames, num_steps=steps, min_guidance=min_cfg,
                        max_guidance=max_cfg, fps=fps, motion_bucket_id=motion_bucket_id,
                        noise_aug_strength=noise_aug_strength, control_strength=control_strength,
                        control_start=control_start, control_end=control_end, generator=int(seed))
    first = convert.image_to_frames(image)
    first, _, _ = fit_to_size(video=first, height=height, width=width, crop="center", multiple_of=64)
    if control is not None:
        if not isinstance(control, torch.Tensor) or control.ndim != 4 or control.shape[1] != 3:
            raise TypeError("control must come from InterDyn Control From Masks/Renders ([frames, 3, H, W])")
        if tuple(control.shape[-2:]) != (height, width):
            raise ValueError(f"the control is {control.shape[-1]}x{control.shape[-2]} but the sampler makes "
                             f"{width}x{height}: set the same width and height on both nodes")
        if control.shape[0] != frames:
            raise ValueError(f"the control has {control.shape[0]} frames but the sampler makes {frames}: set "
                             "the same frame count on both nodes")
        if model.control_branch is None and control_strength != 0:
            raise ValueError("a control is connected but the model was loaded with interdyn = 'none': choose "
                             "an InterDyn control branch in InterDyn Model Loader (or disconnect the control)")
        control = control.unsqueeze(0)

    pbar = host.progress_bar(steps)
    preview = host.latent_previewer(model.load_device)

    def on_step(info):
        host.throw_if_interrupted()
        pbar.update_absolute(info.step + 1, info.total, preview(info.denoised[:, 0]) if preview else None)

    host.throw_if_interrupted()
    with model.on_device("all"):
        latents = sample_latents(
            model.backbone, first, control, model.control_branch, num_frames=frames, num_steps=steps,
            min_guidance=min_cfg, max_guidance=max_cfg, fps=fps, motion_bucket_id=motion_bucket_id,
            noise_aug_strength=noise_aug_strength, control_strength=control_strength,
            control_start=control_start, control_end=control_end, generator=int(seed), callback=on_step)
    return (convert.latents_to_comfy(latents),)


#: the sampler node's widget names for the library's arguments (error messages use the widget names)
WIDGET_NAMES = {"num_frames": "frames", "num_steps": "steps", "min_guidance": "min_cfg", "max_guidance": "max_cfg",
                "generator": "seed"}


def decode(model, latent, decode_chunk_size):
    """InterDyn Decode: video ``LATENT`` -> ``IMAGE`` frames, each video separately (a 1-tuple)."""
    latents = convert.comfy_to_latents(latent)
    batch, frames = latents.shape[:2]
    pbar = host.progress_bar(batch * frames)
    videos = []
    host.throw_if_interrupted()
    with model.on_device("vae"):
        for b in range(batch):
            def on_chunk(done, total, _before=b * frames):
                host.throw_if_interrupted()
                pbar.update_absolute(_before + done, batch * frames)

            videos.append(decode_latents(model.backbone, latents[b:b + 1], decode_chunk_size or None,
                                         callback=on_chunk)[0])
    return (convert.frames_to_image(torch.cat(videos)),)
