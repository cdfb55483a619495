"""InterDyn Model Loader: SVD backbone + optional InterDyn control branch -> INTERDYN_MODEL."""
from __future__ import annotations

from . import models

INTERDYN_MODEL = "INTERDYN_MODEL"


class InterDynModelLoader:
    DESCRIPTION = ("Loads Stable Video Diffusion (a diffusers folder from models/diffusers or an svd*.safetensors "
                   "file from models/checkpoints) and an InterDyn control branch (a folder or .safetensors file "
                   "from models/interdyn). Nothing is downloaded: a missing file is an error naming the folders "
                   "searched. Models wait on ComfyUI's offload device and move to the GPU only while sampling.")
    CATEGORY = "InterDyn"
    FUNCTION = "load"
    RETURN_TYPES = (INTERDYN_MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The SVD backbone and control branch, for the InterDyn Sampler and InterDyn Decode.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "svd": (models.list_svd_models(), {
                "tooltip": "Stable Video Diffusion img2vid (14 frames): a diffusers folder in models/diffusers "
                           "(with model_index.json) or an svd*.safetensors checkpoint in models/checkpoints."}),
            "interdyn": (models.list_control_branches(), {
                "tooltip": "InterDyn control branch: the official `controlnet` folder or an exported .safetensors "
                           "file in models/interdyn. 'none' samples plain SVD image-to-video (no control)."}),
            "precision": (models.PRECISIONS, {
                "default": "auto",
                "tooltip": "Weights dtype. auto: bf16/fp16 on a GPU, fp32 on the CPU. The VAE stays in fp32 "
                           "when SVD's config asks for it."}),
            "keep_loaded": ("BOOLEAN", {
                "default": True,
                "tooltip": "Keep the last loaded model in memory (CPU/offload device) for the next run with the "
                           "same files and precision. Off: load from disk every time."}),
        }}

    def load(self, svd, interdyn, precision, keep_loaded):
        return (models.load_model(svd, interdyn, precision, keep_loaded),)
