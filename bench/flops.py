"""FLOPs of one denoising step at the real size, counted on the meta device (no weights, no compute, seconds).

Not a test. Builds SVD's real-size UNet and the control branch (bench/realsize.py) on the meta device and
counts one forward of each with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
convolutions, 2 FLOPs per multiply-add; the count bench/gpu.py uses), for the CFG batch of 2. The sampler
runs the control CNN once per video and the rest of the branch every step; both parts are printed.

    python bench/flops.py                      # 14 frames, 256x384, 50 steps (the paper's setting)
    python bench/flops.py --frames 25 --size 576x1024
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from realsize import empty_models  # noqa: E402


def count(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@torch.no_grad()
def step_flops(frames: int = 14, height: int = 256, width: int = 384, batch: int = 2) -> dict[str, int]:
    """FLOPs of one UNet call, one branch call and the control CNN alone, for ``batch`` rows (CFG: 2)."""
    unet, vae, clip, branch = empty_models()
    meta = dict(device="meta", dtype=torch.bfloat16)
    for module in (unet, vae, clip, branch):
        module.to(torch.bfloat16)
    x = torch.empty(batch, frames, 8, height // 8, width // 8, **meta)
    t = torch.empty(batch, device="meta")
    emb = torch.empty(batch, 1, unet.config.cross_attention_dim, **meta)
    ids = torch.empty(batch, 3, **meta)
    control = torch.empty(batch, frames, 3, height, width, **meta)
    out = {}
    out["branch"] = count(lambda: branch(x, t, emb, ids, controlnet_cond=control, return_dict=False))
    out["control_cnn"] = count(lambda: branch.controlnet_cond_embedding(control.flatten(0, 1)))
    down, mid = branch(x, t, emb, ids, controlnet_cond=control, return_dict=False)
    out["unet"] = count(lambda: unet(x, t, encoder_hidden_states=emb, added_time_ids=ids,
                                     down_block_additional_residuals=down, mid_block_additional_residual=mid,
                                     return_dict=False))
    image = torch.empty(1, 3, height, width, **meta)
    out["vae_encode"] = count(lambda: vae.encode(image))  # the first frame, once per video
    latents = torch.empty(frames, 4, height // 8, width // 8, **meta)
    out["vae_decode"] = count(lambda: vae.decode(latents, num_frames=frames))
    out["clip"] = count(lambda: clip(torch.empty(1, 3, 224, 224, **meta)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=14)
    parser.add_argument("--size", default="256x384", help="HxW (default %(default)s)")
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.split("x"))
    f = step_flops(args.frames, height, width)
    per_step_branch = f["branch"] - f["control_cnn"]
    video_plain = args.steps * f["unet"]
    fixed = f["vae_encode"] + f["vae_decode"] + f["clip"]
    video = video_plain + args.steps * per_step_branch + f["control_cnn"] // 2  # the CNN once per video
    print(f"real-size SVD, {args.frames} frames at {height}x{width}, CFG batch 2, counted on the meta device")
    print(f"   UNet, one step                      {f['unet'] / 1e12:8.2f} TFLOP")
    print(f"   control branch, one step (no CNN)    {per_step_branch / 1e12:8.2f} TFLOP "
          f"({per_step_branch / f['unet']:.2f} x the UNet)")
    print(f"   control CNN, once per video          {f['control_cnn'] / 2 / 1e12:8.2f} TFLOP")
    print(f"   once per video: VAE encode {f['vae_encode'] / 1e12:.2f}, VAE decode of {args.frames} frames "
          f"{f['vae_decode'] / 1e12:.2f}, CLIP {f['clip'] / 1e12:.2f} TFLOP")
    print(f"   one video, {args.steps} steps: plain SVD {(video_plain + fixed) / 1e15:.3f} PFLOP, InterDyn "
          f"{(video + fixed) / 1e15:.3f} PFLOP ({(video + fixed) / (video_plain + fixed):.2f} x); the denoising "
          f"steps are {100 * video / (video + fixed):.1f} % of InterDyn's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
