"""Reading and writing videos (PyAV) and folders of numbered image frames.

The project's one place that touches video files. Frames in memory are ``uint8``
``[F, H, W, 3]`` RGB numpy arrays when read; :func:`write_video` also takes float frames
in ``[0, 1]``, bool masks, torch tensors and the ``[F, 3, H, W]`` layout.

Formats, chosen by the path's extension:

============  =====================================  ==========================================
path          lossy (default)                        ``lossless=True``
============  =====================================  ==========================================
``.mp4``      H.264 (libx264, yuv420p, ``crf``)      H.264 RGB (libx264rgb, qp 0): exact
``.mov``      as ``.mp4``                            as ``.mp4``
``.webm``     VP9 (libvpx-vp9, yuv420p, ``crf``)     VP9 lossless in RGB (gbrp): exact
``.mkv``      H.264 (libx264, yuv420p, ``crf``)      FFV1 (bgr0): exact
``.gif``      Pillow, palette per frame              exact if the clip has <= 256 colours
no suffix     folder of ``00000.png`` ... + ``fps.txt`` (PNG is always exact)
============  =====================================  ==========================================

Lossy H.264 in yuv420p needs even sizes: odd frames are padded by repeating the last
row/column, the true size is stored in the container's ``comment`` tag
(``interdyn-size=WxH``) and :func:`read_video` crops it off again. Other players show the
one-pixel padding. Use the lossless options for masks: masks survive them bit-exactly
(``libx264rgb`` files play in ffmpeg-based tools, not in every browser).

Writes are atomic: the file (or folder) is written under a temporary name in the
destination folder and moved into place with :func:`os.replace`; on any error the
temporary is removed and nothing appears at ``path``. A frame folder replaces only a folder
interdyn wrote (it holds a ``.interdyn-output`` marker, :mod:`interdyn.support.safe_output`) or an empty
one: any other existing folder is an error and is left untouched.

GIF stores frame durations in 1/100 s; the exact fps is kept in the GIF comment and read
back from it (other GIF writers' files give ``100 / duration_cs``).
"""
from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageSequence

from ..support.safe_output import OutputError, atomic_file, atomic_folder, special_file_kind
from ..support.validation import frame_layout

__all__ = [
    "VideoReadError",
    "write_video",
    "read_video",
    "read_video_frames",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
]

#: Extensions :func:`write_video` and :func:`read_video` handle as video files.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".mkv", ".gif")
#: Extensions of image files :func:`read_video` picks up in a frame folder.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

_FPS_FILE = "fps.txt"
#: every name a frame folder of ours holds (besides the marker): numbered PNG frames and the frame rate; a folder
#: holding anything else is never replaced by a frame folder
FRAME_FOLDER_CONTENTS = r"\d{5,}\.png|fps\.txt"
_SIZE_TAG = "interdyn-size="
_FPS_TAG = "interdyn-fps="
_LAYOUTS = ("auto", "FHWC", "FCHW")


class VideoReadError(ValueError):
    """A file exists but is not a video (or image folder) this module can decode."""


# --------------------------------------------------------------------------- frames in


def _to_numpy(frames) -> np.ndarray:
    if hasattr(frames, "detach") and hasattr(frames, "cpu"):  # torch.Tensor, without importing torch
        t = frames.detach().cpu()
        if t.is_floating_point() and str(t.dtype) not in ("torch.float32", "torch.float64"):
            t = t.float()  # bf16 / fp16 -> float32 (bf16 has no numpy dtype)
        return t.numpy()
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ValueError("frames is an empty list; give at least one frame.")
        return np.stack([_to_numpy(f) for f in frames])
    return np.asarray(frames)


