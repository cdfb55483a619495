"""Driving motion without a video: move one mask along keyframes (translate, scale, rotate).

InterDyn is driven by a sequence of masks. When no driving video exists, an artist can
draw one mask (the hand or object on the first frame) and describe its motion with a few
keyframes; :func:`animate_mask` renders the mask sequence, which then goes to
:func:`interdyn.core.control.masks_to_control` like masks tracked with SAM2.

Keyframes (:func:`parse_keyframes` reads them from JSON text, e.g. a ComfyUI text widget)::

    [{"frame": 0,  "x": 0,   "y": 0,  "scale": 1.0, "rotation": 0,  "easing": "ease_in_out"},
     {"frame": 13, "x": 120, "y": -10, "scale": 1.2, "rotation": 30}]

or ``{"size": [W, H], "keyframes": [...]}`` (what the Drive Editor writes): ``x``, ``y`` are then pixels of a
``W`` x ``H`` picture, and on an image of another size each offset is scaled by the ratio of the widths (x) and
of the heights (y), so the path keeps its place in the picture (:func:`fit_keyframes`; the drawn shape is fitted
the same way, see :mod:`interdyn.data.shapes`). Without ``size`` the offsets are pixels of the mask's image.

* ``frame``: output frame index (integer >= 0), strictly increasing from key to key;
* ``x``, ``y``: offset in pixels of the input mask (x to the right, y down) from where the
  mask is drawn, at most 10^6 either way; default 0;
* ``scale``: size factor (0.001 to 1000), default 1; ``rotation``: degrees (at most 10^6 either way), positive
  turns clockwise on screen, default 0. Both pivot on the centre of the mask's bounding box (the image
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
starting on the driver), or, with ``snap_to_track_start``, moves its centre onto the track's first point
and then along the track itself. A track of N points spans the video: point ``k`` falls on frame
``k * (frames - 1) / (N - 1)`` and each frame takes the linearly interpolated position, so a track
of exactly ``frames`` points is used point by point (KJNodes' ``points_to_sample`` = frames), and
ComfyUI's 121-point Wan tracks are resampled. The track replaces the keyframes' ``x``, ``y``; their
``scale`` and ``rotation`` still apply.

Every fault in these inputs is an :class:`~interdyn.support.validation.InputError` whose message starts with
the caller's name for the input (``keyframes``, ``coordinates``, ``mask``, ...).

What the caller should hear about without an error (:class:`DriveResult`'s ``warnings``): keyframes past the
last frame (the path is cut there), and a driver pushed out of the picture (at some frame its mask covers less
than half of its first frame's area, once the keyframes' own scaling is accounted for).

Pixel convention: pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``, its centre is
``(j + 0.5, i + 0.5)``; warping samples the input mask at the inverse-transformed centres.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from ..support.validation import InputError, check_count, check_video_size, is_finite_number

__all__ = ["EASINGS", "Keyframe", "parse_keyframes", "read_keyframes", "fit_keyframes", "ease", "interpolate_keyframes",
           "mask_pivot", "warp_mask", "animation_bytes", "parse_coordinates", "resample_track", "track_offsets",
           "DriveResult", "animate_drive", "drive_warnings", "animate_mask"]

EASINGS = ("linear", "ease_in", "ease_out", "ease_in_out", "hold")
#: bounds of the keyframes' values: beyond them the warp's arithmetic would overflow to inf/NaN
MAX_OFFSET = 1e6
SCALE_RANGE = (1e-3, 1e3)
MAX_ROTATION = 1e6
#: the last frame a keyframe may name (beyond any frame count the nodes allow; larger ones overflow torch's integers)
MAX_KEY_FRAME = 1_000_000
_INTERPOLATIONS = ("bilinear", "nearest")
_KEYS = ("frame", "x", "y", "scale", "rotation", "easing")
_EXAMPLE = ('[{"frame": 0, "x": 0, "y": 0, "scale": 1, "rotation": 0, "easing": "ease_in_out"}, '
            '{"frame": 13, "x": 120, "y": -10, "scale": 1.2, "rotation": 30}]')
_HELP = ("Keyframes are a JSON list of objects with \"frame\" (integer, increasing) and any of \"x\", \"y\" "
         "(pixel offset, x right, y down), \"scale\" (> 0), \"rotation\" (degrees, clockwise), \"easing\" "
         f"({', '.join(EASINGS)}). Example: {_EXAMPLE}")
#: the library's names of animate_drive's inputs; callers pass theirs (a node's widget names) in ``names``
_NAMES = {"keyframes": "keyframes", "num_frames": "num_frames", "mask": "mask", "coordinates": "coordinates",
          "interpolation": "interpolation"}
#: warp_mask works on at most this many output pixels at a time (whole frames; at least one frame)
WARP_CHUNK_PIXELS = 1 << 19
#: bytes per pixel of one chunk beyond the output: the float64 offsets, one axis of the sampling grid at a time, the
#: float32 grid and grid_sample's result (about 60 by count); the peak RSS measured over the output on 512x512 to
#: 2048x2048 is 50-105 (bench/drive_editor_strokes.py --memory), budgeted with a margin
WARP_TEMP_BYTES = 120


def _shown(v) -> str:
    """``repr(v)`` for a message, shortened when long (an integer of 400 digits)."""
    try:
        text = repr(v)
    except ValueError:  # an integer beyond Python's digit limit for str()
        return "an integer of thousands of digits"
    return text if len(text) <= 40 else f"{text[:12]}... ({len(text)} characters)"


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
            raise InputError(f"{where} must be an object like {{\"frame\": 0, \"x\": 10}}, got {d!r:.80}. {_HELP}")
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise InputError(f"{where} has unknown key(s) {unknown}; allowed: {', '.join(_KEYS)}. {_HELP}")
        if "frame" not in d:
            raise InputError(f"{where} needs a \"frame\" (the output frame index it applies to). {_HELP}")
        frame = d["frame"]
        if (not is_finite_number(frame)
                or frame != int(frame) or not 0 <= frame <= MAX_KEY_FRAME):
            raise InputError(f"{where}.frame must be an integer >= 0 (at most {MAX_KEY_FRAME}), got {_shown(frame)}.")
        values = {}
        for key, default in (("x", 0.0), ("y", 0.0), ("scale", 1.0), ("rotation", 0.0)):
            v = d.get(key, default)
            if not is_finite_number(v):
                raise InputError(f"{where}.{key} must be a finite number, got {_shown(v)}.")
            values[key] = float(v)
        for key, bound, what in (("x", MAX_OFFSET, "pixels"), ("y", MAX_OFFSET, "pixels"),
                                 ("rotation", MAX_ROTATION, "degrees")):
            if abs(values[key]) > bound:
                raise InputError(f"{where}.{key} must be between -{bound:g} and {bound:g} {what}, got {values[key]!r}.")
        if values["scale"] <= 0:
            raise InputError(f"{where}.scale must be > 0 (1 = the drawn size), got {values['scale']!r}.")
        if not SCALE_RANGE[0] <= values["scale"] <= SCALE_RANGE[1]:
            raise InputError(f"{where}.scale must be between {SCALE_RANGE[0]:g} and {SCALE_RANGE[1]:g} (1 = the drawn "
                             f"size), got {values['scale']!r}.")
        easing = d.get("easing", "linear")
        if easing not in EASINGS:
            raise InputError(f"{where}.easing must be one of {', '.join(EASINGS)}, got {easing!r}.")
        return cls(frame=int(frame), easing=easing, **values)


def _check_order(keys: Sequence[Keyframe], name: str = "keyframes") -> list[Keyframe]:
    if not keys:
        raise InputError(f"{name}: give at least one keyframe. {_HELP}")
    for a, b in zip(keys, keys[1:]):
        if b.frame <= a.frame:
            raise InputError(f"{name}: keyframe frames must increase strictly, got frame {a.frame} followed by "
                             f"{b.frame}.")
    return list(keys)


def _check_size(size, name: str) -> tuple[float, float]:
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0
                   for v in size)):
        raise InputError(f"{name}: size must be [width, height] in pixels (> 0), got {size!r:.80}")
    return float(size[0]), float(size[1])


def read_keyframes(value, name: str = "keyframes") -> tuple[list[Keyframe], tuple[float, float] | None]:
    """Keyframes and the picture size their offsets refer to (``None``: the mask's image) from JSON text (a list
    of objects, a single object, or ``{"size": [W, H], "keyframes": [...]}``) or the same already parsed.
    Messages start with ``name``."""
    data = value
    if isinstance(value, str) or value is None:
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{name} text is empty. {_HELP}")
        try:
            data = json.loads(value)
        except json.JSONDecodeError as e:
            raise InputError(f"{name} are not valid JSON ({e.msg} at line {e.lineno} column {e.colno}). {_HELP}") from None
        except RecursionError:
            raise InputError(f"{name} nest too deeply to be keyframes (brackets inside brackets). {_HELP}") from None
    size = None
    if isinstance(data, dict) and "keyframes" in data:
        unknown = sorted(set(data) - {"size", "keyframes"})
        if unknown:
            raise InputError(f"{name} has unknown key(s) {unknown}; expected {{\"size\": [W, H], \"keyframes\": [...]}}")
        if data.get("size") is not None:
            size = _check_size(data["size"], name)
        data = data["keyframes"]
    elif isinstance(data, (dict, Keyframe)):
        data = [data]
    if isinstance(data, tuple):
        data = list(data)
    if not isinstance(data, list):
        shown = value.strip()[:80] if isinstance(value, str) else type(data).__name__
        raise InputError(f"{name} must be a JSON list of objects, got {shown!r}. {_HELP}")
    keys = [Keyframe.from_dict(d, f"{name}: keyframe {i}") for i, d in enumerate(data)]
    return _check_order(keys, name), size


def parse_keyframes(text, name: str = "keyframes") -> list[Keyframe]:
    """Keyframes from JSON text: a list of objects, a single object, or ``{"keyframes": [...]}`` (the offsets as
    written: :func:`read_keyframes` also returns the picture size they refer to)."""
    return read_keyframes(text, name)[0]


def fit_keyframes(keys: Sequence[Keyframe], size: tuple[float, float] | None, width: int,
                  height: int) -> list[Keyframe]:
    """Keyframes whose offsets are pixels of a ``size`` = ``(W, H)`` picture -> pixels of a ``width`` x ``height``
    one: ``x`` scaled by ``width / W``, ``y`` by ``height / H`` (scale, rotation and frames unchanged)."""
    if size is None or (float(size[0]) == width and float(size[1]) == height):
        return list(keys)
    sx, sy = width / float(size[0]), height / float(size[1])
    return [Keyframe(k.frame, k.x * sx, k.y * sy, k.scale, k.rotation, k.easing) for k in keys]


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
    raise InputError(f"easing must be one of {', '.join(EASINGS)}, got {easing!r}.")


def _as_keys(keyframes, name: str) -> list[Keyframe]:
    return read_keyframes(keyframes, name)[0]


def interpolate_keyframes(keyframes: Sequence[Keyframe | dict] | str, num_frames: int,
                          name: str = "keyframes") -> torch.Tensor:
    """Per-frame ``[num_frames, 4]`` float64 values ``(x, y, scale, rotation)`` along the keyframes.

    Between keyframes ``a`` and ``b`` the values go from ``a``'s to ``b``'s with ``a.easing``
    applied to the fraction of the way; scale is interpolated geometrically (so 1 -> 4 passes 2
    halfway, as a steady zoom does). Outside the keyframes the nearest one holds. The offsets are as
    written (see :func:`fit_keyframes` for another picture size).
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise InputError(f"num_frames must be a positive integer, got {num_frames!r}.")
    keys = _as_keys(keyframes, name)
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


