"""The toy study's measurements (training/toy/study.py) on hand-made inputs: they must measure what they say."""
from __future__ import annotations

import torch

from interdyn.data.synthetic import random_scene
from interdyn.models import InterDynUNet
from training.toy.backbone import TOY_UNET
from training.toy.study import REGIONS, noise_level_sensitivity, region_cells


def test_a_32_channel_level_is_blind_to_the_noise_level_and_a_64_channel_one_is_not():
    """SVD's resnets add the time embedding right before GroupNorm(32): one channel per group cancels it exactly."""
    torch.manual_seed(0)
    narrow = noise_level_sensitivity(InterDynUNet(**TOY_UNET).eval())
    torch.manual_seed(0)
    wide = noise_level_sensitivity(InterDynUNet(**dict(TOY_UNET, block_out_channels=(64, 64, 64))).eval())
    blind = [k for k, v in narrow.items() if k.startswith(("down0", "down1")) and v < 1e-5]
    assert len(blind) == 2, f"the shipped widths' first two encoder levels ignore the noise level: {narrow}"
    assert all(v > 1e-3 for k, v in wide.items() if k.startswith(("down0", "down1"))), \
        f"at 64 channels (two per group) they see it: {wide}"


def test_region_cells_put_a_static_disc_a_moving_disc_and_the_driver_where_they_are():
    scene = random_scene(1_000_003, size=(64, 64), num_frames=8, world="toy")
    cells = region_cells(scene)
    assert cells.shape == (8, 16, 16)
    travel = (scene.tracks - scene.tracks[:, :1]).norm(dim=-1).amax(dim=1)
    for k in range(len(scene.names)):
        kind = "driver" if bool(scene.driven[k]) else ("moving" if float(travel[k]) >= 1.0 else "static")
        mask = torch.nn.functional.avg_pool2d(scene.masks[k].float()[:, None], 4)[:, 0] >= 0.25
        if kind == "static":  # a static object's cells are static unless a mover or the driver covers them
            assert bool((cells[mask] != REGIONS.index("background")).all())
        if kind == "driver":
            assert bool((cells[mask] == REGIONS.index("driver")).all()), "the driver wins every cell it covers"
    assert int((cells == REGIONS.index("background")).sum()) > cells.numel() // 2, "most of a toy frame is background"
