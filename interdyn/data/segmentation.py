"""SAM2 video masks from boxes and points, for building InterDyn control frames.

``load_sam2_video_predictor`` builds a SAM2 video predictor from a local checkpoint
(never downloads); ``segment_video`` tracks prompted objects through a clip and returns
``[O, F, H, W]`` bool masks (feed them to :func:`interdyn.core.control.masks_to_control`);
``parse_prompts`` reads the prompts from JSON text (e.g. a ComfyUI text widget).

Prompt coordinates are pixels of the frames given to ``segment_video``: boxes
``[x0, y0, x1, y1]``, points ``[[x, y], ...]`` with labels ``1`` (positive, on the object)
or ``0`` (negative, background).

SAM2 (``pip install sam2``; from source, e.g. ``SAM2_BUILD_CUDA=0 pip install
--no-build-isolation sam2``) is imported only when these functions run.
"""
from __future__ import annotations

import json
import importlib.util
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from ..support.safe_load import read_tensor_file
from ..support.validation import check_input_path, frame_layout, is_finite_number

__all__ = [
    "SAM2_CHECKPOINT_CONFIGS",
    "ObjectPrompt",
    "sam2_config_for_checkpoint",
    "build_sam2_video_predictor_random",
    "load_sam2_video_predictor",
    "segment_video",
    "parse_prompts",
]

#: Checkpoint file names (``sam2.1_hiera_tiny.pt`` ...) -> SAM2 config shipped with the package.
#: ``sam2.1_*`` use ``configs/sam2.1``, ``sam2_*`` (SAM 2.0) ``configs/sam2``. Suffixes such as
#: ``-fp16`` or ``.safetensors`` do not matter.
SAM2_CHECKPOINT_CONFIGS = {
    f"{version}_hiera_{size}": f"configs/{version}/{version}_hiera_{short}.yaml"
    for version in ("sam2.1", "sam2")
    for size, short in (("tiny", "t"), ("small", "s"), ("base_plus", "b+"), ("large", "l"))
}

_SIZE_ALIASES = {"tiny": "t", "t": "t", "small": "s", "s": "s", "base_plus": "b+", "b+": "b+", "large": "l", "l": "l"}
_CKPT_RE = re.compile(r"(sam2(?:\.1)?)_hiera_(tiny|small|base_plus|large|b\+|t|s|l)(?![a-z])", re.IGNORECASE)

_PROMPT_EXAMPLE = (
    '[{"box": [40, 60, 200, 220]}, '
    '{"points": [[320, 140], [300, 200]], "labels": [1, 0]}, '
    '{"box": [10, 10, 90, 120], "points": [[50, 60]], "labels": [1]}]'
)
_PROMPT_HELP = (
    "Prompts are a JSON list with one entry per object; each entry has a \"box\" "
    "[x0, y0, x1, y1] and/or \"points\" [[x, y], ...] with \"labels\" [1 or 0, ...] "
    "(1 = on the object, 0 = background; labels may be omitted for all-positive points), "
    f"in pixels of the frames. Example: {_PROMPT_EXAMPLE}"
)


# --------------------------------------------------------------------------- loading


def _sam2_root() -> Path:
    try:
        import sam2  # an optional dependency (pip install sam2), imported when a SAM2 function runs
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "SAM2 is not installed: pip install sam2 (from source without CUDA: "
            "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2)."
        ) from e
    return Path(sam2.__path__[0])


def _resolve_config(config_name: str) -> str:
    """Accept ``configs/sam2.1/sam2.1_hiera_t.yaml``, ``sam2.1_hiera_t.yaml`` or ``sam2.1_hiera_t``."""
    root = _sam2_root()
    name = config_name.strip()
    if not name.endswith(".yaml"):
        name += ".yaml"
    candidates = [name]
    if not name.startswith("configs/"):
        version = "sam2.1" if name.startswith("sam2.1") else "sam2"
        candidates.append(f"configs/{version}/{name}")
    for c in candidates:
        if (root / c).is_file():
            return c
    available = sorted(str(p.relative_to(root)) for p in (root / "configs").glob("sam2*/*.yaml"))
    raise ValueError(f"SAM2 config {config_name!r} not found in the sam2 package; available: {available}.")


