"""Reading the clips to evaluate: the dataset folder, clip ids, object masks and generated videos."""
from __future__ import annotations

from pathlib import Path

import torch

from interdyn.core.control import resample_frame_indices
from interdyn.data.video_io import VIDEO_EXTENSIONS, read_video

from ..data.folder import FolderClips
from .settings import GENERATED_NAME, GenerationSettings


def open_dataset(data_root, settings: GenerationSettings):
    """The clips of ``data_root`` (:class:`training.data.folder.FolderClips`), each starting at its first frame.

    Training draws a random start frame per clip; evaluation must see the same frames every run and
    for every method, so the clip starts at source frame 0 and is resampled to ``settings.clip_fps``.
    """
    class EvaluationClips(FolderClips):
        def frame_indices(self, index: int, epoch: int) -> list[int]:
            e = self.entries[index]
            return resample_frame_indices(e.num_frames, e.fps, self.fps, self.num_frames, 0)

    return EvaluationClips(data_root, num_frames=settings.num_frames, height=settings.height, width=settings.width,
                           fps=settings.clip_fps, crop=settings.crop)


def clip_ids(dataset) -> list[str]:
    """Clip ids in dataset order: ``dataset.entries[i].id`` (FolderClips) or each sample's ``meta["source"]``."""
    entries = getattr(dataset, "entries", None)
    if entries is not None:
        return [str(e.id) for e in entries]
    return [str(dataset[i]["meta"]["source"]) for i in range(len(dataset))]


def _drivers(meta: dict) -> set[str]:
    """The names of the masks that drive the scene: the hand and the driven objects."""
    return set(meta.get("driven") or ()) | {"hand"}


def object_mask(meta: dict) -> torch.Tensor | None:
    """Union of the first-frame masks of the scene's objects (not the hand / driven objects), or None."""
    masks = meta.get("masks") or {}
    objects = [m[0].bool() for name, m in masks.items() if name not in _drivers(meta)]
    if not objects:
        return None
    return torch.stack(objects).any(0)


def driver_masks(meta: dict) -> torch.Tensor | None:
    """Union of the driving masks (the hand and the driven objects) at every frame, ``[F, H, W]`` float 0/1, or
    None when the clip has none."""
    masks = meta.get("masks") or {}
    drivers = [m.float() for name, m in masks.items() if name in _drivers(meta)]
    if not drivers:
        return None
    return torch.stack(drivers).amax(0)


def find_generated_video(folder: Path, clip_id: str) -> Path | None:
    """``folder/<id>/generated.<ext>`` (any video extension, or a ``generated`` PNG folder), else None."""
    base = Path(folder) / clip_id
    for ext in VIDEO_EXTENSIONS:
        if (base / f"{GENERATED_NAME}{ext}").is_file():
            return base / f"{GENERATED_NAME}{ext}"
    if (base / GENERATED_NAME).is_dir():
        return base / GENERATED_NAME
    return None


def read_clip(path: Path) -> torch.Tensor:
    """A generated video (file or frame folder) as ``[F, 3, H, W]`` float in [0, 1], the reference clips' layout."""
    frames, _ = read_video(path, as_tensor=True)
    return frames.permute(0, 3, 1, 2).float() / 255.0
