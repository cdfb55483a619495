"""ComfyUI nodes for InterDyn: thin adapters over the ``interdyn`` library (no maths here).

Every runtime contact with ComfyUI goes through :mod:`.host`, which falls back to plain
behaviour outside ComfyUI, so these classes import and run without it; the one exception is
:mod:`.native_control`, which subclasses ComfyUI's ``ControlBase`` and so imports ``comfy`` (lazily,
on first use, inside ComfyUI only).
"""
from . import host
from .control import InterDynControlFromMasks, InterDynControlFromRenders
from .drive_editor import InterDynDriveEditor
from .loader import InterDynModelLoader
from .native import InterDynApply, InterDynControlBranchLoader
from .sampler import InterDynDecode, InterDynSampler
from .segmentation import SAM2VideoMasks
from .synthetic import InterDynSyntheticScene
from .trajectory import InterDynMaskTrajectory

host.register_model_folders()

NODE_CLASS_MAPPINGS = {
    "InterDynModelLoader": InterDynModelLoader,
    "InterDynControlFromMasks": InterDynControlFromMasks,
    "InterDynControlFromRenders": InterDynControlFromRenders,
    "InterDynSampler": InterDynSampler,
    "InterDynDecode": InterDynDecode,
    "InterDynSAM2VideoMasks": SAM2VideoMasks,
    "InterDynMaskTrajectory": InterDynMaskTrajectory,
    "InterDynDriveEditor": InterDynDriveEditor,
    "InterDynSyntheticScene": InterDynSyntheticScene,
    "InterDynControlBranchLoader": InterDynControlBranchLoader,
    "InterDynApply": InterDynApply,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "InterDynModelLoader": "InterDyn Model Loader",
    "InterDynControlFromMasks": "InterDyn Control From Masks",
    "InterDynControlFromRenders": "InterDyn Control From Renders",
    "InterDynSampler": "InterDyn Sampler",
    "InterDynDecode": "InterDyn Decode",
    "InterDynSAM2VideoMasks": "SAM2 Video Masks",
    "InterDynMaskTrajectory": "InterDyn Mask Trajectory",
    "InterDynDriveEditor": "InterDyn Drive Editor",
    "InterDynSyntheticScene": "InterDyn Synthetic Scene",
    "InterDynControlBranchLoader": "Load InterDyn Control Branch",
    "InterDynApply": "Apply InterDyn",
}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
