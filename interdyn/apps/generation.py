"""Generation of one clip from the command line's arguments, shared by ``interdyn generate`` and its manifest mode.

One place for what a clip needs before and after the sampler: the argument check with the command line's names
(:func:`validate_generate_args`; a manifest row passes its own names, ``row 3, column image``), the input loaders
(:func:`load_image`, :func:`load_control`), the sampler's keyword arguments (:func:`sampling_kwargs`) and the
writing of the result (:func:`generate_clips`: one sampler call for one clip or a batch of rows, each with its own
seed's noise, then one atomic output file per clip). :mod:`interdyn.apps.cli` parses the command line and
:mod:`interdyn.apps.batch` reads manifests; both call this module.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..core.control import fit_to_size, prepare_control
from ..core.sampling import check_sampling_args, generate_video
from ..data.video_io import (FRAME_FOLDER_CONTENTS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, image_to_rgb, read_video,
                             write_video)
from ..support.safe_output import OutputError, check_not_inside, check_output_folder, check_output_path
from ..support.validation import InputError, check_device, check_input_path


def sampling_kwargs(args) -> dict:
    return dict(num_frames=args.frames, num_steps=args.steps, min_guidance=args.min_guidance,
                max_guidance=args.max_guidance, fps=args.fps, motion_bucket_id=args.motion_bucket,
                noise_aug_strength=args.noise_aug, control_strength=args.strength,
                control_start=args.control_start, control_end=args.control_end)


def side_by_side(*videos: torch.Tensor) -> torch.Tensor:
    """Concatenate ``[F, 3, H, W]`` videos horizontally (a single frame is repeated)."""
    frames = max(v.shape[0] for v in videos)
    return torch.cat([v.expand(frames, *v.shape[1:]) if v.shape[0] == 1 else v for v in videos], dim=-1)


def load_image(path: Path, height: int, width: int) -> torch.Tensor:
    try:
        with Image.open(path) as im:
            array = np.array(image_to_rgb(im))
    except Exception as err:  # noqa: BLE001 - PIL raises several types for a bad file
        raise InputError(f"--image {path} is not a readable image ({err})") from None
    image = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    video, _, _ = fit_to_size(video=image[None], height=height, width=width)
    return video


def load_control(path: Path, args) -> torch.Tensor:
    """A control video (white masks or renders), a folder holding ``mask_hand.*``, or a frames folder."""
    path = control_source(path)
    frames, fps = read_video(path, fps=args.fps, as_tensor=True)
    renders = frames.permute(0, 3, 1, 2).float() / 255
    return prepare_control(renders=renders, source_fps=fps, target_fps=args.fps, num_frames=args.frames,
                           height=args.height, width=args.width)


# ---------------------------------------------------------------------------- validation (before any model loads)
#: the command line's names for the sampler's arguments (messages use the caller's names)
CLI_NAMES = {"num_frames": "--frames", "num_steps": "--steps", "min_guidance": "--min-guidance",
             "max_guidance": "--max-guidance", "fps": "--fps", "motion_bucket_id": "--motion-bucket",
             "noise_aug_strength": "--noise-aug", "control_strength": "--strength", "control_start": "--control-start",
             "control_end": "--control-end", "decode_chunk_size": "--decode-chunk", "generator": "--seed",
             "height": "--height", "width": "--width"}


def check_video_out(out: Path, what: str = "--out") -> None:
    """``--out`` (or a manifest row's ``out``, or the ``_comparison`` file beside it): a writable path
    (:func:`interdyn.support.safe_output.check_output_path`: name length, parents, no device or FIFO), a video
    extension or none (a frame folder, which replaces only a frame folder of ours)."""
    ext = out.suffix.lower()
    if ext and ext not in VIDEO_EXTENSIONS:
        raise InputError(f"{what} {out}: unsupported extension {ext!r}; use one of {', '.join(VIDEO_EXTENSIONS)}, or "
                         "no extension for a folder of PNG frames")
    check_output_path(out, what, folder=not ext)
    if not ext:
        check_output_folder(out, what=what, kind="frames", contents=FRAME_FOLDER_CONTENTS)


def check_model_path(value, name: str) -> None:
    """``--svd`` / ``--interdyn``: a builtin name, or a path that is a regular file or folder when it exists (the
    loaders name a missing one)."""
    if value and not str(value).startswith("builtin:"):
        check_input_path(value, name, contents=True)  # every file a loader opens in the folder too


def validate_generate_args(args, names: dict | None = None, comparison: bool = True) -> None:
    """Everything ``interdyn generate`` can check before loading a model, with the command line's names.

    ``names`` overrides the names used in messages (``image``, ``control``, ``out`` and the sampler's arguments,
    e.g. ``"row 3, column image"`` for a manifest row); ``comparison`` checks the ``_comparison`` file's path too.
    """
    names = names or {}
    image_name, control_name, out_name = (names.get(k, f"--{k}") for k in ("image", "control", "out"))
    if getattr(args, "device", None) is not None:
        check_device(args.device, names.get("device", "--device"))
    check_sampling_args(names={**CLI_NAMES, **names}, height=args.height, width=args.width,
                        decode_chunk_size=args.decode_chunk, generator=args.seed, **sampling_kwargs(args))
    for flag in ("svd", "interdyn"):
        check_model_path(getattr(args, flag, None), names.get(flag, f"--{flag}"))
    image = check_input_path(args.image, image_name)
    if image.is_dir():
        raise InputError(f"{image_name} {image} is a folder; give the first frame as one image file (PNG/JPEG)")
    if not image.is_file():
        raise InputError(f"{image_name} {image} does not exist")
    if args.control:
        control = check_input_path(args.control, control_name, contents=True)  # a frames or clip folder's too
        if not control.exists():
            raise InputError(f"{control_name} {control} does not exist")
        check_input_path(control_source(control), control_name, what="a regular video file")
        if control.is_file() and control.suffix.lower() in IMAGE_EXTENSIONS:
            raise InputError(f"{control_name} {control} is a single image; a control is a video of the driving "
                             "motion (a mask or render video, or a folder of numbered frames with fps.txt)")
        if not args.interdyn:
            raise InputError(f"{control_name} needs --interdyn (the control branch weights)")
    out = Path(args.out)
    check_video_out(out, what=out_name)
    inputs = [(image, image_name)] + ([(control_source(Path(args.control)), control_name)] if args.control else [])
    outputs = [(out, out_name)] + ([(comparison_path(out), f"{out_name} (its _comparison file)")] if comparison else [])
    for written, written_name in outputs:  # an output never replaces, nor lands inside, an input of the same call
        for read, read_name in inputs:
            check_not_inside(written, read, what=written_name, protected_what=f"input {read_name}")
    if comparison:
        comparison_file = comparison_path(out)
        check_video_out(comparison_file, what=f"{out_name} (its _comparison file)")
        if comparison_file.exists() and not out.exists():
            # with the output there too, this is a rerun replacing both files of an earlier run; alone, it is not ours
            raise OutputError(f"{out_name} {out}: its comparison file {comparison_file} already exists and {out} does "
                              "not, so it is not from an earlier run of this command; move it away or choose another "
                              f"{out_name} (nothing was changed)")


def control_source(path: Path) -> Path:
    """What ``--control`` reads: the ``mask_hand.*`` video of a clip folder, else the path (a video, or a frames
    folder, which an output may not replace nor land in)."""
    if path.is_dir():
        hands = sorted(p for p in path.glob("mask_hand.*") if p.suffix.lower() in VIDEO_EXTENSIONS)
        if hands:
            return hands[0]
    return path


def comparison_path(out: Path) -> Path:
    """Where ``interdyn generate`` writes ``input | control | output`` beside ``--out``."""
    return out.with_name(out.stem + "_comparison" + out.suffix)




def load_inputs(clips: list) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first frames ``[B, 3, H, W]`` and controls ``[B, F, 3, H, W]`` (``None`` without ``control``) of clips that
    share a size (:func:`generate_clips`), fitted to the first clip's size; read before any model loads."""
    first = clips[0]
    images = torch.cat([load_image(Path(c.image), first.height, first.width) for c in clips])
    controls = torch.stack([load_control(Path(c.control), c) for c in clips]) if first.control else None
    return images, controls


def generate_clips(backbone, branch, clips: list, images: torch.Tensor, controls: torch.Tensor | None, *,
                   callback=None, write: bool = True) -> list[torch.Tensor]:
    """Generate and write clips that share the size, frame count and sampling values: one sampler call (each clip
    keeps its own seed's noise, :func:`interdyn.core.sampling.randn` with one generator per video), then each video
    written to its ``out`` atomically. ``clips``: generate arguments (``argparse.Namespace``: image, control, out,
    seed and the sampling values) checked by :func:`validate_generate_args`; ``images``, ``controls``: their
    :func:`load_inputs`. ``write=False``: only return them (the caller writes them with other files, as one set).
    Returns the videos ``[F, 3, H, W]``."""
    first = clips[0]
    videos = generate_video(backbone, images, controls, branch,
                            generator=[c.seed for c in clips] if len(clips) > 1 else first.seed,
                            decode_chunk_size=first.decode_chunk, callback=callback, **sampling_kwargs(first))
    for clip, video in zip(clips if write else (), videos):
        write_video(Path(clip.out), video, fps=clip.fps)  # atomic: a temporary name, then renamed into place
    return list(videos)
