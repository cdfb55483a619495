"""The synthetic collision world now lives in the library, :mod:`interdyn.synthetic` (the demo and the
physics probes use it without the training package); this module re-exports it for training code."""
from interdyn.synthetic import *  # noqa: F401,F403
from interdyn.synthetic import __all__  # noqa: F401
