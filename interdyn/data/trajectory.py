"""Driving motion without a video: move one mask along keyframes (translate, scale, rotate).

InterDyn is driven by a sequence of masks. When no driving video exists, an artist can
draw one mask (the hand or object on the first frame) and describe its motion with a few
keyframes; :func:`animate_mask` renders the mask sequence, which then goes to
:func:`interdyn.core.control.masks_to_control` like masks tracked with SAM2.

Keyframes (:func:`parse_keyframes` reads them from JSON text, e.g. a ComfyUI text widget)::

    [{"frame": 0,  "x": 0,   "y": 0,  "scale": 1.0, "rotation": 0,  "easing": "ease_in_out"},
     {"frame": 13, "x": 120, "y": -10, "scale": 1.2, "rotation": 30}]

* ``frame``: output frame index (integer >= 0), strictly increasing from key to key;
* ``x``, ``y``: offset in pixels of the input mask (x to the right, y down) from where the
  mask is drawn; default 0;
* ``scale``: size factor (> 0), default 1; ``rotation``: degrees, positive turns clockwise
  on screen, default 0. Both pivot on the centre of the mask's bounding box (the image
  centre for an empty mask), which moves with ``x``, ``y``;
* ``easing``: how the values travel from this keyframe to the next: ``linear`` (default),
  ``ease_in``, ``ease_out``, ``ease_in_out`` (cubic), or ``hold`` (keep this keyframe's values
  until the next one).

Before the first keyframe the first keyframe's values hold, after the last one the last's.

Paths drawn elsewhere (``coordinates``, :func:`parse_coordinates`): the text that the KJNodes Spline
Editor outputs and that ComfyUI's own ``WanTrackToVideo`` node reads as ``tracks``:

* one track: a JSON list of points ``[{"x": 10, "y": 20}, ...]`` (other keys in a point are ignored);
* several tracks: a list of such lists;
* also accepted: ``[[x, y], ...]`` pairs, and single quotes instead of double ones (Python's repr,
  which ``WanTrackToVideo`` accepts too).

The points are pixels of the image the driver is drawn on (``0 <= x <= width``, ``0 <= y <= height``;
set the Spline Editor's ``mask_width``/``mask_height`` to the image's size). With several tracks the
driver follows the one whose first point is nearest to the driver's centre. The driver keeps its
drawn place at the first point and follows the track's displacement from there (draw the path
starting on the driver). A track of N points spans the video: point ``k`` falls on frame
``k * (frames - 1) / (N - 1)`` and each frame takes the linearly interpolated position, so a track
of exactly ``frames`` points is used point by point (KJNodes' ``points_to_sample`` = frames), and
ComfyUI's 121-point Wan tracks are resampled. The track replaces the keyframes' ``x``, ``y``; their
``scale`` and ``rotation`` still apply.

Pixel convention: pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``, its centre is
``(j + 0.5, i + 0.5)``; warping samples the input mask at the inverse-transformed centres.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["EASINGS", "Keyframe", "parse_keyframes", "ease", "interpolate_keyframes", "mask_pivot",
           "warp_mask", "animate_mask", "parse_coordinates", "resample_track", "track_offsets"]

EASINGS = ("linear", "ease_in", "ease_out", "ease_in_out", "hold")
_INTERPOLATIONS = ("bilinear", "nearest")
_KEYS = ("frame", "x", "y", "scale", "rotation", "easing")
_EXAMPLE = ('[{"frame": 0, "x": 0, "y": 0, "scale": 1, "rotation": 0, "easing": "ease_in_out"}, '
            '{"frame": 13, "x": 120, "y": -10, "scale": 1.2, "rotation": 30}]')
_HELP = ("Keyframes are a JSON list of objects with \"frame\" (integer, increasing) and any of \"x\", \"y\" "
         "(pixel offset, x right, y down), \"scale\" (> 0), \"rotation\" (degrees, clockwise), \"easing\" "
         f"({', '.join(EASINGS)}). Example: {_EXAMPLE}")


@dataclass(frozen=True)
class Keyframe:
    """The mask's placement at one output frame; ``easing`` shapes the way to the next keyframe."""

    frame: int
    x: float = 0.0
    y: float = 0.0
    scale: float = 1.0
    rotation: float = 0.0
    easing: str = "linear"

    @classmethod
    def from_dict(cls, d, where: str = "keyframe") -> "Keyframe":
        if isinstance(d, Keyframe):
            return d
        if not isinstance(d, dict):
            raise ValueError(f"{where} must be an object like {{\"frame\": 0, \"x\": 10}}, got {d!r}. {_HELP}")
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise ValueError(f"{where} has unknown key(s) {unknown}; allowed: {', '.join(_KEYS)}. {_HELP}")
        if "frame" not in d:
            raise ValueError(f"{where} needs a \"frame\" (the output frame index it applies to). {_HELP}")
        frame = d["frame"]
        if isinstance(frame, bool) or not isinstance(frame, (int, float)) or frame != int(frame) or frame < 0:
            raise ValueError(f"{where}.frame must be an integer >= 0, got {frame!r}.")
        values = {}
        for key, default in (("x", 0.0), ("y", 0.0), ("scale", 1.0), ("rotation", 0.0)):
            v = d.get(key, default)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{where}.{key} must be a finite number, got {v!r}. {_HELP}")
            values[key] = float(v)
        if values["scale"] <= 0:
            raise ValueError(f"{where}.scale must be > 0 (1 = the drawn size), got {values['scale']!r}.")
        easing = d.get("easing", "linear")
        if easing not in EASINGS:
            raise ValueError(f"{where}.easing must be one of {', '.join(EASINGS)}, got {easing!r}.")
        return cls(frame=int(frame), easing=easing, **values)


