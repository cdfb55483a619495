"""Training checkpoints: their folder layout, listing and resuming, read without running code from them.

``output_dir/checkpoint-<step>/`` holds accelerate's files (weights, optimizer, scheduler, RNG states) plus
``control_branch.safetensors`` (and ``control_branch_ema.safetensors``) in our single-file format,
``unet_config.json``, ``config.yaml``, ``trainer_state.json`` (the loop counters, :class:`TrainingState`) and
``ema_state.json``. :class:`training.train.Trainer` writes them; :func:`load_checkpoint` restores one without
unpickling anything; :mod:`training.export` reads them.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from interdyn.models.controlnet import InterDynControlNet
from interdyn.support.safe_load import UnreadableFileError, UnsafeFileError, weights_only_torch_load
from interdyn.support.safe_output import check_output_folder, claim_output_folder, write_text_atomic

CHECKPOINT_PREFIX = "checkpoint-"
BRANCH_FILE = "control_branch.safetensors"
EMA_FILE = "control_branch_ema.safetensors"
UNET_CONFIG_FILE = "unet_config.json"
STATE_FILE = "trainer_state.json"
EMA_STATE_FILE = "ema_state.json"
#: files only a training run writes at the top of its folder: a folder holding one is a training run of ours even
#: without our marker (runs from older versions)
RUN_SIGNATURE_FILES = ("loss.csv",)


@dataclass
class TrainingState:
    """Loop counters, saved with every checkpoint (an accelerate custom checkpoint object)."""

    step: int = 0            # optimizer steps done
    epoch: int = 0           # current pass over the data
    batch_in_epoch: int = 0  # micro-batches of this epoch already consumed (per process)
    micro_step: int = 0      # micro-batches consumed since the start
    micro_in_step: int = 0   # micro-batches of the current (incomplete) optimizer step

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, int(value))


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints in ``output_dir``, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and p.name[len(CHECKPOINT_PREFIX):].isdigit():
            found.append((int(p.name[len(CHECKPOINT_PREFIX):]), p))
    return [p for _, p in sorted(found)]


def resolve_resume(output_dir: str | Path, resume: str | None) -> Path | None:
    """``latest`` -> newest checkpoint (None if there is none yet); a path -> that checkpoint."""
    if not resume:
        return None
    if resume == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"--resume {resume}: not a checkpoint folder (no {STATE_FILE} in it)")
    return path


class CheckpointError(ValueError):
    """A checkpoint (or the run folder) cannot be used; the message names the file and why."""


def claim_run_folder(output_dir: Path) -> Path:
    """Refuse ``output_dir`` unless it is new, empty or a training run of ours, then mark it a training run."""
    return claim_output_folder(output_dir, what="output_dir", kind="training-run", signature_files=RUN_SIGNATURE_FILES)


def check_run_folder(output_dir: Path, resume: str | None) -> None:
    """``output_dir`` must be new, empty or a training run of ours; an existing run needs ``--resume``.

    Runs before anything is built, so a mistyped ``--output_dir`` neither deletes (checkpoint rotation)
    nor mixes into someone's folder."""
    check_output_folder(output_dir, what="output_dir", kind="training-run", signature_files=RUN_SIGNATURE_FILES)
    if list_checkpoints(output_dir) and not resume:
        raise CheckpointError(
            f"output_dir {output_dir} already holds a training run ({list_checkpoints(output_dir)[-1].name}); pass "
            "--resume latest to continue it, or choose a new output_dir (nothing was changed)")


def check_resume_step(output_dir: Path, resume: str | None, max_steps: int) -> dict | None:
    """The ``trainer_state.json`` of the checkpoint ``resume`` names (``None`` when there is none yet), refusing a
    ``max_steps`` below its step before anything is built or written: the run would do nothing and report no loss.
    """
    path = resolve_resume(output_dir, resume)
    if path is None:
        return None
    values = _read_json_object(path / STATE_FILE)
    step = values.get("step")
    if isinstance(step, int) and not isinstance(step, bool) and step > max_steps:
        raise CheckpointError(
            f"--resume {resume}: {path.name} is at step {step}, past max_steps {max_steps}; give --max_steps above "
            f"{step} to train further, or export that checkpoint as it is (nothing was changed)")
    return values


