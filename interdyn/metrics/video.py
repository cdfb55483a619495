"""Video distribution metrics: FVD and unbiased KVD, following StyleGAN-V's protocol.

StyleGAN-V (Skorokhodov et al. 2022, ``src/metrics/frechet_video_distance.py`` and
``metric_utils.py``) computes FVD with a TorchScript port of the Kinetics-400 I3D used by the
original TensorFlow FVD (``i3d_torchscript.pt``):

* clips are uint8 tensors ``[N, 3, F, H, W]`` with values 0..255 (its generator outputs are
  converted with ``(x * 127.5 + 128).clamp(0, 255).to(torch.uint8)``, its datasets yield uint8);
* the detector is called as ``detector(clips, rescale=True, resize=True, return_features=True)``:
  the detector itself maps 0..255 to [-1, 1] (``rescale``), resizes to 224x224 (``resize``) and
  returns the 400-d logits before the softmax (``return_features``). (What ``rescale`` does is
  inferred from how StyleGAN-V and later repositories call the file, not read from it.)
* statistics are the mean and the *biased* covariance (``raw_cov / n - outer(mean, mean)``, i.e.
  ``np.cov(..., bias=True)``), in float64;
* FVD is ``|mu_g - mu_r|^2 + Tr(S_g + S_r - 2 sqrtm(S_g S_r))`` with ``scipy.linalg.sqrtm``.

Many later repositories (e.g. common_metrics_on_video_quality) call the same detector with
``rescale=False`` on float clips already scaled to [-1, 1] and use the unbiased ``np.cov``; pass
``input_range="signed"`` and ``ddof=1`` to reproduce those. KVD applies the unbiased polynomial-kernel
MMD of :func:`.distribution.kernel_distance` to the same I3D features.

Clips are used whole (all F frames, including frame 0) by default, as StyleGAN-V does; set
``skip_first_frame=True`` to drop the conditioning frame.
"""
from __future__ import annotations

import os
from typing import Callable, Literal

import torch

from ._video import check_videos, to_uint8
from .distribution import DistanceResult, feature_statistics, frechet_distance, kernel_distance
from .weights import I3D_SHA256, I3D_SIZE, I3D_WEIGHTS, find_weights, sha256_of

#: detector(clips [B, 3, F, H, W], rescale=..., resize=..., return_features=...) -> [B, D]
VideoDetector = Callable[..., torch.Tensor]
InputRange = Literal["uint8", "signed"]


class UntrustedWeightsError(ValueError):
    """A TorchScript file is not the published one and the caller did not say they trust it."""


def load_i3d(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu", *,
             trust: bool = False) -> torch.jit.ScriptModule:
    """The FVD I3D TorchScript detector from ``weights`` (file or folder) or
    ``$TORCH_HOME/hub/checkpoints/i3d_torchscript.pt``. Never downloads.

    A TorchScript file is a program: loading one runs what it says. The file is loaded only when its
    SHA-256 is :data:`~interdyn.metrics.weights.I3D_SHA256` (StyleGAN-V's published
    ``i3d_torchscript.pt``), or when ``trust=True`` says the caller trusts this file
    (``--trust-i3d`` on the command line); otherwise :class:`UntrustedWeightsError`, before loading."""
    path = find_weights(I3D_WEIGHTS, weights, what="FVD I3D (TorchScript)")
    if not trust:
        size = os.path.getsize(path)
        digest = sha256_of(path) if size == I3D_SIZE else f"not computed: {size:,} bytes, expected {I3D_SIZE:,}"
        if digest != I3D_SHA256:
            raise UntrustedWeightsError(
                f"{path} is not the published FVD I3D file (SHA-256 {digest}, expected {I3D_SHA256}); it was not "
                "loaded, because loading a TorchScript file runs its code. If you made it or trust its source, pass "
                "trust=True (--trust-i3d)")
    return torch.jit.load(str(path), map_location=device).eval()


