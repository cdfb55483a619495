"""Benchmark: our sampler vs diffusers' StableVideoDiffusionPipeline on the same models.

Not a test. Builds a tiny-but-real-structure SVD backbone (or loads one with --svd), runs both
samplers with the same seed and parameters in this process, and prints the wall-time ratio, plus
the FLOPs per step of the UNet and of the control branch (torch.utils.flop_counter) so the ratio
can be read against the compute floor.

    python bench/sampler.py [--svd DIR] [--size 64x128] [--frames 6] [--steps 4] [--repeats 3]

It also prints dual-clock dragging (interdyn.core.dual_clock) against plain sampling, seconds per video.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from interdyn.core.loading import load_svd_backbone, save_svd_folder
from interdyn.core.sampling import encode_conditioning, generate_video
from interdyn.core.tiny import build_tiny_backbone, build_tiny_control_branch


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--svd", help="SVD diffusers folder (default: a tiny random one)")
    parser.add_argument("--size", default="64x128", help="HxW, multiples of 64")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)

    from diffusers import StableVideoDiffusionPipeline
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.svd) if args.svd else save_svd_folder(build_tiny_backbone(seed=0), Path(tmp) / "svd")
        backbone = load_svd_backbone(folder)
        branch = build_tiny_control_branch(backbone) if not args.svd else None
        pipe = StableVideoDiffusionPipeline.from_pretrained(folder, local_files_only=True)
        pipe.set_progress_bar_config(disable=True)

    image_u8 = (torch.rand(h, w, 3) * 255).to(torch.uint8)
    image = image_u8.permute(2, 0, 1).float()[None] / 255
    control = (torch.rand(1, args.frames, 3, h, w) > 0.5).float()
    common = dict(num_frames=args.frames, min_guidance=1.0, max_guidance=3.0, motion_bucket_id=40,
                  noise_aug_strength=0.02)

    def ours(control_strength=0.0):
        generate_video(backbone, image, control if branch is not None else None, branch, generator=0,
                       num_steps=args.steps, control_strength=control_strength, fps=7, **common)

    def theirs():
        pipe(Image.fromarray(image_u8.numpy()), height=h, width=w, num_inference_steps=args.steps, fps=7,
             generator=torch.Generator().manual_seed(0), output_type="pt", **{
                 "num_frames": args.frames, "min_guidance_scale": 1.0, "max_guidance_scale": 3.0,
                 "motion_bucket_id": 40, "noise_aug_strength": 0.02})

    t_diffusers = timed(theirs, args.repeats)
    t_ours = timed(ours, args.repeats)
    print(f"threads={torch.get_num_threads()}  size={h}x{w}  frames={args.frames}  steps={args.steps}")
    print(f"diffusers SVD pipeline        : {t_diffusers:.3f} s")
    print(f"ours, strength 0 (plain SVD)  : {t_ours:.3f} s   ratio ours/diffusers = {t_ours / t_diffusers:.3f}")
    if branch is not None:
        t_ctrl = timed(lambda: ours(1.0), args.repeats)
        print(f"ours, with control branch     : {t_ctrl:.3f} s   ratio vs plain SVD   = {t_ctrl / t_ours:.3f}")

    # dual-clock dragging (Time-to-Move): the reference's VAE encoding and one masked replacement per held step.
    # With sigma_weak = sigma_max every step runs, so the ratio is the method's own cost; with the authors' levels
    # the steps above sigma_weak are skipped.
    from interdyn.core.dual_clock import DualClock
    from interdyn.data.cut_and_drag import cut_and_drag

    masks = torch.zeros(args.frames, h, w)
    for f in range(args.frames):
        masks[f, h // 4: h // 2, w // 8 + 4 * f: w // 3 + 4 * f] = 1
    reference, region = cut_and_drag(image[0], masks)

    def dragged(weak, strong):
        generate_video(backbone, image, None, None, generator=0, num_steps=args.steps, fps=7,
                       dual_clock=DualClock(reference, region, weak, strong), **common)

    t_all = timed(lambda: dragged(backbone.sigma_max, 1.0), args.repeats)
    print(f"ours, dual clock, every step  : {t_all:.3f} s   ratio vs plain SVD   = {t_all / t_ours:.3f} "
          "(same model calls: the method's own cost)")
    t_drag = timed(lambda: dragged(74.54460144042969, 30.993608474731445), args.repeats)
    print(f"ours, dual clock, SVD levels  : {t_drag:.3f} s   ratio vs plain SVD   = {t_drag / t_ours:.3f} "
          "(the steps above sigma_weak are skipped)")

    # FLOPs of one denoising step (CFG batch of 2) for the UNet and the control branch
    cond = encode_conditioning(backbone, image, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, args.frames, 8, h // 8, w // 8)
    emb = torch.cat([cond.image_embeddings] * 2)
    ids = torch.cat([cond.added_time_ids] * 2)
    t = torch.tensor(1.0)
    with torch.no_grad():
        with FlopCounterMode(display=False) as fc:
            backbone.unet(x, t, emb, ids)
        unet_flops = fc.get_total_flops()
        if branch is not None:
            features = branch.embed_control(control * 2 - 1)
            with FlopCounterMode(display=False) as fc:
                branch(x, t, emb, ids, control_embedding=torch.cat([features] * 2))
            branch_flops = fc.get_total_flops()
            with FlopCounterMode(display=False) as fc:
                branch.embed_control(control * 2 - 1)
            cnn_flops = fc.get_total_flops()
    print(f"UNet FLOPs per step (CFG batch 2)          : {unet_flops / 1e9:.3f} GFLOP")
    if branch is not None:
        print(f"control branch FLOPs per step              : {branch_flops / 1e9:.3f} GFLOP "
              f"({branch_flops / unet_flops:.2f} x UNet)")
        print(f"control CNN FLOPs, once per video          : {cnn_flops / 1e9:.4f} GFLOP")
        print(f"compute floor of control vs plain per step : {(unet_flops + branch_flops) / unet_flops:.3f}")


if __name__ == "__main__":
    main()
