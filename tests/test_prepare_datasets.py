"""Dataset preparers (training/data/{ssv2,clevrer,dexycb,prepare}.py) on tiny fixtures made here."""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from interdyn.core.control import CONTROL_PALETTE
from interdyn.data.video_io import read_video, write_video
from training.data import clevrer, dexycb, ssv2
from training.data.folder import FolderClips
from training.data.prepare import build_parser, main


def _frames(n, h, w, seed=0):
    g = np.random.default_rng(seed)
    base = g.integers(40, 200, size=(1, h, w, 3), dtype=np.uint8)
    return np.repeat(base, n, 0)


def _load(root, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FolderClips(root, **kw)


# ----------------------------------------------------------------------------- SSv2
def test_ssv2_filters_pure():
    assert ssv2.template_reason("Pretending to pick [something] up") == ssv2.REASON_PRETENDING, "pretending kept"
    assert ssv2.template_reason("Putting [something] behind [something]") == ssv2.REASON_BEHIND, "behind kept"
    assert ssv2.template_reason("Pushing [something] from left to right") is None, "normal class dropped"
    assert ssv2.size_reason(240, 320, 256, 384) == ssv2.REASON_SMALL, "small video kept"
    assert ssv2.size_reason(256, 384, 256, 384) is None, "big-enough video dropped"
    assert ssv2.length_reason(20, 12, 6, 14) == ssv2.REASON_SHORT, "short video kept"
    assert ssv2.length_reason(27, 12, 6, 14) is None, "long-enough video dropped"
    hands = {0: [(1, 1, 5, 5)], 2: [(1, 1, 5, 5)]}
    objs = {0: {"0000": (2, 2, 6, 6)}, 2: {}}
    assert ssv2.visibility_reason([0, 2], hands, objs, ["0000"]) == ssv2.REASON_OBJECT, "object gap missed"
    assert ssv2.visibility_reason([0, 1], hands, objs, ["0000"]) == ssv2.REASON_HAND, "hand gap missed"
    assert ssv2.visibility_reason([0], hands, objs, ["0000"]) is None, "visible clip dropped"
    assert ssv2.visibility_reason([0], hands, objs, []) == ssv2.REASON_NO_OBJECT, "object-less clip kept"
    hands = {i: [(1, 1, 5, 5)] for i in range(10) if i != 2}
    objs = {i: {"0000": (2, 2, 6, 6)} for i in range(10)}
    assert ssv2.first_visible_start(10, [0, 2, 4], hands, objs, ["0000"]) == (1, None), "earliest valid start not found"
    assert ssv2.first_visible_start(10, [0, 2, 4], hands, objs, ["0000"], search=False) == (0, ssv2.REASON_HAND), \
        "start-0-only mode must report the gap"


def _se_frames(vid, n, *, skip_hand=(), skip_obj=()):
    out = []
    for f in range(n):
        labels = []
        if f not in skip_obj:
            labels.append({"box2d": {"x1": 60.0, "y1": 30.0, "x2": 100.0, "y2": 70.0}, "category": "blue cup",
                           "standard_category": "0000", "gt_annotation": "object 0"})
        if f not in skip_hand:
            labels.append({"box2d": {"x1": 10.0, "y1": 40.0, "x2": 50.0, "y2": 90.0}, "category": "hand",
                           "standard_category": "hand", "gt_annotation": "hand 1"})
        out.append({"name": f"{vid}/{f + 1:04d}.jpg", "labels": labels, "gt_placeholders": ["blue cup"],
                    "nr_instances": len(labels)})
    return out


@pytest.mark.filterwarnings("ignore:crop='mask'")  # random-weight SAM2 masks can exceed the crop
def test_ssv2_prepare_end_to_end(tmp_path):
    pytest.importorskip("sam2", reason="SAM2 is not installed")
    from interdyn.data.segmentation import build_sam2_video_predictor_random

    vids = tmp_path / "videos"
    write_video(vids / "1.webm", _frames(16, 96, 128), 12)          # kept
    write_video(vids / "2.webm", _frames(4, 96, 128), 12)           # too short
    write_video(vids / "3.webm", _frames(16, 48, 64), 12)           # too small
    for v in ("4", "5"):
        shutil.copy(vids / "1.webm", vids / f"{v}.webm")           # gaps in the boxes
    tpl = {"1": "Pushing [something] from left to right", "6": "Pretending to open [something]",
           "7": "Putting [something] behind [something]"}
    labels = [{"id": v, "label": tpl.get(v, tpl["1"]).replace("[something]", "blue cup"),
               "template": tpl.get(v, tpl["1"]), "placeholders": ["blue cup"]} for v in "1234567"]
    (tmp_path / "train.json").write_text(json.dumps(labels))
    boxes = {v: _se_frames(v, 16) for v in "12367"}
    # every 4-frame window (step 2, starts 0..9) of 16 frames meets a gap at 4/5 or 10/11
    boxes["4"] = _se_frames("4", 16, skip_hand=(4, 5, 10, 11))
    boxes["5"] = _se_frames("5", 16, skip_obj=(4, 5, 10, 11))
    boxes["1"] = _se_frames("1", 16, skip_hand=(1,))      # start 0 works (frames 0, 2, 4, 6)
    (tmp_path / "se.json").write_text(json.dumps(boxes))

    out = tmp_path / "out"
    predictor = build_sam2_video_predictor_random(device="cpu", image_size=256)
    summary = ssv2.prepare_ssv2(vids, ssv2.load_labels(tmp_path / "train.json"), ssv2.load_boxes(tmp_path / "se.json"),
                                out, predictor, fps=6, num_frames=4, height=64, width=96)
    reasons = summary["dropped_by_reason"]
    assert summary["kept"] == 1, f"expected only video 1 kept, got {summary}"
    expected = {ssv2.REASON_PRETENDING: 1, ssv2.REASON_BEHIND: 1, ssv2.REASON_SHORT: 1, ssv2.REASON_SMALL: 1,
                ssv2.REASON_HAND: 1, ssv2.REASON_OBJECT: 1}
    assert reasons == expected, f"drop reasons {reasons} != {expected}"
    assert json.loads((out / "summary.json").read_text()) == summary, "summary.json differs from the returned summary"
    clip = out / "1"
    for f in ("video.mp4", "mask_hand.mp4", "mask_blue_cup.mp4", "meta.json", "label.txt"):
        assert (clip / f).is_file(), f"{f} not written"
    meta = json.loads((clip / "meta.json").read_text())
    assert meta["template"] == tpl["1"] and meta["fps"] == 6.0 and meta["source_frames"] == [0, 2, 4, 6], \
        f"bad meta {meta}"
    frames, fps = read_video(clip / "video.mp4")
    assert frames.shape == (4, 64, 96, 3) and abs(fps - 6) < 1e-6, f"video {frames.shape} at {fps}"
    ds = _load(out, num_frames=4, height=64, width=96, fps=6)
    assert len(ds) == 1, f"FolderClips found {len(ds)} clips"
    sample = ds[0]
    assert sample["frames"].shape == (4, 3, 64, 96), f"sample shape {sample['frames'].shape}"
    assert set(sample["meta"]["masks"]) == {"hand", "blue_cup"}, f"masks {set(sample['meta']['masks'])}"


def test_cli_help():
    for name in ("ssv2", "clevrer", "dexycb"):
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0, f"{name} --help failed"
    args = build_parser().parse_args(["dexycb", "--root", "r", "--out", "o", "--occlusion", "amodal"])
    assert args.occlusion == "amodal" and args.fps == 7.0, f"bad parse {args}"


# ----------------------------------------------------------------------------- CLEVRER
def test_rle_matches_pycocotools_reference():
    m = np.zeros((6, 8), bool)
    m[1:4, 2:6] = True
    m[5, 7] = m[0, 0] = True
    ref = {"size": [6, 8], "counts": "01<2G00000:N"}  # pycocotools.mask.encode of this mask
    assert clevrer.rle_encode(m) == ref, f"encode {clevrer.rle_encode(m)} != {ref}"
    assert (clevrer.rle_decode(ref) == m).all(), "decode differs from the mask"
    assert (clevrer.rle_decode({"size": [2, 2], "counts": [1, 2, 1]}) == np.array([[0, 1], [1, 0]], bool)).all(), \
        "uncompressed counts decode wrong"


def _clevrer_scene(tmp, idx, *, enter_at, collision):
    h, w, n = 64, 96, 12
    write_video(tmp / "videos" / f"video_{idx:05d}.mp4", _frames(n, h, w, idx), 25)
    props = [{"object_id": 0, "color": "red", "material": "rubber", "shape": "sphere"},
             {"object_id": 1, "color": "blue", "material": "metal", "shape": "cube"}]
    ann = {"scene_index": idx, "video_filename": f"video_{idx:05d}.mp4", "object_property": props,
           "motion_trajectory": [], "collision": [{"object_ids": [0, 1], "frame_id": collision}]}
    (tmp / "ann").mkdir(exist_ok=True)
    (tmp / "ann" / f"annotation_{idx:05d}.json").write_text(json.dumps(ann))
    frames = []
    for f in range(n):
        objs = []
        still = np.zeros((h, w), bool)
        still[20:30, 40:50] = True
        objs.append({"mask": clevrer.rle_encode(still), "color": "red", "material": "rubber", "shape": "sphere",
                     "score": 0.9})
        if f >= enter_at:
            mov = np.zeros((h, w), bool)
            x = 4 * (f - enter_at)
            mov[40:50, x:x + 8] = True
            objs.append({"mask": clevrer.rle_encode(mov), "color": "blue", "material": "metal", "shape": "cube",
                         "score": 0.9})
        frames.append({"frame_filename": f"sim_{idx:05d}/frame_{f:05d}.png", "frame_index": f, "objects": objs})
    (tmp / "prop").mkdir(exist_ok=True)
    (tmp / "prop" / f"sim_{idx:05d}.json").write_text(json.dumps({"video_name": f"sim_{idx:05d}", "frames": frames}))


def test_clevrer_entering_objects_and_starts():
    masks = torch.zeros(2, 6, 4, 4, dtype=torch.bool)
    masks[0, :, 0, 0] = True
    masks[1, 3:, 1, 1] = True
    assert clevrer.entering_objects(masks, [0, 2, 4]) == [1], "object 1 enters, object 0 is there from the start"
    assert clevrer.entering_objects(masks, [3, 4, 5]) == [], "nothing enters after frame 3"
    assert clevrer.candidate_starts(20, [0, 2, 4], 5) == [0, 1, 2, 3, 4], "starts must precede the collision"
    assert clevrer.candidate_starts(20, [0, 2, 4], 0) == [], "collision at frame 0 leaves no start"


def test_clevrer_prepare_end_to_end(tmp_path):
    _clevrer_scene(tmp_path, 1, enter_at=5, collision=10)   # kept
    _clevrer_scene(tmp_path, 2, enter_at=0, collision=10)   # nothing enters
    _clevrer_scene(tmp_path, 3, enter_at=5, collision=0)    # no start before a collision
    out = tmp_path / "out"
    summary = clevrer.prepare_clevrer(tmp_path / "videos", tmp_path / "ann", tmp_path / "prop", out, num_frames=4,
                                      height=48, width=64)
    assert summary["kept"] == 1, f"expected one clip kept, got {summary}"
    assert summary["dropped_by_reason"] == {clevrer.REASON_NO_ENTERING: 1, clevrer.REASON_NO_START: 1}, \
        f"drop reasons {summary['dropped_by_reason']}"
    clip = out / "video_00001"
    meta = json.loads((clip / "meta.json").read_text())
    assert meta["controlled"] == ["blue_metal_cube"], f"controlled {meta['controlled']}"
    assert 2 <= meta["start_frame"] <= 4 and meta["start_frame"] < 10, f"start {meta['start_frame']}"
    assert (clip / "mask_red_rubber_sphere.mp4").is_file(), "stationary object mask missing"
    control, _ = read_video(clip / "control.mp4")
    hand, _ = read_video(clip / "mask_hand.mp4")
    assert control.shape == (4, 48, 64, 3), f"control shape {control.shape}"
    assert not hand[0].any(), "entering object visible on the first frame"
    on = hand[..., 0] > 127
    assert on[1:].any(), "entering object never appears"
    colour = np.round(np.asarray(CONTROL_PALETTE[0]) * 255)
    assert np.abs(control[on].astype(float) - colour).max() <= 1, "control not in palette colour 0"
    assert control[~on].max() == 0, "control not black outside the entering object"
    ds = _load(out, num_frames=4, height=48, width=64, fps=meta["fps"])
    assert len(ds) == 1 and ds[0]["frames"].shape == (4, 3, 48, 64), "FolderClips cannot load the CLEVRER output"


# ----------------------------------------------------------------------------- DexYCB
def _dex_camera(cam, n, h=64, w=96):
    from PIL import Image

    cam.mkdir(parents=True)
    for f in range(n):
        Image.fromarray(_frames(1, h, w, f)[0]).save(cam / f"color_{f:06d}.jpg")
        seg = np.zeros((h, w), np.uint8)
        seg[20:50, 20 + f:60 + f] = 255                 # hand
        seg[30:40, 30 + f:45 + f] = 3                   # object occluding the hand's middle
        seg[5:12, 80:90] = 3                            # object pixels away from the hand
        np.savez(cam / f"labels_{f:06d}.npz", seg=seg)


def test_dexycb_hand_mask_occlusion():
    seg = np.zeros((10, 10), np.uint8)
    seg[2:8, 2:8] = 255
    seg[4:6, 4:6] = 3
    seg[0, 9] = 3
    vis, amo = dexycb.hand_mask(seg, "visible"), dexycb.hand_mask(seg, "amodal")
    assert not vis[4:6, 4:6].any(), "visible mask must exclude occluding object pixels"
    assert amo[4:6, 4:6].all(), "amodal mask must include object pixels inside the hand hull"
    assert not amo[0, 9], "amodal mask must not take object pixels outside the hand hull"
    assert (amo[vis]).all(), "amodal must contain the visible hand"


def test_dexycb_prepare_end_to_end(tmp_path):
    root = tmp_path / "dex"
    seq = root / "20200709-subject-01" / "20200709_141754"
    _dex_camera(seq / "836212060125", 10)
    _dex_camera(seq / "839512060362", 3)                 # too short
    (seq / "meta.yml").write_text("ycb_ids: [3]\nycb_grasp_ind: 0\n")
    for occ in ("visible", "amodal"):
        out = tmp_path / occ
        assert main(["dexycb", "--root", str(root), "--out", str(out), "--occlusion", occ, "--fps", "15",
                     "--num-frames", "4", "--height", "48", "--width", "64"]) == 0, "dexycb CLI failed"
        summary = json.loads((out / "summary.json").read_text())
        assert summary["kept"] == 1 and summary["dropped_by_reason"] == {dexycb.REASON_SHORT: 1}, f"summary {summary}"
        clip = out / "20200709-subject-01__20200709_141754__836212060125"
        meta = json.loads((clip / "meta.json").read_text())
        assert meta["grasped"] == "004_sugar_box" and meta["source_frames"] == [0, 2, 4, 6], f"meta {meta}"
        ds = _load(out, num_frames=4, height=48, width=64, fps=15)
        s = ds[0]
        assert set(s["meta"]["masks"]) == {"hand", "004_sugar_box"}, f"masks {set(s['meta']['masks'])}"
    hv = _load(tmp_path / "visible", num_frames=4, height=48, width=64, fps=15)[0]["meta"]["masks"]["hand"]
    ha = _load(tmp_path / "amodal", num_frames=4, height=48, width=64, fps=15)[0]["meta"]["masks"]["hand"]
    assert ha.sum() > hv.sum() and bool(ha[hv].all()), "amodal hand must strictly contain the visible hand"


# ---------------------------------------------------------------------------- synthetic
def test_prepare_synthetic_writes_clips_the_folder_dataset_and_evaluation_read(tmp_path):
    """`interdyn prepare synthetic` is how to try evaluation without downloading a dataset: its clips must load
    in FolderClips with the scene's frames, and a rerun keeps what is there."""
    from interdyn.data.synthetic import scene_for_preset

    out = tmp_path / "synth"
    assert main(["synthetic", "--out", str(out), "--num-clips", "2", "--seed", "1000000"]) == 0
    folders = sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert folders == ["push_1000000", "push_1000001"], folders
    meta = json.loads((out / "push_1000000" / "meta.json").read_text())
    assert meta["world"] == "toy" and meta["label"] == "push" and meta["objects"] == ["disc"], meta
    ds = FolderClips(out, num_frames=8, height=64, width=64, fps=6.0)
    assert len(ds) == 2
    scene = scene_for_preset("push", 1_000_000, size=(64, 64), num_frames=8, world="toy")
    sample = ds[0]
    err = (sample["frames"].float() - scene.frames).abs().mean()
    assert err < 0.02, f"the written video is the scene's (lossy mp4): mean |diff| {err:.4f}"
    mtime = (out / "push_1000000" / "video.mp4").stat().st_mtime_ns
    assert main(["synthetic", "--out", str(out), "--num-clips", "2", "--seed", "1000000"]) == 0
    assert (out / "push_1000000" / "video.mp4").stat().st_mtime_ns == mtime, "a rerun skips clips already written"
    assert json.loads((out / "summary.json").read_text())["kept"] == 2


def test_prepare_synthetic_refuses_bad_counts_with_the_flag_name(tmp_path, capsys):
    assert main(["synthetic", "--out", str(tmp_path / "s"), "--num-clips", "0"]) == 2
    assert "--num-clips" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