def _check_mask(mask, name: str = "mask") -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor [H, W], got {type(mask).__name__}.")
    if mask.dim() != 2:
        raise InputError(f"{name} must be one [H, W] mask, got shape {tuple(mask.shape)}; take a frame with mask[0].")
    if mask.dtype == torch.bool:
        return mask.float()
    if not mask.is_floating_point():
        if mask.numel() and (int(mask.min()) < 0 or int(mask.max()) > 1):
            raise InputError(f"{name}: an integer mask must hold 0/1 values; convert 0..255 masks with mask > 127.")
        return mask.float()
    finite = torch.isfinite(mask)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise InputError(f"{name} holds {bad} NaN or infinite value{'s' if bad > 1 else ''}; a mask must hold finite "
                         "values in [0, 1]")
    if mask.numel() and (float(mask.min()) < 0 or float(mask.max()) > 1):
        raise InputError(f"{name} values must be in [0, 1], got [{float(mask.min()):.4g}, {float(mask.max()):.4g}].")
    return mask.float()


def animation_bytes(num_frames: int, height: int, width: int) -> float:
    """Peak memory of :func:`warp_mask` for ``num_frames`` masks of ``height`` x ``width``: the float32 output, the
    float64 pixel grid and one chunk's float64 temporaries (:data:`WARP_TEMP_BYTES` per pixel, measured)."""
    pixels = float(height) * float(width)
    chunk = max(1, WARP_CHUNK_PIXELS // max(1, int(pixels)))
    return num_frames * pixels * 4 + pixels * 16 + min(num_frames, chunk) * pixels * WARP_TEMP_BYTES


def warp_mask(mask: torch.Tensor, params: torch.Tensor, pivot: tuple[float, float] | None = None,
              interpolation: str = "bilinear", name: str = "mask") -> torch.Tensor:
    """Place ``mask`` ``[H, W]`` once per row of ``params`` ``[F, 4]`` = ``(x, y, scale, rotation)``.

    Each output pixel centre ``p`` samples the input at ``R^-1 (p - c - t) / s + c`` (``c`` the
    pivot, ``t = (x, y)``, ``R`` the clockwise-on-screen rotation), with zeros outside.
    ``interpolation="bilinear"`` gives soft edges, ``"nearest"`` keeps a binary mask binary.
    Returns ``[F, H, W]`` float32 in [0, 1]. Frames are warped in chunks of about :data:`WARP_CHUNK_PIXELS`
    pixels, so the memory beyond the output is bounded (:func:`animation_bytes`).
    """
    if interpolation not in _INTERPOLATIONS:
        raise InputError(f"interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}.")
    m = _check_mask(mask, name)
    params = torch.as_tensor(params, dtype=torch.float64)
    if params.dim() != 2 or params.shape[1] != 4:
        raise InputError(f"params must be [F, 4] (x, y, scale, rotation), got shape {tuple(params.shape)}.")
    h, w = m.shape
    cx, cy = pivot if pivot is not None else mask_pivot(m)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                            indexing="ij")
    xc, yc = xs - cx, ys - cy
    del xs, ys
    frames = params.shape[0]
    out = torch.empty(frames, h, w, dtype=torch.float32)
    source = m.to(torch.float32)
    step = max(1, WARP_CHUNK_PIXELS // max(1, h * w))
    mode = "bilinear" if interpolation == "bilinear" else "nearest"
    for f0 in range(0, frames, step):
        chunk = params[f0:f0 + step]
        tx, ty, s, deg = (chunk[:, i, None, None] for i in range(4))
        theta = deg * (math.pi / 180.0)
        cos, sin = torch.cos(theta), torch.sin(theta)
        dx, dy = xc - tx, yc - ty
        grid = torch.empty(chunk.shape[0], h, w, 2, dtype=torch.float32)
        # inverse of the clockwise-on-screen rotation (y down): rotate by -theta, then unscale; in place, in the
        # order of (cos dx + sin dy) / s + cx and (cos dy - sin dx) / s + cy, then to grid_sample's [-1, 1]
        for axis, (a, b, sign, c, size) in enumerate(((dx, dy, 1, cx, w), (dy, dx, -1, cy, h))):
            g = cos * a
            t = sin * b
            g.add_(t, alpha=sign)
            del t
            g.div_(s).add_(c).div_(size).mul_(2).sub_(1)
            grid[..., axis] = g
            del g
        del dx, dy
        warped = F.grid_sample(source.expand(chunk.shape[0], 1, h, w), grid, mode=mode, padding_mode="zeros",
                               align_corners=False)
        del grid
        out[f0:f0 + step] = warped[:, 0].clamp_(0.0, 1.0)
        del warped
    return out.to(mask.device)


def parse_coordinates(text, width: float, height: float, name: str = "coordinates") -> list[torch.Tensor]:
    """Tracks from the Spline Editor's / Wan tracks' JSON text -> a list of ``[N, 2]`` float64 ``(x, y)``.

    Every point must be finite and inside the ``width`` x ``height`` image; a track needs at least 2
    points. Messages name the input ``name`` (see the module docstring for the formats).
    """
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
                if not is_finite_number(v):
                    raise InputError(f"{where} point {i} must hold finite numbers, got {_shown(p)}")
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


def _nearest_track(tracks: list[torch.Tensor], pivot: tuple[float, float]) -> int:
    start = torch.tensor(pivot, dtype=torch.float64)
    return min(range(len(tracks)), key=lambda i: float(torch.linalg.vector_norm(tracks[i][0] - start)))


def track_offsets(tracks: list[torch.Tensor], num_frames: int, pivot: tuple[float, float],
                  snap_to_track_start: bool = False) -> torch.Tensor:
    """The driver's ``(x, y)`` offsets per frame ``[num_frames, 2]`` along the track whose first point is
    nearest to ``pivot`` (the driver's centre): relative to that first point (the driver keeps its drawn place),
    or with ``snap_to_track_start`` relative to the pivot (the driver's centre goes onto the track)."""
    path = resample_track(tracks[_nearest_track(tracks, pivot)], num_frames)
    origin = torch.tensor(pivot, dtype=torch.float64) if snap_to_track_start else path[0]
    return path - origin


@dataclass
class DriveResult:
    """What :func:`animate_drive` made: the masks and how they were placed, for a caller that shows them."""

    masks: torch.Tensor  #: ``[F, H, W]`` float32 in [0, 1]
    params: torch.Tensor  #: ``[F, 4]`` float64 ``(x, y, scale, rotation)`` per frame, in the mask's pixels
    pivot: tuple[float, float]  #: the driver's centre on the drawn mask
    track: torch.Tensor | None = None  #: the followed track's points ``[N, 2]`` (``coordinates``), else None
    warnings: list[str] = field(default_factory=list)  #: what the caller should be told (see the module docstring)
    notes: list[str] = field(default_factory=list)  #: facts worth showing (the drive fitted to another size)


def _frame_list(frames: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``"3-5, 9"``."""
    runs, start = [], None
    for i, f in enumerate(frames):
        if start is None:
            start = f
        if i + 1 == len(frames) or frames[i + 1] != f + 1:
            runs.append(str(start) if start == f else f"{start}-{f}")
            start = None
    return ", ".join(runs)


def drive_warnings(keys: Sequence[Keyframe], masks: torch.Tensor, params: torch.Tensor, source: torch.Tensor,
                   names: dict | None = None) -> list[str]:
    """Keyframes past the last frame, and frames at which the driver has left the picture: its mask covers less
    than half of its area on the first frame it shows in, times the keyframes' own ``(scale_f / scale_first)^2``
    (so a planned shrink is no warning)."""
    n = {**_NAMES, **(names or {})}
    out = []
    last = masks.shape[0] - 1
    beyond = [k.frame for k in keys if k.frame > last]
    if beyond:
        out.append(f"{n['keyframes']}: keyframe{'s' if len(beyond) > 1 else ''} at frame "
                   f"{', '.join(map(str, beyond))} lie{'' if len(beyond) > 1 else 's'} beyond the last frame ({last}; "
                   f"{n['num_frames']} = {last + 1}): the path is cut at frame {last} (move "
                   f"{'them' if len(beyond) > 1 else 'it'} earlier, or raise {n['num_frames']})")
    if not bool((source > 0).any()):
        out.append(f"{n['mask']} is empty: nothing drives (draw the driver, or connect a mask with pixels)")
        return out
    areas = masks.sum(dim=(1, 2)).to(torch.float64)  # (a dtype= argument would copy the masks in float64)
    shown = torch.nonzero(areas > 0).flatten()
    if shown.numel() == 0:
        out.append("the driver is outside the picture at every frame (its masks are empty): move the keyframes or "
                   "the track onto the picture")
        return out
    ref = int(shown[0])  # the first frame it shows in (a driver may enter the picture)
    expected = areas[ref] * (params[:, 2] / params[ref, 2]) ** 2
    share = areas / expected
    low = [f for f in range(ref + 1, masks.shape[0]) if float(share[f]) < 0.5]
    if low:
        worst = min(low, key=lambda f: float(share[f]))
        first = "its first frame's" if ref == 0 else f"frame {ref}'s (the first it shows in)"
        out.append(f"the driver leaves the picture: at frame{'s' if len(low) > 1 else ''} {_frame_list(low)} its mask "
                   f"covers less than half of {first} area (frame {worst}: {100 * float(share[worst]):.0f} %); move "
                   "the keyframes or the track inward")
    return out


def animate_drive(mask: torch.Tensor, keyframes: Sequence[Keyframe | dict] | str | dict, num_frames: int,
                  interpolation: str = "bilinear", coordinates: str | None = None, snap_to_track_start: bool = False,
                  names: dict | None = None) -> DriveResult:
    """One mask ``[H, W]`` moved along ``keyframes`` -> :class:`DriveResult` (the masks ``[num_frames, H, W]``,
    the per-frame placement, warnings). Every input is checked first, in the caller's ``names`` (a mapping from
    ``keyframes``, ``num_frames``, ``mask``, ``coordinates``, ``interpolation`` to the caller's words)."""
    n = {**_NAMES, **(names or {})}
    num_frames = check_count(num_frames, n["num_frames"])
    if interpolation not in _INTERPOLATIONS:
        raise InputError(f"{n['interpolation']} must be one of {', '.join(_INTERPOLATIONS)}, got {interpolation!r}.")
    if isinstance(mask, torch.Tensor) and mask.ndim >= 2:
        h, w = mask.shape[-2:]
        check_video_size(num_frames, h, w, names=(n["num_frames"], f"{n['mask']} height", f"{n['mask']} width"),
                         channels=1, copies=animation_bytes(num_frames, h, w) / (4.0 * max(1, num_frames * h * w)),
                         what="the mask sequence")
    m = _check_mask(mask, n["mask"])
    h, w = m.shape
    keys, size = read_keyframes(keyframes, n["keyframes"])
    tracks = None if coordinates is None else parse_coordinates(coordinates, w, h, n["coordinates"])
    notes = []
    if size is not None and size != (float(w), float(h)):
        keys = fit_keyframes(keys, size, w, h)
        notes.append(f"{n['keyframes']} were drawn on a {size[0]:g}x{size[1]:g} picture and are fitted to this {w}x{h} "
                     "image (the path keeps its place in the picture)")
    params = interpolate_keyframes(keys, num_frames)
    pivot = mask_pivot(m)
    track = None
    if tracks is not None:
        track = tracks[_nearest_track(tracks, pivot)]
        params[:, :2] = track_offsets([track], num_frames, pivot, snap_to_track_start)
    masks = warp_mask(m, params, pivot, interpolation=interpolation, name=n["mask"])
    if not math.isfinite(float(masks.sum())):  # the bounds above keep it finite; NaN never leaves
        raise InputError(f"{n['keyframes']} place the driver where its mask is not a number (NaN): keep x, y, scale "
                         "and rotation within their ranges")
    return DriveResult(masks, params, pivot, track, drive_warnings(keys, masks, params, m, n), notes)


def animate_mask(mask: torch.Tensor, keyframes: Sequence[Keyframe | dict] | str | dict, num_frames: int,
                 interpolation: str = "bilinear", coordinates: str | None = None,
                 snap_to_track_start: bool = False, names: dict | None = None) -> torch.Tensor:
    """One mask ``[H, W]`` moved along ``keyframes`` -> a mask sequence ``[num_frames, H, W]`` in [0, 1].

    ``keyframes``: :class:`Keyframe` objects, dicts or JSON text (see the module docstring).
    Scale and rotation pivot on the centre of the mask's bounding box. ``coordinates``: a drawn
    path (the Spline Editor's JSON, see the module docstring) that replaces the keyframes' x, y.
    :func:`animate_drive` does the same and also returns the placement and the warnings.
    """
    return animate_drive(mask, keyframes, num_frames, interpolation, coordinates, snap_to_track_start, names).masks
