"""Control frames for InterDyn: masks or renders -> ``[F, 3, H, W]`` in ``[0, 1]``.

InterDyn's control branch is driven by one 3-channel frame per video frame showing the
driving motion: a binary hand/object mask in white, several object masks each in its own
colour (CLEVRER-style), or plain RGB renders. This module builds those frames, brings them
(and the matching video and masks) to the model's size and frame rate, and maps them to the
``[-1, 1]`` range the control branch sees.

Conventions used throughout:

* video / control / render frames are ``[F, 3, H, W]`` float tensors in ``[0, 1]``;
* one mask sequence is ``[F, H, W]``; several objects are ``[O, F, H, W]`` (or a list of
  ``[F, H, W]``); masks are bool, or float in ``[0, 1]`` (soft masks), or integer 0/1;
* sizes are given as ``height, width`` in pixels.

Nothing here imports ComfyUI; ComfyUI ``IMAGE`` tensors (``[F, H, W, 3]``) are converted by
the nodes, or passed with ``layout="FHWC"`` where a function offers it.
"""
from __future__ import annotations

import math
import warnings
from fractions import Fraction
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..support.validation import FRAME_LAYOUTS, check_count, check_frame_size, check_video_size, frame_layout

__all__ = [
    "CONTROL_PALETTE",
    "fit_control",
    "masks_to_control",
    "renders_to_control",
    "fit_to_size",
    "resample_frame_indices",
    "resample_frames",
    "normalize_control",
    "prepare_control",
]

#: Colours of object masks in control frames, as RGB in ``[0, 1]``; object ``i`` (in the
#: order the masks are given) gets entry ``i``. The first entry is white, so a single
#: mask gives the white-on-black control of the hand-object experiments. Every value is
#: an 8-bit level (k/255), so colours survive a round trip through 8-bit images (PNG,
#: ComfyUI previews) exactly. Entries are pairwise distinct and none is black (the
#: background). Pass ``colors=`` to :func:`masks_to_control` for more than 12 objects or
#: to match the colours a model was trained with.
CONTROL_PALETTE: tuple[tuple[float, float, float], ...] = tuple(
    (r / 255.0, g / 255.0, b / 255.0)
    for r, g, b in (
        (255, 255, 255),  # white
        (255, 0, 0),  # red
        (0, 255, 0),  # green
        (0, 0, 255),  # blue
        (255, 255, 0),  # yellow
        (255, 0, 255),  # magenta
        (0, 255, 255),  # cyan
        (255, 128, 0),  # orange
        (128, 0, 255),  # purple
        (0, 128, 255),  # azure
        (128, 255, 0),  # lime
        (255, 0, 128),  # rose
    )
)

_CROPS = ("center", "mask")
_INTERPOLATIONS = ("bicubic", "nearest")


# --------------------------------------------------------------------------- helpers


def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def _check_unit_range(x: torch.Tensor, name: str, hint: str = "") -> None:
    if x.numel() == 0:
        return
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(
            f"{name} must hold values in [0, 1], got values in [{lo:.4g}, {hi:.4g}]."
            + (f" {hint}" if hint else "")
        )


def _mask_to_float(m: torch.Tensor, name: str) -> torch.Tensor:
    """bool / float [0,1] / integer 0-1 mask -> float32 in [0, 1]."""
    if m.dtype == torch.bool:
        return m.to(torch.float32)
    if m.is_floating_point():
        if m.numel() and bool(torch.isnan(m).any()):
            raise ValueError(f"{name} contains NaN values; masks must be in [0, 1].")
        _check_unit_range(
            m, name, "Soft masks must be in [0, 1]; for logits use (logits > 0) or torch.sigmoid."
        )
        return m.to(torch.float32)
    if m.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
        if m.numel() and (int(m.min()) < 0 or int(m.max()) > 1):
            raise ValueError(
                f"{name} is an integer mask with values in [{int(m.min())}, {int(m.max())}]; "
                "integer masks must be 0/1. Convert 0..255 masks with (mask > 127) or "
                "mask / 255, and label maps with (labels == k) per object."
            )
        return m.to(torch.float32)
    raise TypeError(f"{name} has unsupported dtype {m.dtype}; use bool, float in [0, 1] or 0/1 integers.")


