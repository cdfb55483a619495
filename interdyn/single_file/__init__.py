"""Load Stable Video Diffusion from a single-file SGM checkpoint (svd*.safetensors).

ComfyUI users keep SVD as one ``.safetensors`` file in ``models/checkpoints`` (the original
Stability / generative-models key layout: ``model.diffusion_model.*``, ``first_stage_model.*``,
``conditioner.embedders.0.open_clip.model.visual.*``). diffusers cannot read that layout for SVD,
so this module converts it at load time into

* the diffusers ``UNetSpatioTemporalConditionModel`` (or a subclass, e.g. ``InterDynUNet``),
* the temporal VAE ``AutoencoderKLTemporalDecoder`` (``quant_conv`` filled with identity),
* the CLIP image encoder ``transformers.CLIPVisionModelWithProjection`` (open_clip ViT-H/14),
* the CLIP preprocessing settings and the SVD ``EulerDiscreteScheduler`` config.

Design:

* The key mapping is a pure function of the file's key names and shapes (:func:`plan_conversion`,
  :func:`derive_configs`) so it can be checked against a key/shape manifest without weights.
* Tensors are streamed with ``safetensors.safe_open``; safetensors hands out tensors backed by a
  private copy-on-write memory map of the file, and modules are built with their parameters on
  the ``meta`` device and filled with ``load_state_dict(assign=True)``. Nothing is copied unless a
  transform or a dtype/device change needs it, so memory stays about one model size.
* Nothing is downloaded: every config comes from the file's own shapes. Two numbers cannot be
  read from weights (the attention head widths); they default to SVD's values (UNet 64, ViT-H 80)
  and can be overridden for other sizes (the tiny test checkpoint uses 16 for both).
* Pickled checkpoints (``.ckpt``/``.pt``) are refused, never unpickled.

The package, by idea: :mod:`.layout` (key prefixes, SVD's numbers), :mod:`.plan` (file key -> model parameter),
:mod:`.configs` (configs from shapes), :mod:`.checkpoint_info` (what a file is; refusals), :mod:`.build`
(streaming the tensors into the modules).
"""
from ..models.backbone import CLIP_MEAN, CLIP_STD, SVD_SCHEDULER_CONFIG
from .build import load_svd_single_file
from .checkpoint_info import (
    CheckpointInfo,
    inspect_checkpoint,
    is_svd_single_file,
    require_svd_single_file,
)
from .configs import derive_configs
from .layout import SVDCheckpointError
from .plan import ConversionPlan, TensorRule, plan_conversion, target_shape

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "SVD_SCHEDULER_CONFIG",
    "CheckpointInfo",
    "ConversionPlan",
    "SVDCheckpointError",
    "TensorRule",
    "derive_configs",
    "inspect_checkpoint",
    "is_svd_single_file",
    "load_svd_single_file",
    "plan_conversion",
    "require_svd_single_file",
    "target_shape",
]
