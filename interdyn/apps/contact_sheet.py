"""Contact sheets: several videos as labelled rows of frames in one PNG, so a result can be seen in a
README, an issue or a file browser without playing a video."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..support.safe_output import atomic_file


def contact_sheet(rows: Sequence[tuple[str, torch.Tensor]], *, zoom: int = 2, gap: int = 2,
                  label_width: int = 150, title: str | None = None):
    """A PIL image: one row per ``(label, video)``, video ``[F, 3, H, W]`` in [0, 1], frames left to right
    (enlarged ``zoom`` times, nearest neighbour), the label on the left and frame numbers on top."""
    if not rows:
        raise ValueError("contact_sheet needs at least one (label, video) row")
    shapes = {tuple(v.shape[-2:]) for _, v in rows}
    if len(shapes) != 1 or any(v.ndim != 4 or v.shape[1] != 3 for _, v in rows):
        raise ValueError(f"every row must be a [F, 3, H, W] video of one size, got {[tuple(v.shape) for _, v in rows]}")
    h, w = shapes.pop()
    frames = max(v.shape[0] for _, v in rows)
    fh, fw = h * zoom, w * zoom
    top = 18 + (16 if title else 0)
    sheet = Image.new("RGB", (label_width + frames * (fw + gap), top + len(rows) * (fh + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    if title:
        draw.text((4, 2), title, fill=(0, 0, 0), font=font)
    for f in range(frames):
        draw.text((label_width + f * (fw + gap) + 2, top - 14), f"frame {f}", fill=(60, 60, 60), font=font)
    for r, (label, video) in enumerate(rows):
        y = top + r * (fh + gap)
        for i, line in enumerate(label.split("\n")):
            draw.text((4, y + 4 + 12 * i), line, fill=(0, 0, 0), font=font)
        pixels = (video.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
        pixels = pixels.repeat_interleave(zoom, dim=-2).repeat_interleave(zoom, dim=-1)
        for f in range(video.shape[0]):
            sheet.paste(Image.fromarray(np.ascontiguousarray(pixels[f].permute(1, 2, 0).cpu().numpy())),
                        (label_width + f * (fw + gap), y))
    return sheet


def write_contact_sheet(path: str | os.PathLike, rows: Sequence[tuple[str, torch.Tensor]], **kwargs) -> Path:
    """Write :func:`contact_sheet` as a PNG, atomically (a temporary name, then a rename)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"a contact sheet is written as .png, got {path.name!r}")
    image = contact_sheet(rows, **kwargs)
    with atomic_file(path) as tmp:  # removed again if saving fails; an earlier sheet stays whole
        image.save(tmp, format="PNG")
    return path
