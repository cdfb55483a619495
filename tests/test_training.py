"""training.train / losses / export: the method, checkpoint-exact resume, two processes, export.

Tiny random models (interdyn.core.tiny) on synthetic clips of 4 frames at 64x64, batch 1-2.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from interdyn.core.loading import load_control_branch
from interdyn.core.sampling import generate_video
from interdyn.core.tiny import build_tiny_backbone
from interdyn.data.video_io import read_video
from training.config import TrainConfig, build_parser, load_config, parse_args
from training.data.datasets import EpochShuffleSampler, SyntheticClips, collate_samples
from training.export import export
from training.losses import (NoiseSettings, clip_generators, draw_clip_scalars, predict_v, prepare_inputs, v_loss,
                             v_target)
from training.checkpoints import BRANCH_FILE, EMA_FILE, STATE_FILE, params_fingerprint, list_checkpoints
from training.train import NonFiniteLossError, Trainer, build_backbone, build_control_branch, train

REPO = Path(__file__).resolve().parents[1]
TINY_YAML = REPO / "training" / "configs" / "cpu_tiny.yaml"


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # tests/conftest.py


def tiny_config(out: Path, **overrides) -> TrainConfig:
    values = dict(output_dir=str(out), report_to="none", progress_bar=False, validation_every=0, log_every=1,
                  synthetic_num_scenes=4, max_steps=2, checkpoint_every=100)
    values.update(overrides)
    return load_config(TINY_YAML, values)


def branch_tensors(checkpoint: Path, name: str = BRANCH_FILE) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / name))


def one_clip_batch(config: TrainConfig, index: int = 0) -> dict:
    ds = SyntheticClips(config.synthetic_num_scenes, height=config.height, width=config.width,
                        num_frames=config.num_frames, seed=config.seed)
    return collate_samples([ds[index]])


# ---------------------------------------------------------------------------- configuration
def test_help_documents_every_config_key():
    text = build_parser().format_help()
    import dataclasses

    for f in dataclasses.fields(TrainConfig):
        assert f"--{f.name}" in text, f"--help must list --{f.name}"
        assert f.metadata["help"][:30].split()[0] in text, f"--help must document {f.name}"


def test_command_line_overrides_yaml_and_converts_types():
    config = parse_args(["--config", str(TINY_YAML), "--learning_rate", "1e-3", "--use_ema", "yes",
                         "--control_cnn_channels", "8,16,16,32", "--max_grad_norm", "none"])
    assert config.learning_rate == 1e-3 and isinstance(config.learning_rate, float), "1e-3 must become a float"
    assert config.use_ema is True and config.control_cnn_channels == [8, 16, 16, 32], "bools and lists convert"
    assert config.max_grad_norm is None, "'none' clears an optional value"
    assert config.pretrained_model == "tiny" and config.height == 64, "keys not overridden come from the YAML"
    with pytest.raises(ValueError, match="unknown config keys: lerning_rate"):
        load_config(TINY_YAML, {"lerning_rate": 1})


def test_paper_defaults():
    c = TrainConfig()
    assert (c.p_mean, c.p_std, c.learning_rate, c.batch_size, c.image_dropout) == (0.7, 1.6, 1e-5, 4, 0.05), \
        "defaults must be the paper's: ln sigma ~ N(0.7, 1.6^2), lr 1e-5, batch 4, image dropout 0.05"
    assert (c.num_frames, c.height, c.width, c.residual_mode) == (14, 256, 384, "standard"), "14 frames 256x384"


# ---------------------------------------------------------------------------- the objective
def test_v_loss_equals_edm_weighted_x0_loss():
    g = torch.Generator().manual_seed(0)
    x0, n, out = (torch.randn(6, 2, 4, 8, 8, generator=g) for _ in range(3))
    sigma = torch.tensor([0.01, 0.3, 1.0, 2.0, 20.0, 300.0], dtype=torch.float64)[:, None, None, None, None]
    x0, n, out = x0.double(), n.double(), out.double()
    x = x0 + sigma * n
    denoised = out * (-sigma / (sigma**2 + 1) ** 0.5) + x / (sigma**2 + 1)
    weighted = ((sigma**2 + 1) / sigma**2 * (denoised - x0) ** 2).mean(dim=(1, 2, 3, 4))
    plain = ((out - v_target(x0, n, sigma)) ** 2).mean(dim=(1, 2, 3, 4))
    assert torch.allclose(weighted, plain, rtol=1e-9), "MSE on the v-target must equal EDM's weighted x0 loss"


def test_noise_level_and_image_dropout_statistics():
    settings = NoiseSettings()
    draws = draw_clip_scalars(clip_generators(7, 0, 0, 20000), settings)
    mean, std = float(draws.log_sigma.mean()), float(draws.log_sigma.std())
    assert abs(mean - 0.7) < 0.04 and abs(std - 1.6) < 0.04, f"ln sigma ~ N(0.7, 1.6^2), got mean {mean}, std {std}"
    drop = 1 - float(draws.keep_image.float().mean())
    assert abs(drop - 0.05) < 0.006, f"the image must be dropped 5% of the time, got {drop:.4f}"
    log_aug = draws.noise_aug_strength.log()
    assert abs(float(log_aug.mean()) + 3.0) < 0.03 and abs(float(log_aug.std()) - 0.5) < 0.03, \
        "noise augmentation strength is log-normal(-3, 0.5) by default"
    uniform = draw_clip_scalars(clip_generators(7, 0, 0, 2000), NoiseSettings(noise_aug_dist="uniform",
                                                                              noise_aug_min=0.0, noise_aug_max=0.1))
    assert 0 <= float(uniform.noise_aug_strength.min()) and float(uniform.noise_aug_strength.max()) <= 0.1, \
        "uniform noise augmentation stays in [min, max]"


def test_clip_randomness_is_keyed_by_step_and_global_slot():
    a = draw_clip_scalars(clip_generators(0, 5, 0, 2), NoiseSettings())
    b = draw_clip_scalars(clip_generators(0, 5, 1, 1), NoiseSettings())
    assert float(a.log_sigma[1]) == float(b.log_sigma[0]), \
        "clip 1 of a batch of 2 must draw what slot 1 (another process, or the next micro-batch) draws"
    c = draw_clip_scalars(clip_generators(0, 6, 0, 2), NoiseSettings())
    assert not torch.equal(a.log_sigma, c.log_sigma), "another optimizer step draws other noise levels"


def test_dropped_image_zeroes_embedding_and_latent_but_keeps_control(tmp_path):
    config = tiny_config(tmp_path)
    backbone = build_backbone(config)
    batch = one_clip_batch(config)
    kept = prepare_inputs(backbone, batch, clip_generators(0, 0, 0, 1), NoiseSettings(image_dropout=0.0))
    dropped = prepare_inputs(backbone, batch, clip_generators(0, 0, 0, 1), NoiseSettings(image_dropout=1.0))
    assert bool(kept.draws.keep_image.all()) and not bool(dropped.draws.keep_image.any()), "dropout 0 / 1"
    assert kept.image_embeddings.abs().sum() > 0 and dropped.image_embeddings.abs().sum() == 0, \
        "a dropped image has a zero CLIP embedding"
    assert kept.unet_input[:, :, 4:].abs().sum() > 0 and dropped.unet_input[:, :, 4:].abs().sum() == 0, \
        "a dropped image has a zero image latent (UNet input channels 4-7)"
    assert torch.equal(kept.control, dropped.control), "the control is kept when the image is dropped"
    assert torch.equal(kept.unet_input[:, :, :4], dropped.unet_input[:, :, :4]), "the noisy latent is unchanged"
    fps_id, bucket, aug = kept.added_time_ids[0].tolist()
    assert fps_id == batch["meta"][0]["fps"] and bucket == 40, \
        "time ids: the clip's real fps (official convention) and motion bucket 40"
    assert aug == pytest.approx(float(kept.draws.noise_aug_strength[0])), "the noise-aug time id is the drawn strength"
    sigma = float(kept.draws.log_sigma[0].exp())
    assert float(kept.timestep[0]) == pytest.approx(0.25 * float(kept.draws.log_sigma[0])), "c_noise = 0.25 ln sigma"
    assert kept.target.shape == kept.unet_input[:, :, :4].shape and sigma > 0, "v-target on the latent grid"


# ---------------------------------------------------------------------------- training
def test_only_control_branch_parameters_change(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, max_steps=2, learning_rate=1e-3).validate())
    frozen = {name: {k: v.clone() for k, v in m.state_dict().items()}
              for name, m in (("unet", trainer.backbone.unet), ("vae", trainer.backbone.vae),
                              ("clip", trainer.backbone.image_encoder))}
    branch = trainer.accelerator.unwrap_model(trainer.branch)
    before = {k: v.clone() for k, v in branch.state_dict().items()}
    for name, m in (("unet", trainer.backbone.unet), ("vae", trainer.backbone.vae),
                    ("clip", trainer.backbone.image_encoder)):
        assert not m.training and not any(p.requires_grad for p in m.parameters()), f"{name} must be frozen, eval"
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in branch.parameters()}, "the optimizer holds exactly the branch's parameters"
    trainer.run()
    for name, m in (("unet", trainer.backbone.unet), ("vae", trainer.backbone.vae),
                    ("clip", trainer.backbone.image_encoder)):
        for k, v in m.state_dict().items():
            assert torch.equal(v, frozen[name][k]), f"frozen {name} weight {k} changed"
    changed = [k for k, v in branch.state_dict().items() if not torch.equal(v, before[k])]
    assert "controlnet_mid_block.weight" in changed and len(changed) > len(before) // 2, \
        f"training must update the control branch (changed {len(changed)} of {len(before)} tensors)"


def test_bf16_mixed_precision_casts_frozen_models_and_keeps_fp32_master_weights(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, max_steps=2, mixed_precision="bf16").validate())
    for name, m in (("unet", trainer.backbone.unet), ("vae", trainer.backbone.vae),
                    ("clip", trainer.backbone.image_encoder)):
        assert m.dtype == torch.bfloat16, f"frozen {name} must be cast to bf16, got {m.dtype}"
    result = trainer.run()
    branch = trainer.accelerator.unwrap_model(trainer.branch)
    assert branch.dtype == torch.float32, "the trained branch keeps float32 master weights"
    assert result["step"] == 2 and result["loss"] == result["loss"], f"bf16 training runs, finite loss: {result}"


def eval_loss(backbone, branch, batch, draws: int = 12) -> float:
    settings = NoiseSettings(image_dropout=0.0)
    total = 0.0
    with torch.no_grad():
        for k in range(draws):
            inputs = prepare_inputs(backbone, batch, clip_generators(999, k, 0, 1), settings)
            total += float(v_loss(predict_v(backbone.unet, branch, inputs, "standard"), inputs.target))
    return total / draws


@pytest.mark.slow
def test_training_on_one_clip_drives_the_loss_down(tmp_path):
    # measured (12 fixed draws of sigma and noise, no image dropout): 0.441 -> 0.175 after 200 steps at lr 3e-3,
    # 0.228 after 80 steps; 50 steps are enough to show the learning signal (see the assert)
    config = tiny_config(tmp_path, synthetic_num_scenes=1, max_steps=50, learning_rate=3e-3, checkpoint_every=1000,
                         log_every=25)
    backbone = build_backbone(config)
    torch.manual_seed(config.seed)
    initial = build_control_branch(config, backbone).eval()
    batch = one_clip_batch(config)
    before = eval_loss(backbone, initial, batch)
    result = train(config)
    trained = load_control_branch(result["checkpoint"] / BRANCH_FILE)
    after = eval_loss(backbone, trained, batch)
    print(f"eval loss on the training clip: before {before:.4f}, after {after:.4f}")
    assert after < 0.75 * before, f"50 steps on one clip must cut the loss by > 25%: {before:.4f} -> {after:.4f}"


class StopAt(Exception):
    pass


def test_resume_after_interruption_reproduces_the_uninterrupted_run(tmp_path):
    # 3 clips, 2 micro-batches per step: the epoch's last step has 1 micro-batch; step 3 ends mid-epoch 1
    common = dict(max_steps=4, checkpoint_every=3, checkpoints_keep=0, gradient_accumulation_steps=2,
                  use_ema=True, ema_decay=0.9, lr_scheduler="constant_with_warmup", lr_warmup_steps=4,
                  learning_rate=1e-3, synthetic_num_scenes=3)
    full = train(tiny_config(tmp_path / "full", **common))

    def interrupt(trainer):
        if trainer.state.step == 3:
            raise StopAt()

    with pytest.raises(StopAt):
        train(tiny_config(tmp_path / "split", **common), on_step_end=interrupt)
    assert [p.name for p in list_checkpoints(tmp_path / "split")] == ["checkpoint-3"], "interrupted after step 3"
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    resumed = train(tiny_config(tmp_path / "split", resume="latest", **common))
    assert resumed["step"] == 4, "the resumed run continues to max_steps"
    for name in (BRANCH_FILE, EMA_FILE):
        a, b = branch_tensors(full["checkpoint"], name), branch_tensors(resumed["checkpoint"], name)
        diff = [k for k in a if not torch.equal(a[k], b[k])]
        assert not diff, f"{name}: resumed weights differ from the uninterrupted run's in {diff[:3]}"
    sa = json.loads((full["checkpoint"] / STATE_FILE).read_text())
    sb = json.loads((resumed["checkpoint"] / STATE_FILE).read_text())
    assert {k: sa[k] for k in ("step", "epoch", "batch_in_epoch", "micro_step", "loss")} == \
        {k: sb[k] for k in ("step", "epoch", "batch_in_epoch", "micro_step", "loss")}, "counters and loss match"
    oa = torch.load(full["checkpoint"] / "optimizer.bin", weights_only=False)["state"]
    ob = torch.load(resumed["checkpoint"] / "optimizer.bin", weights_only=False)["state"]
    assert all(torch.equal(oa[i]["exp_avg_sq"], ob[i]["exp_avg_sq"]) for i in oa), "Adam state matches exactly"


def test_checkpoints_are_rotated_and_complete(tmp_path):
    result = train(tiny_config(tmp_path, max_steps=3, checkpoint_every=1, checkpoints_keep=2))
    names = sorted(p.name for p in tmp_path.iterdir() if "checkpoint" in p.name)
    assert names == ["checkpoint-2", "checkpoint-3"], f"keep the 2 newest checkpoints, no temporary folders: {names}"
    files = {p.name for p in result["checkpoint"].iterdir()}
    for f in (BRANCH_FILE, STATE_FILE, "model.safetensors", "optimizer.bin", "scheduler.bin", "config.yaml",
              "unet_config.json"):
        assert f in files, f"a checkpoint holds {f}"


class NaNAfter(torch.utils.data.Dataset):
    """Synthetic clips whose frames turn NaN from the ``bad``-th loaded sample on."""

    def __init__(self, base, bad: int):
        self.base, self.bad, self.calls = base, bad, 0

    def __len__(self):
        return len(self.base)

    def __getitem__(self, key):
        sample = self.base[key]
        self.calls += 1
        if self.calls > self.bad:
            sample = {**sample, "frames": torch.full_like(sample["frames"], float("nan"))}
        return sample


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_config(tmp_path, max_steps=6, checkpoint_every=2)
    base = SyntheticClips(4, height=64, width=64, num_frames=4, seed=0)
    with pytest.raises(NonFiniteLossError, match=r"the loss is nan at step 4 .*Last good checkpoint: .*checkpoint-2"):
        train(config, dataset=NaNAfter(base, bad=3))
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2"], "the bad state must not be saved"
    assert not any(p.name.startswith(".tmp") for p in tmp_path.iterdir()), "no half-written checkpoint is left"
    weights = branch_tensors(tmp_path / "checkpoint-2")
    assert all(torch.isfinite(v).all() for v in weights.values()), "the kept checkpoint is finite"


def test_sampler_order_is_seeded_and_keys_carry_the_epoch():
    s = EpochShuffleSampler(5, seed=3)
    first = list(s)
    s.set_epoch(1)
    second = list(s)
    assert sorted(k % 5 for k in first) == list(range(5)) and all(k // 5 == 1 for k in second), \
        "every item once per epoch; keys encode the epoch"
    s.set_epoch(0)
    assert list(s) == first and EpochShuffleSampler(5, seed=3).__iter__().__next__() == first[0], \
        "the order depends on (seed, epoch) only"


# ---------------------------------------------------------------------------- export and end to end
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    out = tmp_path_factory.mktemp("run")
    config = tiny_config(out, max_steps=3, checkpoint_every=3, learning_rate=1e-3, use_ema=True,
                         validation_every=3, validation_num_steps=2, validation_clips=1)
    result = train(config)
    return out, result["checkpoint"]


def test_validation_writes_side_by_side_videos(trained_run):
    out, _ = trained_run
    videos = sorted((out / "validation").rglob("*.mp4"))
    assert [v.parent.name for v in videos] == ["step-0000003"], f"one validation video at step 3: {videos}"
    frames, fps = read_video(videos[0])
    assert frames.shape == (4, 64, 4 * 64, 3) and fps == 6, \
        f"input | control | generated | ground truth side by side, 4 frames, clip fps: {frames.shape}, {fps}"


def test_export_single_file_and_official_folder_load_back(trained_run, tmp_path):
    _, checkpoint = trained_run
    single = export(checkpoint, tmp_path / "mine.safetensors", dtype="fp16")
    with pytest.warns(UserWarning, match="official InterDyn code ignores it"):
        official = export(checkpoint, tmp_path / "official", format="official")
    ema = export(checkpoint.parent, tmp_path / "ema.safetensors", ema=True)
    a, b, e = (load_control_branch(p) for p in (single, official, ema))
    assert a.dtype == torch.float16 and b.dtype == torch.float32, "--dtype fp16 stores half precision"
    assert a.residual_mode == b.residual_mode == "standard", "the residual mode travels with both formats"
    assert a.provenance["step"] == 3 and a.provenance["base_model"] == "tiny" and "config" in a.provenance \
        and "exported" in a.provenance, f"provenance: base model, step, config, date: {a.provenance}"
    config = json.loads((official / "config.json").read_text())
    assert config["_class_name"] == "ControlNetSDVModel" and config["residual_mode"] == "standard", \
        "official layout: ControlNetSDVModel config with our residual_mode"
    assert "up_block_types" in config and config["out_channels"] == 4, "official keys from the UNet config"
    trained = branch_tensors(checkpoint)
    for k, v in b.state_dict().items():
        assert torch.equal(v, trained[k]), f"official export changed {k}"
        assert torch.equal(a.state_dict()[k], trained[k].half()), f"fp16 export of {k} is the rounded weight"
    assert any(not torch.equal(e.state_dict()[k], trained[k]) for k in trained), "--ema exports the EMA weights"


def test_end_to_end_exported_branch_generates_a_video(trained_run, tmp_path):
    _, checkpoint = trained_run
    path = export(checkpoint, tmp_path / "interdyn_trained.safetensors")
    backbone = build_tiny_backbone(0)
    branch = load_control_branch(path, backbone=backbone)
    clip = one_clip_batch(tiny_config(tmp_path))
    video = generate_video(backbone, clip["frames"][:, 0], clip["control"], branch, num_frames=4, num_steps=2,
                           generator=0)
    assert video.shape == (1, 4, 3, 64, 64) and torch.isfinite(video).all(), "a 4-frame video from the export"
    assert float(video.std()) > 0, "the video is not constant"


@pytest.mark.slow
def test_two_process_torchrun_keeps_replicas_identical_and_matches_one_process(tmp_path):
    """2 CPU processes x batch 1 (gloo, via torchrun) == 1 process x 2 accumulated micro-batches of 1.

    Same clips, same noise (keyed by step and global-batch slot), same per-clip arithmetic, and
    (g0 + g1) / 2 is exact either way: the weights must agree bit for bit. (1 process x batch 2 agrees
    only to ~1e-3 with the tiny model: its 1x1-pixel deep blocks amplify batch-size-dependent fp32
    rounding.)
    """
    args = ["--config", str(TINY_YAML), "--max_steps", "3", "--checkpoint_every", "3", "--report_to", "none",
            "--progress_bar", "false", "--validation_every", "0", "--synthetic_num_scenes", "4",
            "--learning_rate", "1e-3", "--batch_size", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    for command, out in (([*torchrun, "-m", "training.train", *args], "ddp"),
                         ([sys.executable, "-m", "training.train", *args, "--gradient_accumulation_steps", "2"], "one")):
        proc = subprocess.run([*command, "--output_dir", str(tmp_path / out)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{out} training failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    state = json.loads((tmp_path / "ddp" / "checkpoint-3" / STATE_FILE).read_text())
    assert state["num_processes"] == 2, "two processes took part"
    prints = state["replica_fingerprints"]
    assert len(prints) == 2 and prints[0] == prints[1], f"both ranks must hold identical weights: {prints}"
    exported = export(tmp_path / "ddp", tmp_path / "ddp.safetensors")
    assert params_fingerprint(load_control_branch(exported)) == prints[0], "the export holds the ranks' weights"
    a, b = load_file(str(exported)), branch_tensors(tmp_path / "one" / "checkpoint-3")
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"2 processes x batch 1 must equal 1 process x 2 accumulated micro-batches: {differ[:3]}"


def test_ctrl_c_stops_at_a_step_boundary_with_a_checkpoint_and_says_how_to_resume(tmp_path, capsys,
                                                                                  fresh_accelerate_state):
    """Ctrl-C during `train` printed a raw KeyboardInterrupt traceback and lost the steps since the last
    checkpoint; now the first Ctrl-C stops after the current step, saves it, and names the resume flag."""
    import os
    import signal

    from training.train import TrainingInterrupted

    def press_ctrl_c(trainer):
        if trainer.state.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    config = tiny_config(tmp_path / "run", max_steps=5, checkpoint_every=4, synthetic_num_scenes=2)
    # the handler the process had: Python's default, or SIG_IGN when started as a background job of a shell
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="interrupted at step 2.*resume with --resume latest"):
        train(config, on_step_end=press_ctrl_c)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["checkpoint-2"], "the step reached is saved"
    assert signal.getsignal(signal.SIGINT) is before, "the Ctrl-C handling the process had before train() is back"


def test_bf16_on_the_cpu_falls_back_to_float32_for_clips_shorter_than_the_temporal_kernel(tmp_path, capsys):
    """oneDNN's avx512_bf16 Conv3d weight gradient is NaN for 2-frame clips (bench/conv3d_bf16.py): torch's
    kernel, not ours. Such runs train in float32 on the CPU and say so; 3 frames and more keep bf16."""
    from training.train import cpu_bf16_fallback

    short = cpu_bf16_fallback(tiny_config(tmp_path / "a", mixed_precision="bf16", num_frames=2, cpu=True))
    assert short.mixed_precision == "no"
    assert "training in float32 instead" in capsys.readouterr().err
    kept = cpu_bf16_fallback(tiny_config(tmp_path / "b", mixed_precision="bf16", num_frames=3, cpu=True))
    assert kept.mixed_precision == "bf16" and capsys.readouterr().err == ""


def _branch_gradient(config, batch) -> torch.Tensor:
    from training.train import Trainer

    trainer = Trainer(config)
    trainer.train_micro_batch(batch)  # accumulation 2: the first micro-batch leaves its gradient in place
    branch = trainer.accelerator.unwrap_model(trainer.branch)
    return torch.cat([p.grad.float().flatten() for p in branch.parameters() if p.grad is not None])


def test_bf16_training_step_gives_the_float32_branch_gradient_on_this_cpu(tmp_path, fresh_accelerate_state):
    """The bf16 frozen-backbone path (24gb.yaml, one_gpu.yaml, two_gpus.yaml) must give the fp32 step's branch
    gradient up to bf16 rounding, on whatever CPU runs the suite (an AMD EPYC once gave NaN at 2 frames)."""
    from accelerate.state import AcceleratorState, GradientState

    # 128x128: at 64x64 the tiny UNet's deepest level is 1x1 pixels, where GroupNorm normalises 2-4 numbers and
    # bf16 rounding decides their difference (measured: cosine 0.70 at 64x64, 0.9995 at 128x128, real SVD's
    # deepest level is 4x6); 4 frames: more than the temporal kernel (see cpu_bf16_fallback)
    common = dict(num_frames=4, height=128, width=128, gradient_accumulation_steps=2, cpu=True)
    fp32 = tiny_config(tmp_path / "fp32", mixed_precision="no", **common)
    batch = one_clip_batch(fp32)
    g32 = _branch_gradient(fp32, batch)
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    g16 = _branch_gradient(tiny_config(tmp_path / "bf16", mixed_precision="bf16", **common), batch)
    assert bool(torch.isfinite(g16).all()), f"{int((~torch.isfinite(g16)).sum())} non-finite bf16 gradient elements"
    cosine = float(torch.nn.functional.cosine_similarity(g32, g16, dim=0))
    print(f"\nbranch gradient, bf16 vs fp32: cosine {cosine:.5f}, norms {g16.norm():.4g} / {g32.norm():.4g}")
    assert cosine >= 0.99, f"bf16 branch gradient points elsewhere than fp32's: cosine {cosine:.4f}"
