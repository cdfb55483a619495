"""ComfyUI's own SVD objects (MODEL, CLIP_VISION, VAE) from the tiny single-file checkpoint. Test helper.

Runs inside ComfyUI's Python only (imports ``comfy``). ComfyUI's core loader refuses the tiny file:
``load_checkpoint_guess_config`` detects SVD by its real widths (``model_channels`` 320,
``context_dim`` 1024, ``adm_in_channels`` 768), the CLIP vision loader by its layer count (ViT-H: 32
layers) and the VAE constructor hard-codes ``ch`` 128. So the objects are constructed here with
ComfyUI's classes and the exact configs of ``configs.json`` (the file was made with them), by the
same calls the core loader makes: ``SVD_img2vid(unet_config).get_model`` + ``load_model_weights`` +
``ModelPatcher``; ``comfy.sd.VAE(sd)`` down its SVD branch with the tiny channel widths;
``ClipVisionModel`` with the tiny JSON config. The only non-core change: the added-time-id embedder
is ``Timestep(16)`` (the tiny ``adm_in_channels`` 48 = 3 x 16) instead of SVD's ``Timestep(256)``.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "conditioner.embedders.0.open_clip.model.visual."


@contextlib.contextmanager
def _tiny_vae_widths(encoder: dict, decoder: dict):
    import comfy.sd

    real = comfy.sd.AutoencodingEngine

    def engine(**kwargs):
        for key, config in (("encoder_config", encoder), ("decoder_config", decoder)):
            kwargs[key]["params"].update({k: config[k] for k in ("ch", "ch_mult")})
        return real(**kwargs)

    comfy.sd.AutoencodingEngine = engine
    try:
        yield
    finally:
        comfy.sd.AutoencodingEngine = real


def load_tiny_svd(path: str | os.PathLike, configs: str | os.PathLike | None = None, dtype=torch.float32):
    """``(model_patcher, clip_vision, vae)`` as ImageOnlyCheckpointLoader returns them, for the tiny file."""
    import comfy.clip_vision
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.sd
    import comfy.supported_models
    import comfy.utils
    from comfy.ldm.modules.diffusionmodules.openaimodel import Timestep

    path = Path(path)
    cfg = json.loads(Path(configs or path.with_name("configs.json")).read_text())["comfy"]
    sd = comfy.utils.load_torch_file(str(path))

    model_config = comfy.supported_models.SVD_img2vid(cfg["unet_config"])
    model_config.unet_config.update(num_head_channels=cfg["unet_config"]["num_head_channels"],
                                    num_heads=cfg["unet_config"]["num_heads"])
    model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model(sd, UNET_PREFIX)
    model.embedder = Timestep(cfg["adm_timestep_embedding_dim"])
    model.load_model_weights(sd, UNET_PREFIX)
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(),
                                               offload_device=mm.unet_offload_device())

    vae_sd = comfy.utils.state_dict_prefix_replace(sd, {VAE_PREFIX: ""}, filter_keys=True)
    with _tiny_vae_widths(cfg["vae"]["encoder_config"], cfg["vae"]["decoder_config"]):
        vae = comfy.sd.VAE(sd=vae_sd)

    clip_sd = comfy.clip_vision.convert_to_transformers(
        {k: v for k, v in sd.items() if k.startswith(CLIP_PREFIX)}, CLIP_PREFIX)
    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(tmp) / "clip_vision_tiny.json"
        json_path.write_text(json.dumps(cfg["clip_vision_json"]))
        clip_vision = comfy.clip_vision.ClipVisionModel(str(json_path))
    clip_vision.load_sd(clip_sd)
    return patcher, clip_vision, vae