def sam2_config_for_checkpoint(checkpoint_path: str | os.PathLike) -> str:
    """The SAM2 config that matches a checkpoint file name, e.g. ``configs/sam2.1/sam2.1_hiera_t.yaml``."""
    name = Path(checkpoint_path).name
    match = _CKPT_RE.search(name)
    if match is None:
        raise ValueError(
            f"cannot tell the SAM2 model size from the file name {name!r}; name it like the official "
            "checkpoints (sam2.1_hiera_tiny.pt, sam2.1_hiera_small.pt, sam2.1_hiera_base_plus.pt, "
            "sam2.1_hiera_large.pt) or pass config_name='configs/sam2.1/sam2.1_hiera_t.yaml' (t/s/b+/l)."
        )
    version = match.group(1).lower()
    short = _SIZE_ALIASES[match.group(2).lower()]
    return f"configs/{version}/{version}_hiera_{short}.yaml"


def _hydra_overrides(image_size: int | None) -> list[str]:
    if image_size is None:
        return []
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size <= 0 or image_size % 32:
        raise ValueError(
            f"image_size must be a positive multiple of 32 (SAM2's backbone downsamples by 32), got "
            f"{image_size!r}; SAM2 is trained at 1024, smaller sizes (e.g. 512) are faster but coarser."
        )
    return [f"++model.image_size={int(image_size)}"]


def _without_unavailable_postprocessing(model):
    """SAM2's hole filling needs its CUDA extension ``sam2._C``; without it SAM2 skips the step
    anyway but warns on every frame. Turn it off explicitly (same masks, no warnings)."""
    try:
        has_ext = importlib.util.find_spec("sam2._C") is not None
    except (ImportError, ValueError):
        has_ext = False
    if not has_ext and getattr(model, "fill_hole_area", 0):
        model.fill_hole_area = 0
    return model


def build_sam2_video_predictor_random(
    config_name: str = "configs/sam2.1/sam2.1_hiera_t.yaml",
    device: str | torch.device = "cpu",
    image_size: int | None = 256,
):
    """A SAM2 video predictor with random weights (for tests and CPU demos: runs, segments nothing meaningful)."""
    _sam2_root()
    from sam2.build_sam import build_sam2_video_predictor  # optional: after _sam2_root's check

    model = build_sam2_video_predictor(
        _resolve_config(config_name),
        ckpt_path=None,
        device=str(device),
        hydra_overrides_extra=_hydra_overrides(image_size),
    )
    return _without_unavailable_postprocessing(model)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix.lower() == ".safetensors":
        sd = load_file(str(path), device="cpu")
    else:
        obj = read_tensor_file(path, "SAM2 checkpoint")
        if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
            sd = obj["model"]
        elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            sd = obj  # a bare state dict
        else:
            keys = list(obj)[:5] if isinstance(obj, dict) else type(obj).__name__
            raise ValueError(
                f"{path} is not a SAM2 checkpoint: expected a dict {{'model': state_dict}} (as the "
                f"official sam2.1_hiera_*.pt files), found {keys}."
            )
    if sd and all(k.startswith("model.") for k in sd):
        sd = {k[len("model."):]: v for k, v in sd.items()}
    return sd


