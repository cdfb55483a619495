"""Baselines of InterDyn's Table 1: copy the first frame, and CosHand run frame by frame.

CosHand (Sudhakar et al., "Controlling the World by Sleight of Hand", ECCV 2024) is an image-to-image
*state transition* model: given an image, the hand mask in that image and a target hand mask, it
paints the scene after the hand has moved to the target. It predicts one future state, not a video.
InterDyn (Akkerman et al., CVPR 2025, Sec. 4 and Table 1) turns it into two video baselines:

* **CosHand-Independent** ("frame-by-frame"): every frame ``t = 1 .. F-1`` is predicted from the
  *first* frame and its hand mask, with the control at ``t`` as the target:
  ``x_t = T(x_0, c_t; source=c_0)``. No error accumulates, but consecutive frames are unrelated
  samples, so the video flickers.
* **CosHand-Autoregressive**: every frame is predicted from the *previous prediction* and its
  hand mask: ``x_t = T(x_{t-1}, c_t; source=c_{t-1})`` with ``x_0`` the real first frame. The
  video is coherent but errors accumulate.

Frame 0 is the real first frame in both (it is the conditioning frame; the metrics skip it). The
CosHand network itself is not part of this project (its weights are the authors'): the wrappers
take any callable ``transition``; see :func:`call_transition` for how it is called and
:func:`load_transition` for ``module:function`` strings (the ``--coshand`` option of
``python -m training.evaluate``).
"""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Callable

import torch

#: ``transition(image [3,H,W], control [3,H,W], *, source_control [3,H,W], t, seed) -> image [3,H,W]``
Transition = Callable[..., torch.Tensor]


def copy_first_frame(frames: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
    """The trivial baseline: the first frame repeated, ``[F, 3, H, W]``.

    ``frames`` is a clip ``[F, 3, H, W]`` (its first frame is used) or one image ``[3, H, W]``
    (then ``num_frames`` is needed). On a static video it is perfect (SSIM 1, LPIPS 0): it measures
    how much of a score comes from the scene not moving.
    """
    if frames.ndim == 3:
        if num_frames is None:
            raise ValueError("copy_first_frame of one image [3, H, W] needs num_frames")
        first = frames
    elif frames.ndim == 4:
        first = frames[0]
        num_frames = frames.shape[0] if num_frames is None else num_frames
    else:
        raise ValueError(f"frames must be [F, 3, H, W] or [3, H, W], got shape {tuple(frames.shape)}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    return first.unsqueeze(0).expand(num_frames, *first.shape).clone()


def _accepted_kwargs(fn: Callable) -> set[str] | None:
    """Names of the optional keywords ``fn`` takes; ``None`` means all (it has ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins, some C extensions: pass everything
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)}


def call_transition(transition: Transition, image: torch.Tensor, control: torch.Tensor, *,
                    source_control: torch.Tensor, t: int, seed: int | None = None) -> torch.Tensor:
    """Call a state-transition model once and check what it returns.

    ``transition(image, control, source_control=..., t=..., seed=...)``:

    * ``image``: the input state ``[3, H, W]`` float in [0, 1];
    * ``control``: the control frame of the *target* time ``t`` ``[3, H, W]`` in [0, 1] (for CosHand,
      the target hand mask, white on black);
    * ``source_control``: the control frame of the input image's time (CosHand's input hand mask);
    * ``t``: the index of the frame being predicted (1 .. F-1);
    * ``seed``: a per-clip seed the model may use for its own sampling noise.

    The keywords are passed only when the callable's signature takes them (or has ``**kwargs``), so
    ``def transition(image, control)`` works too. The result must be ``[3, H, W]`` (or
    ``[1, 3, H, W]``), finite, in [0, 1] (it is clamped) and is returned as float32 on the CPU.
    """
    accepted = _accepted_kwargs(transition)
    offered = {"source_control": source_control, "t": t, "seed": seed}
    kwargs = {k: v for k, v in offered.items() if accepted is None or k in accepted}
    out = transition(image, control, **kwargs)
    out = torch.as_tensor(out)
    if out.ndim == 4 and out.shape[0] == 1:
        out = out[0]
    if tuple(out.shape) != tuple(image.shape):
        raise ValueError(f"the transition model returned shape {tuple(out.shape)} for an image of shape "
                         f"{tuple(image.shape)}: it must return one image [3, H, W] in [0, 1]")
    out = out.detach().float().cpu()
    if not torch.isfinite(out).all():
        raise ValueError(f"the transition model returned non-finite values for frame {t}")
    return out.clamp(0.0, 1.0)


def _check_inputs(first_frame: torch.Tensor, control: torch.Tensor) -> None:
    if first_frame.ndim != 3 or first_frame.shape[0] != 3:
        raise ValueError(f"first_frame must be [3, H, W], got shape {tuple(first_frame.shape)}")
    if control.ndim != 4 or control.shape[1] != 3 or tuple(control.shape[-2:]) != tuple(first_frame.shape[-2:]):
        raise ValueError(f"control must be [F, 3, H, W] with the first frame's size {tuple(first_frame.shape[-2:])}, "
                         f"got shape {tuple(control.shape)}")


@torch.no_grad()
def coshand_independent(transition: Transition, first_frame: torch.Tensor, control: torch.Tensor, *,
                        seed: int | None = None) -> torch.Tensor:
    """CosHand-Independent: ``x_t = T(x_0, c_t; source_control=c_0)`` for ``t = 1 .. F-1``; ``x_0`` is
    the first frame. Returns ``[F, 3, H, W]`` float in [0, 1]."""
    _check_inputs(first_frame, control)
    first = first_frame.detach().float().cpu()
    frames = [first]
    for t in range(1, control.shape[0]):
        frames.append(call_transition(transition, first, control[t], source_control=control[0], t=t, seed=seed))
    return torch.stack(frames)


@torch.no_grad()
def coshand_autoregressive(transition: Transition, first_frame: torch.Tensor, control: torch.Tensor, *,
                           seed: int | None = None) -> torch.Tensor:
    """CosHand-Autoregressive: ``x_t = T(x_{t-1}, c_t; source_control=c_{t-1})`` for ``t = 1 .. F-1``,
    each prediction fed back as the next input; ``x_0`` is the first frame. Returns ``[F, 3, H, W]``."""
    _check_inputs(first_frame, control)
    frames = [first_frame.detach().float().cpu()]
    for t in range(1, control.shape[0]):
        frames.append(call_transition(transition, frames[-1], control[t], source_control=control[t - 1], t=t, seed=seed))
    return torch.stack(frames)


def load_transition(spec: str) -> Transition:
    """Resolve ``"package.module:function"`` or ``"path/to/file.py:function"`` to the callable.

    The attribute may also be a class or factory; whatever it names must be callable as described in
    :func:`call_transition`. A file path is imported under a private module name.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"a transition model is given as 'module:function' or 'file.py:function', got {spec!r}")
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ValueError(f"a transition model is given as 'module:function' or 'file.py:function', got {spec!r}")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"transition model file {path} does not exist (from {spec!r})")
        name = f"_interdyn_transition_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    fn = module
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise AttributeError(f"{target} has no attribute {attr!r} (from {spec!r})")
        fn = getattr(fn, part)
    if not callable(fn):
        raise TypeError(f"{spec!r} names a {type(fn).__name__}, which is not callable")
    return fn
