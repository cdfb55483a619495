"""Memory-lean optimizers for the control branch.

:class:`AdamWBF16State` is AdamW whose two moment estimates are stored in bfloat16 (4 bytes of
optimizer state per parameter instead of torch AdamW's 8), for cards where the branch's fp32 AdamW
state does not fit and bitsandbytes' 8-bit AdamW (2 bytes per parameter) is not installed
(``optimizer_fallback: adamw_bf16`` in the training config). The update itself is computed in
float32 from the float32 master weights and gradients; only the stored moments are rounded, and
stochastically: a plain round-to-nearest would freeze ``exp_avg_sq`` (with beta2 = 0.999 its
per-step change, 1e-3 relative, is below bfloat16's resolution of 2^-8), stochastic rounding keeps
it unbiased. The rounding noise comes from torch's global generator, which accelerate saves and
restores with a checkpoint.
"""
from __future__ import annotations

import math

import torch

_LOW_HALF = -65536  # int32 0xFFFF0000: keeps the sign, exponent and the 7 mantissa bits bfloat16 holds


def stochastic_round_to_bf16_(out: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Write float32 ``value`` into bfloat16 ``out``, rounding each magnitude up with probability equal to
    the fraction of a bfloat16 step it lies above the value below (so the expectation is ``value``)."""
    bits = value.contiguous().view(torch.int32)
    noise = torch.randint(0, 1 << 16, bits.shape, device=bits.device, dtype=torch.int32)
    # the low 16 bits are the magnitude's low bits whatever the sign: adding and truncating rounds |value|
    out.copy_(((bits + noise) & _LOW_HALF).view(torch.float32))  # exact: the dropped bits are zero
    return out


class AdamWBF16State(torch.optim.Optimizer):
    """AdamW (decoupled weight decay, bias correction as ``torch.optim.AdamW``) with bfloat16 moments."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"lr, eps and weight_decay must be >= 0, got {lr}, {eps}, {weight_decay}")
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps, decay = group["lr"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("AdamWBF16State does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0  # a Python int: no device tensor to read back
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.bfloat16, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.bfloat16,
                                                           memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"]
                grad = p.grad.float()
                exp_avg = state["exp_avg"].float().lerp_(grad, 1 - beta1)
                exp_avg_sq = state["exp_avg_sq"].float().mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                if decay:
                    p.mul_(1 - lr * decay)
                denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
                p.addcdiv_(exp_avg.to(p.dtype), denom.to(p.dtype), value=-lr / (1 - beta1**t))
                stochastic_round_to_bf16_(state["exp_avg"], exp_avg)
                stochastic_round_to_bf16_(state["exp_avg_sq"], exp_avg_sq)
        return loss
