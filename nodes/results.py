"""What the node functions return and raise, as ComfyUI shows it.

Every node function returns its outputs in order, as a tuple. A node that also shows something on the page
(the Drive Editor's canvas, the warnings of a drawn drive) returns :class:`Outputs`: still that tuple, with the
page's part in ``ui`` (ComfyUI's UI output), which :mod:`.declarations` hands to ``io.NodeOutput(..., ui=...)``.

ComfyUI imports a custom node pack under a module name made of its folder's path, and its error reports name an
exception by ``module.qualname``: the library's ``InputError`` would read as a file path of the pack in both
frontends' error panels. :func:`readable_errors` re-raises it as :class:`InputError` (the same class, to every
``except`` and ``isinstance``), whose module reads ``InterDyn``.
"""
from __future__ import annotations

import functools

from ..interdyn.support import validation

__all__ = ["Outputs", "InputError", "readable_errors"]


class Outputs(tuple):
    """A node's outputs in order (a tuple, like every node function's), and ``ui``: what the page shows, or None."""

    ui: dict | None

    def __new__(cls, values, ui: dict | None = None):
        self = super().__new__(cls, values)
        self.ui = ui
        return self


class InputError(validation.InputError):
    """An input of a node is wrong; the message names it as the node shows it."""


InputError.__module__ = "InterDyn"  # ComfyUI reports module.qualname: "InterDyn.InputError", not the pack's path


def readable_errors(fn):
    """Run a node function; the library's InputError leaves it as :class:`InputError`, message and traceback kept."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except validation.InputError as e:
            if isinstance(e, InputError):
                raise
            raise InputError(str(e)).with_traceback(e.__traceback__) from None

    return run
