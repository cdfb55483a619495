"""The toy-physics recipe's backbone stages (data -> temporal VAE -> UNet prior) run and produce
an SVD folder that the project's own loader and sampler use. Training quality is not tested here:
these are 2-step smoke runs on a handful of scenes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from interdyn.core.loading import load_svd_backbone
from interdyn.core.sampling import generate_video
from training.toy.backbone import TOY_FRAMES, TOY_SIZE, load_data, make_data, train_unet, train_vae

REPO = Path(__file__).resolve().parents[1]


def test_backbone_recipe_stages_produce_a_loadable_svd_folder(tmp_path):
    make_data(4, tmp_path / "data.safetensors")
    data = load_data(tmp_path / "data.safetensors")
    assert data["frames"].shape == (4, TOY_FRAMES, 3, *TOY_SIZE), "one uint8 clip per scene"
    assert data["frames"].dtype == torch.uint8, "clips are stored compactly as uint8"
    assert not (data["frames"][0] == data["frames"][1]).all(), "scenes of different seeds differ"

    psnr = train_vae(tmp_path / "data.safetensors", tmp_path / "vae", steps=2, batch=2, lr=1e-3, kl_weight=1e-4,
                     seed=0, crop=32)
    assert 0 < psnr < 60, f"the VAE stage reports its held-out reconstruction PSNR, got {psnr}"
    train_unet(tmp_path / "data.safetensors", tmp_path / "vae", tmp_path / "prior", steps=2, batch=2, lr=1e-4,
               seed=0, save_every=1)
    # resuming continues from the saved state (safetensors + JSON, no pickles) instead of starting over
    train_unet(tmp_path / "data.safetensors", tmp_path / "vae", tmp_path / "prior", steps=3, batch=2, lr=1e-4,
               seed=0, save_every=1)
    steps = [int(line.split(",")[0]) for line in (tmp_path / "prior" / "loss.csv").read_text().splitlines()[1:]]
    assert steps == [0, 1, 2], f"the resumed run logs only the new step, got steps {steps}"

    backbone = load_svd_backbone(tmp_path / "prior" / "svd")
    assert backbone.vae_scale_factor == 4, "the toy VAE downsamples by 4 (3 down blocks)"
    scale = backbone.vae.config.scaling_factor
    assert scale != 1.0 and scale > 0, "the VAE's scaling factor is set from its latents' std"
    video = generate_video(backbone, torch.rand(1, 3, *TOY_SIZE), num_frames=TOY_FRAMES, num_steps=1, generator=0)
    assert video.shape == (1, TOY_FRAMES, 3, *TOY_SIZE), "the trained prior samples videos of the toy size"
    lines = (tmp_path / "prior" / "loss.csv").read_text().splitlines()
    assert lines[0] == "step,loss,seconds" and len(lines) >= 2, "the loss curve is logged for the model card"


def test_control_stage_and_packaging_run_on_the_toy_backbone(tmp_path):
    """Stages 3-4 on a 2-step backbone: training.train with the shipped toy config (2 steps), export,
    then packaging into a folder that the built-in loaders' code path reads back."""
    from interdyn.core.loading import load_control_branch
    from training.config import load_config
    from training.export import export
    from training.toy.package import package
    from training.train import train

    make_data(2, tmp_path / "data.safetensors")
    train_vae(tmp_path / "data.safetensors", tmp_path / "vae", steps=1, batch=1, lr=1e-3, kl_weight=1e-4, seed=0)
    train_unet(tmp_path / "data.safetensors", tmp_path / "vae", tmp_path / "prior", steps=1, batch=1, lr=1e-4, seed=0)
    config = load_config(REPO / "training/configs/toy_physics.yaml", {
        "pretrained_model": str(tmp_path / "prior" / "svd"), "output_dir": str(tmp_path / "control"),
        "max_steps": 2, "batch_size": 1, "synthetic_num_scenes": 2, "synthetic_cache": 2,
        "report_to": "none", "progress_bar": False})
    assert config.control_cnn_channels == [8, 16, 32] and config.num_frames == TOY_FRAMES
    train(config)
    branch_file = tmp_path / "branch.safetensors"
    export(tmp_path / "control" / "checkpoint-2", branch_file)
    result = package(tmp_path / "prior" / "svd", branch_file, tmp_path / "assets", check_scenes=1, check_steps=2)
    assert result["fp16_max_abs_pixel_difference"] < 0.05, "fp16 storage keeps the generated pixels"
    backbone = load_svd_backbone(tmp_path / "assets" / "svd")
    branch = load_control_branch(tmp_path / "assets" / "interdyn_toy_physics.safetensors", backbone=backbone)
    assert branch.controlnet_cond_embedding is not None
    assert branch.provenance.get("world") == "toy", \
        "the package records the world it was trained on (the demo and the probes draw their scenes from it)"