def _check_order(keys: Sequence[Keyframe]) -> list[Keyframe]:
    if not keys:
        raise ValueError(f"give at least one keyframe. {_HELP}")
    for a, b in zip(keys, keys[1:]):
        if b.frame <= a.frame:
            raise ValueError(f"keyframe frames must increase strictly, got frame {a.frame} followed by {b.frame}.")
    return list(keys)


def parse_keyframes(text: str) -> list[Keyframe]:
    """Keyframes from JSON text: a list of objects, a single object, or ``{"keyframes": [...]}``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"keyframes text is empty. {_HELP}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"keyframes are not valid JSON ({e.msg} at line {e.lineno} column {e.colno}). {_HELP}") from e
    except RecursionError:
        raise ValueError(f"keyframes nest too deeply to be keyframes (brackets inside brackets). {_HELP}") from None
    if isinstance(data, dict) and "keyframes" in data:
        data = data["keyframes"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError(f"keyframes must be a JSON list of objects, got {text.strip()[:80]!r}. {_HELP}")
    return _check_order([Keyframe.from_dict(d, f"keyframe {i}") for i, d in enumerate(data)])


def ease(t: torch.Tensor | float, easing: str) -> torch.Tensor:
    """Easing curve on ``t`` in [0, 1] (0 -> 0, 1 -> 1); cubic in/out curves as on easings.net."""
    t = torch.as_tensor(t, dtype=torch.float64).clamp(0.0, 1.0)
    if easing == "linear":
        return t
    if easing == "ease_in":
        return t**3
    if easing == "ease_out":
        return 1 - (1 - t) ** 3
    if easing == "ease_in_out":
        return torch.where(t < 0.5, 4 * t**3, 1 - (-2 * t + 2) ** 3 / 2)
    if easing == "hold":
        return torch.where(t < 1.0, torch.zeros_like(t), torch.ones_like(t))
    raise ValueError(f"easing must be one of {', '.join(EASINGS)}, got {easing!r}.")


def interpolate_keyframes(keyframes: Sequence[Keyframe | dict] | str, num_frames: int) -> torch.Tensor:
    """Per-frame ``[num_frames, 4]`` float64 values ``(x, y, scale, rotation)`` along the keyframes.

    Between keyframes ``a`` and ``b`` the values go from ``a``'s to ``b``'s with ``a.easing``
    applied to the fraction of the way; scale is interpolated geometrically (so 1 -> 4 passes 2
    halfway, as a steady zoom does). Outside the keyframes the nearest one holds.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}.")
    if isinstance(keyframes, str):
        keys = parse_keyframes(keyframes)
    else:
        keys = _check_order([Keyframe.from_dict(k, f"keyframe {i}") for i, k in enumerate(keyframes)])
    values = torch.tensor([[k.x, k.y, math.log(k.scale), k.rotation] for k in keys], dtype=torch.float64)
    frames = torch.arange(num_frames, dtype=torch.float64)
    out = values[0].repeat(num_frames, 1)
    out[frames >= keys[-1].frame] = values[-1]
    for i, (a, b) in enumerate(zip(keys, keys[1:])):
        inside = (frames >= a.frame) & (frames < b.frame)
        if not bool(inside.any()):
            continue
        w = ease((frames[inside] - a.frame) / (b.frame - a.frame), a.easing)[:, None]
        out[inside] = values[i] + w * (values[i + 1] - values[i])
    out[:, 2] = out[:, 2].exp()
    return out


