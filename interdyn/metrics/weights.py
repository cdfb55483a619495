"""Locating metric network weights on disk. Nothing here ever downloads.

Every pretrained metric network is looked up, in this order:

1. the path the caller gives: a file, or a folder that holds the file under its canonical name;
2. the torch hub checkpoint folder, ``torch.hub.get_dir()/checkpoints`` — that is
   ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch/hub/checkpoints`` when ``TORCH_HOME`` is unset),
   where torchvision, lpips, torch-fidelity and torchmetrics put the files they download.

A missing file raises :class:`FileNotFoundError` naming the file and every place looked in; a file there that is
not a regular file (a named pipe, a device, a socket) raises :class:`~interdyn.support.validation.InputError`
naming it (:func:`~interdyn.support.validation.check_input_path`, the inputs' one check), before anything opens it
(a FIFO with no writer blocks its reader forever).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import torch

from ..support.validation import check_input_path

#: torchvision AlexNet (ImageNet, "owt" weights) — the LPIPS backbone.
ALEXNET_WEIGHTS = "alexnet-owt-7be5be79.pth"
#: Inception-v3 converted from the 2015-12-05 TensorFlow graph used by every FID implementation.
#: torch-fidelity / torchmetrics name it ``weights-inception-...``; pytorch-fid ``pt_inception-...``.
INCEPTION_WEIGHTS = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
#: The Kinetics-400 I3D TorchScript port used by StyleGAN-V for FVD.
I3D_WEIGHTS = "i3d_torchscript.pt"
#: SHA-256 of StyleGAN-V's ``i3d_torchscript.pt`` (the file its FVD code downloads from Dropbox, 51,235,320 bytes).
#: Not computed here (no network): it is the digest that independent public FVD tools pin for that file, the same
#: value in at least eight of them, one a hash-verified Hugging Face mirror at a fixed commit (README, security).
#: :func:`interdyn.metrics.load_i3d` loads a TorchScript file only if it has this digest (or with ``trust=True``).
I3D_SHA256 = "bec6519f66ea534e953026b4ae2c65553c17bf105611c746d904657e5860a5e2"
#: Size in bytes of that file (pinned alongside the digest by the same tools); a quick first check.
I3D_SIZE = 51_235_320


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def hub_checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints`` as torch resolves it (without creating it)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(filenames: str | Sequence[str], path: str | os.PathLike | None = None, *, what: str) -> Path:
    """Return the first existing weights file.

    Args:
        filenames: canonical file name(s) of the weights.
        path: a file, or a folder to look in for ``filenames``; ``None`` looks only in the hub folder.
        what: human name of the network, for the error message.

    Raises:
        FileNotFoundError: naming the file(s) and every location tried. Nothing is downloaded.
        InputError: the first file found is not a regular file (a FIFO, a device, a socket), naming it.
    """

    def is_weights_file(candidate: Path) -> bool:  # a FIFO, device or socket: refused by the inputs' one check
        return check_input_path(candidate, f"{what} weights", what="a regular file").is_file()

    names = [filenames] if isinstance(filenames, str) else list(filenames)
    tried: list[str] = []
    if path is not None:
        p = Path(path).expanduser()
        if is_weights_file(p):
            return p
        if p.is_dir():
            for name in names:
                if is_weights_file(p / name):
                    return p / name
                tried.append(str(p / name))
        else:
            tried.append(str(p))
    hub = hub_checkpoint_dir()
    for name in names:
        if is_weights_file(hub / name):
            return hub / name
        tried.append(str(hub / name))
    raise FileNotFoundError(
        f"{what} weights not found: need {' or '.join(names)}; looked at: {', '.join(tried)}. "
        f"Metric weights are never downloaded: put the file in {hub} (that is $TORCH_HOME/hub/checkpoints) "
        f"or pass its path."
    )
