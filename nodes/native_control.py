"""InterDyn's control object for ComfyUI's own SVD graphs (a ``comfy.controlnet.ControlBase`` subclass).

ComfyUI's samplers call ``get_control(x_noisy, sigma, cond, batched_number, ...)`` on every control
attached to a conditioning and add the returned ``input``/``middle``/``output`` residuals in the
UNet; its model manager loads, offloads and casts what ``get_models()`` returns. This module only
does that plumbing: the maths (branch call, residual multiplicity, strength, chaining sum) is in
:mod:`interdyn.core.native`.

The class is defined on first use, and only inside ComfyUI (``comfy`` importable), so the pack still
imports without ComfyUI.
"""
from __future__ import annotations

import torch

from ..interdyn.core.native import control_residuals, embed_control_frames, prepare_control_frames, sum_controls, tile_features

_CLASS = None


class BranchHolder(torch.nn.Module):
    """The control branch inside a plain module: ComfyUI's ModelPatcher writes attributes (``device``, ...)
    on the module it manages, which a diffusers model does not allow for ``device``."""

    def __init__(self, branch):
        super().__init__()
        self.branch = branch


def control_class():
    """The ``ControlBase`` subclass for InterDyn (ComfyUI only: raises ImportError outside it)."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _define()
    return _CLASS


def make_control(branch, name: str = ""):
    """A CONTROL_NET object for ``branch``, its weights managed by ComfyUI's model manager."""
    import comfy.model_management as mm  # ComfyUI's; this runs inside ComfyUI only
    import comfy.model_patcher  # ComfyUI's; this runs inside ComfyUI only

    patcher = comfy.model_patcher.ModelPatcher(BranchHolder(branch), load_device=mm.get_torch_device(),
                                               offload_device=mm.unet_offload_device())
    return control_class()(patcher, name)


def is_interdyn_control(obj) -> bool:
    return _CLASS is not None and isinstance(obj, _CLASS)


def _check_model(model, branch) -> None:
    """The sampled model is ComfyUI's SVD img2vid and the branch was made for a UNet of its width and depth."""
    import comfy.model_base  # ComfyUI's; this runs inside ComfyUI only

    if not isinstance(model, comfy.model_base.SVD_img2vid):
        raise ValueError(f"Apply InterDyn works on Stable Video Diffusion img2vid models (Image Only Checkpoint "
                         f"Loader with svd*.safetensors); this model is a {type(model).__name__}")
    unet = model.diffusion_model
    skips, width = len(unet.input_blocks), unet.model_channels
    if skips != branch.num_skips or width != branch.config.block_out_channels[0]:
        raise ValueError(f"the InterDyn control branch ({branch.num_skips} skips, width "
                         f"{branch.config.block_out_channels[0]}) does not fit this SVD model ({skips} skips, "
                         f"width {width}): was it trained for another backbone?")


def _check_conditioning(cond: dict) -> None:
    missing = [k for k in ("c_concat", "c_crossattn", "y", "num_video_frames") if cond.get(k) is None]
    if missing:
        raise ValueError(f"Apply InterDyn needs SVD image-to-video conditioning (SVD_img2vid_Conditioning): "
                         f"the conditioning lacks {', '.join(missing)}")


def _define():
    import comfy.controlnet  # ComfyUI's; this runs inside ComfyUI only

    class InterDynControl(comfy.controlnet.ControlBase):
        """InterDyn on ComfyUI's SVD model: control on both CFG halves, the CNN once per video, the
        branch's residual multiplicity, previous controls summed in, no branch call where it has no effect."""

        def __init__(self, patcher, name: str = ""):
            super().__init__()
            self.patcher = patcher
            self.name = name
            self.model_sampling_current = None
            self.unet_dtype = None  # the dtype ComfyUI's UNet computes in: residuals are handed over in it
            self._features = None  # (key, CNN features of the control frames), computed once per run

        @property
        def branch(self):
            return self.patcher.model.branch

        def copy(self):
            c = InterDynControl(self.patcher, self.name)
            self.copy_to(c)
            return c

        def get_models(self):
            return super().get_models() + [self.patcher]

        def pre_run(self, model, percent_to_timestep_function):
            super().pre_run(model, percent_to_timestep_function)
            _check_model(model, self.branch)
            self.model_sampling_current = model.model_sampling
            self.unet_dtype = model.manual_cast_dtype or model.get_dtype()

        def cleanup(self):
            self.model_sampling_current = None
            self.unet_dtype = None
            self._features = None
            super().cleanup()

        def _active(self, sigma) -> bool:
            if self.strength == 0:
                return False
            if self.timestep_range is None:
                return True
            return not (sigma > self.timestep_range[0] or sigma < self.timestep_range[1])

        def get_control(self, x_noisy, t, cond, batched_number, transformer_options):
            previous = None
            if self.previous_controlnet is not None:
                previous = self.previous_controlnet.get_control(x_noisy, t, cond, batched_number, transformer_options)
            if not self._active(t[0]):
                return previous
            _check_conditioning(cond)
            branch = self.branch
            height, width = x_noisy.shape[-2:]
            key = (height, width, str(x_noisy.device))
            if self._features is None or self._features[0] != key:
                frames = prepare_control_frames(self.cond_hint_original, height * 8, width * 8)
                self._features = (key, embed_control_frames(branch, frames))
            features = tile_features(self._features[1], x_noisy.shape[0], batched_number).to(x_noisy.device)
            ms = self.model_sampling_current
            x_in = torch.cat([ms.calculate_input(t, x_noisy), cond["c_concat"].to(x_noisy)], dim=1)
            residuals = control_residuals(branch, features, x_in, ms.timestep(t).float(), cond["c_crossattn"],
                                          cond["y"], int(cond["num_video_frames"]), self.strength,
                                          out_dtype=self.unet_dtype)
            return sum_controls(residuals, previous)

    return InterDynControl
