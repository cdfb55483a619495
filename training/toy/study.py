"""Cheap measurements of what limits the toy prior's object permanence (issue 33, step 1).

``python -m training.toy.study regions --svd DIR --json OUT`` measures, with fixed noise draws, where the prior's
denoising error sits and whether it generalises:

* the v-loss of SVD's training objective (the same draws for every clip set) on training clips against
  held-out clips of the same mix: a gap means the prior overfits its 6000 clips (more data would help);
* the x0 error per noise level on four kinds of latent cells, frames 1-7 (frame 0 is given): **static** free
  objects (the simulation moves them less than a pixel: fully determined by the first frame, so any error
  there is the model's, not the data's ambiguity), **moving** free objects, the **driver** (it enters from
  outside: irreducible without control), and the **background**. Beside each, copying the first frame's
  latent, the trivial answer for static cells.

A prior that loses static discs at moderate noise has a modelling problem (capacity, objective, schedule);
a prior whose error sits on the driver and on moving objects is limited by what the data leaves open.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from interdyn.core.loading import load_svd_backbone
from interdyn.core.sampling import edm_denoised, edm_noise_level, edm_scale_input, encode_conditioning
from interdyn.data.synthetic import mixed_scene
from interdyn.support.safe_output import write_text_atomic

from ..losses import NoiseSettings, clip_generators
from .backbone import TOY_FPS, TOY_FRAMES, TOY_SIZE, TOY_WORLD, encode_clips, prior_loss

#: noise levels at which the x0 error is reported (the sampler spends most steps below 20)
SIGMAS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
REGIONS = ("static", "moving", "driver", "background")
HELD_OUT_SEED = 5_000_000  # never trained on (training 0-5999), never probed (1e6+, 4e6+) or validated (2e6+, 3e6+)


def render(first_seed: int, num: int, world: str = TOY_WORLD) -> list:
    """Scenes ``first_seed .. first_seed + num - 1`` of the training mix, as the data file renders them."""
    return [mixed_scene(s, s, size=TOY_SIZE, num_frames=TOY_FRAMES, fps=TOY_FPS, world=world)
            for s in range(first_seed, first_seed + num)]


def region_cells(scene, factor: int = 4, moving_px: float = 1.0) -> torch.Tensor:
    """``[F, h, w]`` long: the region (index into :data:`REGIONS`) of every latent cell of every frame. A cell
    belongs to an object when a quarter of its pixels do; driver beats moving beats static beats background."""
    travel = (scene.tracks - scene.tracks[:, :1]).norm(dim=-1).amax(dim=1)
    cells = F.avg_pool2d(scene.masks.float(), factor) >= 0.25  # [O, F, h, w]
    out = torch.full(cells.shape[1:], REGIONS.index("background"), dtype=torch.long)
    for k in range(len(cells)):  # lowest priority first
        if not bool(scene.driven[k]) and float(travel[k]) < moving_px:
            out[cells[k]] = REGIONS.index("static")
    for k in range(len(cells)):
        if not bool(scene.driven[k]) and float(travel[k]) >= moving_px:
            out[cells[k]] = REGIONS.index("moving")
    for k in range(len(cells)):
        if bool(scene.driven[k]):
            out[cells[k]] = REGIONS.index("driver")
    return out


@torch.no_grad()
def region_errors(backbone, scenes: list, *, sigmas=SIGMAS, batch: int = 8, seed: int = 0) -> dict:
    """Per noise level and region: the mean squared x0 error of the prior (frames 1-7, all latent channels) and
    of copying frame 0's latent; also the training objective's v-loss with fixed per-clip draws."""
    frames_u8 = torch.stack([(s.frames * 255).round().to(torch.uint8) for s in scenes])
    latents, embeddings = encode_clips(backbone, frames_u8)
    regions = torch.stack([region_cells(s) for s in scenes])  # [N, F, h, w]
    sums = {(s, r, m): 0.0 for s in sigmas for r in REGIONS for m in ("model", "copy")}
    counts = {(s, r): 0 for s in sigmas for r in REGIONS}
    v_losses = []
    settings = NoiseSettings()
    unet = backbone.unet
    for start in range(0, len(scenes), batch):
        idx = slice(start, start + batch)
        x0 = latents[idx].float()
        first = frames_u8[idx, 0].float().div(255)
        b = x0.shape[0]
        gens = clip_generators(seed, start, 0, b)
        v_losses.append(float(prior_loss(unet, backbone, x0, first, embeddings[idx], gens, settings)))
        gen = torch.Generator().manual_seed(seed + start)
        cond = encode_conditioning(backbone, first, fps=TOY_FPS + 1.0, noise_aug_strength=0.02, generator=gen,
                                   image_embeddings=embeddings[idx])
        noise = torch.randn(x0.shape, generator=gen)
        copy = x0[:, :1].expand_as(x0)
        for sigma in sigmas:
            s = torch.tensor(float(sigma))
            x = x0 + s * noise
            inp = torch.cat([edm_scale_input(x, s), cond.image_latents[:, None].expand(-1, x.shape[1], -1, -1, -1)],
                            dim=2)
            v = unet(inp, edm_noise_level(s.log()).expand(b), cond.image_embeddings, cond.added_time_ids).sample
            err = {"model": (edm_denoised(v.float(), x, s) - x0).pow(2).mean(2),  # [b, F, h, w]
                   "copy": (copy - x0).pow(2).mean(2)}
            reg = regions[idx]
            for r, name in enumerate(REGIONS):
                sel = reg[:, 1:] == r
                counts[(sigma, name)] += int(sel.sum())
                for m, e in err.items():
                    sums[(sigma, name, m)] += float(e[:, 1:][sel].sum())
    table = {str(s): {r: {"cells": counts[(s, r)],
                          **{m: sums[(s, r, m)] / counts[(s, r)] if counts[(s, r)] else None for m in ("model", "copy")}}
                      for r in REGIONS} for s in sigmas}
    n = len(v_losses)
    mean = sum(v_losses) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in v_losses) / max(1, n - 1))
    return {"v_loss": mean, "v_loss_se": sd / math.sqrt(n), "clips": len(scenes), "x0_error": table}


def format_regions(name: str, result: dict) -> str:
    rows = [f"{name}: v-loss {result['v_loss']:.4f} ± {result['v_loss_se']:.4f} (SE over batches, "
            f"{result['clips']} clips)",
            "sigma | " + " | ".join(f"{r} model / copy" for r in REGIONS)]
    for s, per in result["x0_error"].items():
        rows.append(f"{s} | " + " | ".join(
            f"{per[r]['model']:.4f} / {per[r]['copy']:.4f}" if per[r]["model"] is not None else "-" for r in REGIONS))
    return "\n".join(rows)


@torch.no_grad()
def noise_level_sensitivity(unet, sigmas: tuple[float, float] = (0.5, 20.0), seed: int = 0) -> dict[str, float]:
    """Does each resnet of the UNet see the noise level? The relative change of every spatio-temporal resnet's
    output when only the noise level fed to the UNet changes (same latent, image, CLIP embedding and time ids).

    SVD's resnets add the time embedding (noise level, fps, motion bucket, augmentation) per channel right before a
    GroupNorm(32); where a resnet is 32 channels wide each group is one channel, the norm subtracts that channel's
    mean, and the embedding cancels: the change is float rounding (~1e-7). Those resolutions denoise the same way
    at every noise level."""
    outs: dict[str, list[torch.Tensor]] = {}
    hooks = []
    blocks = [(f"down{i}", b) for i, b in enumerate(unet.down_blocks)] + [("mid", unet.mid_block)] + \
        [(f"up{i}", b) for i, b in enumerate(unet.up_blocks)]
    for name, block in blocks:
        for j, resnet in enumerate(block.resnets):
            width = resnet.spatial_res_block.norm2.num_channels
            key = f"{name}.resnet{j} ({width} channels, {resnet.spatial_res_block.norm2.num_groups} groups)"
            hooks.append(resnet.register_forward_hook(
                lambda mod, inp, out, key=key: outs.setdefault(key, []).append(out.detach().clone())))
    g = torch.Generator().manual_seed(seed)
    frames, size = unet.config.num_frames, unet.config.sample_size
    x = torch.randn(1, frames, unet.config.in_channels, size, size, generator=g)
    embeddings = torch.randn(1, 1, unet.config.cross_attention_dim, generator=g)
    time_ids = torch.tensor([[TOY_FPS, 40.0, 0.02]])
    try:
        for sigma in sigmas:
            unet(x, torch.tensor([0.25 * math.log(sigma)]), embeddings, time_ids)
    finally:
        for h in hooks:
            h.remove()
    return {key: float((a - b).norm() / a.norm()) for key, (a, b) in outs.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.toy.study", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("regions", help="v-loss on training vs held-out clips, x0 error per region and noise level")
    r.add_argument("--svd", required=True, help="an SVD folder (the prior's svd/)")
    r.add_argument("--num", type=int, default=256, help="clips of each set")
    r.add_argument("--json", help="also write the result to this JSON file")
    b = sub.add_parser("noise-blind", help="which resnets of the prior cannot see the noise level (GroupNorm(32) "
                                           "on 32 channels)")
    b.add_argument("--svd", required=True, help="an SVD folder (the prior's svd/)")
    b.add_argument("--json", help="also write the result to this JSON file")
    a = p.parse_args(argv)
    backbone = load_svd_backbone(a.svd, dtype=torch.float32)
    if a.cmd == "noise-blind":
        out = noise_level_sensitivity(backbone.unet)
        for key, change in out.items():
            print(f"{key}: relative change between sigma 0.5 and 20: {change:.1e}"
                  + ("  <- blind to the noise level" if change < 1e-5 else ""))
    else:
        out = {}
        for name, first in (("training", 0), ("held_out", HELD_OUT_SEED)):
            out[name] = region_errors(backbone, render(first, a.num))
            print(format_regions(name, out[name]), flush=True)
    if a.json:
        write_text_atomic(a.json, json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