def load_sam2_video_predictor(
    checkpoint_path: str | os.PathLike,
    config_name: str | None = None,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
    name: str = "SAM2 checkpoint",
):
    """Build a SAM2 video predictor from a local checkpoint; never downloads.

    ``checkpoint_path``: an official ``sam2.1_hiera_{tiny,small,base_plus,large}.pt`` (a
    ``{"model": state_dict}`` read with ``torch.load(weights_only=True)``), a ``sam2_hiera_*``
    (SAM 2.0) file, or a ``.safetensors`` file with the same keys (fp16 is fine, weights are
    cast to the model's float32). ``config_name`` defaults to the config matching the file
    name (see :func:`sam2_config_for_checkpoint`). ``image_size`` overrides SAM2's input
    resolution (1024; a multiple of 32), e.g. 512 to run faster on CPU. ``name``: the caller's name for the checkpoint
    in the message that refuses a FIFO, device or socket before it is opened.
    """
    path = check_input_path(Path(checkpoint_path).expanduser(), name, what="a regular file")
    if not path.is_file():
        raise FileNotFoundError(
            f"SAM2 checkpoint not found: {path}. Download it (e.g. sam2.1_hiera_tiny.pt from "
            "https://huggingface.co/facebook/sam2.1-hiera-tiny) and put it there; nothing is downloaded at run time."
        )
    config = _resolve_config(config_name) if config_name else sam2_config_for_checkpoint(path)
    sd = _read_state_dict(path)

    _sam2_root()
    from sam2.build_sam import build_sam2_video_predictor  # optional: after _sam2_root's check

    model = build_sam2_video_predictor(
        config, ckpt_path=None, device="cpu", hydra_overrides_extra=_hydra_overrides(image_size)
    )
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    mismatched = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"checkpoint {path.name} does not match config {config}: {len(missing)} missing keys "
            f"{missing[:3]}, {len(unexpected)} unexpected keys {unexpected[:3]}, {len(mismatched)} "
            f"shape mismatches {mismatched[:3]}. Pass the config of the checkpoint's size "
            "(config_name='configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml'); Hugging Face transformers-format "
            "SAM2 weights are not supported, use the original sam2 checkpoints."
        )
    model.load_state_dict(sd, strict=True)
    return _without_unavailable_postprocessing(model.to(device).eval())


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class ObjectPrompt:
    """Prompt for one object: a box ``(x0, y0, x1, y1)`` and/or points ``((x, y), ...)`` with labels (1/0)."""

    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float], ...] | None = None
    labels: tuple[int, ...] | None = None

    @classmethod
    def from_dict(cls, d, where: str = "prompt") -> "ObjectPrompt":
        if isinstance(d, ObjectPrompt):
            return d
        if not isinstance(d, dict):
            raise ValueError(f"{where} must be an object like {{\"box\": [...]}}, got {d!r}. {_PROMPT_HELP}")
        unknown = sorted(set(d) - {"box", "points", "labels"})
        if unknown:
            raise ValueError(
                f"{where} has unknown key(s) {unknown}; allowed keys are \"box\", \"points\", \"labels\". {_PROMPT_HELP}"
            )
        box = d.get("box")
        points = d.get("points")
        labels = d.get("labels")
        if box is None and points is None:
            raise ValueError(f"{where} needs a \"box\" and/or \"points\". {_PROMPT_HELP}")
        if box is not None:
            box = _numbers(box, f"{where}.box")
            if len(box) != 4:
                raise ValueError(f"{where}.box must be [x0, y0, x1, y1] (4 numbers), got {d['box']!r}. {_PROMPT_HELP}")
            if not (box[2] > box[0] and box[3] > box[1]):
                raise ValueError(
                    f"{where}.box {d['box']!r} must have x1 > x0 and y1 > y0 ([x0, y0, x1, y1], top-left then bottom-right)."
                )
            box = tuple(box)
        if points is not None:
            if not isinstance(points, (list, tuple)) or not points:
                raise ValueError(f"{where}.points must be a non-empty list of [x, y], got {points!r}. {_PROMPT_HELP}")
            pts = []
            for i, p in enumerate(points):
                xy = _numbers(p, f"{where}.points[{i}]")
                if len(xy) != 2:
                    raise ValueError(f"{where}.points[{i}] must be [x, y], got {p!r}. {_PROMPT_HELP}")
                pts.append(tuple(xy))
            points = tuple(pts)
            if labels is None:
                labels = [1] * len(points)
            if not isinstance(labels, (list, tuple)) or len(labels) != len(points):
                raise ValueError(
                    f"{where}.labels must be a list with one 1/0 per point ({len(points)} points), got {labels!r}. {_PROMPT_HELP}"
                )
            for i, lab in enumerate(labels):
                if isinstance(lab, bool) or lab not in (0, 1):
                    raise ValueError(
                        f"{where}.labels[{i}] = {lab!r}; labels are 1 (positive, on the object) or 0 (negative). {_PROMPT_HELP}"
                    )
            labels = tuple(int(lab) for lab in labels)
        elif labels is not None:
            raise ValueError(f"{where} has \"labels\" but no \"points\"; labels go with points. {_PROMPT_HELP}")
        return cls(box=box, points=points, labels=labels)