def mask_pivot(mask: torch.Tensor) -> tuple[float, float]:
    """``(x, y)`` centre of the bounding box of the mask's non-zero pixels, in pixel coordinates.

    An empty mask pivots on the image centre.
    """
    h, w = mask.shape[-2:]
    occupied = mask != 0
    rows = torch.nonzero(occupied.any(dim=1)).flatten()
    cols = torch.nonzero(occupied.any(dim=0)).flatten()
    if rows.numel() == 0:
        return w / 2.0, h / 2.0
    return (float(cols[0]) + float(cols[-1]) + 1) / 2.0, (float(rows[0]) + float(rows[-1]) + 1) / 2.0


def _check_mask(mask) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor [H, W], got {type(mask).__name__}.")
    if mask.dim() != 2:
        raise ValueError(f"mask must be one [H, W] mask, got shape {tuple(mask.shape)}; take a frame with mask[0].")
    if mask.dtype == torch.bool:
        return mask.float()
    if not mask.is_floating_point():
        if mask.numel() and (int(mask.min()) < 0 or int(mask.max()) > 1):
            raise ValueError("an integer mask must hold 0/1 values; convert 0..255 masks with mask > 127.")
        return mask.float()
    if mask.numel() and (float(mask.min()) < 0 or float(mask.max()) > 1):
        raise ValueError(f"mask values must be in [0, 1], got [{float(mask.min()):.4g}, {float(mask.max()):.4g}].")
    return mask.float()


