"""ComfyUI-InterDyn: ComfyUI entry point.

ComfyUI imports this folder as a package (whatever it is named) and reads the mappings below.
Everything is imported relatively so the pack works under any folder name. Example workflows
in ``workflows/`` appear in ComfyUI's template browser.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