def _numbers(v, where: str) -> list[float]:
    if not isinstance(v, (list, tuple)) or not all(is_finite_number(x) for x in v):
        raise ValueError(f"{where} must be a list of numbers, got {v!r}. {_PROMPT_HELP}")
    return [float(x) for x in v]


def parse_prompts(text: str) -> list[ObjectPrompt]:
    """Parse object prompts from JSON text.

    Accepts a list of objects (one per tracked object), a single object, or
    ``{"objects": [...]}``. Each object has ``"box": [x0, y0, x1, y1]`` and/or
    ``"points": [[x, y], ...]`` with ``"labels": [1/0, ...]`` (default all 1).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"prompts text is empty. {_PROMPT_HELP}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"prompts are not valid JSON ({e.msg} at line {e.lineno} column {e.colno}). {_PROMPT_HELP}") from e
    except RecursionError:  # brackets nested thousands deep: json gives up
        raise ValueError(f"prompts nest too deeply to be object prompts (brackets inside brackets). {_PROMPT_HELP}") \
            from None
    if isinstance(data, dict) and "objects" in data:
        if set(data) != {"objects"}:
            raise ValueError(f"with \"objects\", no other top-level keys are allowed, got {sorted(data)}. {_PROMPT_HELP}")
        data = data["objects"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data:
        raise ValueError(f"prompts must be a non-empty JSON list of objects, got {text.strip()[:80]!r}. {_PROMPT_HELP}")
    return [ObjectPrompt.from_dict(d, f"object {i}") for i, d in enumerate(data)]


# --------------------------------------------------------------------------- segmentation


def _frames_to_uint8_hwc(frames, layout: str | None) -> np.ndarray:
    if isinstance(frames, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(frames))
    elif isinstance(frames, torch.Tensor):
        x = frames.detach().cpu()
    else:
        raise TypeError(f"frames must be a torch.Tensor or numpy array, got {type(frames).__name__}.")
    if x.dim() != 4:
        raise ValueError(
            f"frames must be a video of rank 4 ([F, H, W, 3] uint8 or [F, 3, H, W] float), got shape {tuple(x.shape)}."
        )
    if layout is None:  # default: FHWC for uint8, FCHW for float
        layout = "FHWC" if x.dtype == torch.uint8 else "FCHW"
    if layout == "auto":
        raise ValueError(f"layout must be 'FCHW', 'FHWC' or None, got {layout!r}.")
    if frame_layout(x.shape, layout) == "FCHW":
        x = x.permute(0, 2, 3, 1)
    if x.dtype == torch.uint8:
        return np.ascontiguousarray(x.numpy())
    if not x.is_floating_point():
        raise TypeError(f"frames must be uint8 or float in [0, 1], got dtype {x.dtype}.")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"float frames must be in [0, 1], got [{lo:.4g}, {hi:.4g}]; for [-1, 1] use (x + 1) / 2.")
    return np.ascontiguousarray((x.float() * 255.0).round().to(torch.uint8).numpy())


def _check_in_frame(p: ObjectPrompt, i: int, width: int, height: int) -> None:
    coords = []
    if p.box is not None:
        coords += [("box", p.box[0], p.box[1]), ("box", p.box[2], p.box[3])]
    if p.points is not None:
        coords += [("points", x, y) for x, y in p.points]
    for what, x, y in coords:
        if not (0 <= x <= width and 0 <= y <= height):
            raise ValueError(
                f"object {i}: {what} coordinate ({x:g}, {y:g}) is outside the {width}x{height} (WxH) frames; "
                "prompts are in pixels of the frames given to segment_video (x to the right, y down)."
            )


def segment_video(
    predictor,
    frames,
    prompts: Sequence[ObjectPrompt | dict] | str,
    prompt_frame: int = 0,
    *,
    layout: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    tmp_dir: str | os.PathLike | None = None,
    offload_video_to_cpu: bool = False,
) -> torch.Tensor:
    """Track prompted objects through a clip with SAM2; returns masks ``[O, F, H, W]`` bool (CPU).

    ``frames``: ``[F, H, W, 3]`` uint8 or ``[F, 3, H, W]`` float in ``[0, 1]`` (``layout``
    ``"FHWC"``/``"FCHW"`` overrides that default, e.g. ``"FHWC"`` for a ComfyUI IMAGE).
    ``prompts``: one entry per object (:class:`ObjectPrompt`, a dict, or JSON text for
    :func:`parse_prompts`), all placed on frame ``prompt_frame``; object ``i`` of the
    output is prompt ``i``. Masks propagate forward from ``prompt_frame`` and, if it is
    not 0, backward to the first frame. ``progress(done, total)`` is called after each
    tracked frame. The frames are written as JPEGs to a temporary folder (SAM2's
    ``init_state`` reads only files), created in ``tmp_dir`` and removed once loaded.
    """
    if isinstance(prompts, str):
        prompts = parse_prompts(prompts)
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError(f"prompts must be a non-empty list, one entry per object. {_PROMPT_HELP}")
    objs = [ObjectPrompt.from_dict(p, f"object {i}") for i, p in enumerate(prompts)]
    video = _frames_to_uint8_hwc(frames, layout)
    num_frames, height, width = video.shape[:3]
    if num_frames == 0:
        raise ValueError("frames is empty: give at least one frame.")
    if isinstance(prompt_frame, bool) or not isinstance(prompt_frame, (int, np.integer)) or not 0 <= prompt_frame < num_frames:
        raise ValueError(f"prompt_frame must be a frame index in [0, {num_frames - 1}], got {prompt_frame!r}.")
    for i, p in enumerate(objs):
        _check_in_frame(p, i, width, height)

    with tempfile.TemporaryDirectory(prefix="interdyn_sam2_", dir=None if tmp_dir is None else str(tmp_dir)) as folder:
        for i, frame in enumerate(video):
            Image.fromarray(frame).save(os.path.join(folder, f"{i}.jpg"), quality=95, subsampling=0)
        state = predictor.init_state(video_path=folder, offload_video_to_cpu=offload_video_to_cpu)

    obj_ids = list(range(1, len(objs) + 1))
    for obj_id, p in zip(obj_ids, objs):
        predictor.add_new_points_or_box(
            state,
            frame_idx=int(prompt_frame),
            obj_id=obj_id,
            points=None if p.points is None else np.asarray(p.points, dtype=np.float32),
            labels=None if p.labels is None else np.asarray(p.labels, dtype=np.int32),
            box=None if p.box is None else np.asarray(p.box, dtype=np.float32),
        )

    masks = torch.zeros(len(objs), num_frames, height, width, dtype=torch.bool)
    total = (num_frames - prompt_frame) + (prompt_frame + 1 if prompt_frame > 0 else 0)
    done = 0
    directions = [False] + ([True] if prompt_frame > 0 else [])
    for reverse in directions:
        for frame_idx, ids, logits in predictor.propagate_in_video(
            state, start_frame_idx=int(prompt_frame), reverse=reverse
        ):
            out = (logits[:, 0] > 0.0).cpu()
            for k, obj_id in enumerate(ids):
                masks[obj_ids.index(obj_id), frame_idx] = out[k]
            done += 1
            if progress is not None:
                progress(done, total)
    predictor.reset_state(state)
    return masks
