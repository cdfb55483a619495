"""ComfyUI-InterDyn: ComfyUI entry point.

ComfyUI imports this folder as a package (whatever it is named) and calls ``comfy_entrypoint``
(its V3 node API; the declarations are in ``nodes/declarations.py``). Everything is imported
relatively so the pack works under any folder name. Example workflows in ``workflows/`` appear in
ComfyUI's template browser. ``web/`` holds the page's extension (the Drive Editor's canvas): plain
ES modules that ComfyUI serves as they are, nothing built, nothing fetched.
"""
from .nodes import comfy_entrypoint

WEB_DIRECTORY = "./web"

__all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]
