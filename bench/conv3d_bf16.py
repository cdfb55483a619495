"""Benchmark-style check (not a test): does this CPU's bf16 Conv3d give NaN weight gradients?

SVD's temporal convolutions have a kernel of 3 frames. oneDNN's avx512_bf16 kernels (AMD EPYC with avx512_bf16,
or an Intel CPU limited to them with ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16) return NaN in some elements of the
weight gradient of a bf16 Conv3d (3, 1, 1) when the clip has 2 frames. This script runs one such convolution
in a fresh process per oneDNN ISA setting and prints how many gradient elements are not finite, for 2, 3, 4 and
8 frames. training/train.py trains 2-frame clips in float32 on the CPU for that reason (cpu_bf16_fallback).

    python bench/conv3d_bf16.py
"""
from __future__ import annotations

import os
import subprocess
import sys

CHECK = """
import torch
torch.manual_seed(0)
out = []
for frames in (2, 3, 4, 8):
    conv = torch.nn.Conv3d(32, 32, (3, 1, 1), padding=(1, 0, 0)).to(torch.bfloat16)
    x = torch.randn(1, 32, frames, 8, 8, dtype=torch.bfloat16, requires_grad=True)
    conv(x).float().sum().backward()
    out.append(int((~torch.isfinite(conv.weight.grad)).sum()))
print(*out)
"""


def main() -> None:
    print("non-finite elements of a bf16 Conv3d (3,1,1) weight gradient (of 3072), by clip length")
    print(f"{'ONEDNN_MAX_CPU_ISA':22s} {'2 frames':>9s} {'3':>5s} {'4':>5s} {'8':>5s}")
    for isa in (None, "AVX512_CORE_BF16", "AVX512_CORE", "AVX2"):
        env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
        if isa:
            env["ONEDNN_MAX_CPU_ISA"] = isa
        done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True)
        counts = done.stdout.split() if done.returncode == 0 else ["error"] * 4
        print(f"{isa or '(default)':22s} {counts[0]:>9s} {counts[1]:>5s} {counts[2]:>5s} {counts[3]:>5s}")


if __name__ == "__main__":
    main()
