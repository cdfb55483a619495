"""Control frames: colouring masks, renders, joint resize/crop, temporal resampling, [-1, 1] mapping."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from interdyn.core.control import (
    CONTROL_PALETTE,
    fit_to_size,
    masks_to_control,
    normalize_control,
    prepare_control,
    renders_to_control,
    resample_frame_indices,
    resample_frames,
)


# --------------------------------------------------------------------------- palette / masks


def test_palette_first_colour_is_white():
    assert tuple(CONTROL_PALETTE[0]) == (1.0, 1.0, 1.0), "a single mask must be drawn white, as in the hand experiments"


def test_palette_colours_are_distinct_valid_and_not_black():
    colours = [tuple(c) for c in CONTROL_PALETTE]
    assert len(set(colours)) == len(colours), "each object needs its own colour, or objects become indistinguishable"
    for c in colours:
        assert len(c) == 3 and all(0.0 <= v <= 1.0 for v in c), f"{c} must be an RGB triple in [0, 1]"
        assert c != (0.0, 0.0, 0.0), "black is the background; an object drawn black would vanish"
        assert all(abs(v * 255 - round(v * 255)) < 1e-9 for v in c), f"{c} must be 8-bit levels to survive PNG/IMAGE round trips"


def test_single_mask_sequence_is_white_on_black():
    m = torch.zeros(2, 4, 5, dtype=torch.bool)
    m[0, 1, 2] = True
    m[1, 3, 4] = True
    c = masks_to_control(m)
    assert c.shape == (2, 3, 4, 5) and c.dtype == torch.float32, "one [F,H,W] sequence gives [F,3,H,W] float32 frames"
    expected = torch.zeros(2, 3, 4, 5)
    expected[0, :, 1, 2] = 1.0
    expected[1, :, 3, 4] = 1.0
    assert torch.equal(c, expected), "mask pixels must be exactly (1,1,1) and everything else exactly 0"


def test_objects_get_given_colours_and_later_object_wins_on_overlap():
    a = torch.zeros(1, 2, 3)
    b = torch.zeros(1, 2, 3)
    a[0, 0, 0:2] = 1  # pixels (0,0) and (0,1)
    b[0, 0, 1:3] = 1  # pixels (0,1) and (0,2): (0,1) overlaps
    c = masks_to_control([a, b], colors=[(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)])
    assert c[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0], "object 0 alone is drawn in its colour (red)"
    assert c[0, :, 0, 2].tolist() == [0.0, 0.0, 1.0], "object 1 alone is drawn in its colour (blue)"
    assert c[0, :, 0, 1].tolist() == [0.0, 0.0, 1.0], "where masks overlap the later object must win (documented)"
    assert c[0, :, 1].abs().sum().item() == 0.0, "uncovered pixels stay black"


def test_default_palette_for_two_objects_is_white_then_red():
    m = torch.zeros(2, 2, 1, 2, dtype=torch.bool)  # 2 objects of 2 frames ([O, 1, H, W] reads as a channel axis)
    m[0, 0, 0, 0] = True
    m[1, 0, 0, 1] = True
    c = masks_to_control(m)
    assert c[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0], "object 0 gets palette entry 0 (white)"
    assert c[0, :, 0, 1].tolist() == [1.0, 0.0, 0.0], "object 1 gets palette entry 1 (red)"


def test_soft_mask_scales_the_colour():
    m = torch.tensor([[[0.0, 0.5, 1.0]]])
    c = masks_to_control(m, colors=[(1.0, 0.5, 0.0)])
    assert torch.allclose(c[0, :, 0, 1], torch.tensor([0.5, 0.25, 0.0])), "a 0.5 mask must give half the colour"
    assert torch.allclose(c[0, :, 0, 2], torch.tensor([1.0, 0.5, 0.0])), "a 1.0 mask gives the full colour"


def test_masks_to_control_rejects_bad_input_with_guidance():
    with pytest.raises(ValueError, match=r"\[F, H, W\]"):
        masks_to_control(torch.zeros(5, 5))
    with pytest.raises(ValueError, match="same"):
        masks_to_control([torch.zeros(2, 4, 4), torch.zeros(3, 4, 4)])
    with pytest.raises(ValueError, match="255"):
        masks_to_control(torch.full((1, 2, 2), 255, dtype=torch.uint8))
    with pytest.raises(ValueError, match="colors"):
        masks_to_control(torch.zeros(len(CONTROL_PALETTE) + 1, 2, 2, 2))


def test_renders_pass_through_in_either_layout():
    x = torch.rand(3, 3, 4, 5)
    assert torch.equal(renders_to_control(x), x), "FCHW renders in [0,1] must pass through unchanged"
    assert torch.equal(renders_to_control(x.permute(0, 2, 3, 1), layout="FHWC"), x), "FHWC renders are permuted to FCHW"
    u = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    assert renders_to_control(u)[0, 0, 0].tolist() == [0.0, 1.0], "uint8 renders are divided by 255"


def test_renders_errors_name_the_problem():
    with pytest.raises(ValueError, match="FHWC"):
        renders_to_control(torch.rand(2, 4, 5, 3))  # default FCHW, looks like FHWC
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        renders_to_control(torch.rand(2, 3, 4, 4) * 2 - 1)
    with pytest.raises(ValueError, match="rank 4"):
        renders_to_control(torch.rand(3, 4, 4))


# --------------------------------------------------------------------------- geometry


def _edge_mask_video():
    """64x128 frames with a small object at the far right (columns 110..119)."""
    masks = torch.zeros(3, 64, 128, dtype=torch.bool)
    masks[:, 20:30, 110:120] = True
    return masks


def test_center_crop_cuts_a_mask_near_the_edge():
    masks = _edge_mask_video()
    _, _, out = fit_to_size(masks=masks, height=64, width=64, crop="center")
    assert out.shape == (3, 64, 64), "output must be the target size"
    assert out.sum().item() < masks.sum().item(), "centre crop keeps columns 32..95 and must lose the object at 110..119"


def test_mask_crop_keeps_a_mask_near_the_edge_fully_in_view():
    masks = _edge_mask_video()
    video = torch.rand(3, 3, 64, 128)
    v, _, out = fit_to_size(video=video, masks=masks, height=64, width=64, crop="mask")
    assert out.sum().item() == masks.sum().item(), "mask-aware crop must keep every mask pixel in view"
    # the window is clamped to the right border: columns 64..127 of the source
    assert torch.equal(v, video[..., :, 64:128]), "video must get the same crop as the masks (joint geometry)"


def test_mask_crop_with_empty_masks_falls_back_to_centre():
    masks = torch.zeros(2, 64, 128, dtype=torch.bool)
    video = torch.rand(2, 3, 64, 128)
    v, _, _ = fit_to_size(video=video, masks=masks, height=64, width=64, crop="mask")
    assert torch.equal(v, video[..., 32:96]), "with no mask pixels the crop must be the centre one"


def test_nearest_resize_keeps_masks_binary_and_dtype():
    masks = torch.zeros(2, 30, 40, dtype=torch.bool)
    masks[:, 5:17, 7:29] = True
    _, _, out = fit_to_size(masks=masks, height=64, width=64, crop="center")
    assert out.dtype == torch.bool, "bool masks must come back bool"
    soft = masks.float()
    _, _, out_f = fit_to_size(masks=soft, height=64, width=64)
    assert set(out_f.unique().tolist()) <= {0.0, 1.0}, "nearest resize must not create intermediate mask values"
    assert out_f.shape == (2, 64, 64), "masks are resized to cover 64x64 then cropped"


def test_resize_covers_target_preserving_aspect_and_bicubic_stays_in_range():
    video = (torch.rand(2, 3, 40, 60) > 0.5).float()  # hard edges make bicubic overshoot
    v, _, _ = fit_to_size(video=video, height=64, width=64)
    assert v.shape == (2, 3, 64, 64), "40x60 scaled by 1.6 covers 64x96 then crops to 64x64"
    assert v.min().item() >= 0.0 and v.max().item() <= 1.0, "bicubic output must be clamped to [0, 1]"


def test_object_masks_keep_their_rank_and_control_nearest_keeps_colours():
    masks = torch.zeros(2, 3, 32, 32, dtype=torch.bool)
    masks[0, :, 2:10, 2:10] = True
    control = masks_to_control(masks)
    _, c, m = fit_to_size(control=control, masks=masks, height=64, width=64, control_interpolation="nearest")
    assert m.shape == (2, 3, 64, 64), "[O,F,H,W] masks stay [O,F,H,W]"
    assert set(c.unique().tolist()) <= {0.0, 1.0}, "nearest control resize must not blend palette colours"


def test_fit_to_size_validates_inputs():
    with pytest.raises(ValueError, match="frames"):
        fit_to_size(video=torch.rand(3, 3, 8, 8), masks=torch.zeros(4, 8, 8), height=8, width=8)
    with pytest.raises(ValueError, match="multiple of 8"):
        fit_to_size(video=torch.rand(1, 3, 8, 8), height=250, width=384)
    with pytest.raises(ValueError, match="permute"):
        fit_to_size(video=torch.rand(1, 8, 8, 3), height=8, width=8)
    with pytest.raises(ValueError, match="crop"):
        fit_to_size(video=torch.rand(1, 3, 8, 8), height=8, width=8, crop="left")
    with pytest.raises(ValueError, match="8x8"):
        fit_to_size(video=torch.rand(1, 3, 8, 8), masks=torch.zeros(1, 8, 16), height=8, width=8)


# --------------------------------------------------------------------------- time


def test_resample_30_to_7_fps_takes_nearest_frames():
    idx = resample_frame_indices(100, 30, 7, 14)
    # k * 30/7 = 0, 4.29, 8.57, 12.86, 17.14, 21.43, 25.71, 30, 34.29, 38.57, 42.86, 47.14, 51.43, 55.71
    assert idx == [0, 4, 9, 13, 17, 21, 26, 30, 34, 39, 43, 47, 51, 56], "nearest source frame to k/7 s"
    assert resample_frame_indices(100, 30, 7, 3, start=10) == [10, 14, 19], "start offsets every index"


def test_resample_upsampling_repeats_frames():
    assert resample_frame_indices(10, 10, 20, 6) == [0, 1, 1, 2, 2, 3], "higher target fps repeats frames (ties round up)"


def test_resample_too_short_video_says_what_is_needed():
    with pytest.raises(ValueError) as e:
        resample_frame_indices(40, 30, 7, 14)
    msg = str(e.value)
    assert "57" in msg and "40" in msg, f"error must give frames needed (57) and available (40): {msg}"
    assert "num_frames" in msg and "target_fps" in msg, f"error must suggest fewer frames or another fps: {msg}"
    # 0,4,9,13,17,21,26,30,34,39 fit in 40 frames -> 10 frames at most
    assert "to 10 or less" in msg, f"error must give the largest frame count that fits: {msg}"


def test_resample_frames_applies_indices_along_dim():
    x = torch.arange(20).view(1, 20, 1, 1).expand(2, 20, 1, 1)
    y = resample_frames(x, 30, 7, 3, dim=1)
    assert y[:, :, 0, 0].tolist() == [[0, 4, 9], [0, 4, 9]], "object masks [O,F,H,W] resample along dim 1"


def test_resample_rejects_bad_arguments():
    with pytest.raises(ValueError, match="start"):
        resample_frame_indices(10, 30, 7, 2, start=10)
    with pytest.raises(ValueError, match="source_fps"):
        resample_frame_indices(10, 0, 7, 2)


# --------------------------------------------------------------------------- range


def test_normalize_control_is_exactly_two_x_minus_one():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert normalize_control(x).tolist() == [-1.0, -0.5, 0.0, 1.0], "official mapping is 2x - 1"


def test_normalize_control_leaves_already_normalised_input_and_warns():
    x = torch.tensor([-1.0, 0.0, 1.0])
    with pytest.warns(UserWarning, match="already"):
        y = normalize_control(x)
    assert torch.equal(y, x), "input with negative values is taken as [-1,1] and returned unchanged (VaeImageProcessor)"


def test_normalize_control_does_not_warn_on_unit_range():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalize_control(torch.rand(2, 3, 4, 4))


# --------------------------------------------------------------------------- pipeline


def test_prepare_control_from_masks_gives_model_size_and_frame_count():
    masks = np.zeros((60, 48, 64), dtype=bool)
    masks[:, 10:20, 50:60] = True
    c = prepare_control(masks=masks, source_fps=30, target_fps=7, num_frames=14, height=64, width=96)
    assert c.shape == (14, 3, 64, 96), "14 frames at 64x96"
    assert set(c.unique().tolist()) == {0.0, 1.0}, "mask control must stay exactly white on black"


def test_prepare_control_from_fhwc_renders():
    renders = torch.rand(20, 40, 60, 3)
    c = prepare_control(renders=renders, layout="FHWC", source_fps=7, num_frames=5, height=64, width=96)
    assert c.shape == (5, 3, 64, 96), "renders resampled to 5 frames and fitted to 64x96"
    assert 0.0 <= c.min().item() and c.max().item() <= 1.0, "control stays in [0, 1]"


def test_prepare_control_needs_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        prepare_control(source_fps=7)
