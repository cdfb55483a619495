"""InterDyn Sampler (image + control -> video LATENT) and InterDyn Decode (LATENT -> IMAGE frames)."""
from __future__ import annotations

import torch

from ..interdyn.core.control import fit_to_size
from ..interdyn.core.dual_clock import SVD_SIGMA_STRONG, SVD_SIGMA_WEAK, DualClock
from ..interdyn.core.sampling import decode_latents, prepare_sampling, run_sampling
from ..interdyn.support.validation import InputError, check_image_tensor
from . import convert, host
from .control import check_size


def sample(model, image, width, height, frames, steps, min_cfg, max_cfg, fps, motion_bucket_id, noise_aug_strength,
           seed, control_strength, control_start, control_end, control=None, drag_reference=None, drag_region=None,
           sigma_weak=SVD_SIGMA_WEAK, sigma_strong=SVD_SIGMA_STRONG):
    """InterDyn Sampler: the first frame and the control frames -> video ``LATENT`` (a 1-tuple). With
    ``drag_reference`` and ``drag_region`` (Cut and Drag Reference) the sampler drags without training
    (dual-clock denoising from ``sigma_weak`` / ``sigma_strong``), with or without the control."""
    check_size(width, height)
    if (drag_reference is None) != (drag_region is None):
        raise InputError("drag_reference and drag_region come together from Cut and Drag Reference: connect both, "
                         "or neither")
    first = convert.image_to_frames(image)
    first, _, _ = fit_to_size(video=first, height=height, width=width, crop="center", multiple_of=64)
    dual_clock = None
    if drag_reference is not None:  # fitted exactly like the first frame, so the reference lies on the video
        region = convert.mask_frames(drag_region, "drag_region")
        check_image_tensor(region, "drag_region", what="mask values in [0, 1]")  # named as the input, not "masks"
        reference, _, region = fit_to_size(video=convert.image_to_frames(drag_reference, "drag_reference"),
                                           masks=region, height=height, width=width, crop="center", multiple_of=64)
        dual_clock = DualClock(reference, region.float(), sigma_weak, sigma_strong)
    # every input checked once, before the model moves to the device; messages name the widgets
    request = prepare_sampling(
        model.backbone, first, control, model.control_branch, num_frames=frames, num_steps=steps,
        min_guidance=min_cfg, max_guidance=max_cfg, fps=fps, motion_bucket_id=motion_bucket_id,
        noise_aug_strength=noise_aug_strength, control_strength=control_strength, control_start=control_start,
        control_end=control_end, generator=int(seed), dual_clock=dual_clock, names=WIDGET_NAMES)

    pbar = host.progress_bar(len(request.sigmas) - 1)
    preview = host.latent_previewer(model.load_device)

    def on_step(info):
        host.throw_if_interrupted()
        pbar.update_absolute(info.step + 1, info.total, preview(info.denoised[:, 0]) if preview else None)

    host.throw_if_interrupted()
    with model.on_device("all"):
        latents = run_sampling(model.backbone, request, callback=on_step)
    return (convert.latents_to_comfy(latents),)


#: the sampler node's widget names for the library's arguments (error messages use the widget names)
WIDGET_NAMES = {"num_frames": "frames", "num_steps": "steps", "min_guidance": "min_cfg", "max_guidance": "max_cfg",
                "generator": "seed",
                "control_hint": "set the same width, height and frames on the control's node and the sampler",
                "control_branch_hint": "choose one in InterDyn Model Loader's interdyn (it is 'none'), or disconnect control",
                "reference": "drag_reference", "region": "drag_region"}


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
                                         callback=on_chunk, name="latent")[0])
    return (convert.frames_to_image(torch.cat(videos)),)
