"""training.data.folder: the ROOT/<id>/video + mask_hand (+ mask_<object>) layout, on tiny files written here."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interdyn.data.video_io import write_video
from training.config import load_config
from training.data.datasets import build_dataset, collate_samples
from training.data.folder import FolderClips
from interdyn.data.synthetic import random_scene, write_scene_folder

H, W = 64, 96  # source size; the dataset crops 64x64 out of it (scale 1: pixel values stay exact)
HAND_COLS = (70, 90)


def write_clip(folder, *, frames: int = 24, fps: float = 12, size=(H, W), ext: str = ".mp4", masks: bool = True,
               mask_frames: int | None = None, label: str | None = None):
    """Frame k is uniformly grey 10*k; the hand is a square near the right edge moving down."""
    h, w = size
    video = np.repeat((np.arange(frames, dtype=np.uint8) * 10)[:, None, None, None], 3, axis=3)
    video = np.broadcast_to(video, (frames, h, w, 3)).copy()
    write_video(folder / f"video{ext}", video, fps, lossless=True)
    if masks:
        n = mask_frames or frames
        hand = np.zeros((n, h, w), bool)
        cup = np.zeros((n, h, w), bool)
        for k in range(n):
            top = min(k, h - 21)
            hand[k, top:top + 20, min(HAND_COLS[0], w - 21):min(HAND_COLS[1], w - 1)] = True
            cup[k, 40:50, 40:50] = True
        write_video(folder / f"mask_hand{ext}", hand, fps, lossless=True)
        write_video(folder / f"mask_cup{ext}", cup, fps, lossless=True)
    if label is not None:
        (folder / "label.txt").write_text(label)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for name in ("good", "webm_clip", "short", "small", "nomask", "mismatch"):
        (root / name).mkdir()
    write_clip(root / "good", label="pushing cup to the left")
    write_clip(root / "webm_clip", frames=10, fps=6, ext=".webm")
    write_clip(root / "short", frames=6)           # 4 frames at 6 fps from 12 fps need 7 source frames
    write_clip(root / "small", size=(32, 48))
    write_clip(root / "nomask", masks=False)
    write_clip(root / "mismatch", mask_frames=20)
    return root


def make(root, **kw):
    kw = {"num_frames": 4, "height": 64, "width": 64, "fps": 6, "seed": 0, "min_height": 48, "min_width": 48, **kw}
    with pytest.warns(UserWarning, match="skipped 4 clip folders"):
        return FolderClips(root, **kw)


def test_unusable_clips_are_skipped_with_reasons(root):
    ds = make(root)
    assert [e.id for e in ds.entries] == ["good", "webm_clip"], "only the usable clips remain (mp4 and webm)"
    reasons = {ids[0]: reason for reason, ids in ds.skipped.items()}
    assert "too short" in reasons["short"], f"a clip shorter than 4 frames at 6 fps is skipped: {reasons}"
    assert "smaller than 48x48" in reasons["small"], f"a 32x48 clip is skipped: {reasons}"
    assert "mask_hand" in reasons["nomask"], f"a clip without mask_hand is skipped: {reasons}"
    assert "lengths differ" in reasons["mismatch"], f"masks must cover every video frame: {reasons}"


def test_sample_has_the_common_format_and_resampled_frames(root):
    ds = make(root)
    sample = ds[0]
    frames, control, meta = sample["frames"], sample["control"], sample["meta"]
    assert frames.shape == control.shape == (4, 3, 64, 64) and frames.dtype == torch.float32, \
        f"frames and control are [F, 3, H, W] float: {frames.shape}, {control.shape}"
    assert meta["source"] == "good" and meta["label"] == "pushing cup to the left" and meta["fps"] == 6, \
        f"meta: source id, label, fps after resampling: {meta}"
    start = meta["start_frame"]
    grey = [round(float(frames[k].mean()) * 255) for k in range(4)]
    assert grey == [10 * (start + 2 * k) for k in range(4)], \
        f"12 -> 6 fps takes every second frame from the start frame {start}: grey levels {grey}"
    assert set(meta["masks"]) == {"hand", "cup"}, "object masks are passed on in meta"
    hand = meta["masks"]["hand"]
    assert hand.dtype == torch.bool and hand.any(), "the hand mask is a bool [F, H, W] tensor"
    assert torch.equal(control, hand[:, None].expand(-1, 3, -1, -1).float()), \
        "control = the hand mask in white on black"
    batch = collate_samples([ds[0], ds[1]])
    assert batch["frames"].shape == (2, 4, 3, 64, 64) and len(batch["meta"]) == 2, "collate stacks samples"


def test_mask_crop_keeps_the_hand_in_view(root):
    hand_area = 20 * (HAND_COLS[1] - HAND_COLS[0])
    seen = {}
    for crop in ("mask", "center"):
        ds = make(root, crop=crop)
        seen[crop] = int(ds[0]["meta"]["masks"]["hand"][0].sum())
    assert seen["mask"] == hand_area, f"crop='mask' keeps the whole hand: {seen['mask']} of {hand_area} pixels"
    assert seen["center"] < hand_area, f"a centre crop would cut the hand near the edge: {seen['center']}"


def test_random_start_is_seeded_per_clip_and_epoch(root):
    ds, again = make(root), make(root)
    n = len(ds)
    starts = [ds.frame_indices(0, epoch)[0] for epoch in range(12)]
    assert starts == [again.frame_indices(0, epoch)[0] for epoch in range(12)], "same seed, same starts"
    assert len(set(starts)) > 2, f"the start frame varies between epochs: {starts}"
    assert all(0 <= s <= 24 - 7 for s in starts), f"every start leaves room for the resampled clip: {starts}"
    assert ds[n * 5]["meta"]["start_frame"] == starts[5], "sampler key epoch*n + i selects clip i in that epoch"
    other = make(root, seed=1)
    assert [other.frame_indices(0, e)[0] for e in range(12)] != starts, "another seed, other starts"


def test_reads_the_synthetic_scene_folder_layout(tmp_path):
    scene = random_scene(3, size=(64, 64), num_frames=8)
    write_scene_folder(scene, tmp_path / "scene3")
    ds = FolderClips(tmp_path, num_frames=8, height=64, width=64, fps=6)
    sample = ds[0]
    assert sample["frames"].shape == (8, 3, 64, 64), "a synthetic scene folder is a valid clip"
    objects = {n for n, d in zip(scene.names, scene.driven.tolist()) if not d}
    assert set(sample["meta"]["masks"]) == {"hand"} | objects, "mask_<object> files become object masks"
    assert torch.equal(sample["meta"]["masks"]["hand"], scene.hand_mask), "lossless masks read back exactly"


def test_build_dataset_selects_the_folder_loader(root):
    config = load_config(None, {"pretrained_model": "tiny", "dataset": "folder", "data_root": str(root),
                                "num_frames": 4, "height": 64, "width": 64, "min_source_height": 48,
                                "min_source_width": 48})
    with pytest.warns(UserWarning, match="skipped"):
        ds = build_dataset(config)
    assert isinstance(ds, FolderClips) and len(ds) == 2, "dataset: folder + data_root build a FolderClips"
