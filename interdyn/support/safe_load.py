"""Reading files written by others without running code from them.

:func:`weights_only_torch_load` makes every ``torch.load`` inside its ``with`` block use
``weights_only=True`` (torch's restricted unpickler: tensors, plain containers, numbers and the few
allow-listed types; nothing callable), whatever the caller (accelerate, a third-party predictor)
asked for. A file it refuses is recorded and raises :class:`UnsafeFileError`; a file it cannot read at all
raises :class:`UnreadableFileError` naming it.
"""
from __future__ import annotations

import pickle
from contextlib import contextmanager

import torch

__all__ = ["UnsafeFileError", "UnreadableFileError", "weights_only_torch_load", "read_tensor_file"]


class UnsafeFileError(ValueError):
    """A file holds pickled Python objects other than tensors and plain data; it was not unpickled."""


class UnreadableFileError(ValueError):
    """A file torch.load could not read at all (truncated, damaged, not a torch file); the message names it."""


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
            raise UnsafeFileError(f"{f} is not a plain tensor file: damaged, or it holds Python objects other than "
                                  "tensors and plain data; it was not unpickled (a pickle can run code)") from None
        except OSError:
            raise
        except Exception as err:  # noqa: BLE001 - a damaged file: say which, in one line
            first = (str(err).strip().splitlines() or [""])[0][:200]
            raise UnreadableFileError(f"{f} is damaged or not a torch file ({type(err).__name__}: {first})") from None

    torch.load = guarded
    try:
        yield refused
    finally:
        torch.load = real


def read_tensor_file(path, what: str):
    """``torch.load(path, weights_only=True)`` on the CPU for a downloaded weights file (``what`` names it in
    messages). Any failure becomes one :class:`UnreadableFileError` line naming the file; torch's own text,
    which advises re-running with ``weights_only=False`` (wrong and unsafe for a downloaded file), is cut to
    its first line."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except OSError:
        raise
    except pickle.UnpicklingError:  # torch's text advises weights_only=False: never repeated
        raise UnreadableFileError(f"cannot read {what} {path}: it is not a plain tensor file (damaged, or it holds "
                                  "Python objects other than tensors and plain data). It was not unpickled (a "
                                  "pickle can run code).") from None
    except Exception as err:  # noqa: BLE001 - torch raises several types for a damaged file
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise UnreadableFileError(f"cannot read {what} {path}: it is not a plain tensor file ({type(err).__name__}: "
                                  f"{first}). It was not unpickled (a pickle can run code).") from None