def _stack_masks(masks, name: str = "masks") -> tuple[torch.Tensor, bool]:
    """Return masks as ``[O, F, H, W]`` (original dtype) and whether the input was one sequence."""
    if isinstance(masks, (list, tuple)):
        if len(masks) == 0:
            raise ValueError(f"{name} is an empty list; give at least one [F, H, W] mask sequence.")
        items = [_as_tensor(m, f"{name}[{i}]") for i, m in enumerate(masks)]
        for i, m in enumerate(items):
            if m.dim() != 3:
                raise ValueError(
                    f"{name}[{i}] has shape {tuple(m.shape)}; each object's masks must be [F, H, W]."
                )
            if m.shape != items[0].shape:
                raise ValueError(
                    f"all objects' masks must have the same [F, H, W] shape: {name}[0] is "
                    f"{tuple(items[0].shape)} but {name}[{i}] is {tuple(m.shape)}. "
                    "Resample/resize them to a common frame count and size first."
                )
        dtypes = {m.dtype for m in items}
        if len(dtypes) > 1:
            items = [_mask_to_float(m, f"{name}[{i}]") for i, m in enumerate(items)]
        return torch.stack(items), False
    m = _as_tensor(masks, name)
    if m.dim() == 3:
        return m.unsqueeze(0), True
    if m.dim() == 4:
        if m.shape[1] == 1 and m.shape[0] > 1:
            raise ValueError(
                f"{name} has shape {tuple(m.shape)}: that reads as {m.shape[0]} objects of 1 frame each, but it is "
                f"most likely one object's {m.shape[0]} frames as [F, 1, H, W]; squeeze dim 1 to give [F, H, W]. "
                "(For several objects of a single frame, pass a list of [1, H, W] masks.)"
            )
        return m, False
    raise ValueError(
        f"{name} has shape {tuple(m.shape)} (rank {m.dim()}); expected one mask sequence "
        "[F, H, W] or several objects [O, F, H, W] (or a list of [F, H, W]). "
        "A ComfyUI MASK batch is [F, H, W]; for [F, 1, H, W] squeeze dim 1."
    )


