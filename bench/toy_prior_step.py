"""Benchmark: where the toy prior's training step spends its time (not a test).

Builds the toy recipe's real models (``training/toy/backbone.py``: the temporal VAE, the 1.6 M-parameter
spatio-temporal UNet, the tiny CLIP) with random weights and times, in this process:

* the reference: one step as recipe v2 ran it, the SVD conditioning (CLIP + VAE encoder + noise) made
  one clip at a time inside the loop, then the UNet forward + backward + AdamW;
* the same step with the conditioning made in one batched VAE call and the CLIP embeddings cached
  (what ``prior_loss`` does now);
* batch sizes (seconds per clip), and optionally ``torch.compile`` of the UNet.

Ratios are against the reference run in the same process, so they stay meaningful on a loaded machine.

    python bench/toy_prior_step.py [--batch 4] [--repeats 5] [--compile]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# this repository's `training` package first (sam2 installs an unrelated top-level `training`)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile of the UNet (minutes)")
    args = parser.parse_args()

    import torch
    from diffusers import AutoencoderKLTemporalDecoder

    from interdyn.models import InterDynUNet
    from interdyn.models.backbone import SVDBackbone
    from interdyn.core.sampling import encode_conditioning
    from training.losses import NoiseSettings, clip_generators
    from training.toy.backbone import TOY_FPS, TOY_FRAMES, TOY_UNET, TOY_VAE, build_clip, prior_loss

    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    vae = AutoencoderKLTemporalDecoder(**TOY_VAE).eval().requires_grad_(False)
    unet = InterDynUNet(**TOY_UNET).train()
    backbone = SVDBackbone(unet, vae, build_clip(0))
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    settings = NoiseSettings()
    h = TOY_VAE["sample_size"]

    def batch_of(b, step):
        g = torch.Generator().manual_seed(step)
        x0 = torch.randn(b, TOY_FRAMES, TOY_VAE["latent_channels"], h // 4, h // 4, generator=g)
        first = torch.rand(b, 3, h, h, generator=g)
        return x0, first, clip_generators(0, step, 0, b)

    def step_batched(b, step, embeddings=None):
        x0, first, gens = batch_of(b, step)
        if embeddings is None:
            from interdyn.core.sampling import clip_image_embeddings
            with torch.no_grad():
                embeddings = clip_image_embeddings(backbone, first)
        loss = prior_loss(unet, backbone, x0, first, embeddings, gens, settings)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def conditioning_per_clip(b, step):
        """recipe v2's conditioning: CLIP + VAE encoder + noise, one clip per call"""
        _, first, gens = batch_of(b, step)
        with torch.no_grad():
            for i in range(b):
                encode_conditioning(backbone, first[i:i + 1], fps=TOY_FPS + 1, noise_aug_strength=0.05,
                                    generator=gens[i])

    def conditioning_batched(b, step, embeddings):
        _, first, gens = batch_of(b, step)
        with torch.no_grad():
            encode_conditioning(backbone, first, fps=TOY_FPS + 1, noise_aug_strength=[0.05] * b, generator=gens,
                                image_embeddings=embeddings)

    def timed(fn, *a):
        fn(*a)  # warm-up
        times = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            fn(*a)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    b = args.batch
    emb = torch.zeros(b, 1, 32)
    t_old_cond = timed(conditioning_per_clip, b, 1)
    t_new_cond = timed(conditioning_batched, b, 1, emb)
    t_step_cached = timed(step_batched, b, 2, emb)
    t_step_v2 = t_step_cached - t_new_cond + t_old_cond  # same UNet work, v2's conditioning
    print(f"batch {b}: conditioning one clip at a time {t_old_cond:.3f} s, batched with cached CLIP {t_new_cond:.3f} s "
          f"({t_old_cond / t_new_cond:.1f}x)")
    print(f"batch {b}: step as v2 ran it (reference) {t_step_v2:.3f} s; now {t_step_cached:.3f} s "
          f"-> {t_step_v2 / t_step_cached:.2f}x faster")
    for bb in (2 * b,):
        t = timed(step_batched, bb, 3, torch.zeros(bb, 1, 32))
        print(f"batch {bb}: {t:.3f} s per step, {t / bb:.3f} s per clip ({(t_step_cached / b) / (t / bb):.2f}x the "
              f"per-clip throughput of batch {b})")
    if args.compile:
        t0 = time.perf_counter()
        unet.forward = torch.compile(unet.forward)
        step_batched(b, 4, emb)
        print(f"torch.compile: first step {time.perf_counter() - t0:.0f} s (compiling)")
        t = timed(step_batched, b, 5, emb)
        print(f"batch {b} compiled: {t:.3f} s per step ({t_step_cached / t:.2f}x eager)")


if __name__ == "__main__":
    main()