def test_control_cnn_must_downsample_like_the_vae():
    from interdyn.core.tiny import build_tiny_backbone
    from training.config import TrainConfig
    from training.train import build_control_branch

    backbone = build_tiny_backbone(seed=0)  # VAE factor 8 -> the control CNN needs 4 widths
    with pytest.raises(ValueError, match="downsample the control by 4"):
        build_control_branch(TrainConfig(pretrained_model="tiny", control_cnn_channels=[8, 16, 32]), backbone)


def test_the_prior_can_start_from_a_committed_unfinished_stage(tmp_path):
    """An unfinished prior committed as weights only (no optimizer state) continues on a new machine with --init."""
    from safetensors.torch import load_file

    make_data(2, tmp_path / "data.safetensors")
    train_vae(tmp_path / "data.safetensors", tmp_path / "vae", steps=1, batch=1, lr=1e-3, kl_weight=1e-4, seed=0)
    train_unet(tmp_path / "data.safetensors", tmp_path / "vae", tmp_path / "first", steps=1, batch=1, lr=1e-4, seed=0)
    before = load_file(str(tmp_path / "first" / "svd" / "unet" / "diffusion_pytorch_model.safetensors"))
    train_unet(tmp_path / "data.safetensors", tmp_path / "vae", tmp_path / "second", steps=1, batch=1, lr=0.0, seed=1,
               init=tmp_path / "first" / "svd")
    after = load_file(str(tmp_path / "second" / "svd" / "unet" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before), "at learning rate 0 the EMA is the init's weights"
    assert json.loads((tmp_path / "second" / "stage.json").read_text())["finished"] is True


def test_latent_object_weights_mark_objects_now_and_where_they_started():
    """The prior's object weighting (``--fg-weight``): on a hand-made clip (grey background, one red square moving
    right by 16 px per frame), latent cells under the square in the current frame or in the first frame get
    ``1 + weight``, every other cell 1, so a copy left behind at the start position costs as much as a missing
    object."""
    from training.toy.backbone import latent_object_weights

    clip = torch.full((1, 3, 3, 64, 64), 128, dtype=torch.uint8)
    for t in range(3):
        clip[0, t, :, 8:16, 8 + 16 * t:16 + 16 * t] = torch.tensor([220, 30, 30], dtype=torch.uint8)[:, None, None]
    w = latent_object_weights(clip, 4.0)
    assert w.shape == (1, 3, 1, 16, 16), "one weight per latent cell (the toy VAE downsamples by 4)"
    expected = torch.ones(3, 16, 16)
    for t in range(3):
        expected[t, 2:4, 2:4] = 5.0                    # where the square started
        expected[t, 2:4, 2 + 4 * t:4 + 4 * t] = 5.0    # where it is now
    assert torch.equal(w[0, :, 0], expected), "objects now and at their start get 1 + weight, the rest 1"
    assert torch.equal(latent_object_weights(clip, 0.0), torch.ones(1, 3, 1, 16, 16)), "weight 0: the plain loss"
