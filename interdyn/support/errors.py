"""The library's exceptions: the one shared across floors lives here, the others beside the check that raises them.

:class:`ModelLoadError` is here because two modules raise it and one of them imports the other
(:mod:`interdyn.core.loading` and the built-in model's :mod:`interdyn.core.builtin`). Every other exception is part
of its own module's API, one per fault, and is defined there (so that no module imports another, or climbs a floor,
for it):

* ``support.validation.InputError``: a value outside what the function accepts, named as the caller wrote it;
* ``support.safe_output.OutputError``: an output that would replace or write into something we did not make;
  ``support.distributed.OutputBusyError`` (an ``OutputError``): another run is writing the same output;
* ``support.safe_load.UnsafeFileError`` (pickled objects beyond tensors and plain data; not unpickled) and
  ``support.safe_load.UnreadableFileError`` (a file ``torch.load`` cannot read at all);
* ``data.video_io.VideoReadError``: a file that is not a video (or image folder) we can decode;
* ``single_file.layout.SVDCheckpointError``: not a usable single-file SVD checkpoint;
* ``metrics.video.UntrustedWeightsError``: a TorchScript file that is not the published one, not trusted;
* ``metrics.registry.TooFewSamples``: a set too small for a metric (reported, the other metrics go on).

All of them are ``ValueError``\\ s, so a caller catches any of the library's user errors with one ``except``.
``tests/test_module_api.py`` checks that this list names every exception the library defines.
"""
from __future__ import annotations

__all__ = ["ModelLoadError"]


class ModelLoadError(ValueError):
    """A model file is missing or is not what was expected; the message says which and what to do."""
