"""InterDyn: interactive dynamics video generation on Stable Video Diffusion (library).

This package never imports ComfyUI; the node pack in ``nodes/`` adapts it.
"""
__version__ = "0.1.0"
