"""Benchmark: training-step speed and memory, with and without gradient checkpointing (not a test).

1. Tiny models (interdyn.core.tiny), measured: full training steps (VAE + CLIP conditioning,
   control branch + frozen UNet forward/backward, AdamW step) on this machine. Prints steps/s and
   the activation memory (bytes of the tensors autograd saves for the backward pass, parameters
   excluded; on CUDA also the peak allocated memory), and the ratios checkpointing / plain.
2. The real configuration, analytic: SVD's UNet (1.5 B) and the control branch built on the meta
   device (exact parameter counts, no memory used), memory per GPU for bf16 mixed precision with the
   branch's float32 master weights, gradients and AdamW state; activations measured by running the
   forward pass on the meta device (batch 4, 14 frames, 256x384) with attention saving what flash /
   memory-efficient attention saves (q, k, v, output, log-sum-exp), not the L x L matrix.
3. The same estimate for a training config (default training/configs/24gb.yaml: batch 1, gradient
   checkpointing, 8-bit AdamW or its bf16-state fallback).

    python bench/train_step.py [--steps 6] [--batch 2] [--frames 4] [--size 64] [--skip-tiny] [--config YAML]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

# this repository's `training` package first (sam2 installs an unrelated top-level `training`)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/realsize.py

GB = 1e9


# ---------------------------------------------------------------------------- saved-tensor accounting
@contextmanager
def count_saved_tensors(exclude: list[torch.nn.Module]):
    """Sum (once per storage) the bytes autograd saves for backward, parameters of ``exclude`` not counted."""
    params = {p.untyped_storage()._cdata for m in exclude for p in m.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage._cdata not in params:
            seen[storage._cdata] = storage.nbytes()
        return t

    result = {}
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield result
    result["bytes"] = sum(seen.values())


class _FlashLikeAttention(torch.autograd.Function):
    """Attention that saves what flash attention saves (for memory accounting on the meta device only)."""

    @staticmethod
    def forward(ctx, q, k, v):
        with torch.no_grad():
            out = _SDPA(q, k, v)
        ctx.save_for_backward(q, k, v, out, q.new_empty(q.shape[:-1], dtype=torch.float32))
        return out

    @staticmethod
    def backward(ctx, grad):  # pragma: no cover - never run
        raise NotImplementedError


_SDPA = F.scaled_dot_product_attention


@contextmanager
def flash_like_attention():
    def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, **kwargs):
        if attn_mask is not None or is_causal:
            return _SDPA(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, **kwargs)
        return _FlashLikeAttention.apply(q, k, v)

    F.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = _SDPA


# ---------------------------------------------------------------------------- 1. tiny, measured
def bench_tiny(steps: int, batch: int, frames: int, size: int) -> dict[bool, dict]:
    from training.config import load_config
    from training.data.datasets import SyntheticClips, collate_samples
    from training.losses import NoiseSettings, clip_generators, predict_v, prepare_inputs, v_loss
    from training.train import build_backbone, build_control_branch

    config = load_config(None, {"pretrained_model": "tiny", "num_frames": frames, "height": size, "width": size})
    data = SyntheticClips(batch, height=size, width=size, num_frames=frames)
    clips = collate_samples([data[i] for i in range(batch)])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    setups = {}
    for checkpointing in (False, True):
        backbone = build_backbone(config)
        torch.manual_seed(0)
        branch = build_control_branch(config, backbone)
        for m in (backbone.unet, backbone.vae, backbone.image_encoder, branch):
            m.to(device)
        if checkpointing:
            branch.enable_gradient_checkpointing()
            backbone.unet.enable_gradient_checkpointing()
        setups[checkpointing] = (backbone, branch, torch.optim.AdamW(branch.parameters(), lr=1e-4))
    results = {k: {"times": [], "saved_bytes": 0, "peak_bytes": None} for k in setups}
    # alternate the two set-ups step by step, so that a busy machine slows both alike
    for step in range(steps + 1):
        for checkpointing, (backbone, branch, optimizer) in setups.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            inputs = prepare_inputs(backbone, clips, clip_generators(0, step, 0, batch), NoiseSettings())
            with count_saved_tensors([branch, backbone.unet]) as counted:
                loss = v_loss(predict_v(backbone.unet, branch, inputs, "standard"), inputs.target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
                results[checkpointing]["peak_bytes"] = torch.cuda.max_memory_allocated()
            if step:  # the first step warms up
                results[checkpointing]["times"].append(time.perf_counter() - start)
            results[checkpointing]["saved_bytes"] = counted["bytes"]
    for r in results.values():
        r["steps_per_s"] = 1 / statistics.median(r.pop("times"))
    off, on = results[False], results[True]
    print(f"\n1. tiny models, {device.type}, batch {batch} x {frames} frames x {size}x{size}, median of {steps} steps")
    print(f"   {'':26s}{'steps/s':>10s}{'activations':>14s}" + ("{:>12s}".format("peak") if off["peak_bytes"] else ""))
    for name, r in (("plain", off), ("gradient checkpointing", on)):
        peak = f"{r['peak_bytes'] / 1e6:10.1f}MB" if r["peak_bytes"] else ""
        print(f"   {name:26s}{r['steps_per_s']:10.2f}{r['saved_bytes'] / 1e6:12.2f}MB{peak}")
    print(f"   checkpointing / plain:    speed x{on['steps_per_s'] / off['steps_per_s']:.2f}, "
          f"activations x{on['saved_bytes'] / off['saved_bytes']:.2f}")
    return results


# ---------------------------------------------------------------------------- 2. real, analytic
def real_models():
    """SVD's UNet, temporal VAE, CLIP ViT-H/14 and the control branch on the meta device (bench/realsize.py)."""
    from realsize import empty_models

    unet, vae, clip, branch = empty_models()
    # a few parameters are made with CPU constructors even under the meta device: move everything
    for m in (unet, branch, vae, clip):
        m.to("meta")
    return unet, branch, vae, clip