def _as_uint8_fhwc(frames, layout: str = "auto") -> np.ndarray:
    """Frames in any accepted form -> contiguous uint8 ``[F, H, W, 3]``.

    Accepted: ``[F, H, W, 3]`` / ``[F, 3, H, W]`` (also with 1 channel, repeated to 3) and
    ``[F, H, W]`` grey (e.g. masks); dtypes bool (-> 0/255), uint8, other integers within
    0..255, float in [0, 1] (clipped, then rounded).
    """
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}.")
    a = _to_numpy(frames)
    if a.ndim == 3:  # [F, H, W] grey
        a = a[..., None]
        layout = "FHWC"
    if a.ndim != 4:
        raise ValueError(
            f"frames must be [F, H, W, 3], [F, 3, H, W] or grey [F, H, W]; got shape {a.shape}."
        )
    if frame_layout(a.shape, layout, channels=(1, 3)) == "FCHW":
        a = a.transpose(0, 2, 3, 1)
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        raise ValueError(f"frames must be non-empty, got shape [F, H, W, C] = {a.shape}.")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint8:
        pass
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("frames contain NaN or infinite values; float frames must be in [0, 1].")
        lo, hi = float(a.min()), float(a.max())
        if lo < -1e-3 or hi > 1.0 + 1e-3:  # beyond rounding: 0..255 floats (or [-1, 1]) would be clipped to a white video
            raise ValueError(f"float frames must be in [0, 1], got values in [{lo:g}, {hi:g}]"
                             + (" (0..255 values? divide by 255)" if hi > 2 else "") + ".")
        a = np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise ValueError(f"integer frames must be in 0..255, got values in [{lo}, {hi}].")
        a = a.astype(np.uint8)
    else:
        raise TypeError(f"frames have unsupported dtype {a.dtype}; use uint8, bool or float in [0, 1].")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a)


def _fps_fraction(fps) -> Fraction:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise ValueError(f"fps must be a positive number, got {fps!r}.") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"fps must be a positive finite number, got {fps!r}.")
    if isinstance(fps, Fraction):
        return fps
    return Fraction(value).limit_denominator(10000)  # 30000/1001 and 29.97 both come out exact


# --------------------------------------------------------------------------- writing


def _encode_av(tmp: Path, fmt: str, frames: np.ndarray, rate: Fraction, codec: str,
               pix_fmt: str, options: dict, metadata: dict) -> None:
    import av  # on use: PyAV takes a quarter second to import, and ComfyUI imports this module at start

    f, h, w, _ = frames.shape
    with av.open(str(tmp), mode="w", format=fmt) as container:
        container.metadata.update(metadata)
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = w, h
        stream.pix_fmt = pix_fmt
        stream.options = options
        stream.codec_context.time_base = 1 / rate
        for i in range(f):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts = i
            frame.time_base = 1 / rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_gif(tmp: Path, frames: np.ndarray, fps: Fraction, lossless: bool) -> None:
    flat = frames.reshape(-1, 3)
    colours, inverse = np.unique(flat, axis=0, return_inverse=True)
    if len(colours) <= 256:  # one exact global palette
        palette = np.zeros((256, 3), np.uint8)
        palette[: len(colours)] = colours
        index = inverse.reshape(frames.shape[:3]).astype(np.uint8)
        images = []
        for i in range(frames.shape[0]):
            im = Image.fromarray(index[i], mode="P")
            im.putpalette(palette.tobytes())
            images.append(im)
    elif lossless:
        raise ValueError(
            f"a lossless GIF holds at most 256 colours, these frames have {len(colours)}; "
            "use .mp4/.webm/.mkv with lossless=True or a PNG folder instead."
        )
    else:
        images = [Image.fromarray(fr).quantize(256, dither=Image.Dither.NONE) for fr in frames]
    images[0].save(
        str(tmp), format="GIF", save_all=True, append_images=images[1:], loop=0,
        duration=max(int(round(1000 / float(fps))), 10), optimize=False, disposal=1,
        comment=f"{_FPS_TAG}{fps.numerator}/{fps.denominator}".encode(),
    )


def _write_png_folder(tmp: Path, frames: np.ndarray, fps: Fraction) -> None:
    digits = max(5, len(str(frames.shape[0] - 1)))
    for i, fr in enumerate(frames):
        Image.fromarray(fr).save(tmp / f"{i:0{digits}d}.png", compress_level=1)
    (tmp / _FPS_FILE).write_text(f"{fps.numerator}/{fps.denominator}\n")


