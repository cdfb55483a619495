"""Training clips from a folder in the released InterDyn examples' layout.

::

    ROOT/<id>/video.mp4          (or .webm) the RGB video
    ROOT/<id>/mask_hand.mp4      (or .webm) the driving motion's mask, white on black
    ROOT/<id>/mask_<object>.mp4  optional, one per object (e.g. mask_cup.mp4)
    ROOT/<id>/label.txt          optional, a text label (e.g. the action)

:func:`interdyn.data.synthetic.write_scene_folder` writes this layout too (its extra files are
ignored). Each sample (format: :mod:`training.data.samples`): a start frame drawn from the
seeded generator of ``(seed, epoch, clip)``; ``num_frames`` frames resampled from the source rate
to ``fps`` (nearest source frame, :func:`interdyn.core.control.resample_frame_indices`); video, masks
and control from :func:`interdyn.core.control.fit_control`: fitted jointly to ``height x width``
(``crop="mask"`` keeps the masks' bounding box in view), control = the hand mask in white.
``meta["masks"]`` holds ``hand`` and the objects.

Clips are checked once when the dataset is built; unusable ones are skipped with a summary
warning (``skipped``: reason -> ids): no video, no ``mask_hand``, unreadable, too short for
``num_frames`` at ``fps``, smaller than ``min_height x min_width``, mask and video lengths differ.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import av
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from interdyn.core.control import fit_control, resample_frame_indices
from interdyn.data.video_io import VideoReadError, read_video, read_video_frames

from .samples import item_rng, make_sample, split_key

VIDEO_SUFFIXES = (".mp4", ".webm")


@dataclass
class ClipEntry:
    """One usable clip folder."""

    id: str
    video: Path
    hand: Path
    objects: dict[str, Path] = field(default_factory=dict)
    label: str = ""
    num_frames: int = 0
    fps: float = 0.0
    height: int = 0
    width: int = 0


def probe_video(path: Path) -> tuple[int, float, int, int]:
    """``(frame count, fps, height, width)`` of a video file, decoding as little as possible."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path} has no video stream")
            stream = container.streams.video[0]
            count = int(stream.frames or 0)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
    except VideoReadError:
        raise
    except Exception as err:  # noqa: BLE001 - PyAV raises many types for a bad file
        raise VideoReadError(f"cannot open {path} ({err})") from None
    first = read_video_frames(path, [0])
    height, width = first.shape[1:3]
    if count <= 0 or fps <= 0:  # containers without a frame count (often WebM): decode once
        frames, fps = read_video(path)
        count = frames.shape[0]
    return count, fps, int(height), int(width)


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in VIDEO_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def _read_masks(path: Path, indices: list[int], size: tuple[int, int]) -> torch.Tensor:
    """``[F, H, W]`` bool mask frames (white = inside), nearest-resized to ``size`` if needed."""
    rgb = read_video_frames(path, indices, as_tensor=True)
    mask = rgb.amax(dim=-1) > 127
    if tuple(mask.shape[1:]) != tuple(size):
        mask = F.interpolate(mask[:, None].float(), size=size, mode="nearest-exact")[:, 0] > 0.5
    return mask


class DataError(ValueError):
    """The training data cannot be used as given (no usable clip, a folder that does not exist): a user error."""


class FolderClips(Dataset):
    """Clips of ``ROOT/<id>/`` folders (see the module docstring), indexed by sampler keys."""

    def __init__(self, root, *, num_frames: int = 14, height: int = 256, width: int = 384, fps: float = 6.0,
                 crop: str = "mask", seed: int = 0, min_height: int = 0, min_width: int = 0):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"dataset folder {self.root} does not exist")
        self.num_frames, self.height, self.width, self.fps = int(num_frames), int(height), int(width), float(fps)
        self.crop, self.seed = crop, int(seed)
        self.min_height, self.min_width = int(min_height), int(min_width)
        self.entries: list[ClipEntry] = []
        self.skipped: dict[str, list[str]] = {}
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            entry, reason = self._check(folder)
            if entry is None:
                self.skipped.setdefault(reason, []).append(folder.name)
            else:
                self.entries.append(entry)
        if self.skipped:
            summary = "; ".join(f"{reason}: {len(ids)} ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"
                                for reason, ids in self.skipped.items())
            warnings.warn(f"{self.root}: skipped {sum(map(len, self.skipped.values()))} clip folders - {summary}",
                          stacklevel=2)
        if not self.entries:
            raise DataError(f"data_root {self.root} holds no usable clip folder (<id>/video.mp4 + <id>/mask_hand.mp4 with at "
                             f"least {self.num_frames} frames at {self.fps:g} fps); skipped: {self.skipped}")

    def _check(self, folder: Path) -> tuple[ClipEntry | None, str]:
        video, hand = _find(folder, "video"), _find(folder, "mask_hand")
        if video is None:
            return None, "no video.mp4/webm"
        if hand is None:
            return None, "no mask_hand.mp4/webm"
        try:
            count, fps, height, width = probe_video(video)
            mask_count = probe_video(hand)[0]
        except (VideoReadError, FileNotFoundError, IndexError):
            return None, "unreadable"
        if height < self.min_height or width < self.min_width:
            return None, f"smaller than {self.min_height}x{self.min_width}"
        if mask_count != count:
            return None, "mask and video lengths differ"
        try:
            resample_frame_indices(count, fps, self.fps, self.num_frames, 0)
        except ValueError:
            return None, f"too short for {self.num_frames} frames at {self.fps:g} fps"
        objects = {}
        for suffix in VIDEO_SUFFIXES:
            for p in sorted(folder.glob(f"mask_*{suffix}")):
                name = p.name[len("mask_"):-len(suffix)]
                if name != "hand" and name not in objects:
                    objects[name] = p
        label_file = folder / "label.txt"
        label = label_file.read_text().strip() if label_file.is_file() else ""
        return ClipEntry(folder.name, video, hand, objects, label, count, fps, height, width), ""

    def __len__(self) -> int:
        return len(self.entries)

    def frame_indices(self, index: int, epoch: int) -> list[int]:
        """Source frames of clip ``index`` in ``epoch``: a seeded random start, then resampled to ``fps``."""
        e = self.entries[index]
        offsets = resample_frame_indices(e.num_frames, e.fps, self.fps, self.num_frames, 0)
        last_start = e.num_frames - 1 - offsets[-1]
        start = int(item_rng(self.seed, epoch, index).integers(0, last_start + 1))
        return [start + o for o in offsets]

    def __getitem__(self, key: int) -> dict:
        index, epoch = split_key(key, len(self.entries))
        e = self.entries[index]
        indices = self.frame_indices(index, epoch)
        video = read_video_frames(e.video, indices, as_tensor=True).permute(0, 3, 1, 2).float() / 255.0
        size = tuple(video.shape[-2:])
        names = ["hand", *e.objects]
        masks = torch.stack([_read_masks(p, indices, size) for p in [e.hand, *e.objects.values()]])
        # every mask shapes the crop; the hand alone is the driving motion
        video, control, masks = fit_control(video, masks=masks, height=self.height, width=self.width, crop=self.crop,
                                            drivers=[0])
        return make_sample(video, control, source=e.id, label=e.label, fps=self.fps,
                           masks=dict(zip(names, masks)), start_frame=indices[0], source_fps=e.fps)