@torch.no_grad()
def i3d_features(
    videos: torch.Tensor,
    detector: VideoDetector,
    *,
    input_range: InputRange = "uint8",
    skip_first_frame: bool = False,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    name: str = "videos",
) -> torch.Tensor:
    """Detector features of clips ``[N, F, 3, H, W]`` (float 0..1), as float64 ``[N, D]``.

    ``input_range="uint8"`` (StyleGAN-V): uint8 clips 0..255 with ``rescale=True``.
    ``input_range="signed"``: the same quantised values as float ``q/127.5 - 1`` with ``rescale=False``.
    """
    videos = check_videos(videos, name)
    if skip_first_frame:
        videos = videos[:, 1:]
    out = []
    for i in range(0, videos.shape[0], batch_size):
        clips = to_uint8(videos[i : i + batch_size]).permute(0, 2, 1, 3, 4).contiguous()  # [B, 3, F, H, W]
        if input_range == "uint8":
            kwargs = dict(rescale=True, resize=True, return_features=True)
        elif input_range == "signed":
            clips = clips.float() / 127.5 - 1.0
            kwargs = dict(rescale=False, resize=True, return_features=True)
        else:
            raise ValueError(f"input_range must be 'uint8' or 'signed', got {input_range!r}")
        if device is not None:
            clips = clips.to(device)
        f = detector(clips, **kwargs)
        out.append(torch.as_tensor(f).reshape(clips.shape[0], -1).double().cpu())
    return torch.cat(out)


def _both_features(generated, reference, detector, i3d_weights, input_range, skip_first_frame, batch_size, device):
    generated, reference = check_videos(generated, "generated"), check_videos(reference, "reference")
    if reference.shape[1] != generated.shape[1]:
        raise ValueError(f"generated and reference clips differ in length: {generated.shape[1]} vs {reference.shape[1]}")
    if detector is None:
        detector = load_i3d(i3d_weights, device=device or "cpu")
    kw = dict(input_range=input_range, skip_first_frame=skip_first_frame, batch_size=batch_size, device=device)
    fg = i3d_features(generated, detector, name="generated", **kw)
    fr = i3d_features(reference, detector, name="reference", **kw)
    frames = generated.shape[1] - (1 if skip_first_frame else 0)
    return fg, fr, frames


def fvd(
    generated: torch.Tensor,
    reference: torch.Tensor,
    *,
    detector: VideoDetector | None = None,
    i3d_weights: str | os.PathLike | None = None,
    input_range: InputRange = "uint8",
    ddof: int = 0,
    skip_first_frame: bool = False,
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> DistanceResult:
    """Fréchet Video Distance between generated and reference clips ``[N, F, 3, H, W]`` (float 0..1).

    StyleGAN-V's protocol by default (see the module docstring): uint8 clips, ``rescale=True,
    resize=True, return_features=True``, biased covariance (``ddof=0``). ``detector`` is any callable
    with the I3D TorchScript's signature; ``None`` loads it with :func:`load_i3d`. The result carries
    the number of clips on each side and the frames per clip. FVD from few clips is strongly biased
    upwards; StyleGAN-V reports it on 2048 clips.
    """
    fg, fr, frames = _both_features(generated, reference, detector, i3d_weights, input_range, skip_first_frame, batch_size, device)
    value = frechet_distance(*feature_statistics(fg, ddof=ddof), *feature_statistics(fr, ddof=ddof))
    return DistanceResult(value, fg.shape[0], fr.shape[0], frames)


def kvd(
    generated: torch.Tensor,
    reference: torch.Tensor,
    *,
    detector: VideoDetector | None = None,
    i3d_weights: str | os.PathLike | None = None,
    input_range: InputRange = "uint8",
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
    skip_first_frame: bool = False,
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> DistanceResult:
    """Unbiased Kernel Video Distance: :func:`.distribution.kernel_distance` (cubic polynomial kernel,
    gamma 1/d, coef 1, subsets of ``min(subset_size, n_gen, n_ref)`` clips) on the I3D features that
    :func:`fvd` uses. ``value`` is the mean over subsets and ``std`` their standard deviation."""
    fg, fr, frames = _both_features(generated, reference, detector, i3d_weights, input_range, skip_first_frame, batch_size, device)
    mean, std = kernel_distance(fg, fr, num_subsets=num_subsets, subset_size=subset_size, seed=seed)
    return DistanceResult(mean, fg.shape[0], fr.shape[0], frames, std=std)
