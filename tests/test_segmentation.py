"""SAM2 video masks: loader, prompts, tracking with a random-weight tiny predictor on CPU."""
from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("sam2", reason="SAM2 is not installed (SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2)")

from interdyn.data.segmentation import (  # noqa: E402
    ObjectPrompt,
    build_sam2_video_predictor_random,
    load_sam2_video_predictor,
    parse_prompts,
    sam2_config_for_checkpoint,
    segment_video,
)

TINY = "configs/sam2.1/sam2.1_hiera_t.yaml"


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    return build_sam2_video_predictor_random(TINY, device="cpu", image_size=256)


def _frames_uint8(num_frames=4, size=64):
    """A white square moving right on a dark background, [F, H, W, 3] uint8."""
    f = torch.full((num_frames, size, size, 3), 20, dtype=torch.uint8)
    for i in range(num_frames):
        f[i, 20:36, 8 + 4 * i : 24 + 4 * i] = 255
    return f


def test_segment_video_two_objects_box_and_points(predictor, tmp_path):
    frames = _frames_uint8()
    calls = []
    prompts = [
        {"box": [8, 20, 24, 36]},
        {"points": [[50, 50], [5, 5]], "labels": [1, 0]},
    ]
    masks = segment_video(predictor, frames, prompts, tmp_dir=tmp_path, progress=lambda d, t: calls.append((d, t)))
    assert masks.shape == (2, 4, 64, 64), "masks are [objects, frames, H, W] at the input resolution"
    assert masks.dtype == torch.bool, "masks are returned as bool"
    assert list(tmp_path.iterdir()) == [], "the temporary JPEG folder must be removed"
    assert calls and calls[-1] == (4, 4), "progress must report every frame of a forward pass"


def test_segment_video_from_float_fchw_and_later_prompt_frame(predictor, tmp_path):
    frames = _frames_uint8(3).permute(0, 3, 1, 2).float() / 255.0
    calls = []
    masks = segment_video(
        predictor, frames, '[{"box": [10, 20, 30, 36], "points": [[15, 28]]}]', prompt_frame=1,
        tmp_dir=tmp_path, progress=lambda d, t: calls.append((d, t)),
    )
    assert masks.shape == (1, 3, 64, 64) and masks.dtype == torch.bool, "float [F,3,H,W] input gives [O,F,H,W] bool"
    # forward from frame 1 visits frames 1,2; backward visits 1,0: 4 steps
    assert calls[-1] == (4, 4), "a prompt on frame 1 must propagate forward and then backward to frame 0"
    assert list(tmp_path.iterdir()) == [], "the temporary JPEG folder must be removed"


def test_segment_video_rejects_prompts_outside_the_frame(predictor):
    with pytest.raises(ValueError, match="outside the 64x64"):
        segment_video(predictor, _frames_uint8(2), [{"box": [0, 0, 100, 30]}])
    with pytest.raises(ValueError, match="prompt_frame"):
        segment_video(predictor, _frames_uint8(2), [{"box": [0, 0, 10, 10]}], prompt_frame=2)


def test_pt_checkpoint_round_trip_through_loader(predictor, tmp_path):
    sd = predictor.state_dict()
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": sd}, path)
    loaded = load_sam2_video_predictor(path, device="cpu", image_size=256)
    name = "sam_mask_decoder.iou_prediction_head.layers.0.weight"
    assert torch.equal(loaded.state_dict()[name], sd[name]), "weights must come from the checkpoint, not a fresh init"
    assert loaded.image_size == 256, "image_size override must reach the model"


def test_loader_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "sam2.1_hiera_tiny.pt"
    with pytest.raises(FileNotFoundError, match="sam2.1_hiera_tiny.pt"):
        load_sam2_video_predictor(missing)


def test_config_inferred_from_checkpoint_name():
    assert sam2_config_for_checkpoint("/m/sam2.1_hiera_tiny.pt") == "configs/sam2.1/sam2.1_hiera_t.yaml", "tiny -> t"
    assert sam2_config_for_checkpoint("sam2.1_hiera_base_plus.pt") == "configs/sam2.1/sam2.1_hiera_b+.yaml", "base_plus -> b+"
    assert sam2_config_for_checkpoint("sam2.1_hiera_large-fp16.safetensors") == "configs/sam2.1/sam2.1_hiera_l.yaml", "suffixes are ignored"
    assert sam2_config_for_checkpoint("sam2_hiera_small.pt") == "configs/sam2/sam2_hiera_s.yaml", "SAM 2.0 names use configs/sam2"
    with pytest.raises(ValueError, match="config_name"):
        sam2_config_for_checkpoint("my_model.pt")


def test_parse_prompts_valid():
    p = parse_prompts('[{"box": [1, 2, 3, 4]}, {"points": [[5, 6]], "labels": [0]}]')
    assert p == [ObjectPrompt(box=(1.0, 2.0, 3.0, 4.0)), ObjectPrompt(points=((5.0, 6.0),), labels=(0,))], "one prompt per object"
    assert parse_prompts('{"points": [[1, 1]]}')[0].labels == (1,), "a single object is accepted and labels default to positive"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[{\"box\": [1, 2, 3]}]", "4 numbers"),
        ("[{\"bbox\": [1, 2, 3, 4]}]", "unknown key"),
        ("[{\"points\": [[1, 2]], \"labels\": [1, 1]}]", "one 1/0 per point"),
        ("[{\"points\": [[1, 2]], \"labels\": [2]}]", "labels[0]"),
        ("[{\"box\": [3, 2, 1, 4]}]", "x1 > x0"),
        ("[{}]", "box"),
        ("[{\"box\": [1, 2, 3, 4]},", "not valid JSON"),
        ("[]", "non-empty"),
    ],
)
def test_parse_prompts_errors_say_what_and_show_an_example(text, fragment):
    with pytest.raises(ValueError) as e:
        parse_prompts(text)
    msg = str(e.value)
    assert fragment in msg, f"error for {text!r} must say what was wrong ({fragment!r}): {msg}"
    if fragment != "x1 > x0":
        example = msg[msg.index("Example: ") + len("Example: "):]
        json.loads(example)  # the example in the message must itself be valid JSON
