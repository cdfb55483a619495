"""ComfyUI-InterDyn: ComfyUI entry point.

ComfyUI imports this folder as a package (whatever it is named) and reads the mappings below.
Everything is imported relatively so the pack works under any folder name.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = None
__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
