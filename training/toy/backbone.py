"""Stage 1 and 2 of the toy-physics recipe: the tiny SVD-structured backbone (the "pretrained prior").

The real InterDyn starts from Stable Video Diffusion; our toy model has no such prior, so we make
one on the synthetic collision world, with SVD's structure and training objective:

1. ``vae``: a temporal VAE (``AutoencoderKLTemporalDecoder``, 3 down blocks = 4x downsampling)
   trained to reconstruct clips (MSE + a small KL term), then ``scaling_factor`` = 1 / std of its
   latents, as for Stable Diffusion's VAE;
2. ``unet``: a spatio-temporal UNet (``UNetSpatioTemporalConditionModel``, SVD's blocks) trained
   image-to-video with SVD's EDM v-objective (ln sigma ~ N(0.7, 1.6^2), noise-augmented first
   frame, CLIP embedding, 5% image dropout), no control. The CLIP image tower is a tiny random
   one, frozen (its features still describe the first frame).

The result is written as a diffusers SVD folder, loadable by :func:`interdyn.loading.load_svd_backbone`.

    python -m training.toy.backbone data --out runs/toy/data.pt
    python -m training.toy.backbone vae  --data runs/toy/data.pt --out runs/toy/vae
    python -m training.toy.backbone unet --data runs/toy/data.pt --vae runs/toy/vae --out runs/toy/svd
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

TOY_SIZE = (64, 64)
TOY_FRAMES = 8
TOY_FPS = 6.0
TOY_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
               block_out_channels=(32, 32, 64), layers_per_block=1, latent_channels=4, sample_size=64,
               scaling_factor=1.0, force_upcast=True)
TOY_UNET = dict(sample_size=16, in_channels=8, out_channels=4,
                down_block_types=("CrossAttnDownBlockSpatioTemporal",) * 2 + ("DownBlockSpatioTemporal",),
                up_block_types=("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 2,
                block_out_channels=(32, 32, 64), addition_time_embed_dim=8,
                projection_class_embeddings_input_dim=24, layers_per_block=1, cross_attention_dim=32,
                transformer_layers_per_block=1, num_attention_heads=(1, 1, 2), num_frames=TOY_FRAMES)
TOY_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, patch_size=14,
                image_size=224, projection_dim=32)
TRAIN_SEEDS = range(0, 1_000_000)  # probes and demos use seeds >= 1_000_000


def make_data(num: int, out: Path, first_seed: int = 0) -> None:
    """Render ``num`` random scenes (uint8 frames and control) into one tensor file."""
    from ..data.synthetic import random_scene

    frames, control = [], []
    t0 = time.time()
    for seed in range(first_seed, first_seed + num):
        s = random_scene(seed, size=TOY_SIZE, num_frames=TOY_FRAMES, fps=TOY_FPS)
        frames.append((s.frames * 255).round().to(torch.uint8))
        control.append((s.control * 255).round().to(torch.uint8))
    data = {"frames": torch.stack(frames), "control": torch.stack(control),
            "meta": {"first_seed": first_seed, "num": num, "fps": TOY_FPS, "size": TOY_SIZE}}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(data, tmp)
    os.replace(tmp, out)
    print(f"{num} scenes in {time.time() - t0:.0f}s -> {out} {tuple(data['frames'].shape)}")


def _log(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def _lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def _optimizer_step(opt: torch.optim.Optimizer, model: torch.nn.Module, loss: torch.Tensor, lr: float) -> None:
    """One AdamW step at learning rate ``lr`` with the gradient norm clipped to 1."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def foreground_weights(x: torch.Tensor, weight: float, threshold: float = 0.1) -> torch.Tensor:
    """``1 + weight`` on object pixels, 1 on the background, for ``[N, 3, H, W]`` frames in [-1, 1].

    The background is each frame's median colour; objects cover a few percent of a frame, so a plain
    MSE learns the background first and leaves objects with wrong colours for a long time."""
    background = x.flatten(2).median(dim=2).values[..., None, None]
    foreground = ((x - background).abs().amax(dim=1, keepdim=True) > 2 * threshold).float()
    return 1.0 + weight * foreground


def train_vae(data_path: Path, out: Path, steps: int, batch: int, lr: float, kl_weight: float, seed: int,
              init: Path | None = None, fg_weight: float = 0.0) -> None:
    from diffusers import AutoencoderKLTemporalDecoder

    torch.manual_seed(seed)
    data = torch.load(data_path)["frames"]
    if init is not None:
        vae = AutoencoderKLTemporalDecoder.from_pretrained(init).train()
    else:
        vae = AutoencoderKLTemporalDecoder(**TOY_VAE).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(len(data), (batch,), generator=g)
        x = data[idx].float().div(255).flatten(0, 1) * 2 - 1          # [B*F, 3, H, W]
        dist = vae.encode(x).latent_dist
        z = dist.sample(generator=None)
        rec = vae.decode(z, num_frames=TOY_FRAMES).sample
        mse = F.mse_loss(rec, x)
        kl = dist.kl().mean() / z[0].numel()
        if fg_weight > 0:
            w = foreground_weights(x, fg_weight)
            loss = (w * (rec - x) ** 2).mean() / w.mean() + kl_weight * kl
        else:
            loss = mse + kl_weight * kl
        _optimizer_step(opt, vae, loss, _lr(step, steps, lr))
        if step % 25 == 0 or step == steps - 1:
            _log(out / "loss.csv", {"step": step, "mse": f"{mse.item():.5f}", "kl": f"{kl.item():.4f}",
                                    "seconds": f"{time.time() - t0:.0f}"})
            print(f"vae step {step} mse {mse.item():.5f} kl {kl.item():.3f} {time.time() - t0:.0f}s", flush=True)
        if (step + 1) % 250 == 0 or step == steps - 1:
            _save_vae(vae, data, out)


