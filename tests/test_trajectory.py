"""Mask trajectories: keyframes -> per-frame placement -> warped mask sequence."""
from __future__ import annotations

import math
import re
from pathlib import Path

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


# ---------------------------------------------------------------------------- one exception per fault, in the caller's names
def test_every_keyframe_fault_is_an_input_error_naming_the_input():
    """Issue 35: keyframe faults were ValueError where coordinate faults were InputError."""
    from interdyn.support.validation import InputError

    for text in ("", "[", '[{"x": 1}]', '[{"frame": 2}, {"frame": 1}]', '[{"frame": 0, "easing": "x"}]',
                 '{"size": [0, 4], "keyframes": [{"frame": 0}]}', '{"keyframes": [], "colour": 1}'):
        with pytest.raises(InputError) as err:
            parse_keyframes(text, name="path")
        assert str(err.value).startswith("path"), f"{text!r}: the message starts with the caller's name: {err.value}"


@pytest.mark.parametrize("key, value, fragment", [
    ("x", 1e308, "x must be between -1e+06 and 1e+06 pixels"),
    ("y", -1e308, "y must be between -1e+06 and 1e+06 pixels"),
    ("scale", 1e-308, "scale must be between 0.001 and 1000"),
    ("scale", 1e308, "scale must be between 0.001 and 1000"),
    ("rotation", 1e308, "rotation must be between"),
])
def test_finite_but_extreme_keyframe_values_are_refused_before_they_make_a_nan_mask(key, value, fragment):
    """Issue 34 item 8: "x": 1e308 or "scale": 1e-308 gave NaN masks; the keyframes are refused, named."""
    from interdyn.support.validation import InputError

    with pytest.raises(InputError, match=re.escape(fragment)) as err:
        animate_mask(_square(), [{"frame": 0}, {"frame": 2, key: value}], 3)
    assert str(err.value).startswith("keyframes: keyframe 1."), str(err.value)
    # just inside the bounds, the masks are finite
    inside = {"x": 1e6, "y": -1e6, "scale": 1e-3 if value < 1 else 1e3, "rotation": 1e6}[key]
    out = animate_mask(_square(), [{"frame": 0}, {"frame": 2, key: inside}], 3)
    assert bool(torch.isfinite(out).all()), f"{key} = {inside} (the bound) keeps every value finite"


def test_a_mask_with_one_nan_pixel_is_refused_naming_it():
    from interdyn.support.validation import InputError

    m = _square()
    m[3, 3] = float("nan")
    with pytest.raises(InputError, match="^driver holds 1 NaN or infinite value"):
        animate_mask(m, '[{"frame": 0}]', 3, names={"mask": "driver"})


# ---------------------------------------------------------------------------- the picture size the keys were drawn on
def test_keys_drawn_on_another_picture_size_keep_their_place_in_the_picture():
    """{"size": [W, H], "keyframes": [...]} (the Drive Editor's form): x scales with the width, y with the height."""
    m = torch.zeros(64, 128)
    m[28:36, 12:20] = 1  # centre (16, 32)
    keys = '{"size": [64, 32], "keyframes": [{"frame": 0}, {"frame": 2, "x": 20, "y": 10}]}'
    out = animate_mask(m, keys, 3, interpolation="nearest")
    assert mask_pivot(out[2]) == (16 + 40.0, 32 + 20.0), "x * 128/64, y * 64/32"
    same = animate_mask(m, '{"size": [128, 64], "keyframes": [{"frame": 0}, {"frame": 2, "x": 20, "y": 10}]}', 3,
                        interpolation="nearest")
    assert mask_pivot(same[2]) == (36.0, 42.0), "at its own size: pixels as written"
    old = animate_mask(m, '[{"frame": 0}, {"frame": 2, "x": 20, "y": 10}]', 3, interpolation="nearest")
    assert torch.equal(old, same), "without size (old workflows): pixels of the mask's image, as before"


def test_fit_keyframes_scales_only_the_offsets():
    from interdyn.data.trajectory import Keyframe, fit_keyframes

    keys = [Keyframe(0), Keyframe(5, x=10, y=-4, scale=2, rotation=30, easing="hold")]
    assert fit_keyframes(keys, (100, 50), 200, 200) == [Keyframe(0), Keyframe(5, 20, -16, 2, 30, "hold")]
    assert fit_keyframes(keys, None, 200, 200) == keys and fit_keyframes(keys, (200, 200), 200, 200) == keys


# ---------------------------------------------------------------------------- warnings of a run
def test_keys_past_the_last_frame_are_a_warning_not_an_error():
    from interdyn.data.trajectory import animate_drive

    made = animate_drive(_square(), '[{"frame": 0}, {"frame": 8, "x": 4}, {"frame": 12, "x": 8}]', 8,
                         names={"num_frames": "frames"})
    assert made.masks.shape[0] == 8
    assert made.warnings == ["keyframes: keyframes at frame 8, 12 lie beyond the last frame (7; frames = 8): the path "
                             "is cut at frame 7 (move them earlier, or raise frames)"], made.warnings


def test_a_driver_pushed_out_of_the_picture_is_a_warning():
    """Issue 36 item 5: a track pushed the object off the bottom (area 1018 -> 229 px) without a word."""
    from interdyn.data.trajectory import animate_drive

    made = animate_drive(_square(), '[{"frame": 0}, {"frame": 5, "y": 40}]', 6)  # 8x8 at y 8..16, down 8 per frame
    areas = made.masks.sum(dim=(1, 2))
    low = [f for f in range(6) if areas[f] < 0.5 * areas[0]]
    assert low == [3, 4, 5] and len(made.warnings) == 1, (low, made.warnings)
    assert made.warnings[0].startswith("the driver leaves the picture: at frames ") and "move the keyframes" in made.warnings[0]
    assert all(str(f) in made.warnings[0] for f in (low[0], low[-1])), (low, made.warnings)


