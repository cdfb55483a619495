"""The toy-physics recipe's backbone stages (data -> temporal VAE -> UNet prior) run and produce
an SVD folder that the project's own loader and sampler use. Training quality is not tested here:
these are 2-step smoke runs on a handful of scenes."""
from __future__ import annotations

import torch

from interdyn.loading import load_svd_backbone
from interdyn.sampling import generate_video
from training.toy.backbone import TOY_FRAMES, TOY_SIZE, make_data, train_unet, train_vae


def test_backbone_recipe_stages_produce_a_loadable_svd_folder(tmp_path):
    make_data(4, tmp_path / "data.pt")
    data = torch.load(tmp_path / "data.pt")
    assert data["frames"].shape == (4, TOY_FRAMES, 3, *TOY_SIZE), "one uint8 clip per scene"
    assert data["frames"].dtype == torch.uint8, "clips are stored compactly as uint8"

    train_vae(tmp_path / "data.pt", tmp_path / "vae", steps=2, batch=2, lr=1e-3, kl_weight=1e-4, seed=0)
    train_unet(tmp_path / "data.pt", tmp_path / "vae", tmp_path / "prior", steps=2, batch=2, lr=1e-4, seed=0)

    backbone = load_svd_backbone(tmp_path / "prior" / "svd")
    assert backbone.vae_scale_factor == 4, "the toy VAE downsamples by 4 (3 down blocks)"
    scale = backbone.vae.config.scaling_factor
    assert scale != 1.0 and scale > 0, "the VAE's scaling factor is set from its latents' std"
    video = generate_video(backbone, torch.rand(1, 3, *TOY_SIZE), num_frames=TOY_FRAMES, num_steps=1, generator=0)
    assert video.shape == (1, TOY_FRAMES, 3, *TOY_SIZE), "the trained prior samples videos of the toy size"
    lines = (tmp_path / "prior" / "loss.csv").read_text().splitlines()
    assert lines[0] == "step,loss,seconds" and len(lines) >= 2, "the loss curve is logged for the model card"
