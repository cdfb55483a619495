"""Mask trajectories: keyframes -> per-frame placement -> warped mask sequence."""
from __future__ import annotations

import math

import pytest
import torch

from interdyn.data.trajectory import (
    Keyframe,
    animate_mask,
    ease,
    interpolate_keyframes,
    mask_pivot,
    parse_keyframes,
    warp_mask,
)


def _square(h=32, w=32, y0=8, y1=16, x0=4, x1=12) -> torch.Tensor:
    m = torch.zeros(h, w)
    m[y0:y1, x0:x1] = 1.0
    return m


def _bbox(m: torch.Tensor, thr: float = 0.5) -> tuple[int, int, int, int]:
    rows = torch.nonzero((m > thr).any(dim=1)).flatten()
    cols = torch.nonzero((m > thr).any(dim=0)).flatten()
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def test_parse_keyframes_fills_defaults():
    keys = parse_keyframes('[{"frame": 0}, {"frame": 5, "x": 3, "easing": "hold"}]')
    assert keys[0] == Keyframe(frame=0), "missing values default to no motion: x=y=0, scale 1, rotation 0, linear"
    assert keys[1].x == 3.0 and keys[1].easing == "hold"


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("[{\"frame\": 0", "not valid JSON"),
    ("[{\"x\": 1}]", "needs a \"frame\""),
    ("[{\"frame\": 2}, {\"frame\": 2}]", "increase strictly"),
    ("[{\"frame\": 0, \"scale\": 0}]", "scale must be > 0"),
    ("[{\"frame\": 0, \"easing\": \"bounce\"}]", "easing must be one of"),
    ("[{\"frame\": 0, \"speed\": 1}]", "unknown key"),
    ("[{\"frame\": -1}]", "integer >= 0"),
])
def test_parse_keyframes_errors_say_what_is_wrong(text, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_keyframes(text)


def test_easing_curves_start_at_0_end_at_1_and_bend_the_right_way():
    for name in ("linear", "ease_in", "ease_out", "ease_in_out"):
        assert float(ease(0.0, name)) == 0.0 and float(ease(1.0, name)) == 1.0, f"{name} must map 0->0 and 1->1"
    assert float(ease(0.5, "ease_in")) < 0.5 < float(ease(0.5, "ease_out")), "ease_in starts slow, ease_out fast"
    assert float(ease(0.5, "ease_in_out")) == pytest.approx(0.5), "ease_in_out is symmetric"
    assert float(ease(0.99, "hold")) == 0.0, "hold keeps the keyframe's value until the next one"


def test_interpolation_linear_between_keys_and_held_outside():
    params = interpolate_keyframes([{"frame": 2, "x": 0}, {"frame": 6, "x": 8, "rotation": 40}], 9)
    assert params[:3, 0].tolist() == [0, 0, 0], "before the first keyframe its values hold"
    assert params[4, 0].item() == pytest.approx(4.0), "halfway between keys, linear easing gives half the offset"
    assert params[4, 3].item() == pytest.approx(20.0)
    assert params[6:, 0].tolist() == [8, 8, 8], "after the last keyframe its values hold"


def test_scale_interpolates_geometrically():
    params = interpolate_keyframes([{"frame": 0, "scale": 1}, {"frame": 2, "scale": 4}], 3)
    assert params[1, 2].item() == pytest.approx(2.0), "a steady zoom from 1x to 4x passes 2x halfway"


def test_single_keyframe_is_a_static_placement():
    params = interpolate_keyframes([{"frame": 0, "x": 5, "y": -2}], 3)
    assert params[:, :2].tolist() == [[5, -2]] * 3


def test_translation_moves_the_mask_by_whole_pixels_exactly():
    m = _square()
    out = warp_mask(m, torch.tensor([[0.0, 0, 1, 0], [6.0, 3.0, 1, 0]]), interpolation="nearest")
    assert torch.equal(out[0], m), "the identity placement returns the mask unchanged"
    assert _bbox(out[1]) == (10, 11, 18, 19), "x=6, y=3 shifts the box right by 6 and down by 3"


def test_bilinear_identity_is_exact_and_values_stay_in_unit_range():
    m = _square()
    out = warp_mask(m, torch.tensor([[0.0, 0, 1, 0], [2.5, 1.5, 1.3, 17.0]]))
    assert torch.allclose(out[0], m, atol=1e-6), "sampling at pixel centres with no motion is exact"
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_scale_pivots_on_the_box_centre():
    m = _square()
    out = warp_mask(m, torch.tensor([[0.0, 0, 2, 0]]), interpolation="nearest")[0]
    assert _bbox(out) == (0, 4, 16, 20), "an 8x8 box centred at (8, 12) scaled 2x covers x 0..16, y 4..20"


def test_rotation_is_clockwise_on_screen():
    m = torch.zeros(33, 33)
    m[16, 16:30] = 1.0  # a bar pointing right from the centre
    m[15:18, 15:18] = 1.0
    out = warp_mask(m, torch.tensor([[0.0, 0, 1, 90]]), pivot=(16.5, 16.5), interpolation="nearest")[0]
    assert out[25, 16] == 1 and out[16, 25] == 0, "90 degrees clockwise (y down) turns a right-pointing bar downward"


def test_animate_mask_returns_a_sequence_of_the_input_size():
    m = _square(32, 48)
    seq = animate_mask(m, '[{"frame": 0}, {"frame": 3, "x": 12, "easing": "ease_in_out"}]', 4)
    assert seq.shape == (4, 32, 48) and seq.dtype == torch.float32
    xs = [_bbox(f)[0] for f in seq]
    assert xs[0] == 4 and xs[-1] == 16 and xs == sorted(xs), "the mask moves monotonically from x=4 to x=16"


def test_mask_pivot_of_empty_mask_is_the_image_centre():
    assert mask_pivot(torch.zeros(10, 20)) == (10.0, 5.0)
    assert mask_pivot(_square()) == (8.0, 12.0)


def test_warp_rejects_wrong_mask_shapes_and_ranges():
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        warp_mask(torch.zeros(2, 8, 8), torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        warp_mask(torch.full((8, 8), 2.0), torch.tensor([[0.0, 0, 1, 0]]))
    with pytest.raises(ValueError, match="interpolation"):
        warp_mask(torch.zeros(8, 8), torch.tensor([[0.0, 0, 1, 0]]), interpolation="cubic")


def test_bool_masks_are_accepted():
    out = animate_mask(_square() > 0, [{"frame": 0, "x": 1}], 2, interpolation="nearest")
    assert out.dtype == torch.float32 and math.isclose(float(out[1].sum()), 64.0), "a shifted binary mask keeps its area"
