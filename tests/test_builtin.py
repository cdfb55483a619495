"""The built-in toy-physics model: shipped weights load by name everywhere, `interdyn demo` runs on it
and writes its videos and numbers, and the probes run on it end to end. (How long the demo takes is
measured by `bench/demo.py`, never asserted here: a wall-clock bound fails whenever the machine is busy.)"""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from interdyn.apps import probes
from interdyn.core.builtin import TOY_BRANCH, TOY_DIR, TOY_PHYSICS, TOY_SAMPLING, TOY_SVD, builtin_path
from interdyn.core.loading import ModelLoadError, load_svd_backbone, load_toy_physics
from interdyn.data.video_io import read_video


@pytest.fixture(scope="module")
def toy():
    return load_toy_physics()


def test_shipped_files_are_small_fp16_safetensors_with_a_model_card():
    files = [p for p in TOY_DIR.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    assert size < 8e6, f"the built-in model must stay a few MB, it is {size / 1e6:.1f} MB"
    weights = [p for p in files if p.suffix == ".safetensors"]
    assert len(weights) == 4, f"unet, vae, image_encoder and the control branch, got {[p.name for p in weights]}"
    for path in weights:
        with safe_open(str(path), "pt") as f:
            dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
        assert dtypes == {"F16"}, f"{path.relative_to(TOY_DIR)} should be stored in fp16, has {dtypes}"
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".ckpt")], "only safetensors, no pickles"
    card = (TOY_DIR / "MODEL_CARD.md").read_text()
    for topic in ("Training data", "Recipe", "Limits", "python -m training.toy"):
        assert topic in card, f"the model card must cover {topic!r}"


def test_branch_provenance_records_training_and_fp16_check():
    with safe_open(str(TOY_BRANCH), "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "interdyn-control-branch"
    prov = json.loads(meta["provenance"])
    assert prov["fp16_check"]["max_abs_pixel_difference"] < 0.05, \
        "fp16 storage must not change the generated pixels by more than 0.05 (checked when packaging)"
    assert {"step", "base_model", "recipe", "config"} <= set(prov), \
        f"provenance should say how it was trained: {sorted(prov)}"
    assert prov["base_model"] == "builtin:toy-physics", "the branch names the backbone it was trained on"


def test_builtin_name_works_in_every_loader(toy):
    backbone, branch = toy
    assert backbone.vae_scale_factor == 4 and backbone.unet.config.num_frames == TOY_SAMPLING["num_frames"]
    assert backbone.dtype == torch.float32, "fp16 files are upcast for the CPU"
    assert branch is not None and branch.residual_mode == "standard"
    assert builtin_path(TOY_PHYSICS, "svd") == TOY_SVD
    with pytest.raises(ModelLoadError, match="built-in models: builtin:toy-physics"):
        load_svd_backbone("builtin:nonexistent")


def test_demo_writes_hit_miss_and_chain_videos_a_contact_sheet_and_numbers(tmp_path, capsys):
    from PIL import Image

    from interdyn.apps.cli import main

    assert main(["demo", "--out", str(tmp_path), "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "built-in toy-physics model" in out and "motion fidelity" in out, out
    assert "hit vs miss" in out and "chain" in out, "the demo prints the counterfactual and chain numbers"
    for method in ("interdyn", "no_control", "copy_first_frame"):
        assert method in out, f"the demo prints the probe numbers of {method}"
    for name, panels in (("hit", 4), ("miss", 3), ("chain", 3)):
        video, _ = read_video(tmp_path / f"{name}.mp4")
        assert video.shape[:3] == (8, 256, panels * 256), \
            f"{name}: 8 frames of masks | InterDyn | simulation (| strength 0), 64x64 enlarged 4x; got {video.shape}"
    sheet = Image.open(tmp_path / "contact_sheet.png")
    # 10 rows (3 scenes x masks, InterDyn, simulation; strength 0 for the hit) of 8 frames enlarged 2x, plus labels
    assert sheet.width >= 8 * 128 and sheet.height >= 10 * 128, f"contact sheet too small: {sheet.size}"


def test_probes_run_on_two_scenes_with_the_builtin_model(toy, tmp_path):
    # 2 Euler steps instead of the model's 16: this checks the plumbing; `interdyn probes` measures quality
    generate = probes.model_generator(*toy, dict(TOY_SAMPLING, num_steps=2))
    report = probes.run_probes(generate, num_scenes=2, seed=probes.PROBE_SEED)
    assert len(report.force) == 2 and len(report.counterfactual) == 2 and len(report.chain) == 1
    s = report.summary()
    assert s["simulation"]["motion_fidelity"]["mean"] == pytest.approx(1.0), "the simulation is its own ceiling"
    for method in ("interdyn", "no_control"):
        assert s[method]["motion_fidelity"]["n"] == 2 and -1 <= s[method]["motion_fidelity"]["mean"] <= 1
        assert 0 <= s[method]["driven_iou"]["mean"] <= 1
    # the control is used: the drive changes the video, so strength 0 and strength 1 differ
    first = report.force[0]
    assert first["interdyn"] != first["no_control"], "control strength 1 and 0 gave identical measurements"
    json_path, md_path = probes.write_report(report, tmp_path)
    assert json.loads(json_path.read_text())["summary"]["interdyn"]["motion_fidelity"]["n"] == 2
    assert "InterDyn (toy)" in md_path.read_text()
