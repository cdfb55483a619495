"""InterDyn Sampler (image + control -> video LATENT) and InterDyn Decode (LATENT -> IMAGE frames)."""
from __future__ import annotations

import torch

from ..interdyn.control import fit_to_size
from ..interdyn.sampling import DEFAULTS, check_sampling_args, decode_latents, sample_latents
from . import convert, host
from .control import INTERDYN_CONTROL, check_size
from .loader import INTERDYN_MODEL


class InterDynSampler:
    DESCRIPTION = ("Generates a video from a first frame and a driving motion (InterDyn control frames) with "
                   "Stable Video Diffusion: EDM Euler steps with a per-frame CFG ramp from min_cfg to max_cfg, the "
                   "control branch active between control_start and control_end. Cancel stops it after the current "
                   "step. Defaults are the paper's.")
    CATEGORY = "InterDyn"
    FUNCTION = "sample"
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Video latents, the frames of each video one after another along the batch (in SVD's "
                       "scaled latent space): decode with InterDyn Decode.",)

    @classmethod
    def INPUT_TYPES(cls):
        d = DEFAULTS
        return {
            "required": {
                "model": (INTERDYN_MODEL, {"tooltip": "From InterDyn Model Loader."}),
                "image": ("IMAGE", {"tooltip": "First frame of the video; scaled and center-cropped to width x "
                                               "height. Each image of a batch starts its own video."}),
                "width": ("INT", {"default": d["width"], "min": 64, "max": 2048, "step": 64,
                                  "tooltip": "Video width, a multiple of 64 (paper: 384); the control must have it too."}),
                "height": ("INT", {"default": d["height"], "min": 64, "max": 2048, "step": 64,
                                   "tooltip": "Video height, a multiple of 64 (paper: 256); the control must have it too."}),
                "frames": ("INT", {"default": d["num_frames"], "min": 1, "max": 128,
                                   "tooltip": "Frames to generate (SVD: 14); the control must have as many."}),
                "steps": ("INT", {"default": d["num_steps"], "min": 1, "max": 500,
                                  "tooltip": "Euler steps (paper: 50)."}),
                "min_cfg": ("FLOAT", {"default": d["min_guidance"], "min": 1.0, "max": 30.0, "step": 0.1,
                                      "tooltip": "Guidance scale of the first frame; it rises linearly to max_cfg "
                                                 "at the last frame (paper: 1.0)."}),
                "max_cfg": ("FLOAT", {"default": d["max_guidance"], "min": 1.0, "max": 30.0, "step": 0.1,
                                      "tooltip": "Guidance scale of the last frame (paper: 3.0). 1: no CFG, "
                                                 "one model pass per step."}),
                "fps": ("INT", {"default": d["fps"], "min": 1, "max": 120,
                                "tooltip": "Frame rate conditioning, in diffusers' convention (paper: 7, which the "
                                           "official pipeline passes as 6)."}),
                "motion_bucket_id": ("INT", {"default": d["motion_bucket_id"], "min": 0, "max": 1023,
                                             "tooltip": "SVD's amount-of-motion conditioning (paper: 40)."}),
                "noise_aug_strength": ("FLOAT", {"default": d["noise_aug_strength"], "min": 0.0, "max": 10.0,
                                                 "step": 0.01,
                                                 "tooltip": "Noise added to the first frame before encoding "
                                                            "(paper: 0.02)."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                                 "tooltip": "Seed of the noise (CPU generator: the same seed gives the same video "
                                            "on any device)."}),
                "control_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.05,
                                               "tooltip": "Scale of the control branch's residuals (1 = as trained; "
                                                          "0 = plain SVD)."}),
                "control_start": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                            "tooltip": "Fraction of the steps at which the control starts acting."}),
                "control_end": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                          "tooltip": "Fraction of the steps at which the control stops acting."}),
            },
            "optional": {
                "control": (INTERDYN_CONTROL, {"tooltip": "Driving motion from InterDyn Control From Masks/Renders. "
                                                          "Without it: plain SVD image-to-video."}),
            },
        }

    def sample(self, model, image, width, height, frames, steps, min_cfg, max_cfg, fps, motion_bucket_id,
               noise_aug_strength, seed, control_strength, control_start, control_end, control=None):
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


class InterDynDecode:
    DESCRIPTION = ("Decodes InterDyn Sampler latents to frames with SVD's temporal VAE, each video separately. "
                   "Connect the IMAGE to Create Video / Save Animated WEBP.")
    CATEGORY = "InterDyn"
    FUNCTION = "decode"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("frames",)
    OUTPUT_TOOLTIPS = ("The video frames as an IMAGE batch (videos one after another).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": (INTERDYN_MODEL, {"tooltip": "The model that sampled the latents (its VAE decodes them)."}),
            "latent": ("LATENT", {"tooltip": "Video latents from InterDyn Sampler."}),
            "decode_chunk_size": ("INT", {"default": 14, "min": 0, "max": 128,
                                          "tooltip": "Frames decoded together (0 = a whole video at once). Smaller "
                                                     "uses less memory, with slightly less temporal consistency."}),
        }}

    def decode(self, model, latent, decode_chunk_size):
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
