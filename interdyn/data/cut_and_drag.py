"""The cut-and-drag reference of a drive: the first frame with the dragged object moved along its masks.

Time-to-Move (Singer et al., ICLR 2026, arXiv 2511.08633) steers a video model with a crude animation: the
object is cut out of the first frame and pasted, frame by frame, where the drive puts it. This module makes that
animation from any drive given as masks (the Drive Editor, Mask Trajectory, SAM2, a mask video):

* **the transform of each frame** is the similarity (translation, uniform scale, rotation) that carries the
  first mask onto frame ``t``'s mask, read from the masks' moments: the translation from the centroids, the
  scale from the square root of the area ratio, the rotation from the principal axes of the second moments
  (only when both masks are elongated, axis ratio >= :data:`MIN_ELONGATION`; a disc or a square has no
  readable rotation and keeps 0). For the Drive Editor's keyframes (translation, scale, rotation of one
  shape) this recovers the editor's own transform; a mask that changes shape gets its best similarity;
* **the hole** the object leaves is filled plainly, from its rim inward: each hole pixel takes the mean of
  its already-known 8 neighbours (an "onion-peel" fill), over the first mask grown by one pixel so that its
  antialiased edge is not smeared in. No model: the video model is left to repaint it (the region that
  :mod:`interdyn.core.dual_clock` holds is the object, not the hole);
* **the region** of frame ``t`` is the warped first mask (> 0.5): where the reference shows the object.

Frame 0 of the reference is the first frame itself. An empty mask in a later frame (the object left the
picture) gives the filled background and an empty region there.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..support.validation import InputError

__all__ = ["MIN_ELONGATION", "composite_reference", "cut_and_drag", "fill_hole", "mask_similarities"]

#: a mask's axis ratio (sqrt of the second moments' eigenvalue ratio) below which its rotation is not read
MIN_ELONGATION = 1.15


def _moments(mask: torch.Tensor) -> tuple[float, torch.Tensor, float, float]:
    """Area, centroid ``(x, y)``, principal-axis angle (radians, mod pi) and axis ratio of a ``[H, W]`` mask."""
    h, w = mask.shape
    m = mask.double()
    area = float(m.sum())
    ys = torch.arange(h, dtype=torch.float64)[:, None]
    xs = torch.arange(w, dtype=torch.float64)[None, :]
    cx, cy = float((m * xs).sum()) / area, float((m * ys).sum()) / area
    sxx = float((m * (xs - cx) ** 2).sum()) / area
    syy = float((m * (ys - cy) ** 2).sum()) / area
    sxy = float((m * (xs - cx) * (ys - cy)).sum()) / area
    angle = 0.5 * math.atan2(2 * sxy, sxx - syy)
    spread = math.sqrt(((sxx - syy) / 2) ** 2 + sxy ** 2)
    big, small = (sxx + syy) / 2 + spread, max((sxx + syy) / 2 - spread, 1e-12)
    return area, torch.tensor([cx, cy], dtype=torch.float64), angle, math.sqrt(big / small)


def mask_similarities(masks: torch.Tensor) -> list[tuple[float, float, float, float] | None]:
    """Per frame of ``masks`` ``[F, H, W]`` (values in [0, 1]): ``(dx, dy, scale, rotation)`` carrying frame 0's
    mask onto that frame's, or ``None`` for an empty frame. Pixels, image coordinates (x right, y down);
    ``rotation`` in radians from +x towards +y (clockwise on screen). Frame 0 is ``(0, 0, 1, 0)``."""
    area0, c0, angle0, elong0 = _moments(masks[0])
    out: list[tuple[float, float, float, float] | None] = []
    for mask in masks:
        if float(mask.sum()) <= 0:
            out.append(None)
            continue
        area, c, angle, elong = _moments(mask)
        rotation = 0.0
        if elong0 >= MIN_ELONGATION and elong >= MIN_ELONGATION:
            rotation = (angle - angle0 + math.pi / 2) % math.pi - math.pi / 2  # an axis is a line: mod pi
        d = c - c0
        out.append((float(d[0]), float(d[1]), math.sqrt(area / area0), rotation))
    return out


def fill_hole(image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """``image`` ``[C, H, W]`` with the pixels where ``hole`` ``[H, W]`` (bool) is true filled from the rim inward,
    each by the mean of its known 8-neighbours (the known pixels are unchanged). A hole covering the whole
    picture is filled with the image's mean."""
    known = ~hole
    if not bool(known.any()):
        return image.mean(dim=(1, 2), keepdim=True).expand_as(image).clone()
    value = image * known
    kernel = torch.ones(1, 1, 3, 3, dtype=image.dtype)
    known_f = known.to(image.dtype)[None, None]
    value = value[None]
    while not bool(known_f.all()):
        count = F.conv2d(known_f, kernel, padding=1)
        total = F.conv2d(value.flatten(0, 1)[:, None], kernel, padding=1).reshape(value.shape)
        rim = (count > 0) & (known_f == 0)
        value = torch.where(rim, total / count.clamp(min=1), value)
        known_f = torch.where(rim, torch.ones_like(known_f), known_f)
    return value[0]


