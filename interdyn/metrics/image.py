"""Paired frame metrics: SSIM, PSNR and LPIPS between generated and ground-truth clips.

Conventions (all three):

* videos are ``[N, F, 3, H, W]`` float tensors in [0, 1];
* frame 0 (the conditioning frame, identical by construction) is excluded: scores cover frames
  ``1 .. F-1`` of every clip;
* frames are first quantised to uint8 levels, ``round(x*255)/255``, i.e. the frames as they would be
  written to disk;
* ``reduction="mean"`` returns one float, the mean over all ``N*(F-1)`` frames (every frame weighs the
  same); ``reduction="none"`` returns the per-frame scores ``[N, F-1]``.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, Literal

import torch

from ..support.safe_load import read_tensor_file
from ._video import check_pair, quantize
from .weights import ALEXNET_WEIGHTS, find_weights

Reduction = Literal["mean", "none"]


def _reduce(values: torch.Tensor, n: int, reduction: Reduction):
    values = values.reshape(n, -1)
    if reduction == "none":
        return values
    if reduction == "mean":
        return float(values.double().mean())
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _paired_frames(generated: torch.Tensor, reference: torch.Tensor):
    generated, reference = check_pair(generated, reference)
    n = generated.shape[0]
    g = quantize(generated[:, 1:]).reshape(-1, *generated.shape[2:])
    r = quantize(reference[:, 1:]).reshape(-1, *reference.shape[2:])
    return g, r, n


@torch.no_grad()
def ssim(generated: torch.Tensor, reference: torch.Tensor, *, reduction: Reduction = "mean", batch_size: int = 64):
    """Structural similarity (Wang et al. 2004) per frame, frames 1..F-1, after uint8 quantisation.

    Computed with ``kornia.metrics.ssim``: 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, data
    range 1, frames reflect-padded so the SSIM map covers every pixel, then averaged over channels and
    pixels. This is what torchmetrics' ``structural_similarity_index_measure`` computes (agreement to
    ~1e-6); scikit-image instead averages only the border-free (valid) region, which differs by about
    1e-3 on small frames. Identical frames give exactly 1.
    """
    import kornia  # on use: importing it takes seconds, and most imports of this module never compute SSIM

    g, r, n = _paired_frames(generated, reference)
    if min(g.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs frames of at least 11x11 pixels, got {tuple(g.shape[-2:])}")
    out = []
    for i in range(0, g.shape[0], batch_size):
        ssim_map = kornia.metrics.ssim(g[i : i + batch_size], r[i : i + batch_size], 11, max_val=1.0, padding="same")
        out.append(ssim_map.flatten(1).mean(1))
    return _reduce(torch.cat(out), n, reduction)


@torch.no_grad()
def psnr(
    generated: torch.Tensor, reference: torch.Tensor, *, reduction: Reduction = "mean", max_db: float = 100.0
):
    """Peak signal-to-noise ratio in dB per frame (data range 1), frames 1..F-1, after uint8 quantisation.

    ``PSNR = 10 log10(1 / MSE)`` with the MSE over all pixels and channels of one frame.

    Identical frames (MSE = 0, infinite PSNR): the MSE is clamped from below to ``10**(-max_db/10)``,
    so such a frame scores exactly ``max_db`` (100 dB by default) and the mean stays finite. After
    quantisation a frame that differs at all has MSE >= 1/(255**2 * 3*H*W); at 256x384 the clamp
    affects only frames that are identical or differ in a single value by a single level.
    """
    g, r, n = _paired_frames(generated, reference)
    mse = (g.double() - r.double()).pow(2).flatten(1).mean(1)
    floor = 10.0 ** (-max_db / 10.0)
    values = 10.0 * torch.log10(1.0 / mse.clamp_min(floor))
    return _reduce(values.float(), n, reduction)


def load_lpips(alexnet_weights: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
    """LPIPS v0.1 with the AlexNet backbone, built without any download.

    The five linear heads ("lin" layers) are the published ones that the ``lpips`` package ships in its
    wheel (``lpips/weights/v0.1/alex.pth``). The AlexNet backbone is torchvision's ImageNet
    ``alexnet-owt-7be5be79.pth``, read from ``alexnet_weights`` (the file, or a folder holding it) or
    else from ``$TORCH_HOME/hub/checkpoints/`` (see :mod:`.weights`); only its ``features.*`` tensors
    are used. A missing file raises FileNotFoundError naming the file and where it was looked for.
    """
    import lpips as lpips_package  # optional (extra "eval")

    path = find_weights(ALEXNET_WEIGHTS, alexnet_weights, what="LPIPS AlexNet backbone")
    state = read_tensor_file(path, "the LPIPS AlexNet backbone")
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    # pnet_rand=True: torchvision builds an untrained AlexNet (no download); we then fill it in.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's deprecation of lpips' `pretrained=` argument
        net = lpips_package.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    features: dict[str, torch.Tensor] = {}
    for slice_index, layers in enumerate(((0,), (3,), (6,), (8,), (10,)), start=1):
        for layer in layers:
            for kind in ("weight", "bias"):
                key = f"features.{layer}.{kind}"
                if key not in state:
                    raise ValueError(f"{path} is not a torchvision AlexNet state dict: {key!r} missing")
                features[f"slice{slice_index}.{layer}.{kind}"] = state[key]
    net.net.load_state_dict(features, strict=True)
    return net.eval().requires_grad_(False).to(device)


@torch.no_grad()
def lpips(
    generated: torch.Tensor,
    reference: torch.Tensor,
    *,
    net: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    alexnet_weights: str | os.PathLike | None = None,
    reduction: Reduction = "mean",
    batch_size: int = 16,
    device: str | torch.device | None = None,
):
    """LPIPS distance (Zhang et al. 2018, v0.1, AlexNet) per frame, frames 1..F-1, after uint8 quantisation.

    Args:
        net: an ``lpips.LPIPS``-like callable taking two image batches in [-1, 1] and returning one
            distance per image (any shape with the batch first). ``None`` builds the real network with
            :func:`load_lpips` (``alexnet_weights`` is passed to it). Tests inject
            ``lpips.LPIPS(net="alex", pnet_rand=True)``.
        device: where to run; defaults to the network's device.

    Identical frames give 0.
    """
    g, r, n = _paired_frames(generated, reference)
    if net is None:
        net = load_lpips(alexnet_weights, device=device or "cpu")
    if device is None:
        params = list(net.parameters()) if isinstance(net, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    out = []
    for i in range(0, g.shape[0], batch_size):
        a = g[i : i + batch_size].to(device) * 2.0 - 1.0
        b = r[i : i + batch_size].to(device) * 2.0 - 1.0
        d = net(a, b)
        out.append(d.reshape(d.shape[0], -1).mean(1).float().cpu())
    return _reduce(torch.cat(out), n, reduction)
