"""Export a trained control branch from a training checkpoint.

    python -m training.export --checkpoint runs/x/checkpoint-5000 --out interdyn_mine.safetensors [--dtype fp16] [--ema]
    python -m training.export --checkpoint runs/x --out interdyn_mine.safetensors      # newest checkpoint of a run
    python -m training.export --checkpoint runs/x --out interdyn_mine --format official

``--format single`` (default) writes one ``.safetensors`` file in our format
(:func:`interdyn.core.loading.save_control_branch`: config and provenance in the metadata). The
ComfyUI nodes and ``interdyn generate`` load it from ``models/interdyn``.

``--format official`` writes a folder in the official release's layout: ``config.json``
(``_class_name`` ``ControlNetSDVModel``, the official keys including the UNet's
``up_block_types`` and ``out_channels``) and ``diffusion_pytorch_model.safetensors``. Our
training uses the ``standard`` residual mode while the official code always adds residuals its
own way (``official`` mode): the config records ``residual_mode`` and
:func:`interdyn.core.loading.load_control_branch` honours it, but the official InterDyn code ignores
the key and will give wrong results with these weights.

Both outputs load with :func:`interdyn.core.loading.load_control_branch`.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import warnings
from pathlib import Path

import diffusers
from safetensors.torch import save_file

from interdyn.core.loading import PRECISIONS, ModelLoadError, load_control_branch, save_control_branch
from interdyn.support.safe_output import (OutputError, atomic_folder, check_not_inside, check_output_folder,
                                          check_output_path, clean_stale_temporaries, is_ours, storage_message_or_raise)
from interdyn.models.controlnet import OFFICIAL_CLASS_NAME
from interdyn.support.validation import InputError, check_input_path

from .checkpoints import BRANCH_FILE, EMA_FILE, RUN_SIGNATURE_FILES, STATE_FILE, UNET_CONFIG_FILE, list_checkpoints


class ExportError(ValueError):
    """The checkpoint cannot be exported; the message says why."""


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder, or a run's output folder (-> its newest checkpoint)."""
    path = Path(path)
    if (path / BRANCH_FILE).is_file():
        return path
    found = list_checkpoints(path)
    if found:
        return found[-1]
    raise ExportError(f"{path} is neither a training checkpoint (no {BRANCH_FILE}) nor a run folder with "
                      "checkpoint-<step> folders")


def _provenance(checkpoint: Path, model, ema: bool) -> dict:
    trained = dict(getattr(model, "provenance", {}) or {})
    state_file = checkpoint / STATE_FILE
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    return {
        "kind": "InterDyn control branch trained with training.train",
        "base_model": trained.get("base_model", state.get("base_model")),
        "backbone_fingerprint": trained.get("backbone_fingerprint"),
        "step": trained.get("step", state.get("step")),
        "ema": ema,
        "residual_mode": model.residual_mode,
        "trained_until": trained.get("date", state.get("date")),
        "exported": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "checkpoint": checkpoint.name,
        "config": trained.get("config"),
    }


def official_config(model, unet_config: dict) -> dict:
    """The official ``ControlNetSDVModel`` config for ``model`` (plus our ``residual_mode``)."""
    config = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}
    missing = [k for k in ("up_block_types", "out_channels") if k not in unet_config]
    if missing:
        raise ExportError(f"the UNet config of the checkpoint lacks {missing}: cannot write the official config")
    config.update(up_block_types=list(unet_config["up_block_types"]), out_channels=unet_config["out_channels"])
    ordered = {"_class_name": OFFICIAL_CLASS_NAME, "_diffusers_version": diffusers.__version__}
    ordered.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(config.items())})
    return ordered


#: every name an official export folder holds (besides our marker); a folder holding anything else is not replaced
OFFICIAL_CONTENTS = r"config\.json|diffusion_pytorch_model\.safetensors"


