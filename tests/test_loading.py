"""Loaders: SVD folders, control branch files, our single-file format, and their errors."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from interdyn.core.loading import (ModelLoadError, check_compatible, load_control_branch, load_svd_backbone,
                              save_control_branch, save_svd_folder)
from interdyn.core.tiny import TINY_UNET, build_tiny_backbone, build_tiny_control_branch, write_tiny_models


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    return write_tiny_models(tmp_path_factory.mktemp("tiny"), seed=0)


def test_single_file_round_trip_keeps_weights_config_and_provenance(tmp_path):
    backbone = build_tiny_backbone(seed=0)
    branch = build_tiny_control_branch(backbone, seed=4, residual_mode="official")
    path = save_control_branch(branch, tmp_path / "branch.safetensors", provenance={"run": "test", "step": 7})
    loaded = load_control_branch(path, backbone=backbone)
    assert loaded.residual_mode == "official", "the residual mode travels with the weights"
    assert loaded.provenance == {"run": "test", "step": 7}, "provenance is kept in the file's metadata"
    for k, v in branch.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), f"{k} changed in the save/load round trip"
    assert not list(tmp_path.glob(".*tmp")), "the atomic write must not leave temporary files"


def test_fp16_export_loads_as_fp16_unless_asked(tmp_path):
    backbone = build_tiny_backbone(seed=0)
    path = save_control_branch(build_tiny_control_branch(backbone), tmp_path / "b.safetensors", dtype=torch.float16)
    assert load_control_branch(path).dtype == torch.float16, "a file's dtype is kept by default"
    assert load_control_branch(path, dtype="fp32").dtype == torch.float32, "an explicit precision wins"


def test_svd_folder_with_fp16_variant_files_loads(tmp_path):
    backbone = build_tiny_backbone(seed=0)
    save_svd_folder(backbone, tmp_path / "svd", variant="fp16")
    assert (tmp_path / "svd" / "unet" / "diffusion_pytorch_model.fp16.safetensors").is_file(), "variant file written"
    loaded = load_svd_backbone(tmp_path / "svd")
    ref = backbone.unet.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in loaded.unet.state_dict().items()), "variant weights must load"
    assert not loaded.unet.training and not any(p.requires_grad for p in loaded.unet.parameters()), \
        "the backbone is frozen and in eval mode"


def test_half_precision_keeps_the_vae_in_float32(tiny_files):
    backbone = load_svd_backbone(tiny_files["svd"], dtype="bf16")
    assert backbone.unet.dtype == torch.bfloat16, "the UNet takes the asked precision"
    assert backbone.vae.dtype == torch.float32, "SVD's VAE has force_upcast: it stays float32"


def test_official_folder_and_its_parent_both_load(tmp_path):
    from conftest import fixture_dir

    root = fixture_dir("official_interdyn_tiny") / "interdyn_tiny"
    assert load_control_branch(root).residual_mode == "official", "the repo root (with controlnet/) loads"
    assert load_control_branch(root / "controlnet").residual_mode == "official", "the controlnet folder loads"


def test_missing_paths_name_the_file(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_control_branch(tmp_path / "nope.safetensors")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_svd_backbone(tmp_path / "no_svd_here")


def test_svd_folder_missing_parts_is_named(tiny_files, tmp_path):
    broken = shutil.copytree(tiny_files["svd"], tmp_path / "svd")
    shutil.rmtree(broken / "image_encoder")
    with pytest.raises(ModelLoadError, match="image_encoder"):
        load_svd_backbone(broken)
    (broken / "image_encoder").mkdir()
    shutil.copy(tiny_files["svd"] / "image_encoder" / "config.json", broken / "image_encoder")
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        load_svd_backbone(broken)


def test_a_file_that_is_not_a_control_branch_is_refused(tmp_path):
    path = tmp_path / "svd_like.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2)}, path)
    with pytest.raises(ModelLoadError, match="not an InterDyn control branch"):
        load_control_branch(path)
    (tmp_path / "weights.ckpt").write_bytes(b"not a pickle we would open")
    with pytest.raises(ModelLoadError, match="safetensors"):
        load_control_branch(tmp_path / "weights.ckpt")


def test_weights_that_do_not_fit_their_config_are_refused(tmp_path, tiny_files):
    state = load_file(tiny_files["interdyn"])
    state.pop("controlnet_mid_block.weight")
    from safetensors import safe_open

    with safe_open(str(tiny_files["interdyn"]), "pt") as f:
        meta = f.metadata()
    bad = tmp_path / "bad.safetensors"
    save_file(state, bad, metadata=meta)
    with pytest.raises(ModelLoadError, match="missing"):
        load_control_branch(bad)


def test_branch_for_another_backbone_is_refused():
    small = build_tiny_backbone(seed=0)
    other = build_tiny_backbone(seed=0, unet_config=dict(block_out_channels=(32, 64, 64, 64)))
    branch = build_tiny_control_branch(other)
    with pytest.raises(ModelLoadError, match="block_out_channels"):
        check_compatible(branch, small)


def test_tiny_unet_config_has_time_sensitive_widths():
    assert max(TINY_UNET["block_out_channels"]) >= 64, \
        "GroupNorm(32) on 32-wide blocks cancels the time conditioning: deeper blocks must be >= 64"


def test_make_tiny_writes_real_formats(tiny_files):
    assert json.loads((tiny_files["svd"] / "model_index.json").read_text())["_class_name"] == \
        "StableVideoDiffusionPipeline", "the tiny SVD folder uses diffusers' pipeline layout"
    assert load_control_branch(tiny_files["interdyn"]).residual_mode == "standard", "new branches use standard mode"