def truncate_loss_log(path: Path, step: int) -> None:
    """Keep the header and the rows up to ``step`` of ``loss.csv`` (a resumed run rewrites the steps after it)."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [ln for ln in lines[1:] if ln.split(",", 1)[0].strip().isdigit()
                        and int(ln.split(",", 1)[0]) <= step]
    if kept != lines:
        write_text_atomic(path, "".join(kept))


def _read_json_object(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is missing or not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{path} must hold a JSON object, found a {type(value).__name__}")
    return value


def load_checkpoint(accelerator, path: Path, state: TrainingState, ema, param_names: list[str]) -> None:
    """Restore a checkpoint without running code from it.

    Weights: ``model.safetensors``; optimizer, scheduler and RNG states: accelerate's files read with
    ``weights_only=True`` only (:func:`interdyn.support.safe_load.weights_only_torch_load`); loop counters: ``trainer_state.json``; EMA:
    ``control_branch_ema.safetensors`` + ``ema_state.json``. Pickled custom objects of older checkpoints
    (``custom_checkpoint_*.pkl``) are never opened. Anything else raises :class:`CheckpointError`.
    """
    values = _read_json_object(path / STATE_FILE)
    fields = TrainingState().state_dict()
    bad = [k for k in fields if not (isinstance(values.get(k), int) and not isinstance(values.get(k), bool)
                                     and values[k] >= 0)]
    if bad:
        raise CheckpointError(f"{path / STATE_FILE}: {bad} must be non-negative integers")
    for item in sorted(path.iterdir()):
        if item.is_symlink():
            raise CheckpointError(f"--resume {path}: {item.name} is a symbolic link (to {os.readlink(item)}); a "
                                  "checkpoint written by training.train holds plain files only. Nothing was read")
    for item in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(item), framework="pt"):
                pass
        except Exception as err:  # noqa: BLE001 - safetensors raises several types
            raise CheckpointError(f"--resume {path}: {item.name} is not a readable safetensors file ({err}); resume "
                                  "from an earlier checkpoint-N") from None
    refused: list = []
    pickled = {p.name for p in path.glob("custom_checkpoint_*.pkl")}  # older checkpoints: never opened
    with tempfile.TemporaryDirectory(prefix="interdyn-resume-") as view, weights_only_torch_load(refused):
        source = path
        if pickled:  # accelerate refuses a folder with more custom checkpoints than registered objects (none)
            source = Path(view)
            for item in path.iterdir():
                if item.name not in pickled:
                    os.symlink(item.resolve(), source / item.name, target_is_directory=item.is_dir())
        try:
            accelerator.load_state(str(source))
        except UnsafeFileError:
            pass  # reported below with every refused file (accelerate swallows some, e.g. the RNG states)
        except UnreadableFileError as err:
            raise CheckpointError(f"--resume {path}: {err}; resume from an earlier checkpoint-N") from None
    if refused:
        raise CheckpointError(
            f"--resume {path}: {', '.join(Path(f).name for f, _ in refused)} hold(s) Python objects other than "
            "tensors and plain data; nothing was unpickled (a pickle can run code). Resume only from checkpoints "
            "written by training.train, or export the weights and start a new run from them")
    state.load_state_dict({k: values[k] for k in fields})
    if ema is not None:
        tensors_file = path / EMA_FILE
        try:
            tensors = load_file(str(tensors_file))
        except Exception as err:  # noqa: BLE001 - safetensors raises several types
            raise CheckpointError(f"{tensors_file} is missing or not a safetensors file ({err})") from None
        missing = [n for n in param_names if n not in tensors]
        if missing:
            raise CheckpointError(f"{tensors_file} lacks EMA weights for {missing[:3]} ({len(missing)} tensors)")
        scalars = _read_json_object(path / EMA_STATE_FILE) if (path / EMA_STATE_FILE).is_file() else \
            {"optimization_step": state.step}  # checkpoints from before ema_state.json
        device = ema.shadow_params[0].device if ema.shadow_params else "cpu"
        ema.load_state_dict({**scalars, "shadow_params": [tensors[n].to(device) for n in param_names]})


def params_fingerprint(module: torch.nn.Module) -> int:
    """A 63-bit hash of the parameters' bytes (equal on all ranks when replicas agree)."""
    h = hashlib.sha256()
    for name, p in module.state_dict().items():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return int.from_bytes(h.digest()[:8], "little") >> 1


def branch_from_state(config: dict, state: dict) -> InterDynControlNet:
    """A branch holding ``state`` (a full, gathered state dict) without allocating new weights."""
    with torch.device("meta"):
        model = InterDynControlNet.from_config(config)
    model.load_state_dict({k: v.detach() for k, v in state.items()}, strict=True, assign=True)
    return model