def _warp(layer: torch.Tensor, c0: torch.Tensor, dx: float, dy: float, scale: float, rotation: float) -> torch.Tensor:
    """``layer`` ``[C, H, W]`` moved by the similarity about the first centroid ``c0``: a point ``p`` of frame 0 goes
    to ``c0 + (dx, dy) + scale R(rotation) (p - c0)``. Bilinear, zero outside."""
    _, h, w = layer.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) + 0.5, torch.arange(w, dtype=torch.float64) + 0.5,
                            indexing="ij")
    cx, cy = float(c0[0]) + 0.5, float(c0[1]) + 0.5  # pixel centres at +0.5
    qx, qy = xs - cx - dx, ys - cy - dy
    cos, sin = math.cos(rotation), math.sin(rotation)
    sx = cx + (cos * qx + sin * qy) / scale  # the inverse map: R(-rotation) / scale
    sy = cy + (-sin * qx + cos * qy) / scale
    grid = torch.stack([sx / w * 2 - 1, sy / h * 2 - 1], dim=-1)[None].to(layer.dtype)
    return F.grid_sample(layer[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]


def _check_fit(first_frame: torch.Tensor, masks: torch.Tensor, image_name: str, masks_name: str,
               finite: tuple) -> None:
    """The masks are of the picture's size and each ``(tensor, name)`` of ``finite`` holds finite values; raises
    :class:`~interdyn.support.validation.InputError` in the caller's names."""
    if tuple(masks.shape[-2:]) != tuple(first_frame.shape[-2:]):
        raise InputError(f"{masks_name} are {masks.shape[-1]}x{masks.shape[-2]} but {image_name} is "
                         f"{first_frame.shape[-1]}x{first_frame.shape[-2]}: give masks of the picture's size")
    for tensor, name in finite:
        if not bool(torch.isfinite(tensor).all()):
            raise InputError(f"{name} holds NaN or infinite values")


def cut_and_drag(first_frame: torch.Tensor, masks: torch.Tensor, *,
                 names: tuple[str, str] = ("first_frame", "masks")) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference video and its region for a drive.

    ``first_frame`` ``[3, H, W]`` in [0, 1]; ``masks`` ``[F, H, W]`` in [0, 1], the dragged object in every frame
    (frame 0: where it is cut from). Returns ``reference`` ``[F, 3, H, W]`` and ``region`` ``[F, H, W]`` (float
    0/1). ``names`` are the caller's names for the two inputs (messages use them). Raises
    :class:`~interdyn.support.validation.InputError` for shapes that do not match, non-finite values or an
    empty first mask.
    """
    image_name, masks_name = names
    if not isinstance(first_frame, torch.Tensor) or first_frame.ndim != 3 or first_frame.shape[0] != 3:
        raise InputError(f"{image_name} must be one image [3, height, width], got "
                         f"{tuple(first_frame.shape) if isinstance(first_frame, torch.Tensor) else type(first_frame).__name__}")
    if not isinstance(masks, torch.Tensor) or masks.ndim != 3:
        raise InputError(f"{masks_name} must be a mask sequence [frames, height, width], got "
                         f"{tuple(masks.shape) if isinstance(masks, torch.Tensor) else type(masks).__name__}")
    _check_fit(first_frame, masks, image_name, masks_name, ((first_frame, image_name), (masks, masks_name)))
    first_frame = first_frame.float().clamp(0, 1)
    masks = masks.float().clamp(0, 1)
    if float(masks[0].sum()) < 1:
        raise InputError(f"the first frame of {masks_name} is empty: it must show the object to drag")
    transforms = mask_similarities(masks)
    _, c0, _, _ = _moments(masks[0])
    background = _background(first_frame, masks[0])
    layer = torch.cat([first_frame * masks[0], masks[0][None]])  # premultiplied colour + alpha
    reference, region = [first_frame], [(masks[0] > 0.5).float()]
    for t in range(1, masks.shape[0]):
        if transforms[t] is None:
            reference.append(background.clone())
            region.append(torch.zeros_like(masks[0]))
            continue
        moved = _warp(layer, c0, *transforms[t])
        alpha = moved[3:].clamp(0, 1)
        reference.append((background * (1 - alpha) + moved[:3]).clamp(0, 1))
        region.append((alpha[0] > 0.5).float())
    return torch.stack(reference), torch.stack(region)


def composite_reference(first_frame: torch.Tensor, appearance: torch.Tensor, masks: torch.Tensor, *,
                        names: tuple[str, str, str] = ("first_frame", "appearance", "masks")
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference for a driver that is not (wholly) in the first frame, e.g. a hand or a ball that enters: frame
    ``t`` is the first frame (with the hole under ``masks[0]`` filled as in :func:`cut_and_drag`) with the pixels of
    ``appearance[t]`` pasted under ``masks[t]``. ``appearance`` ``[F, 3, H, W]`` shows the driver where the masks
    are (a render of it, or a video of it); ``masks`` ``[F, H, W]`` in [0, 1]. Returns ``(reference, region)`` as
    :func:`cut_and_drag` does; frame 0 keeps the first frame outside ``masks[0]``. ``names``: the caller's names
    for the three inputs, used in the :class:`~interdyn.support.validation.InputError` messages."""
    image_name, look_name, masks_name = names
    if appearance.shape[0] != masks.shape[0] or tuple(appearance.shape[-2:]) != tuple(masks.shape[-2:]):
        raise InputError(f"{look_name} is {appearance.shape[0]} frames of {appearance.shape[-1]}x{appearance.shape[-2]} "
                         f"but {masks_name} are {masks.shape[0]} frames of {masks.shape[-1]}x{masks.shape[-2]}: give "
                         "one frame per mask, at the same size")
    _check_fit(first_frame, masks, image_name, masks_name, ((appearance, look_name), (masks, masks_name)))
    masks = masks.float().clamp(0, 1)
    alpha = masks[:, None]
    reference = _background(first_frame.float(), masks[0])[None] * (1 - alpha) + appearance.float() * alpha
    return reference.clamp(0, 1), (masks > 0.5).float()


def _background(first_frame: torch.Tensor, first_mask: torch.Tensor) -> torch.Tensor:
    """The first frame with the hole under ``first_mask`` (grown by one pixel, so its antialiased edge is not
    smeared in) filled by :func:`fill_hole`; the first frame itself when the mask is empty."""
    hole = F.max_pool2d((first_mask > 0)[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
    return fill_hole(first_frame, hole) if bool(hole.any()) else first_frame
