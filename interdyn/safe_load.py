"""Reading files written by others without running code from them.

:func:`weights_only_torch_load` makes every ``torch.load`` inside its ``with`` block use
``weights_only=True`` (torch's restricted unpickler: tensors, plain containers, numbers and the few
allow-listed types; nothing callable), whatever the caller (accelerate, a third-party predictor)
asked for. A file it refuses is recorded and raises :class:`UnsafeFileError`.
"""
from __future__ import annotations

import pickle
from contextlib import contextmanager

import torch

__all__ = ["UnsafeFileError", "weights_only_torch_load"]


class UnsafeFileError(ValueError):
    """A file holds pickled Python objects other than tensors and plain data; it was not unpickled."""


@contextmanager
def weights_only_torch_load(refused: list | None = None):
    """Force ``weights_only=True`` on every ``torch.load`` in the block; append ``(file, reason)`` of each
    refused file to ``refused`` (callers may swallow the error, as accelerate does for RNG states)."""
    real = torch.load
    refused = refused if refused is not None else []

    def guarded(f, *args, **kwargs):
        kwargs["weights_only"] = True
        try:
            return real(f, *args, **kwargs)
        except pickle.UnpicklingError as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            refused.append((str(f), reason))
            raise UnsafeFileError(f"{f} holds Python objects other than tensors and plain data; it was not "
                                  "unpickled (a pickle can run code)") from None

    torch.load = guarded
    try:
        yield refused
    finally:
        torch.load = real
