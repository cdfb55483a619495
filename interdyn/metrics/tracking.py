"""Point trackers for motion fidelity, behind one interface.

``Tracker.track(video, queries) -> (tracks, visibility)``:

* ``video``: one clip ``[F, 3, H, W]``, float in [0, 1];
* ``queries``: ``[P, 2]`` pixel coordinates ``(x, y)`` in frame 0; integer coordinates are pixel
  centres (``x`` = column, ``y`` = row), the convention of OpenCV and CoTracker;
* ``tracks``: ``[F, P, 2]`` float (x, y) per frame, ``tracks[0] == queries``;
* ``visibility``: ``[F, P]`` bool.
"""
from __future__ import annotations

import abc
import os
from pathlib import Path

import numpy as np
import torch

from ..support.safe_load import weights_only_torch_load
from ._video import to_uint8


class Tracker(abc.ABC):
    """Tracks query points given in frame 0 through a clip."""

    @abc.abstractmethod
    def track(self, video: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``video`` [F,3,H,W] float 0..1, ``queries`` [P,2] (x, y) at frame 0 ->
        ``tracks`` [F,P,2] float, ``visibility`` [F,P] bool."""


def _check_track_inputs(video: torch.Tensor, queries: torch.Tensor) -> None:
    if video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"video must be [F, 3, H, W], got {tuple(video.shape)}")
    if queries.ndim != 2 or queries.shape[1] != 2:
        raise ValueError(f"queries must be [P, 2] (x, y), got {tuple(queries.shape)}")


class LucasKanadeTracker(Tracker):
    """OpenCV pyramidal Lucas-Kanade (``cv2.calcOpticalFlowPyrLK``), no weights.

    Frames are quantised to uint8 and converted to grey (``cv2.COLOR_RGB2GRAY``); points are tracked
    frame to frame (t-1 -> t). A point whose LK status fails, or that leaves the image, is marked not
    visible from then on and keeps its last position (so its later displacements are zero).
    Accurate for small, textured, locally rigid motion; use :class:`CoTrackerTracker` for the paper's
    protocol.
    """

    def __init__(self, win_size: int = 21, max_level: int = 3, max_iterations: int = 30, epsilon: float = 0.01):
        self.win_size = int(win_size)
        self.max_level = int(max_level)
        self.max_iterations = int(max_iterations)
        self.epsilon = float(epsilon)

    def track(self, video: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        import cv2  # on use: OpenCV takes a third of a second to import

        _check_track_inputs(video, queries)
        frames = to_uint8(video.detach().float().cpu()).permute(0, 2, 3, 1).numpy()
        grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
        h, w = grey[0].shape
        n_frames, n_points = len(grey), queries.shape[0]
        tracks = np.zeros((n_frames, n_points, 2), np.float32)
        visible = np.zeros((n_frames, n_points), bool)
        tracks[0] = queries.detach().cpu().numpy()
        visible[0] = True
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, self.max_iterations, self.epsilon)
        for t in range(1, n_frames):
            prev = tracks[t - 1].reshape(-1, 1, 2).copy()
            nxt, status, _err = cv2.calcOpticalFlowPyrLK(
                grey[t - 1], grey[t], prev, None,
                winSize=(self.win_size, self.win_size), maxLevel=self.max_level, criteria=criteria,
            )
            nxt = nxt.reshape(-1, 2)
            inside = (nxt[:, 0] >= 0) & (nxt[:, 0] <= w - 1) & (nxt[:, 1] >= 0) & (nxt[:, 1] <= h - 1)
            ok = visible[t - 1] & (status.reshape(-1) == 1) & inside & np.isfinite(nxt).all(1)
            tracks[t] = np.where(ok[:, None], nxt, tracks[t - 1])
            visible[t] = ok
        return torch.from_numpy(tracks), torch.from_numpy(visible)


class CoTrackerTracker(Tracker):
    """CoTracker (Karaev et al.; CoTracker3 is what InterDyn used), from code and weights you supply.

    CoTracker is not on PyPI: make its code importable as ``cotracker`` (e.g. ``pip install`` a local
    clone of facebookresearch/co-tracker) and pass the checkpoint file, e.g. ``scaled_offline.pth``
    for CoTracker3 offline. ``predictor_kwargs`` go to ``cotracker.predictor.CoTrackerPredictor``
    (its defaults, ``offline=True, window_len=60``, fit ``scaled_offline.pth``). Nothing is downloaded
    (``torch.hub`` is never used). Alternatively pass a ready ``predictor``: any module called as
    ``predictor(video [1,F,3,H,W] float 0..255, queries=[1,P,3] (t, x, y))`` returning
    ``(tracks [1,F,P,2], visibility [1,F,P])``, which is ``CoTrackerPredictor``'s interface.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        *,
        predictor: torch.nn.Module | None = None,
        device: str | torch.device = "cpu",
        **predictor_kwargs,
    ):
        if predictor is None:
            if checkpoint is None:
                raise ValueError("CoTrackerTracker needs a checkpoint path (e.g. scaled_offline.pth) or a predictor")
            path = Path(checkpoint).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"CoTracker checkpoint not found at {path} (CoTracker weights are never downloaded)")
            try:
                from cotracker.predictor import CoTrackerPredictor  # optional: not on PyPI
            except ImportError as exc:
                raise ImportError(
                    "CoTrackerTracker needs the CoTracker code importable as `cotracker` (it is not on PyPI: "
                    "pip install a local clone of facebookresearch/co-tracker), or an injected predictor="
                ) from exc
            with weights_only_torch_load():  # CoTracker's own torch.load: tensors only, whatever it asks for
                predictor = CoTrackerPredictor(checkpoint=str(path), **predictor_kwargs)
        self.device = torch.device(device)
        self.predictor = predictor.eval().to(self.device) if isinstance(predictor, torch.nn.Module) else predictor

    @torch.no_grad()
    def track(self, video: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_track_inputs(video, queries)
        clip = (video.detach().float().clamp(0, 1) * 255.0)[None].to(self.device)
        q = queries.detach().float()
        q = torch.cat([torch.zeros_like(q[:, :1]), q], dim=1)[None].to(self.device)
        tracks, visibility = self.predictor(clip, queries=q)
        return tracks[0].float().cpu(), visibility[0].bool().cpu()