def write_video(path, frames, fps, *, crf: int = 18, lossless: bool = False,
                layout: str = "auto") -> Path:
    """Write ``frames`` to ``path`` atomically and return the path.

    ``frames``: ``[F, H, W, 3]`` or ``[F, 3, H, W]`` (numpy or torch; ``layout="auto"``
    tells them apart by which axis has size 3 and refuses ambiguous shapes such as
    ``[F, 3, H, 3]`` — pass ``layout="FHWC"``/``"FCHW"`` then), or grey ``[F, H, W]``;
    uint8, bool (white on black) or float in [0, 1].

    The container and codec follow the extension (see the module docstring); a path
    without extension becomes a folder of PNG frames plus ``fps.txt``. ``crf`` is the
    quality of lossy H.264/VP9 (lower is better; 18 is visually lossless). ``lossless``
    selects the exact codecs, for masks. Missing parent folders are created.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext and ext not in VIDEO_EXTENSIONS:
        raise ValueError(
            f"cannot write {str(path)!r}: unsupported extension {ext!r}; use one of "
            f"{', '.join(VIDEO_EXTENSIONS)} or no extension for a folder of PNG frames."
        )
    data = _as_uint8_fhwc(frames, layout)  # validate everything before touching the disk
    rate = _fps_fraction(fps)
    crf = int(crf)
    if path.exists() and path.is_dir() != (ext == ""):
        kind = "folder" if path.is_dir() else "file"
        raise OutputError(f"cannot write {str(path)!r}: a {kind} of that name is in the way (nothing was changed).")
    if ext == "":  # a frame folder replaces only a folder we wrote (or an empty one)
        with atomic_folder(path, what="frame folder", kind="frames", contents=FRAME_FOLDER_CONTENTS) as tmp:
            _write_png_folder(tmp, data, rate)
        return path
    with atomic_file(path, keep_suffix=True) as tmp:  # the encoders see the extension; an old video stays whole
        if ext == ".gif":
            _write_gif(tmp, data, rate, lossless)
        else:
            fmt = {".mp4": "mp4", ".mov": "mov", ".webm": "webm", ".mkv": "matroska"}[ext]
            h, w = data.shape[1:3]
            metadata = {}
            if lossless and ext == ".webm":
                codec, pix_fmt, options = "libvpx-vp9", "gbrp", {"lossless": "1", "row-mt": "1"}
            elif lossless and ext == ".mkv":
                codec, pix_fmt, options = "ffv1", "bgr0", {}
            elif lossless:
                codec, pix_fmt, options = "libx264rgb", "rgb24", {"qp": "0", "preset": "medium"}
            elif ext == ".webm":
                codec, pix_fmt = "libvpx-vp9", "yuv420p"
                options = {"crf": str(crf), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
            else:
                codec, pix_fmt, options = "libx264", "yuv420p", {"crf": str(crf), "preset": "medium"}
                if h % 2 or w % 2:  # 4:2:0 H.264 needs even sizes: repeat the edge, note the size
                    data = np.pad(data, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                    metadata["comment"] = f"{_SIZE_TAG}{w}x{h}"
            _encode_av(tmp, fmt, data, rate, codec, pix_fmt, options, metadata)
    return path


# --------------------------------------------------------------------------- reading


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"video not found: {str(path)!r} does not exist.")
    kind = special_file_kind(path.stat().st_mode)
    if kind:  # a FIFO with no writer would block the reader forever
        raise VideoReadError(f"cannot read {str(path)!r} as a video: it is {kind}, not a regular file or folder.")


def _numbered_frames(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise VideoReadError(
            f"cannot read {str(folder)!r} as a video: the folder holds no image frames "
            f"({', '.join(IMAGE_EXTENSIONS)})."
        )
    keyed = []
    for p in files:
        numbers = re.findall(r"\d+", p.stem)
        if not numbers:
            raise VideoReadError(
                f"cannot read {str(folder)!r} as a video: frame {p.name!r} has no frame number "
                "in its name (expected names like 00000.png or frame_12.jpg)."
            )
        keyed.append((int(numbers[-1]), p.name, p))
    keyed.sort()
    return [p for _, _, p in keyed]


def image_to_rgb(im) -> np.ndarray:
    """uint8 ``[H, W, 3]`` RGB of a PIL image at its real bit depth: 16-bit and 32-bit integer greys (PIL modes
    ``I;16*``, ``I``) are scaled from 0..65535, float greys (``F``) from 0..1, palette and alpha images through
    PIL's own conversion. A plain ``convert("RGB")`` clips 16-bit values at 255: a white frame."""
    if im.mode.startswith("I;16") or im.mode == "I":
        grey = np.asarray(im, dtype=np.float64) / 65535.0
    elif im.mode == "F":
        grey = np.asarray(im, dtype=np.float64)
    else:
        return np.asarray(im.convert("RGB"))
    grey = np.rint(np.clip(grey, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def _load_image(p: Path) -> np.ndarray:
    try:
        with Image.open(p) as im:
            return image_to_rgb(im)
    except Exception as e:  # PIL raises several types for broken files
        raise VideoReadError(f"cannot read frame {str(p)!r}: not a readable image ({e}).") from e


def _folder_fps(folder: Path, fps) -> float:
    f = folder / _FPS_FILE
    if f.is_file():
        text = f.read_text().strip()
        try:
            return float(Fraction(text))
        except (ValueError, ZeroDivisionError):
            raise VideoReadError(f"cannot read the frame rate in {str(f)!r}: {text!r} is not a number.") from None
    if fps is None:
        raise VideoReadError(
            f"the frame folder {str(folder)!r} has no {_FPS_FILE}; pass fps= to read_video "
            "(or use read_video_frames, which needs no frame rate)."
        )
    return float(fps)


def _open_av(path: Path):
    import av  # on use: PyAV takes a quarter second to import, and ComfyUI imports this module at start

    try:
        container = av.open(str(path))
    except Exception as e:
        raise VideoReadError(f"cannot read {str(path)!r}: not a video file PyAV/FFmpeg can open ({e}).") from e
    if not container.streams.video:
        container.close()
        raise VideoReadError(f"cannot read {str(path)!r}: the file has no video stream.")
    return container


def _size_from_comment(container) -> tuple[int, int] | None:
    for key, value in container.metadata.items():
        if key.lower() == "comment" and value.startswith(_SIZE_TAG):
            w, h = value[len(_SIZE_TAG):].split("x")
            return int(w), int(h)
    return None


def _decode_av(path: Path, wanted: set[int] | None, stop: int | None):
    """Decode frames of ``path``; keep indices in ``wanted`` (all if None), stop after ``stop``."""
    container = _open_av(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        crop = _size_from_comment(container)
        frames: dict[int, np.ndarray] = {}
        count = 0
        for frame in container.decode(stream):
            if wanted is None or count in wanted:
                a = frame.to_ndarray(format="rgb24")
                if crop is not None:
                    a = a[: crop[1], : crop[0]]
                frames[count] = a
            count += 1
            if stop is not None and count > stop:
                break
    except VideoReadError:
        raise
    except Exception as e:
        raise VideoReadError(f"cannot read {str(path)!r}: decoding failed ({e}).") from e
    finally:
        container.close()
    if count == 0:
        raise VideoReadError(f"cannot read {str(path)!r}: the video stream holds no frames.")
    fps = float(rate) if rate else float("nan")
    return frames, count, fps


def _read_gif(path: Path, wanted: set[int] | None):
    try:
        with Image.open(path) as im:
            comment = im.info.get("comment", b"")
            duration = im.info.get("duration", 0)
            frames, count = {}, 0
            for fr in ImageSequence.Iterator(im):
                if wanted is None or count in wanted:
                    frames[count] = np.asarray(fr.convert("RGB"))
                count += 1
    except Exception as e:
        raise VideoReadError(f"cannot read {str(path)!r}: not a readable GIF ({e}).") from e
    if isinstance(comment, bytes):
        comment = comment.decode(errors="ignore")
    if comment.startswith(_FPS_TAG):
        fps = float(Fraction(comment[len(_FPS_TAG):]))
    else:
        fps = 1000.0 / duration if duration else float("nan")
    return frames, count, fps


def _stack(frames: dict[int, np.ndarray], order: Sequence[int], as_tensor: bool):
    out = np.stack([frames[i] for i in order]) if order else np.zeros((0, 0, 0, 3), np.uint8)
    if as_tensor:
        return torch.from_numpy(np.ascontiguousarray(out))
    return out


def read_video(path, *, fps: float | None = None, as_tensor: bool = False):
    """Read all frames of a video file or numbered-frame folder.

    Returns ``(frames, fps)``: ``frames`` is uint8 ``[F, H, W, 3]`` RGB (numpy, or a torch
    tensor with ``as_tensor=True``), ``fps`` a float. A folder's frames are its image files
    sorted by the last number in their names (``2.png`` before ``10.png``); its frame rate
    comes from ``fps.txt`` or else from the ``fps`` argument (an error if neither exists).
    For files ``fps`` is ignored. Raises FileNotFoundError naming a missing path and
    :class:`VideoReadError` for anything that is not a readable video.
    """
    path = Path(path)
    if fps is not None:
        _fps_fraction(fps)  # a positive, finite number (a sign or NaN is never ignored)
    _check_exists(path)
    if path.is_dir():
        files = _numbered_frames(path)
        rate = _folder_fps(path, fps)
        frames = {i: _load_image(p) for i, p in enumerate(files)}
        _check_same_size(frames, path)
        return _stack(frames, range(len(files)), as_tensor), rate
    if path.suffix.lower() == ".gif":
        frames, count, rate = _read_gif(path, None)
    else:
        frames, count, rate = _decode_av(path, None, None)
    return _stack(frames, range(count), as_tensor), rate


def read_video_frames(path, indices: Sequence[int] | None = None, *, as_tensor: bool = False):
    """Read only the frames at ``indices`` (any order, repeats allowed; negative counts from
    the end; ``None`` = all) as uint8 ``[len(indices), H, W, 3]``.

    Videos are decoded from the start up to the largest index (exact, no seeking); folders
    load only the chosen images and need no ``fps.txt``. Out-of-range indices raise
    IndexError giving the frame count.
    """
    path = Path(path)
    _check_exists(path)
    idx = None if indices is None else [int(i) for i in indices]
    if path.is_dir():
        files = _numbered_frames(path)
        order = _resolve(idx, len(files), path)
        frames = {i: _load_image(files[i]) for i in set(order)}
        _check_same_size(frames, path)
        return _stack(frames, order, as_tensor)
    need_count = idx is None or any(i < 0 for i in idx)
    if path.suffix.lower() == ".gif":
        frames, count, _ = _read_gif(path, None if need_count else set(idx))
    else:
        wanted = None if need_count else set(idx)
        frames, count, _ = _decode_av(path, wanted, None if need_count or not idx else max(idx))
    if not need_count and idx and max(idx) >= count:
        _resolve(idx, count, path)  # raises with the frame count
    order = _resolve(idx, count, path)
    return _stack(frames, order, as_tensor)


def _resolve(idx: list[int] | None, count: int, path: Path) -> list[int]:
    if idx is None:
        return list(range(count))
    out = []
    for i in idx:
        j = i + count if i < 0 else i
        if not 0 <= j < count:
            raise IndexError(f"frame index {i} is out of range for {str(path)!r}, which has {count} frames.")
        out.append(j)
    return out


def _check_same_size(frames: dict[int, np.ndarray], path: Path) -> None:
    shapes = {a.shape for a in frames.values()}
    if len(shapes) > 1:
        raise VideoReadError(f"cannot read {str(path)!r} as a video: its frames differ in size ({sorted(shapes)}).")
