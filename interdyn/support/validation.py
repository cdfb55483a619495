"""Argument checks that run before any model is loaded or any step runs.

Each check takes the caller's own name for the value (``--frames`` on the command line,
``num_frames`` in Python, a widget name in a node) and raises :class:`InputError` with a message
that uses it. Pure Python and torch; no ComfyUI.
"""
from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import torch

from .safe_output import special_file_kind

__all__ = ["InputError", "FRAME_LAYOUTS", "frame_layout", "check_count", "check_frame_size", "is_finite_number",
           "check_finite", "check_range", "check_guidance", "check_image_tensor",
           "check_seed", "SEED_BITS_NUMPY", "SAMPLING_BOUNDS", "check_sampling_bounds", "memory_budget",
           "check_video_size", "check_device", "check_input_path"]

#: environment variable that sets the memory budget (GB) for requested sizes; default: 80 % of this machine's RAM
BUDGET_ENV = "INTERDYN_MEMORY_BUDGET_GB"


class InputError(ValueError):
    """An argument is outside what the function accepts; the message names the argument."""


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_count(value, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer ``>= minimum`` (frames, steps, scenes, chunk sizes), and ``<= maximum`` when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if _is_number(value) and math.isfinite(float(value)) and float(value).is_integer():
            value = int(value)
        else:
            raise InputError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    if value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be at most {maximum}, got {value}")
    return int(value)


def check_frame_size(height, width, *, multiple_of: int | None = 64, names: tuple[str, str] = ("height", "width"),
                     width_first: bool = False, why: str | None = None) -> tuple[int | None, int | None]:
    """Whole numbers ``>= multiple_of``, each a multiple of it (SVD's VAE downsamples by 8 and its UNet by 8 more:
    64 for a video; the control CNN alone needs 8); ``None`` skips that side. The message names the caller's
    ``names`` and suggests the nearest size that works, written ``width x height`` when ``width_first`` (the order
    of ComfyUI's widgets); ``why`` replaces the reason given for ``multiple_of``."""
    step = multiple_of if multiple_of and multiple_of > 1 else 1
    # 0, negatives and non-numbers: "at least <step>"; 1..step-1 fail the multiple check below, with a suggestion
    sides = [(name, None if value is None else
              check_count(value, name, minimum=1 if _is_number(value) and value >= 1 else step))
             for name, value in zip(names, (height, width))]
    bad = [name for name, value in sides if value is not None and value % step]
    if bad:
        up = lambda v: -(-v // step) * step  # noqa: E731
        shown = [side for side in (sides[::-1] if width_first else sides) if side[1] is not None]
        got = " x ".join(name for name, _ in shown) + " is " + "x".join(str(v) for _, v in shown)
        use = "x".join(str(up(v)) for _, v in shown)
        why = why or ("SVD's VAE downsamples by 8 and its UNet by 8 more" if step == 64 else
                      "the VAE and the control CNN downsample by 8; a video for SVD needs multiples of 64" if step == 8
                      else f"the model downsamples by {step}")
        raise InputError(f"{' and '.join(bad)} must be {'a multiple' if len(bad) == 1 else 'multiples'} of {step} "
                         f"({why}): {got}; use e.g. {use} (the paper uses {'384x256' if width_first else '256x384'})")
    return sides[0][1], sides[1][1]


#: the two layouts of a video tensor: frames first, then channels first ([F, C, H, W]) or last ([F, H, W, C])
FRAME_LAYOUTS = ("FCHW", "FHWC")


def frame_layout(shape, layout: str, *, name: str = "frames", channels: tuple[int, ...] = (3,)) -> str:
    """Which layout a rank-4 video ``shape`` has: ``"FCHW"`` or ``"FHWC"`` (:data:`FRAME_LAYOUTS`).

    An explicit ``layout`` is checked (a channel axis of a size in ``channels`` where it says; otherwise the
    message names the other layout when that one fits, or how to fix alpha and grey); ``"auto"`` infers it and
    refuses a shape that fits both layouts or neither. Every reader of frames (video writer, renders as
    control, segmentation) resolves its layout here, so they accept and refuse the same shapes."""
    if layout not in ("auto", *FRAME_LAYOUTS):
        raise InputError(f"layout must be one of {('auto', *FRAME_LAYOUTS)}, got {layout!r}.")
    shape = tuple(shape)
    if len(shape) != 4:
        raise InputError(f"{name} must be rank 4 ([F, 3, H, W] or [F, H, W, 3]), got shape {shape}; add a frame "
                         "dimension for a single image.")
    fits = {"FCHW": shape[1] in channels, "FHWC": shape[3] in channels}
    wanted = " or ".join(str(c) for c in channels)
    if layout == "auto":
        if all(fits.values()):
            raise InputError(f"{name} of shape {shape} are ambiguous ([F, H, W, C] or [F, C, H, W]); pass "
                             "layout='FHWC' or layout='FCHW'.")
        if not any(fits.values()):
            raise InputError(f"{name} of shape {shape} have no channel axis of size {wanted} in position 1 or 3; "
                             "expected [F, H, W, 3] or [F, 3, H, W] (RGBA is not supported).")
        return "FCHW" if fits["FCHW"] else "FHWC"
    if not fits[layout]:
        other = "FHWC" if layout == "FCHW" else "FCHW"
        hint = (f" It looks like layout={other!r}; pass that." if fits[other] else
                " Drop an alpha channel with x[..., :3] or repeat a grey channel 3 times.")
        raise InputError(f"{name} with layout={layout!r} must have {wanted} channels in dim "
                         f"{1 if layout == 'FCHW' else 3}, got shape {shape}.{hint}")
    return layout


def is_finite_number(value) -> bool:
    """A real number (not a bool) that is finite: not NaN, not infinite, and not an integer beyond any float (JSON's
    1 followed by 400 zeros, where ``math.isfinite`` raises ``OverflowError``). For parsers that phrase their own
    message; :func:`check_finite` raises one."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_finite(value, name: str) -> float:
    """A finite real number (not NaN, not infinite)."""
    if not _is_number(value):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise InputError(f"{name} must be a finite number, got {value}") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value}")
    return number


def check_range(value, name: str, low: float | None = None, high: float | None = None) -> float:
    """A finite number within ``[low, high]`` (either bound may be None)."""
    value = check_finite(value, name)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if low is not None and high is not None else \
            (f">= {low}" if low is not None else f"<= {high}")
        raise InputError(f"{name} must be {bounds}, got {value}")
    return value


def check_guidance(value, name: str) -> float:
    """A classifier-free guidance scale: finite and >= 1 (1 is "off": one conditional pass)."""
    value = check_finite(value, name)
    if value < 1:
        raise InputError(f"{name} must be >= 1 (1 turns classifier-free guidance off), got {value}")
    return value


#: seeds that reach ``numpy.random.seed`` (accelerate's ``set_seed``, the training run's ``seed``) hold 32 bits
SEED_BITS_NUMPY = 32


def check_seed(value, name: str, bits: int = 64, span: int = 1) -> int:
    """A seed in ``[0, 2**bits)``: 64 bits for torch generators (ComfyUI seed widgets go up to 2**64 - 1), 32 where
    numpy's global seed takes it (:data:`SEED_BITS_NUMPY`). ``span``: the command derives ``seed + i`` for ``i <
    span`` (one scene per seed), which must stay in range too."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    top = 2**bits - 1
    if not 0 <= value <= top:
        raise InputError(f"{name} must be between 0 and {top} (2**{bits} - 1), got {value}")
    if span > 1 and value + span - 1 > top:
        raise InputError(f"{name} {value}: the {span} seeds from it (one per item) must stay at most {top} "
                         f"(2**{bits} - 1); give a seed of at most {top - span + 1}")
    return int(value)


#: upper bounds of sampling values past which they stop meaning anything (a step count that never ends, an fps the
#: video encoder overflows on, conditioning ids beyond half precision); the nodes' widgets stay well below them
SAMPLING_BOUNDS = {"num_steps": 10_000, "fps": 1_000, "motion_bucket_id": 10_000, "noise_aug_strength": 100,
                   "min_guidance": 100, "max_guidance": 100}


def check_sampling_bounds(*, names: dict | None = None, **values) -> None:
    """Each of ``values`` (keys of :data:`SAMPLING_BOUNDS`, the sampler's names) at most its bound; ``names`` maps
    them to the caller's (``--steps``). Non-numbers and non-finite values are left to the sampler's own check."""
    for key, value in values.items():
        high = SAMPLING_BOUNDS[key]
        if _is_number(value) and (isinstance(value, numbers.Integral) or math.isfinite(value)) and value > high:
            raise InputError(f"{(names or {}).get(key, key)} must be at most {high}, got {value}")


def check_image_tensor(x, name: str, *, what: str = "frames in [0, 1]") -> None:
    """A floating-point tensor of finite values in [0, 1] (the project's image convention).

    Refuses integer tensors (``uint8`` 0..255 images) and float tensors whose values look like
    0..255, with a message that says how to convert them.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} must be a torch.Tensor of {what}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputError(f"{name} has dtype {x.dtype}: it must be floating point {what} (divide 0..255 images by 255, "
                         f"e.g. {name}.float() / 255)")
    if x.numel() == 0:
        raise InputError(f"{name} is empty (shape {tuple(x.shape)})")
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise InputError(f"{name} holds {bad} NaN or infinite values; it must be finite {what}")
    lo, hi = float(x.min()), float(x.max())
    if hi > 1.0 + 1e-3 or lo < -1e-3:
        hint = " (it looks like 0..255: divide by 255)" if hi > 2 else ""
        raise InputError(f"{name} values range from {lo:.4g} to {hi:.4g}; expected {what}{hint}")


def check_device(value, name: str = "device") -> torch.device:
    """A torch device this machine has: ``cpu``, or ``cuda[:N]`` / ``mps`` when torch sees one."""
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as err:
        raise InputError(f"{name} {value!r} is not a torch device (cpu, cuda, cuda:1, mps): {err}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{name} {value}: torch sees no CUDA GPU on this machine; use {name} cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"{name} {value}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError(f"{name} {value}: torch sees no Apple GPU (mps) on this machine; use {name} cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"{name} {value}: only cpu, cuda and mps devices are supported")
    return device


def memory_budget() -> float:
    """Bytes a single request may ask for: ``$INTERDYN_MEMORY_BUDGET_GB`` if set, else 80 % of the machine's RAM."""
    text = os.environ.get(BUDGET_ENV)
    if text:
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"{BUDGET_ENV} must be a number of gigabytes, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise InputError(f"{BUDGET_ENV} must be a positive number of gigabytes, got {text!r}")
        return value * 1e9
    try:
        return 0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: no bound we can know
        return float("inf")


def check_video_size(frames: int, height: int, width: int, *, names: tuple[str, str, str] = ("frames", "height",
                     "width"), channels: int = 3, copies: int = 4, what: str = "the video",
                     label: str | None = None) -> None:
    """Refuse a requested size whose frames alone (``copies`` float32 copies of ``frames x channels x height x
    width``: the video, its resized/decoded/compared versions) exceed :func:`memory_budget`, before anything is
    allocated. The message names the caller's arguments and the budget."""
    try:
        needed = float(frames) * channels * float(height) * float(width) * 4 * copies
    except OverflowError:  # whole numbers beyond any float
        needed = math.inf
    budget = memory_budget()
    if needed > budget:
        f, h, w = names
        label = label or f"{f} {frames} x {h} {height} x {w} {width}"
        amount = f"about {needed / 1e9:.1f} GB" if math.isfinite(needed) else "more memory than any machine has"
        raise InputError(f"{label} needs {amount} for {what} alone, "
                         f"more than the memory budget of {budget / 1e9:.1f} GB (80 % of this machine's memory; set "
                         f"{BUDGET_ENV} to change it)")


def check_input_path(path, name: str, *, what: str = "a regular file or folder", contents: bool = False) -> Path:
    """An input that exists must be a regular file or a folder (links followed): a named pipe (FIFO), a device or a
    socket is refused before anything opens it (a FIFO with no writer blocks its reader forever). ``name`` is the
    caller's flag or key. A missing path is left to the caller's own message. Returns the path.

    ``contents=True``: a folder's files are checked too, at every depth (links followed, each folder once), for the
    folders whose files a loader or reader opens by name (an SVD folder whose ``unet/diffusion_pytorch_model.
    safetensors`` is a FIFO, a dataset's clip videos); the message names the file and ``name``."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return path
    kind = special_file_kind(mode)
    if kind:
        raise InputError(f"{name} {path} is {kind}, not {what}; nothing was read (give a file or folder)")
    if not contents or not os.path.isdir(path):
        return path
    folders, seen = [path], set()
    while folders:
        folder = folders.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in seen:  # a link back up the tree: each folder once
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # an unreadable folder: the reader names it
        for entry in entries:
            try:
                if entry.is_dir():  # no stat call for plain entries (the type comes with the listing)
                    folders.append(Path(entry.path))
                    continue
                if entry.is_file():
                    continue
                kind = special_file_kind(os.stat(entry.path).st_mode)
            except OSError:
                continue  # a broken link opens nothing
            if kind:
                inside = os.path.relpath(entry.path, path)
                raise InputError(f"{name} {path}: its file {inside} is {kind}, not a regular file; nothing was read "
                                 "(replace it with the real file)")
    return path
