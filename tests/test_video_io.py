"""interdyn.data.video_io: write -> read round trips, frame rates, layouts, atomic writes, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interdyn.data import video_io
from interdyn.data.video_io import VideoReadError, read_video, read_video_frames, write_video


def smooth_clip(frames: int = 8, height: int = 32, width: int = 48) -> np.ndarray:
    """uint8 [F, H, W, 3]: a colour gradient with a moving square (content a codec handles well)."""
    y, x = np.mgrid[0:height, 0:width]
    out = np.empty((frames, height, width, 3), np.uint8)
    for f in range(frames):
        out[f, ..., 0] = 40 + 150 * x / width
        out[f, ..., 1] = 60 + 120 * y / height
        out[f, ..., 2] = 120
        out[f, 8:18, 4 + 3 * f:14 + 3 * f] = (230, 200, 40)
    return out


def random_masks(frames: int = 6, height: int = 33, width: int = 31, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((frames, height, width)) > 0.5


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("name", ["m.mp4", "m.mkv", "m.webm", "m.gif", "m"])
def test_lossless_masks_round_trip_exactly(tmp_path, name):
    masks = random_masks()
    write_video(tmp_path / name, masks, 7, lossless=True)
    frames, fps = read_video(tmp_path / name)
    expected = np.repeat(masks[..., None], 3, axis=-1).astype(np.uint8) * 255
    assert frames.shape == expected.shape, f"{name}: lossless masks must come back with their shape (odd size 33x31)"
    assert np.array_equal(frames, expected), f"{name}: lossless=True must store masks bit-exactly"
    assert fps == pytest.approx(7.0), f"{name}: the frame rate written must be read back"


@pytest.mark.parametrize("name", ["c.mp4", "c.mkv", "c.webm", "c"])
def test_lossless_colour_frames_round_trip_exactly(tmp_path, name):
    frames = np.random.default_rng(1).integers(0, 256, (4, 16, 20, 3), dtype=np.uint8)
    write_video(tmp_path / name, frames, 6, lossless=True)
    back, _ = read_video(tmp_path / name)
    assert np.array_equal(back, frames), f"{name}: lossless RGB codecs (x264rgb/ffv1/vp9 gbrp/png) must be exact"


@pytest.mark.parametrize("name", ["v.mp4", "v.webm", "v.mov"])
def test_lossy_video_round_trip_is_close(tmp_path, name):
    clip = smooth_clip()
    write_video(tmp_path / name, clip, 7)
    back, fps = read_video(tmp_path / name)
    assert back.shape == clip.shape, f"{name}: frame count and size must survive the round trip"
    # yuv420p alone (no codec) gives ~31.8 dB on this clip's sharp colour edges; crf 18 adds little
    assert psnr(back, clip) > 30.0, f"{name}: crf 18 must be close to the 4:2:0 conversion limit"
    assert fps == pytest.approx(7.0), f"{name}: fps must be preserved"


@pytest.mark.parametrize("fps", [6.0, 29.97, 30000 / 1001, 12.5])
def test_fps_is_preserved(tmp_path, fps):
    write_video(tmp_path / "f.mp4", smooth_clip(frames=3), fps)
    _, back = read_video(tmp_path / "f.mp4")
    assert back == pytest.approx(fps, rel=1e-6), "the stream rate must be the fps we wrote"


def test_gif_keeps_exact_fps_and_few_colour_frames(tmp_path):
    clip = np.zeros((5, 10, 12, 3), np.uint8)
    for f in range(5):
        clip[f, 2:6, f:f + 4] = (200, 30, 30)
    write_video(tmp_path / "a.gif", clip, 7)
    back, fps = read_video(tmp_path / "a.gif")
    assert np.array_equal(back, clip), "a GIF with <= 256 colours is stored with an exact palette"
    assert fps == pytest.approx(7.0), "GIF durations are 1/100 s; the exact fps travels in the comment"


def grey_clip(frames: int = 4, height: int = 31, width: int = 45) -> np.ndarray:
    """Achromatic content with sharp edges: 4:2:0 chroma loss plays no part, a shift would."""
    x = np.arange(width)[None, :, None]
    out = np.empty((frames, height, width, 3), np.uint8)
    for f in range(frames):
        out[f] = 40 + 100 * x // width
        out[f, 8:18, 4 + 3 * f:14 + 3 * f] = 220
    return out


@pytest.mark.parametrize("name", ["o.mp4", "o.webm", "o.mkv"])
def test_odd_sizes_come_back_with_their_size(tmp_path, name):
    clip = grey_clip()
    write_video(tmp_path / name, clip, 7)
    back, _ = read_video(tmp_path / name)
    assert back.shape == clip.shape, f"{name}: odd sizes (padded for yuv420p) must be cropped back on read"
    # ~47 dB in place; a one-pixel shift of these edges would give ~23 dB
    assert psnr(back, clip) > 40.0, f"{name}: padding must not shift or damage the picture"


def test_both_layouts_and_float_torch_input_write_the_same_video(tmp_path):
    clip = np.random.default_rng(2).integers(0, 256, (3, 8, 10, 3), dtype=np.uint8)
    as_float_fchw = torch.from_numpy(clip).permute(0, 3, 1, 2).float() / 255.0
    write_video(tmp_path / "a", clip, 6)
    write_video(tmp_path / "b", as_float_fchw, 6)
    a, _ = read_video(tmp_path / "a")
    b, _ = read_video(tmp_path / "b")
    assert np.array_equal(a, clip), "uint8 [F, H, W, 3] frames are written as they are"
    assert np.array_equal(b, clip), "float [F, 3, H, W] torch frames (x/255) must give the same 8-bit frames"


def test_ambiguous_layout_is_refused_unless_given(tmp_path):
    clip = np.zeros((2, 3, 8, 3), np.uint8)  # [F, 3, H, 3]: could be either layout
    with pytest.raises(ValueError, match="ambiguous"):
        write_video(tmp_path / "x", clip, 6)
    write_video(tmp_path / "x", clip, 6, layout="FHWC")
    back, _ = read_video(tmp_path / "x")
    assert back.shape == (2, 3, 8, 3), "an explicit layout must resolve the ambiguity"


def fail_on_third_frame(monkeypatch, module, name):
    """Make ``module.name`` raise on its third call (the first two frames are already written)."""
    real = getattr(module, name)
    calls = {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)
    return calls


@pytest.mark.parametrize("name", ["v.mkv", "v.mp4"])
def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch, name):
    import av

    target = tmp_path / name
    write_video(target, smooth_clip(frames=2), 7, lossless=True)
    before = target.read_bytes()
    calls = fail_on_third_frame(monkeypatch, av.VideoFrame, "from_ndarray")
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_video(target, smooth_clip(frames=6), 7, lossless=True)
    calls["n"] = 0
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_video(tmp_path / f"new{target.suffix}", smooth_clip(frames=6), 7, lossless=True)
    assert target.read_bytes() == before, "a failed rewrite must leave the previous file untouched"
    assert not (tmp_path / f"new{target.suffix}").exists(), "a failed write must not leave a half-written file"
    assert leftovers(tmp_path) == [], "the partly written temporary file must be removed after a failure"


def test_failed_frame_folder_write_leaves_nothing(tmp_path, monkeypatch):
    from PIL import Image

    fail_on_third_frame(monkeypatch, Image.Image, "save")
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_video(tmp_path / "seq", smooth_clip(frames=6), 7)
    assert list(tmp_path.iterdir()) == [], "a failed folder write must leave neither the folder nor its temporary"


def test_invalid_frames_fail_before_touching_the_disk(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_video(tmp_path / "n.mp4", np.full((2, 4, 4, 3), np.nan, np.float32), 7)
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "n.mp4", smooth_clip(frames=1), 0)
    assert list(tmp_path.iterdir()) == [], "validation errors must not create files"


def test_unsupported_extension_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"\.avi"):
        write_video(tmp_path / "x.avi", smooth_clip(frames=1), 7)


def test_missing_file_error_names_the_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_video(missing)


def test_unreadable_file_says_so(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(VideoReadError, match="bad.mp4"):
        read_video(bad)


def test_frame_folder_is_sorted_numerically(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for n in (10, 2, 1):  # lexicographic order would be 1, 10, 2
        Image.fromarray(np.full((4, 5, 3), n, np.uint8)).save(folder / f"{n}.png")
    frames, fps = read_video(folder, fps=5)
    assert [int(f[0, 0, 0]) for f in frames] == [1, 2, 10], "frames must be ordered by their number"
    assert fps == 5.0, "a folder without fps.txt takes the fps argument"
    with pytest.raises(VideoReadError, match="fps"):
        read_video(folder)
    only = read_video_frames(folder, [2])
    assert int(only[0, 0, 0, 0]) == 10, "read_video_frames on a folder needs no frame rate"


def test_read_video_frames_picks_indices(tmp_path):
    clip = smooth_clip(frames=6)
    write_video(tmp_path / "v.mkv", clip, 7, lossless=True)
    picked = read_video_frames(tmp_path / "v.mkv", [4, 0, 4, -1])
    assert np.array_equal(picked, clip[[4, 0, 4, 5]]), "indices may repeat, be unsorted or count from the end"
    with pytest.raises(IndexError, match="6 frames"):
        read_video_frames(tmp_path / "v.mkv", [6])


def test_as_tensor_returns_uint8_torch(tmp_path):
    write_video(tmp_path / "v", smooth_clip(frames=2), 7)
    frames, _ = read_video(tmp_path / "v", as_tensor=True)
    assert isinstance(frames, torch.Tensor) and frames.dtype == torch.uint8, "as_tensor gives a uint8 tensor"
    assert tuple(frames.shape) == (2, 32, 48, 3), "as_tensor keeps the [F, H, W, 3] layout"


def test_writing_over_a_png_folder_replaces_it(tmp_path):
    write_video(tmp_path / "seq", smooth_clip(frames=5), 7)
    write_video(tmp_path / "seq", smooth_clip(frames=2), 9)
    frames, fps = read_video(tmp_path / "seq")
    assert len(frames) == 2 and fps == 9.0, "a rewritten frame folder must not keep frames of the old one"
    assert leftovers(tmp_path) == [], "no temporary or old folder may be left behind"


def test_module_has_no_comfy_import():
    import inspect

    assert "comfy" not in inspect.getsource(video_io), "the library must never import ComfyUI"