def _check_frames(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        hint = ""
        if x.dim() == 4 and x.shape[-1] == 3:
            hint = " It looks like [F, H, W, 3]: permute(0, 3, 1, 2) it (or pass layout='FHWC' where offered)."
        raise ValueError(f"{name} must be [F, 3, H, W], got shape {tuple(x.shape)}.{hint}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}; "
            "convert 8-bit frames with x.float() / 255."
        )


# --------------------------------------------------------------------------- masks / renders


def masks_to_control(masks, colors: Sequence[Sequence[float]] | None = None) -> torch.Tensor:
    """Turn mask sequences into control frames ``[F, 3, H, W]`` in ``[0, 1]`` (float32).

    ``masks`` is one sequence ``[F, H, W]``, several objects ``[O, F, H, W]``, or a list of
    ``[F, H, W]`` (bool, float in ``[0, 1]``, or 0/1 integers). Object ``i`` is drawn in
    ``colors[i]`` (RGB in ``[0, 1]``), by default ``CONTROL_PALETTE[i]``: a single mask
    sequence is white on black.

    Objects are composited over a black background in the order given, each as
    ``out = out * (1 - m) + colour * m``. So a soft mask scales its colour (``0.5`` -> half
    the colour), and where binary masks overlap the **later object wins**.
    """
    stacked, _ = _stack_masks(masks)
    num_objects = stacked.shape[0]
    m = _mask_to_float(stacked, "masks")
    if colors is None:
        if num_objects > len(CONTROL_PALETTE):
            raise ValueError(
                f"{num_objects} objects but CONTROL_PALETTE has {len(CONTROL_PALETTE)} colours; "
                "pass colors=[(r, g, b), ...] with one RGB triple in [0, 1] per object."
            )
        colors = CONTROL_PALETTE[:num_objects]
    colors = [tuple(c) for c in colors]
    if len(colors) < num_objects:
        raise ValueError(
            f"{num_objects} objects but only {len(colors)} colours given; pass one RGB triple per object."
        )
    for i, c in enumerate(colors[:num_objects]):
        if len(c) != 3 or any(not (0.0 <= float(v) <= 1.0) for v in c):
            raise ValueError(
                f"colors[{i}] = {c!r}; each colour must be 3 values (R, G, B) in [0, 1] "
                "(divide 8-bit colours by 255)."
            )
    col = torch.tensor([colors[i] for i in range(num_objects)], dtype=torch.float32, device=m.device)
    _, f, h, w = m.shape
    out = torch.zeros(f, 3, h, w, dtype=torch.float32, device=m.device)
    for i in range(num_objects):
        a = m[i].unsqueeze(1)  # [F, 1, H, W]
        out = out * (1.0 - a) + col[i].view(1, 3, 1, 1) * a
    return out


def renders_to_control(frames, layout: str = "FCHW") -> torch.Tensor:
    """Use RGB renders as control frames: validate and return ``[F, 3, H, W]`` float32 in ``[0, 1]``.

    ``layout`` says how ``frames`` is laid out: ``"FCHW"`` (``[F, 3, H, W]``, the default)
    or ``"FHWC"`` (``[F, H, W, 3]``, e.g. a ComfyUI IMAGE batch). ``uint8`` frames are
    divided by 255; float frames must already be in ``[0, 1]``.
    """
    x = _as_tensor(frames, "frames")
    if layout == "auto":
        raise ValueError(f"layout must be one of {FRAME_LAYOUTS}, got {layout!r}.")
    if frame_layout(x.shape, layout) == "FHWC":
        x = x.permute(0, 3, 1, 2)
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 255.0
    elif x.is_floating_point():
        if x.numel() and bool(torch.isnan(x).any()):
            raise ValueError("frames contain NaN values.")
        if x.numel() and float(x.min()) < 0.0:
            raise ValueError(
                f"frames have negative values (min {float(x.min()):.4g}); control frames are built "
                "in [0, 1]. If these are in [-1, 1], convert with (x + 1) / 2."
            )
        _check_unit_range(x, "frames", "Clamp or rescale them to [0, 1].")
        x = x.to(torch.float32)
    else:
        raise TypeError(f"frames must be uint8 or float in [0, 1], got dtype {x.dtype}.")
    return x.contiguous()


# --------------------------------------------------------------------------- geometry


def _resize_frames(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    dtype = x.dtype
    y = x.to(torch.float32) if dtype != torch.float32 else x
    if mode == "bicubic":
        y = F.interpolate(y, size=size, mode="bicubic", align_corners=False, antialias=True)
        y = y.clamp(0.0, 1.0)
    else:
        y = F.interpolate(y, size=size, mode="nearest-exact")
    return y.to(dtype)


def _resize_masks(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest resize of ``[..., H, W]`` masks keeping dtype (bool stays bool, 0/1 stays 0/1)."""
    if tuple(m.shape[-2:]) == size:
        return m
    lead = m.shape[:-2]
    flat = m.reshape(-1, 1, *m.shape[-2:])
    y = F.interpolate(flat.to(torch.float32), size=size, mode="nearest-exact")
    return y.reshape(*lead, *size).to(m.dtype)


def _window_start(lo: int, hi: int, extent: int, window: int) -> int:
    """Start of a ``window`` placed with the span [lo, hi) centred, clamped to [0, extent]."""
    centre = (lo + hi) / 2.0
    start = int(math.floor(centre - window / 2.0 + 0.5))
    return max(0, min(start, extent - window))


def _fit_inputs(video, control, masks, crop: str):
    """:func:`fit_to_size`'s inputs checked and normalised: ``(video, control, masks, single, (H, W))``, every given
    input with the same frames and frame size (``single``: the masks came as one ``[F, H, W]`` sequence)."""
    shapes: dict[str, tuple[int, int, int]] = {}  # name -> (F, H, W)
    if video is not None:
        video = _as_tensor(video, "video")
        _check_frames(video, "video")
        _check_unit_range(video, "video", "Video frames must be in [0, 1]; for [-1, 1] use (x + 1) / 2.")
        shapes["video"] = (video.shape[0], video.shape[2], video.shape[3])
    if control is not None:
        control = _as_tensor(control, "control")
        _check_frames(control, "control")
        _check_unit_range(control, "control", "Control frames are built in [0, 1]; for [-1, 1] use (x + 1) / 2.")
        shapes["control"] = (control.shape[0], control.shape[2], control.shape[3])
    single = False
    if masks is not None:
        masks, single = _stack_masks(masks)
        _mask_to_float(masks, "masks")  # validates dtype and range; the resize keeps the dtype
        shapes["masks"] = tuple(masks.shape[1:])
    if crop == "mask" and masks is None and control is None:
        raise ValueError("crop='mask' needs masks (or mask-derived control frames); got only video.")
    first = next(iter(shapes))
    for name, s in shapes.items():
        if s[0] != shapes[first][0]:
            raise ValueError(
                f"{first} has {shapes[first][0]} frames but {name} has {s[0]}; they must be the "
                "same frames. Resample them to a common frame count first (resample_frames)."
            )
        if s[1:] != shapes[first][1:]:
            raise ValueError(
                f"{first} is {shapes[first][1]}x{shapes[first][2]} (HxW) but {name} is "
                f"{s[1]}x{s[2]}; they must share one geometry to be fitted jointly."
            )
    _, src_h, src_w = shapes[first]
    if src_h == 0 or src_w == 0:
        raise ValueError(f"inputs have an empty frame size {src_h}x{src_w}.")
    return video, control, masks, single, (src_h, src_w)


def _crop_window(masks, control, crop: str, resized: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """``(top, left)`` of the ``target`` window in frames of size ``resized``: the middle, or with ``crop="mask"``
    centred on the bounding box of all masks over all frames (else the control's non-black pixels), clamped to the
    borders; the middle when nothing is occupied."""
    (new_h, new_w), (height, width) = resized, target
    top = (new_h - height) // 2
    left = (new_w - width) // 2
    if crop == "mask":
        if masks is not None:
            occupied = (masks != 0).flatten(0, 1).any(dim=0)  # [H, W]
        else:
            occupied = (control > 0).any(dim=1).any(dim=0)
        rows = torch.nonzero(occupied.any(dim=1)).flatten()
        cols = torch.nonzero(occupied.any(dim=0)).flatten()
        if rows.numel():
            y0, y1 = int(rows[0]), int(rows[-1]) + 1
            x0, x1 = int(cols[0]), int(cols[-1]) + 1
            if y1 - y0 > height or x1 - x0 > width:
                warnings.warn(
                    f"crop='mask': the masks' bounding box ({y1 - y0}x{x1 - x0} px after resizing) "
                    f"is larger than the {height}x{width} crop; it is centred and partly cut. "
                    "Choose a target aspect ratio closer to the source's to keep it whole.",
                    stacklevel=3,
                )
            top = _window_start(y0, y1, new_h, height)
            left = _window_start(x0, x1, new_w, width)
    return top, left


def fit_to_size(
    video=None,
    control=None,
    masks=None,
    *,
    height: int,
    width: int,
    crop: str = "center",
    control_interpolation: str = "bicubic",
    multiple_of: int | None = 8,
):
    """Resize and crop video, control frames and masks *jointly* to ``height x width``.

    All given inputs get identical geometry: they are scaled (aspect ratio kept) so that
    both sides cover the target, then cropped to it.

    * ``video``: ``[F, 3, H, W]`` float in ``[0, 1]``; bicubic, antialiased, clamped to ``[0, 1]``.
    * ``control``: ``[F, 3, H, W]`` float in ``[0, 1]``; ``control_interpolation="bicubic"``
      (renders, default) or ``"nearest"`` (control drawn from masks, keeps exact colours).
    * ``masks``: ``[F, H, W]`` or ``[O, F, H, W]`` (or a list of ``[F, H, W]``); nearest,
      dtype kept (bool stays bool).

    ``crop="center"`` crops the middle. ``crop="mask"`` places the crop window so that the
    bounding box of all masks over all frames (any value > 0; if no ``masks`` are given, the
    non-black pixels of ``control``) is centred in view, clamped to the image borders; with
    empty masks it falls back to the centre. A box larger than the window is centred and
    a warning says it is cut.

    ``multiple_of`` (default 8) checks the target size; pass ``None`` to allow any size.
    Returns ``(video, control, masks)`` with ``None`` where the input was ``None``; a list
    of masks comes back stacked as ``[O, F, H, W]``.
    """
    if video is None and control is None and masks is None:
        raise ValueError("fit_to_size needs at least one of video, control or masks.")
    if crop not in _CROPS:
        raise ValueError(f"crop must be one of {_CROPS}, got {crop!r}.")
    if control_interpolation not in _INTERPOLATIONS:
        raise ValueError(
            f"control_interpolation must be one of {_INTERPOLATIONS}, got {control_interpolation!r}."
        )
    check_frame_size(height, width, multiple_of=multiple_of)

    video, control, masks, single, (src_h, src_w) = _fit_inputs(video, control, masks, crop)

    scale = max(height / src_h, width / src_w)
    new_h = max(height, int(math.floor(src_h * scale + 0.5)))
    new_w = max(width, int(math.floor(src_w * scale + 0.5)))
    size = (new_h, new_w)

    if video is not None:
        video = _resize_frames(video, size, "bicubic")
    if control is not None:
        control = _resize_frames(control, size, control_interpolation)
    if masks is not None:
        masks = _resize_masks(masks, size)

    top, left = _crop_window(masks, control, crop, (new_h, new_w), (height, width))

    def _crop(t):
        return None if t is None else t[..., top : top + height, left : left + width].contiguous()

    video, control, masks = _crop(video), _crop(control), _crop(masks)
    if masks is not None and single:
        masks = masks[0]
    return video, control, masks


# --------------------------------------------------------------------------- time


def _fps(v, name: str) -> Fraction:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating, Fraction)):
        raise TypeError(f"{name} must be a number, got {v!r}.")
    if not math.isfinite(float(v)) or float(v) <= 0:
        raise ValueError(f"{name} must be a positive frame rate, got {v!r}.")
    exact = v if isinstance(v, (int, Fraction)) else float(v)
    return Fraction(exact).limit_denominator(1_000_000)


def resample_frame_indices(
    num_source_frames: int,
    source_fps: float,
    target_fps: float,
    num_frames: int,
    start: int = 0,
    names: dict | None = None,
) -> list[int]:
    """Source frame indices that show a ``source_fps`` video at ``target_fps``.

    Output frame ``k`` (time ``k / target_fps`` after source frame ``start``) takes the
    nearest source frame: ``start + floor(k * source_fps / target_fps + 1/2)`` (ties round
    up; computed in exact fractions). E.g. 30 -> 7 fps gives 0, 4, 9, 13, 17, 21, 26, 30, ...

    When ``target_fps`` is higher than ``source_fps`` the same rule repeats source frames
    (30 -> 60 fps: 0, 1, 1, 2, 2, ...): no interpolation, the motion stays exact.

    Raises a ``ValueError`` when the video is too short, saying how many frames are needed,
    how many are available, and the largest ``num_frames`` / smallest ``target_fps`` that fit.
    ``names`` gives the caller's names for ``num_frames``, ``target_fps``, ``start`` and ``source`` (the
    input being resampled, e.g. a node's ``mask_2``) in that message.
    """
    name_of = lambda key, default=None: (names or {}).get(key, default or key)  # noqa: E731
    for n, v in (("num_source_frames", num_source_frames), ("num_frames", num_frames)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{n} must be a positive integer, got {v!r}.")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < num_source_frames:
        raise ValueError(
            f"start must be an integer frame index in [0, {num_source_frames - 1}], got {start!r}."
        )
    src, tgt = _fps(source_fps, "source_fps"), _fps(target_fps, "target_fps")
    step = src / tgt
    indices = [int(start + math.floor(k * step + Fraction(1, 2))) for k in range(num_frames)]
    if indices[-1] >= num_source_frames:
        needed = indices[-1] + 1
        available = num_source_frames - start
        fit = sum(1 for k in range(num_frames) if start + math.floor(k * step + Fraction(1, 2)) < num_source_frames)
        span = available - Fraction(1, 2)  # last index must satisfy (n-1)*step + 1/2 < available
        min_tgt = float(src * (num_frames - 1) / span) if span > 0 else float("inf")
        min_tgt = math.floor(min_tgt * 100 + 1) / 100  # strictly above the bound, 2 decimals
        raise ValueError(
            f"{name_of('source', 'the source')} is too short: {num_frames} frames at {float(tgt):g} fps from a "
            f"{float(src):g} fps video need source frames {start}..{needed - 1} "
            f"({needed - start} frames from {name_of('start')}={start}), but only {available} are available "
            f"({num_source_frames} in total). Lower {name_of('num_frames')} to {fit} or less, or raise "
            f"{name_of('target_fps')} to {min_tgt:g} or more (denser sampling spans less time), "
            "or use a longer clip / an earlier start."
        )
    return indices


def resample_frames(
    x,
    source_fps: float,
    target_fps: float,
    num_frames: int,
    start: int = 0,
    dim: int = 0,
    names: dict | None = None,
) -> torch.Tensor:
    """Apply :func:`resample_frame_indices` to tensor ``x`` along its frame dimension ``dim``.

    Use ``dim=0`` for ``[F, ...]`` (video, control, one mask sequence) and ``dim=1`` for
    object masks ``[O, F, H, W]``.
    """
    x = _as_tensor(x, "x")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim={dim} is out of range for a tensor of shape {tuple(x.shape)}.")
    idx = resample_frame_indices(x.shape[dim], source_fps, target_fps, num_frames, start, names)
    return x.index_select(dim, torch.tensor(idx, dtype=torch.long, device=x.device))


# --------------------------------------------------------------------------- range


def normalize_control(control) -> torch.Tensor:
    """Map control frames from ``[0, 1]`` to ``[-1, 1]`` as the official release does: ``2x - 1``.

    As the official ``VaeImageProcessor`` does, a tensor that already has negative values is
    taken as normalised: it is returned unchanged with a warning.
    """
    x = _as_tensor(control, "control")
    if not x.is_floating_point():
        raise TypeError(
            f"control must be a float tensor in [0, 1], got dtype {x.dtype}; convert 8-bit frames with x.float() / 255."
        )
    if x.numel() and float(x.min()) < 0.0:
        warnings.warn(
            f"control already has negative values (range [{float(x.min()):.4g}, {float(x.max()):.4g}]): "
            "taken as already normalised to [-1, 1] and left unchanged. Pass control frames in [0, 1].",
            UserWarning,
            stacklevel=2,
        )
        return x
    return 2.0 * x - 1.0


# --------------------------------------------------------------------------- pipeline


def fit_control(video=None, *, masks=None, renders=None, height: int, width: int, crop: str = "center",
                drivers: Sequence[int] | None = None, colors: Sequence[Sequence[float]] | None = None,
                multiple_of: int | None = 8):
    """InterDyn's central step, the one place that builds control frames: the scene's frames (optional) and the
    driving motion fitted *jointly* to ``height x width`` (:func:`fit_to_size`), then the driving masks coloured
    (:func:`masks_to_control`).

    Give exactly one of ``masks`` (``[F, H, W]``, ``[O, F, H, W]`` or a list; every mask shapes a
    ``crop="mask"`` window, but only those listed in ``drivers``, default all, are drawn into the control, so
    a dataset can crop around its objects and draw the hand alone) or ``renders`` (RGB control frames
    ``[F, 3, H, W]`` used as they are, resized bicubic). ``video``: ``[F, 3, H, W]`` in ``[0, 1]``, e.g. the
    first frame repeated. Returns ``(video or None, control [F, 3, height, width], fitted masks or None)``.
    Callers: :func:`prepare_control` (CLI, API), the Control From Masks/Renders nodes, the folder and CLEVRER
    datasets; the synthetic world colours its driven objects with :func:`masks_to_control` too.
    """
    if (masks is None) == (renders is None):
        raise ValueError("fit_control needs exactly one of masks= or renders=.")
    if renders is not None:
        video, control, _ = fit_to_size(video=video, control=renders, height=height, width=width, crop=crop,
                                        control_interpolation="bicubic", multiple_of=multiple_of)
        return video, control, None
    video, _, fitted = fit_to_size(video=video, masks=masks, height=height, width=width, crop=crop,
                                   multiple_of=multiple_of)
    if drivers is None:
        chosen = fitted
    else:
        stacked = fitted if isinstance(fitted, torch.Tensor) and fitted.dim() == 4 else _stack_masks(fitted)[0]
        chosen = stacked[list(drivers)]
    return video, masks_to_control(chosen, colors=colors), fitted


def prepare_control(
    masks=None,
    renders=None,
    *,
    source_fps: float,
    target_fps: float = 7.0,
    num_frames: int = 14,
    height: int = 256,
    width: int = 384,
    crop: str = "center",
    start: int = 0,
    colors: Sequence[Sequence[float]] | None = None,
    layout: str = "FCHW",
) -> torch.Tensor:
    """Masks or renders of the driving motion -> control frames ``[num_frames, 3, height, width]`` in ``[0, 1]``.

    Give exactly one of ``masks`` (``[F, H, W]``, ``[O, F, H, W]`` or a list, see
    :func:`masks_to_control`) or ``renders`` (``[F, 3, H, W]``, or ``[F, H, W, 3]`` with
    ``layout="FHWC"``). Steps: temporal resampling from ``source_fps`` to ``target_fps``
    starting at frame ``start`` (:func:`resample_frame_indices`), then resize + crop
    (:func:`fit_to_size`; masks nearest, renders bicubic), then colouring of masks.

    Defaults are the paper's: 14 frames, 7 fps, 256x384. The conditioning image must get
    the same geometry: with ``crop="mask"`` fit the video jointly with :func:`fit_to_size`
    instead of calling this function and cropping the image separately.
    """
    if (masks is None) == (renders is None):
        raise ValueError("prepare_control needs exactly one of masks= or renders=.")
    check_frame_size(height, width, multiple_of=8)
    check_count(num_frames, "num_frames")
    check_video_size(num_frames, height, width, names=("num_frames", "height", "width"), what="the control frames")
    if masks is not None:
        m, _ = _stack_masks(masks)
        m = resample_frames(m, source_fps, target_fps, num_frames, start, dim=1)
        return fit_control(masks=m, height=height, width=width, crop=crop, colors=colors)[1]
    r = renders_to_control(renders, layout=layout)
    r = resample_frames(r, source_fps, target_fps, num_frames, start, dim=0)
    return fit_control(renders=r, height=height, width=width, crop=crop)[1]
