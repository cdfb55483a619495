"""The control branch and the residual-injecting UNet, on tiny models with SVD's structure."""
from __future__ import annotations

import pytest
import torch
from diffusers import UNetSpatioTemporalConditionModel

from interdyn.models import InterDynControlNet, InterDynUNet, skip_residual_multiplicities
from interdyn.core.tiny import TINY_UNET, build_tiny_backbone, build_tiny_control_branch

TWO_BLOCK_UNET = dict(TINY_UNET, down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
                      up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
                      block_out_channels=(32, 64), num_attention_heads=(1, 2))


def unet_inputs(unet, batch=1, frames=2, h=8, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = unet.config
    sample = torch.randn(batch, frames, c.in_channels, h, w, generator=g)
    emb = torch.randn(batch, 1, c.cross_attention_dim, generator=g)
    ids = torch.tensor([[6.0, 40.0, 0.02]]).repeat(batch, 1)
    return sample, torch.tensor(1.3), emb, ids


@pytest.fixture(scope="module")
def tiny():
    backbone = build_tiny_backbone(seed=1)
    return backbone.unet


def test_unet_without_residuals_runs_the_stock_forward(tiny):
    # same instance, same buffers: the stock diffusers forward and ours must do the same arithmetic
    args = unet_inputs(tiny)
    with torch.no_grad():
        ours = tiny(*args).sample
        stock = UNetSpatioTemporalConditionModel.forward(tiny, *args).sample
    assert torch.equal(ours, stock), "InterDynUNet without residuals must compute exactly diffusers' forward"


def test_unet_without_residuals_matches_a_separate_stock_model(tiny):
    # Two module instances with identical weights may round differently on some CPUs (kernels depend on
    # buffer placement; measured up to 1.7e-5 on a 2-core Xeon), so across instances we allow 1e-4
    # relative to the output's scale. The smallest real mistake in the skip path (a residual added the
    # wrong number of times) moves the UNet output by > 1 on this tiny model (fixture README: 2.169).
    stock = UNetSpatioTemporalConditionModel(**TINY_UNET).eval()
    stock.load_state_dict(tiny.state_dict())
    args = unet_inputs(tiny)
    with torch.no_grad():
        ours, ref = tiny(*args).sample, stock(*args).sample
    diff = (ours - ref).abs().max().item()
    scale = ref.abs().max().item()
    assert diff <= 1e-4 * max(scale, 1.0), f"InterDynUNet differs from a stock UNet by {diff:.2e} (scale {scale:.2f})"


@pytest.mark.parametrize("mode", ["standard", "official"])
def test_zero_residuals_change_nothing(tiny, mode):
    args = unet_inputs(tiny)
    branch = build_tiny_control_branch(build_tiny_backbone(seed=1), perturb=False)
    n = branch.num_skips
    with torch.no_grad():
        plain = tiny(*args).sample
        sample = tiny(*args).sample  # noqa: F841 - warm path identical
        ref_skips = []
        # build zero residuals of the right shapes from the branch (zero convs -> zero outputs)
        control = torch.zeros(1, 2, 3, 64, 64)
        down, mid = branch(*args, controlnet_cond=control, return_dict=False)
        assert len(down) == n and all(d.abs().max() == 0 for d in down), "a fresh branch must output zero residuals"
        out = tiny(*args, down_block_additional_residuals=down, mid_block_additional_residual=mid,
                   residual_mode=mode).sample
    assert torch.equal(out, plain), f"zero residuals in {mode} mode must leave the UNet output unchanged"
    del ref_skips


def test_residual_multiplicities_of_svd_and_small_unets():
    assert skip_residual_multiplicities([2, 2, 2, 2], "official") == [4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1], \
        "SVD's 12 skips get the official release's multiplicities (measured on its UNet)"
    assert skip_residual_multiplicities([2, 2, 2, 2], "standard") == [1] * 12, "standard mode adds each residual once"
    assert skip_residual_multiplicities([2, 2], "official") == [2, 2, 2, 2, 1, 1], \
        "in general: the number of down blocks from the skip's block to the end"


def test_official_mode_equals_standard_mode_with_multiplied_residuals(tiny):
    """Official = each skip residual added m_k times; standard with m_k * r_k must agree up to rounding."""
    args = unet_inputs(tiny)
    branch = build_tiny_control_branch(build_tiny_backbone(seed=1), seed=3)
    control = torch.rand(1, 2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        down, mid = branch(*args, controlnet_cond=control, return_dict=False)
        official = tiny(*args, down_block_additional_residuals=down, mid_block_additional_residual=mid,
                        residual_mode="official").sample
        scaled = [m * d for m, d in zip(skip_residual_multiplicities([2, 2, 2, 2], "official"), down)]
        standard = tiny(*args, down_block_additional_residuals=scaled, mid_block_additional_residual=mid,
                        residual_mode="standard").sample
        once = tiny(*args, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
    assert (official - standard).abs().max() < 1e-4, "official mode must add skip k exactly m_k times"
    assert (official - once).abs().max() > 1e-2, "the two modes must differ for non-zero residuals"


@pytest.mark.parametrize("unet_config", [TINY_UNET, TWO_BLOCK_UNET], ids=["4-block", "2-block"])
def test_from_unet_copies_encoder_weights_exactly(unet_config):
    torch.manual_seed(0)
    unet = InterDynUNet(**unet_config)
    branch = InterDynControlNet.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 16, 32))
    for name in ("conv_in", "time_embedding", "add_embedding", "down_blocks", "mid_block"):
        ours, theirs = getattr(branch, name).state_dict(), getattr(unet, name).state_dict()
        assert ours.keys() == theirs.keys(), f"{name}: parameter names differ from the UNet's"
        for k in ours:
            assert torch.equal(ours[k], theirs[k]), f"{name}.{k} was not copied exactly from the UNet"
    zero = [branch.controlnet_cond_embedding.conv_out, branch.controlnet_mid_block, *branch.controlnet_down_blocks]
    assert all(p.abs().max() == 0 for m in zero for p in m.parameters()), "zero convs must start at zero"
    n_blocks = len(unet_config["down_block_types"])
    assert branch.num_skips == 1 + 3 * (n_blocks - 1) + 2, "one zero conv per skip connection"


def test_control_embedding_lands_on_the_latent_grid():
    backbone = build_tiny_backbone(seed=0)
    branch = build_tiny_control_branch(backbone)
    features = branch.embed_control(torch.zeros(2, 3, 3, 64, 128))
    assert features.shape == (6, 32, 8, 16), "the CNN runs per frame and downsamples by 8 to the first block's width"


def test_gradient_checkpointing_gives_the_same_gradients():
    backbone = build_tiny_backbone(seed=0)
    args = unet_inputs(backbone.unet)
    control = torch.rand(1, 2, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    grads = []
    for checkpointing in (False, True):
        branch = build_tiny_control_branch(backbone, seed=2).train().requires_grad_(True)
        if checkpointing:
            branch.enable_gradient_checkpointing()
        down, mid = branch(*args, controlnet_cond=control, return_dict=False)
        (sum(d.square().mean() for d in down) + mid.square().mean()).backward()
        grads.append(branch.down_blocks[0].resnets[0].spatial_res_block.conv1.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6), "checkpointing must not change gradients"
