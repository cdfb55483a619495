"""Real-size static training memory on the CPU, measured, against bench/train_step.py's analytic table.

Not a test. Builds SVD's real-size UNet, temporal VAE and CLIP ViT-H/14 in bf16 (one at a time) and the
real-size control branch in float32 on the CPU (bench/realsize.py), then measures the bytes actually
allocated (distinct tensor storages):

* frozen models: their parameters and buffers;
* the branch: its float32 master weights, the gradients left by one backward pass of a tiny input
  (1 clip x 2 frames x 64x64, loss on all residuals), and the optimizer state after one real optimizer
  step (``torch.optim.AdamW``, ``AdamWBF16State`` (the 24 GB config's fallback) and, when bitsandbytes is
  installed, its ``AdamW8bit``, the 24 GB config's optimizer). To stay under
  ~8 GB of RAM the optimizer steps over the branch's parameters in four parts, one optimizer per part,
  each freed after it is measured; the sum is the whole branch's state.

Prints measured / analytic per row and for the totals, and exits 1 if any is off by more than 10 %.

    python bench/static_memory.py            # ~1-2 min on 2 cores, peak ~8 GB RAM
"""
from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from realsize import empty_models, materialize, storage_bytes  # noqa: E402
from train_step import parameter_counts, real_models, static_memory_rows  # noqa: E402

GB = 1e9
TOLERANCE = 0.10


def frozen_bytes() -> dict[str, int]:
    """Bytes of each frozen model built in bf16 on the CPU, measured one at a time."""
    out = {}
    for key, index in (("unet", 0), ("vae", 1), ("clip", 2)):
        module = empty_models(branch=False)[index]
        materialize(module, "cpu", torch.bfloat16)
        out[key] = storage_bytes(list(module.parameters()) + list(module.buffers()))
        del module
        gc.collect()
    return out


def branch_bytes() -> dict[str, int]:
    """Weights, gradients after one backward and optimizer state after one step of the real-size branch."""
    from training.optimizers import AdamWBF16State

    unet, _, _, branch = empty_models()
    del unet
    materialize(branch, "cpu", torch.float32).train().requires_grad_(True)
    params = list(branch.parameters())
    out = {"branch": storage_bytes(params)}
    frames, size = 2, 64
    sample = torch.randn(1, frames, 8, size // 8, size // 8)
    control = torch.rand(1, frames, 3, size, size) * 2 - 1
    down, mid = branch(sample, torch.tensor([0.5]), torch.randn(1, 1, branch.config.cross_attention_dim),
                       torch.tensor([[6.0, 40.0, 0.02]]), controlnet_cond=control, return_dict=False)
    loss = sum(d.float().pow(2).mean() for d in down) + mid.float().pow(2).mean()
    loss.backward()
    del down, mid, loss
    out["grads"] = storage_bytes(p.grad for p in params)
    # optimizer state, four parts at a time
    parts, part, part_bytes, limit = [], [], 0, out["branch"] / 4
    for p in params:
        part.append(p)
        part_bytes += p.nbytes
        if part_bytes >= limit:
            parts.append(part)
            part, part_bytes = [], 0
    if part:
        parts.append(part)
    optimizers = [("adamw", torch.optim.AdamW), ("adamw_bf16", AdamWBF16State)]
    if _has_bitsandbytes():  # bitsandbytes >= 0.45 steps its 8-bit AdamW on CPU tensors too
        import bitsandbytes

        optimizers.append(("adamw8bit", bitsandbytes.optim.AdamW8bit))
    for name, cls in optimizers:
        total = 0
        for group in parts:
            opt = cls(group, lr=1e-5)
            opt.step()
            total += storage_bytes(t for state in opt.state.values() for t in state.values())
            del opt
            gc.collect()
        out[f"optimizer:{name}"] = total
    return out


def main() -> int:
    start = time.perf_counter()
    torch.manual_seed(0)
    n = parameter_counts(*real_models())
    measured = frozen_bytes()
    measured.update(branch_bytes())
    ok = True
    print(f"real-size static training memory, measured on the CPU vs the analytic table (bench/train_step.py)")
    print(f"   {'':46s}{'analytic':>11s}{'measured':>11s}{'ratio':>8s}")
    for optimizer in [k.split(":")[1] for k in measured if k.startswith("optimizer:")]:
        rows = static_memory_rows(n, optimizer)
        total_a = total_m = 0
        for key, label, _, analytic in rows:
            got = measured[f"optimizer:{optimizer}" if key == "optimizer" else key]
            total_a, total_m = total_a + analytic, total_m + got
            ratio = got / analytic
            ok &= abs(ratio - 1) <= TOLERANCE
            if optimizer == "adamw" or key == "optimizer":
                print(f"   {label:46s}{analytic / GB:8.3f} GB{got / GB:8.3f} GB{ratio:8.3f}")
        ratio = total_m / total_a
        ok &= abs(ratio - 1) <= TOLERANCE
        print(f"   {'static total with ' + optimizer:46s}{total_a / GB:8.3f} GB{total_m / GB:8.3f} GB{ratio:8.3f}")
    if not _has_bitsandbytes():
        print("   adamw8bit: bitsandbytes not installed, not measured (pip install bitsandbytes)")
    print(f"   {'within 10 %' if ok else 'MISMATCH: a row is off by more than 10 %'}  "
          f"({time.perf_counter() - start:.0f} s)")
    return 0 if ok else 1


def _has_bitsandbytes() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