def write_official_folder(model, folder: Path, unet_config: dict, dtype=None, provenance: dict | None = None) -> Path:
    """``folder/config.json`` + ``folder/diffusion_pytorch_model.safetensors``, written atomically."""
    config = official_config(model, unet_config)
    if model.residual_mode != "official":
        warnings.warn(f"the weights use residual_mode {model.residual_mode!r}; config.json records it and "
                      "interdyn.core.loading honours it, but the official InterDyn code ignores it (it always adds "
                      "residuals the 'official' way) and gives wrong videos with these weights", stacklevel=2)
    state = {k: (v.to(dtype) if dtype is not None else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    with atomic_folder(folder, what="--out", kind="export", contents=OFFICIAL_CONTENTS) as tmp:  # files get the umask's mode (safetensors writes 0600)
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file(state, str(tmp / "diffusion_pytorch_model.safetensors"),
                  metadata={"format": "pt", "provenance": json.dumps(provenance or {})})
    return folder


def export(checkpoint: str | os.PathLike, out: str | os.PathLike, *, dtype: str | None = None, ema: bool = False,
           format: str = "single") -> Path:
    """Export the branch (or its EMA) of ``checkpoint`` to ``out``; returns the path written."""
    if format not in ("single", "official"):
        raise ExportError(f"format must be 'single' or 'official', got {format!r}")
    if dtype is not None and dtype not in PRECISIONS:
        raise ExportError(f"dtype must be one of {', '.join(sorted(PRECISIONS))}, got {dtype!r}")
    out = check_output_path(out, "--out", folder=format == "official")
    ckpt = resolve_checkpoint(check_input_path(checkpoint, "--checkpoint", what="a checkpoint folder", contents=True))
    check_not_inside(out, ckpt, what="--out", protected_what="checkpoint folder")
    # the training run the checkpoint belongs to
    if is_ours(ckpt.parent, "training-run", signature_files=RUN_SIGNATURE_FILES + ("config.yaml",)):
        check_not_inside(out, ckpt.parent, what="--out", protected_what="training run folder")
    check_not_inside(out, checkpoint, what="--out", protected_what="--checkpoint folder")
    if format == "single":
        if out.suffix != ".safetensors":
            raise ExportError(f"--out {out}: --format single writes one .safetensors file; give a name ending in "
                              ".safetensors (or use --format official for a folder)")
        if out.is_dir():
            raise ExportError(f"--out {out} is an existing folder; --format single writes one .safetensors file")
    else:
        if out.suffix == ".safetensors":
            raise ExportError(f"--format official writes a folder; give a folder name, not {out.name}")
        check_output_folder(out, what="--out", kind="export", contents=OFFICIAL_CONTENTS)
    source = ckpt / (EMA_FILE if ema else BRANCH_FILE)
    if not source.is_file():
        raise ExportError(f"{ckpt} has no {source.name}" + (": the run was trained without use_ema" if ema else ""))
    clean_stale_temporaries(out.parent, names=[out.name])  # left by an export that was killed
    model = load_control_branch(source, dtype="fp32")
    torch_dtype = PRECISIONS[dtype] if dtype else None
    provenance = _provenance(ckpt, model, ema)
    if format == "single":
        return save_control_branch(model, out, dtype=torch_dtype, provenance=provenance)
    try:
        unet_config = json.loads((ckpt / UNET_CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ExportError(f"{ckpt / UNET_CONFIG_FILE} is missing or not valid JSON ({err})") from None
    if not isinstance(unet_config, dict):
        raise ExportError(f"{ckpt / UNET_CONFIG_FILE} must hold a JSON object")
    return write_official_folder(model, out, unet_config, torch_dtype, provenance)


def main(argv: list[str] | None = None, prog: str = "python -m training.export") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True,
                        help="a checkpoint-<step> folder, or a run's output_dir (its newest checkpoint)")
    parser.add_argument("--out", required=True,
                        help="output .safetensors file (--format single) or folder (--format official)")
    parser.add_argument("--dtype", choices=sorted(PRECISIONS), default=None,
                        help="store the weights in this precision (default: as trained, float32)")
    parser.add_argument("--ema", action="store_true", help="export the EMA weights (runs with use_ema)")
    parser.add_argument("--format", choices=("single", "official"), default="single",
                        help="'single': our one-file format; 'official': the official release's folder layout")
    args = parser.parse_args(argv)
    try:
        path = export(args.checkpoint, args.out, dtype=args.dtype, ema=args.ema, format=args.format)
    except (ExportError, OutputError, InputError, ModelLoadError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - a full or read-only disk: one line, the earlier export is intact
        print(f"error: {storage_message_or_raise(err, args.out)}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
