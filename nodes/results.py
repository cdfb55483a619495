"""What the node functions return and raise, as ComfyUI shows it.

Every node function returns its outputs in order, as a tuple. A node that also shows something on the page
(the Drive Editor's canvas, the warnings of a drawn drive) returns :class:`Outputs`: still that tuple, with the
page's part in ``ui`` (ComfyUI's UI output), which :mod:`.declarations` hands to ``io.NodeOutput(..., ui=...)``.

ComfyUI imports a custom node pack under a module name made of its folder's path, and its error reports name an
exception by ``module.qualname``: the library's ``InputError`` would read as a file path of the pack in both
frontends' error panels. :func:`readable_errors` re-raises a user error as :class:`InputError`, whose module reads
``InterDyn``. A user error is a ``ValueError``: the library's errors all are (``interdyn.support.errors``:
``InputError``, ``ModelLoadError``, ``VideoReadError``, ...), and so are the nodes' own refusals. The re-raised error
is still of its first class too (a ``ModelLoadError`` stays one to every ``except`` and ``isinstance``). Every
node's ``execute`` runs its function through it (:mod:`.declarations`), and so does ``nodes.FUNCTIONS``.
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


_READABLE: dict[type, type] = {}


def _readable_class(kind: type) -> type:
    """:class:`InputError` that is also a ``kind`` (a subclass of both, reported as ``InterDyn.InputError``)."""
    if issubclass(kind, InputError):
        return kind
    if kind in (ValueError, validation.InputError):
        return InputError
    if kind not in _READABLE:
        try:
            _READABLE[kind] = type("InputError", (InputError, kind), {"__module__": "InterDyn", "__doc__": (
                f"{InputError.__doc__} (a {kind.__name__})")})
        except TypeError:  # a built-in with its own memory layout (UnicodeDecodeError): InputError alone
            _READABLE[kind] = InputError
    return _READABLE[kind]


def readable_errors(fn):
    """Run a node function; a user error (a ``ValueError``) leaves it as :class:`InputError`, message and traceback
    kept; anything else (a bug, an interruption) leaves it unchanged."""

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as e:
            readable = _readable_class(type(e))
            if readable is type(e):
                raise
            try:
                error = readable(str(e))
            except Exception:  # noqa: BLE001 - a class whose constructor takes other arguments
                error = InputError(str(e))
            raise error.with_traceback(e.__traceback__) from None

    return run