@torch.no_grad()
def _save_vae(vae, data: torch.Tensor, out: Path) -> None:
    vae.eval()
    x = data[:64].float().div(255).flatten(0, 1) * 2 - 1
    std = vae.encode(x).latent_dist.mode().std().item()
    vae.register_to_config(scaling_factor=1.0 / std)
    tmp = out.with_name(out.name + ".tmp")
    vae.save_pretrained(tmp)
    for f in tmp.iterdir():
        os.replace(f, out / f.name)
    tmp.rmdir()
    vae.train()


def build_clip(seed: int = 0):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**TOY_CLIP)).eval().requires_grad_(False)


def train_unet(data_path: Path, vae_path: Path, out: Path, steps: int, batch: int, lr: float, seed: int,
               resume: bool = True) -> None:
    """SVD's image-to-video objective on the synthetic clips (no control)."""
    from diffusers import AutoencoderKLTemporalDecoder

    from interdyn.models import InterDynUNet
    from interdyn.models.backbone import SVDBackbone
    from interdyn.testing import save_svd_folder
    from ..losses import NoiseSettings, clip_generators, prepare_inputs

    torch.manual_seed(seed)
    data = torch.load(data_path)
    frames_all = data["frames"]
    vae = AutoencoderKLTemporalDecoder.from_pretrained(vae_path).eval().requires_grad_(False)
    unet = InterDynUNet(**TOY_UNET)
    ckpt = out / "training_state.pt"
    start = 0
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    if resume and ckpt.exists():
        state = torch.load(ckpt)
        unet.load_state_dict(state["unet"])
        opt.load_state_dict(state["opt"])
        start = state["step"] + 1
        print(f"resumed at step {start}")
    unet.train()
    backbone = SVDBackbone(unet, vae, build_clip(seed))
    settings = NoiseSettings()
    g = torch.Generator().manual_seed(seed + start)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for step in range(start, steps):
        idx = torch.randint(len(frames_all), (batch,), generator=g)
        frames = frames_all[idx].float().div(255)
        clips = {"frames": frames, "control": torch.zeros_like(frames),
                 "meta": [{"fps": TOY_FPS} for _ in range(batch)]}
        unet.eval()
        inputs = prepare_inputs(backbone, clips, clip_generators(seed, step, 0, batch), settings)
        unet.train()
        pred = unet(inputs.unet_input, inputs.timestep, inputs.image_embeddings, inputs.added_time_ids).sample
        loss = F.mse_loss(pred.float(), inputs.target)
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss at step {step}")
        _optimizer_step(opt, unet, loss, _lr(step, steps, lr))
        if step % 25 == 0 or step == steps - 1:
            _log(out / "loss.csv", {"step": step, "loss": f"{loss.item():.5f}", "seconds": f"{time.time() - t0:.0f}"})
            print(f"unet step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
        if (step + 1) % 250 == 0 or step == steps - 1:
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"unet": unet.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
            os.replace(tmp, ckpt)
            unet.eval()
            save_svd_folder(backbone, out / "svd")
            unet.train()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.toy.backbone", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="render random synthetic scenes")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--num", type=int, default=3000)
    v = sub.add_parser("vae", help="train the temporal VAE")
    v.add_argument("--data", type=Path, required=True)
    v.add_argument("--out", type=Path, required=True)
    v.add_argument("--steps", type=int, default=2000)
    v.add_argument("--batch", type=int, default=4)
    v.add_argument("--lr", type=float, default=1e-3)
    v.add_argument("--kl-weight", type=float, default=1e-4)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--init", type=Path, help="continue from this VAE folder (a previous run's output)")
    v.add_argument("--fg-weight", type=float, default=0.0,
                   help="extra loss weight on object pixels (see foreground_weights); 0 = plain MSE")
    u = sub.add_parser("unet", help="train the image-to-video UNet prior")
    u.add_argument("--data", type=Path, required=True)
    u.add_argument("--vae", type=Path, required=True)
    u.add_argument("--out", type=Path, required=True)
    u.add_argument("--steps", type=int, default=3000)
    u.add_argument("--batch", type=int, default=4)
    u.add_argument("--lr", type=float, default=5e-4)
    u.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.cmd == "data":
        make_data(a.num, a.out)
    elif a.cmd == "vae":
        train_vae(a.data, a.out, a.steps, a.batch, a.lr, a.kl_weight, a.seed, a.init, a.fg_weight)
    else:
        train_unet(a.data, a.vae, a.out, a.steps, a.batch, a.lr, a.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