def real_activations(unet, branch, batch: int, frames: int, height: int, width: int, checkpointing: bool) -> int:
    import torch.utils.checkpoint as cp

    unet.to(dtype=torch.bfloat16).requires_grad_(False)
    branch.to(dtype=torch.bfloat16).requires_grad_(True)
    if checkpointing:
        def ckpt(module, *args):
            return cp.checkpoint(module.__call__, *args, use_reentrant=False, preserve_rng_state=False)

        branch.enable_gradient_checkpointing(ckpt)
        unet.enable_gradient_checkpointing(ckpt)
    else:
        branch.disable_gradient_checkpointing()
        unet.disable_gradient_checkpointing()
    meta = dict(device="meta", dtype=torch.bfloat16)
    x = torch.empty(batch, frames, 8, height // 8, width // 8, **meta)
    t = torch.empty(batch, device="meta")
    emb = torch.empty(batch, 1, unet.config.cross_attention_dim, **meta)
    ids = torch.empty(batch, 3, **meta)
    control = torch.empty(batch, frames, 3, height, width, **meta)
    with flash_like_attention(), count_saved_tensors([unet, branch]) as counted:
        down, mid = branch(x, t, emb, ids, controlnet_cond=control, return_dict=False)
        unet(x, t, encoder_hidden_states=emb, added_time_ids=ids, down_block_additional_residuals=down,
             mid_block_additional_residual=mid, return_dict=False)
    return counted["bytes"]


# bytes of optimizer state per trainable parameter
OPTIMIZER_STATE_BYTES = {
    "adamw": 8.0,       # torch.optim.AdamW: exp_avg + exp_avg_sq in float32
    "adamw_bf16": 4.0,  # training.optimizers.AdamWBF16State: both moments in bfloat16
    "adamw8bit": 2.0,   # bitsandbytes AdamW8bit: both moments in 8 bits (+ ~0.03 B/param block scales)
}


def parameter_counts(unet, branch, vae, clip) -> dict[str, int]:
    return {name: sum(p.numel() for p in m.parameters()) for name, m in
            (("unet", unet), ("branch", branch), ("vae", vae), ("clip", clip))}


def static_memory_rows(n: dict[str, int], optimizer: str = "adamw") -> list[tuple[str, str, int | None, float]]:
    """``(key, label, parameters, bytes)`` of weights, gradients and optimizer state per GPU (bf16 frozen models,
    float32 master weights and gradients of the branch); ``key`` names the row for bench/static_memory.py."""
    return [
        ("unet", "SVD UNet, frozen, bf16", n["unet"], 2 * n["unet"]),
        ("vae", "temporal VAE, frozen, bf16", n["vae"], 2 * n["vae"]),
        ("clip", "CLIP ViT-H/14 image encoder, frozen, bf16", n["clip"], 2 * n["clip"]),
        ("branch", "control branch weights, fp32 master", n["branch"], 4 * n["branch"]),
        ("grads", "control branch gradients, fp32", None, 4 * n["branch"]),
        ("optimizer", f"{optimizer} state", None, OPTIMIZER_STATE_BYTES[optimizer] * n["branch"]),
    ]


def bench_real(batch: int = 4, frames: int = 14, height: int = 256, width: int = 384) -> None:
    unet, branch, vae, clip = real_models()
    n = parameter_counts(unet, branch, vae, clip)
    act_plain = real_activations(unet, branch, batch, frames, height, width, checkpointing=False)
    act_ckpt = real_activations(unet, branch, batch, frames, height, width, checkpointing=True)
    rows = static_memory_rows(n, "adamw")
    static = sum(r[3] for r in rows)
    print(f"\n2. real configuration, per GPU: batch {batch}, {frames} frames, {height}x{width}, bf16 autocast")
    print(f"   {'':52s}{'params':>10s}{'memory':>10s}")
    for _, name, count, size in rows:
        print(f"   {name:52s}{(f'{count / 1e9:.3f} B' if count else ''):>10s}{size / GB:8.2f} GB")
    print(f"   {'weights + gradients + optimizer':52s}{'':10s}{static / GB:8.2f} GB")
    print(f"   {'  with 8-bit AdamW (state 2 bytes/param)':52s}{'':10s}{(static - 6 * n['branch']) / GB:8.2f} GB")
    print(f"   {'  + EMA copy of the branch (fp32), if use_ema':52s}{'':10s}{4 * n['branch'] / GB:8.2f} GB")
    print(f"   {'  + DDP gradient buckets (~ one gradient copy)':52s}{'':10s}{4 * n['branch'] / GB:8.2f} GB")
    print(f"   {'activations saved for backward, plain':52s}{'':10s}{act_plain / GB:8.2f} GB")
    print(f"   {'activations saved for backward, gradient checkpointing':52s}{'':10s}{act_ckpt / GB:8.2f} GB")
    print(f"   {'total (static + activations), plain':52s}{'':10s}{(static + act_plain) / GB:8.2f} GB")
    print(f"   {'total (static + activations), checkpointing':52s}{'':10s}{(static + act_ckpt) / GB:8.2f} GB")
    print(f"   branch / UNet parameters: {n['branch'] / n['unet']:.2f}; activations checkpointing / plain: "
          f"{act_ckpt / act_plain:.2f}")
    print("   (add ~10-20% for the allocator, transient backward buffers and the VAE/CLIP encoder passes; "
          "activations assume bf16 tensors and flash-style attention)")


def config_estimate(path: Path) -> dict:
    """Analytic memory per GPU of a training config (batch, frames, size, checkpointing, optimizer from the file)."""
    from training.config import load_config

    config = load_config(path, {"pretrained_model": "real-size (analytic)"})
    unet, branch, vae, clip = real_models()
    n = parameter_counts(unet, branch, vae, clip)
    act = real_activations(unet, branch, config.batch_size, config.num_frames, config.height, config.width,
                           checkpointing=config.gradient_checkpointing)
    optimizers = [config.optimizer] + ([config.optimizer_fallback] if config.optimizer_fallback else [])
    static = {o: sum(r[3] for r in static_memory_rows(n, o)) for o in optimizers}
    return {"config": str(path), "batch_size": config.batch_size, "accumulation": config.gradient_accumulation_steps,
            "frames": config.num_frames, "size": f"{config.height}x{config.width}",
            "gradient_checkpointing": config.gradient_checkpointing, "activations_bytes": act,
            "static_bytes": static, "total_bytes": {o: s + act for o, s in static.items()}}


def bench_config(path: Path) -> dict:
    est = config_estimate(path)
    print(f"\n3. {path.name}: batch {est['batch_size']} x {est['accumulation']} accumulation, {est['frames']} frames, "
          f"{est['size']}, checkpointing {est['gradient_checkpointing']}, bf16 frozen models")
    print(f"   {'activations saved for backward':52s}{'':10s}{est['activations_bytes'] / GB:8.2f} GB")
    for o, s in est["static_bytes"].items():
        print(f"   {'weights + gradients + ' + o + ' state':52s}{'':10s}{s / GB:8.2f} GB")
        print(f"   {'  total with ' + o:52s}{'':10s}{est['total_bytes'][o] / GB:8.2f} GB")
    return est


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--skip-tiny", action="store_true")
    parser.add_argument("--config", type=Path, default=REPO / "training" / "configs" / "24gb.yaml",
                        help="training config whose analytic memory is printed last (default: the 24 GB one)")
    args = parser.parse_args()
    if not args.skip_tiny:
        bench_tiny(args.steps, args.batch, args.frames, args.size)
    bench_real()
    bench_config(args.config)


if __name__ == "__main__":
    main()
