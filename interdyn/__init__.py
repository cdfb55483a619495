"""InterDyn: interactive dynamics video generation on Stable Video Diffusion (library).

Grouped by concern: :mod:`interdyn.core` (sampling, control frames, loading, the native path), :mod:`interdyn.models`
(the networks), :mod:`interdyn.single_file` (SVD single-file checkpoints), :mod:`interdyn.data` (the synthetic world,
drawn drives, SAM2 masks, video files), :mod:`interdyn.metrics`, :mod:`interdyn.apps` (the command line, demo,
probes) and :mod:`interdyn.support` (checks, safe I/O, processes).

This package never imports ComfyUI; the node pack in ``nodes/`` adapts it.
"""
__version__ = "0.1.0"