def warp_mask(mask: torch.Tensor, params: torch.Tensor, pivot: tuple[float, float] | None = None,
              interpolation: str = "bilinear") -> torch.Tensor:
    """Place ``mask`` ``[H, W]`` once per row of ``params`` ``[F, 4]`` = ``(x, y, scale, rotation)``.

    Each output pixel centre ``p`` samples the input at ``R^-1 (p - c - t) / s + c`` (``c`` the
    pivot, ``t = (x, y)``, ``R`` the clockwise-on-screen rotation), with zeros outside.
    ``interpolation="bilinear"`` gives soft edges, ``"nearest"`` keeps a binary mask binary.
    Returns ``[F, H, W]`` float32 in [0, 1].
    """
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}.")
    m = _check_mask(mask)
    params = torch.as_tensor(params, dtype=torch.float64)
    if params.dim() != 2 or params.shape[1] != 4:
        raise ValueError(f"params must be [F, 4] (x, y, scale, rotation), got shape {tuple(params.shape)}.")
    h, w = m.shape
    cx, cy = pivot if pivot is not None else mask_pivot(m)
    tx, ty, s, deg = (params[:, i, None, None] for i in range(4))
    theta = deg * (math.pi / 180.0)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                            indexing="ij")
    dx, dy = xs - cx - tx, ys - cy - ty
    cos, sin = torch.cos(theta), torch.sin(theta)
    # inverse of the clockwise-on-screen rotation (y down): rotate by -theta, then unscale
    src_x = (cos * dx + sin * dy) / s + cx
    src_y = (-sin * dx + cos * dy) / s + cy
    grid = torch.stack([src_x / w * 2 - 1, src_y / h * 2 - 1], dim=-1).to(torch.float32)
    frames = params.shape[0]
    source = m.to(torch.float32).expand(frames, 1, h, w)
    mode = "bilinear" if interpolation == "bilinear" else "nearest"
    out = F.grid_sample(source, grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out[:, 0].clamp(0.0, 1.0).to(mask.device)


def parse_coordinates(text, width: float, height: float, name: str = "coordinates") -> list[torch.Tensor]:
    """Tracks from the Spline Editor's / Wan tracks' JSON text -> a list of ``[N, 2]`` float64 ``(x, y)``.

    Every point must be finite and inside the ``width`` x ``height`` image; a track needs at least 2
    points. Messages name the input ``name`` (see the module docstring for the formats).
    """
    from ..support.validation import InputError

    example = '[{"x": 40, "y": 60}, {"x": 48, "y": 60}, ...] (one point per frame) or a list of such lists'
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{name} is empty: connect the Spline Editor's coordinates, e.g. {example}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:  # Python's repr of the points, as ComfyUI's WanTrackToVideo accepts
            data = json.loads(text.replace("'", '"'))
        except json.JSONDecodeError as e:
            raise InputError(f"{name} are not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); expected "
                             f"{example}") from None
    except RecursionError:
        raise InputError(f"{name} nest too deeply to be point tracks; expected {example}") from None
    if not isinstance(data, list) or not data:
        raise InputError(f"{name} must be a non-empty JSON list of points, got {text.strip()[:80]!r}; expected {example}")
    is_point = lambda p: isinstance(p, dict) or (isinstance(p, (list, tuple)) and len(p) == 2  # noqa: E731
                                                 and not isinstance(p[0], (list, dict)))
    tracks = [data] if is_point(data[0]) else data
    out = []
    for t, track in enumerate(tracks):
        where = f"{name} track {t}" if len(tracks) > 1 else name
        if not isinstance(track, list):
            raise InputError(f"{where} must be a list of points, got {track!r:.80}; expected {example}")
        if len(track) < 2:
            raise InputError(f"{where} holds {len(track)} point(s); a path needs at least 2 (one per frame is usual)")
        if len(track) > 100_000:
            raise InputError(f"{where} holds {len(track)} points; at most 100000")
        pts = []
        for i, p in enumerate(track):
            if isinstance(p, dict):
                if "x" not in p or "y" not in p:
                    raise InputError(f"{where} point {i} needs \"x\" and \"y\", got {p!r:.80}")
                xy = (p["x"], p["y"])
            elif isinstance(p, (list, tuple)) and len(p) == 2:
                xy = tuple(p)
            else:
                raise InputError(f"{where} point {i} must be {{\"x\": .., \"y\": ..}} or [x, y], got {p!r:.80}")
            for v in xy:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise InputError(f"{where} point {i} must hold finite numbers, got {p!r:.80}")
            if not (0 <= xy[0] <= width and 0 <= xy[1] <= height):
                raise InputError(f"{where} point {i} ({xy[0]:g}, {xy[1]:g}) lies outside the {width:g}x{height:g} "
                                 "image the driver is drawn on (points are pixels of that image; set the Spline "
                                 f"Editor's mask_width/mask_height to {width:g}/{height:g})")
            pts.append(xy)
        out.append(torch.tensor(pts, dtype=torch.float64))
    return out


def resample_track(points: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``[N, 2]`` points spread over the video -> ``[num_frames, 2]``: point ``k`` at frame
    ``k * (num_frames - 1) / (N - 1)``, linear in between (identity when ``N == num_frames``)."""
    n = points.shape[0]
    if n == num_frames:
        return points.clone()
    if num_frames == 1:
        return points[:1].clone()
    pos = torch.arange(num_frames, dtype=torch.float64) * ((n - 1) / (num_frames - 1))
    lo = pos.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    w = (pos - lo.to(torch.float64))[:, None]
    return points[lo] * (1 - w) + points[hi] * w


def track_offsets(tracks: list[torch.Tensor], num_frames: int, pivot: tuple[float, float]) -> torch.Tensor:
    """The driver's ``(x, y)`` offsets per frame ``[num_frames, 2]`` along the track whose first point is
    nearest to ``pivot`` (the driver's centre), relative to that first point."""
    start = torch.tensor(pivot, dtype=torch.float64)
    best = min(range(len(tracks)), key=lambda i: float(torch.linalg.vector_norm(tracks[i][0] - start)))
    path = resample_track(tracks[best], num_frames)
    return path - path[0]


def animate_mask(mask: torch.Tensor, keyframes: Sequence[Keyframe | dict] | str, num_frames: int,
                 interpolation: str = "bilinear", coordinates: str | None = None) -> torch.Tensor:
    """One mask ``[H, W]`` moved along ``keyframes`` -> a mask sequence ``[num_frames, H, W]`` in [0, 1].

    ``keyframes``: :class:`Keyframe` objects, dicts or JSON text (see the module docstring).
    Scale and rotation pivot on the centre of the mask's bounding box. ``coordinates``: a drawn
    path (the Spline Editor's JSON, see the module docstring) that replaces the keyframes' x, y.
    """
    from ..support.validation import check_count, check_video_size

    check_count(num_frames, "num_frames")
    if isinstance(mask, torch.Tensor) and mask.ndim >= 2:
        check_video_size(num_frames, mask.shape[-2], mask.shape[-1], names=("num_frames", "mask height", "mask width"),
                         channels=1, what="the mask sequence")
    tracks = None
    if coordinates is not None and isinstance(mask, torch.Tensor) and mask.ndim == 2:
        tracks = parse_coordinates(coordinates, mask.shape[1], mask.shape[0])
    params = interpolate_keyframes(keyframes, num_frames)
    if tracks is not None:
        params[:, :2] = track_offsets(tracks, num_frames, mask_pivot(_check_mask(mask)))
    return warp_mask(mask, params, interpolation=interpolation)
