"""Tiny models with SVD's and InterDyn's real structure, deterministic from a seed.

For ``interdyn make-tiny``, the ``tiny`` training config, tests, CPU demos and benchmarks. They keep the real block
layout (4 down blocks, 2 layers each, 12 skips, temporal VAE with 8x downsampling, CLIP ViT with 14-px patches at 224)
at small widths, and are saved in exactly the on-disk formats of the real models (:mod:`.loading` writes them).

Two facts shape the sizes (see the fixture README): SVD blocks hard-wire GroupNorm(32), so a
32-wide block has one channel per group and ignores the time conditioning (hence the deeper
blocks are 64 wide); and zero-initialised convs make a fresh control branch invisible, so
:func:`perturb_zero_convs` gives them seeded values for tests.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKLTemporalDecoder
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from .loading import save_control_branch, save_svd_folder
from ..models.backbone import SVDBackbone
from ..models.controlnet import InterDynControlNet
from ..models.unet import InterDynUNet
from ..support.safe_output import claim_output_folder

TINY_UNET = dict(
    sample_size=8, in_channels=8, out_channels=4,
    down_block_types=("CrossAttnDownBlockSpatioTemporal",) * 3 + ("DownBlockSpatioTemporal",),
    up_block_types=("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 3,
    block_out_channels=(32, 32, 64, 64), addition_time_embed_dim=8, projection_class_embeddings_input_dim=24,
    layers_per_block=2, cross_attention_dim=32, transformer_layers_per_block=1, num_attention_heads=(1, 2, 2, 4),
    num_frames=14,
)
TINY_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                block_out_channels=(32, 32, 32, 32), layers_per_block=2, latent_channels=4, sample_size=128,
                scaling_factor=0.18215, force_upcast=True)
TINY_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, patch_size=14,
                 image_size=224, projection_dim=32)
TINY_CONTROL_CNN = (8, 16, 16, 32)


def build_tiny_backbone(seed: int = 0, unet_config: dict | None = None, vae_config: dict | None = None,
                        clip_config: dict | None = None) -> SVDBackbone:
    """A random SVD backbone with the real structure and tiny widths (float32, CPU, eval)."""
    torch.manual_seed(seed)
    unet = InterDynUNet(**{**TINY_UNET, **(unet_config or {})})
    vae = AutoencoderKLTemporalDecoder(**{**TINY_VAE, **(vae_config or {})})
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**{**TINY_CLIP, **(clip_config or {})}))
    for m in (unet, vae, encoder):
        m.eval().requires_grad_(False)
    return SVDBackbone(unet, vae, encoder, source=f"tiny(seed={seed})")


@torch.no_grad()
def perturb_zero_convs(branch: InterDynControlNet, seed: int = 0, residual_std: float = 0.1,
                       cnn_out_std: float = 0.25, bias_std: float = 0.02) -> InterDynControlNet:
    """Give the zero-initialised convs seeded Gaussian values so the control has a visible effect.

    The CNN's hidden convs get a variance-preserving (He) init: with PyTorch's default the mask
    pattern fades away inside the CNN.
    """
    g = torch.Generator().manual_seed(seed)

    def fill(t, std):
        t.copy_(torch.randn(t.shape, generator=g) * std)

    for conv in list(branch.controlnet_down_blocks) + [branch.controlnet_mid_block]:
        fill(conv.weight, residual_std)
        fill(conv.bias, bias_std)
    cnn = branch.controlnet_cond_embedding
    for conv in [cnn.conv_in, *cnn.blocks]:
        fill(conv.weight, (2.0 / conv.weight[0].numel()) ** 0.5)
        fill(conv.bias, 0.05)
    fill(cnn.conv_out.weight, cnn_out_std)
    fill(cnn.conv_out.bias, bias_std)
    return branch


def build_tiny_control_branch(backbone: SVDBackbone, seed: int = 0, residual_mode: str = "standard",
                              perturb: bool = True) -> InterDynControlNet:
    """A control branch for ``backbone`` via ``from_unet``, perturbed so the control is visible."""
    branch = InterDynControlNet.from_unet(backbone.unet, conditioning_embedding_out_channels=TINY_CONTROL_CNN,
                                          residual_mode=residual_mode)
    if perturb:
        perturb_zero_convs(branch, seed)
    return branch.eval().requires_grad_(False)


def write_tiny_models(folder: str | Path, seed: int = 0, residual_mode: str = "standard") -> dict[str, Path]:
    """Write a tiny SVD folder and a tiny control branch file; returns their paths.

    Layout: ``folder/svd_tiny/`` (diffusers format) and ``folder/interdyn_tiny.safetensors``
    (our single-file control branch format). ``folder`` must be new, empty or one this function wrote
    before (:func:`interdyn.support.safe_output.claim_output_folder`): a folder of the user's is never written into.
    """
    folder = claim_output_folder(folder, what="the tiny models' folder", kind="tiny-models")
    backbone = build_tiny_backbone(seed)
    branch = build_tiny_control_branch(backbone, seed, residual_mode)
    svd = save_svd_folder(backbone, folder / "svd_tiny")
    control = save_control_branch(branch, folder / "interdyn_tiny.safetensors",
                                  provenance={"kind": "tiny random test model", "seed": seed})
    return {"svd": svd, "interdyn": control}