def test_a_planned_shrink_or_an_entry_into_the_picture_is_no_warning():
    from interdyn.data.trajectory import animate_drive

    shrink = animate_drive(_square(), '[{"frame": 0}, {"frame": 3, "scale": 0.3}]', 4)
    assert shrink.warnings == [], "the area drops with the keyframes' own scale: no warning"
    enter = animate_drive(_square(), '[{"frame": 0, "x": -14}, {"frame": 3}]', 4)  # starts mostly left of the picture
    assert enter.warnings == [], "a driver entering the picture: the reference is the first frame it shows in"
    gone = animate_drive(_square(), '[{"frame": 0, "x": -100}]', 3)
    assert gone.warnings and "outside the picture at every frame" in gone.warnings[0]


# ---------------------------------------------------------------------------- a track, and snapping to its start
def test_snap_to_track_start_puts_the_drivers_centre_on_the_track():
    from interdyn.data.trajectory import animate_drive

    m = _square()  # centre (8, 12)
    track = '[{"x": 20, "y": 20}, {"x": 26, "y": 20}, {"x": 26, "y": 26}]'
    follow = animate_drive(m, '[{"frame": 0}]', 3, coordinates=track, interpolation="nearest")
    snap = animate_drive(m, '[{"frame": 0}]', 3, coordinates=track, snap_to_track_start=True, interpolation="nearest")
    assert [mask_pivot(f) for f in follow.masks] == [(8, 12), (14, 12), (14, 18)], "default: the drawn place + displacement"
    assert [mask_pivot(f) for f in snap.masks] == [(20, 20), (26, 20), (26, 26)], "snapped: on the track's points"
    assert follow.track.tolist() == [[20, 20], [26, 20], [26, 26]], "the followed track, for the page to draw"
    assert torch.equal(follow.masks, animate_mask(m, '[{"frame": 0}]', 3, coordinates=track, interpolation="nearest"))


# ---------------------------------------------------------------------------- memory: the check budgets the measured peak
def test_warping_in_chunks_changes_no_value(monkeypatch):
    import interdyn.data.trajectory as trajectory

    m = torch.rand(40, 56, generator=torch.Generator().manual_seed(1))
    params = interpolate_keyframes('[{"frame": 0}, {"frame": 9, "x": 13.3, "y": -4.1, "scale": 1.7, "rotation": 33}]', 10)
    whole = warp_mask(m, params)
    monkeypatch.setattr(trajectory, "WARP_CHUNK_PIXELS", 40 * 56 * 3)  # 3 frames at a time
    assert torch.equal(warp_mask(m, params), whole), "chunks of frames: bit-identical masks"


def test_the_memory_check_refuses_what_the_measured_peak_would_exceed(monkeypatch):
    """Issue 34 item 9: the check budgeted 16 bytes per pixel-frame where the peak was about 64. It now budgets
    animation_bytes (the output, the grid, one chunk's temporaries): a request that the old count let through but the
    peak exceeds is refused, one that fits is not."""
    from interdyn.data.trajectory import animation_bytes
    from interdyn.support.validation import InputError

    frames, h, w = 4, 512, 512
    need = animation_bytes(frames, h, w)
    assert need > 16 * frames * h * w, "one chunk's temporaries alone exceed the old count at this size"
    monkeypatch.setenv("INTERDYN_MEMORY_BUDGET_GB", str((need - 1) / 1e9))
    with pytest.raises(InputError, match=r"num_frames 4 x mask height 512 x mask width 512 needs about .* GB for the "
                                         r"mask sequence alone"):
        animate_mask(torch.zeros(h, w), '[{"frame": 0}]', frames)
    monkeypatch.setenv("INTERDYN_MEMORY_BUDGET_GB", str((need + 1) / 1e9))
    assert animate_mask(torch.zeros(h, w), '[{"frame": 0}]', frames).shape == (frames, h, w)


_PEAK = """
import gc, json, sys, torch
torch.set_num_threads(1)
from interdyn.data.trajectory import animate_mask, animation_bytes
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
frames, h, w = map(int, sys.argv[1:4])
m = torch.zeros(h, w); m[h // 4:h // 2, w // 4:w // 2] = 1
keys = '[{"frame": 0}, {"frame": %d, "x": 30, "y": 10, "scale": 1.5, "rotation": 40}]' % (frames - 1)
animate_mask(m, keys, 2)
gc.collect()
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
base = status("VmRSS:")
out = animate_mask(m, keys, frames)
print(json.dumps({"peak": status("VmHWM:") - base, "budget": animation_bytes(frames, h, w)}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="measures the peak RSS through Linux's /proc")
@pytest.mark.parametrize("size", [(24, 256, 256), (3, 1024, 1024)])
def test_the_measured_peak_of_mask_animation_is_within_the_budget(size, tmp_path):
    """The real peak resident memory of animate_mask over its inputs (a fresh process, /proc's VmHWM reset) stays
    within what the memory check budgets."""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _PEAK, *map(str, size)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["peak"] <= got["budget"], f"{size}: peak {got['peak'] / 1e6:.0f} MB > budget {got['budget'] / 1e6:.0f} MB"
