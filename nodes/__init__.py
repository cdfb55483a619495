"""ComfyUI nodes for InterDyn: thin adapters over the ``interdyn`` library (no maths here).

One plain function per node, which the tests call without ComfyUI:

============================  ==========================================
node                          function
============================  ==========================================
InterDyn Model Loader         :func:`.loader.load`
InterDyn Control From Masks   :func:`.control.from_masks`
InterDyn Control From Renders :func:`.control.from_renders`
InterDyn Sampler / Decode     :func:`.sampler.sample` / :func:`.sampler.decode`
SAM2 Video Masks              :func:`.segmentation.segment`
InterDyn Mask Trajectory      :func:`.trajectory.animate`
InterDyn Drive Editor         :func:`.drive_editor.drive`
InterDyn Synthetic Scene      :func:`.synthetic.make`
Load InterDyn Control Branch  :func:`.native.load_branch`
Apply InterDyn                :func:`.native.apply`
============================  ==========================================

ComfyUI sees them through :mod:`.declarations` (its V3 node API, ``comfy_api``), which ComfyUI
imports when it calls :func:`comfy_entrypoint`. Runtime contact with ComfyUI (progress, cancel,
devices, model folders) goes through :mod:`.host`, which falls back to plain behaviour outside
ComfyUI; :mod:`.native_control` subclasses ComfyUI's ``ControlBase`` (imported lazily, inside ComfyUI
only).
"""
from . import control, drag, drive_editor, host, loader, native, sampler, segmentation, synthetic, trajectory
from .results import readable_errors

host.register_model_folders()

#: node type name -> the function that runs it (inputs by widget/socket name; returns the outputs in order, as a
#: tuple: the Drive Editor's and Mask Trajectory's a ``results.Outputs`` tuple whose ``ui`` is the page's part).
#: For scripts and tests; ComfyUI goes through .declarations. Each raises a user error (a ``ValueError``) as
#: ``InterDyn.InputError`` (:func:`.results.readable_errors`), as the node does in ComfyUI.
FUNCTIONS = {name: readable_errors(fn) for name, fn in {
    "InterDynModelLoader": loader.load,
    "InterDynControlFromMasks": control.from_masks,
    "InterDynControlFromRenders": control.from_renders,
    "InterDynSampler": sampler.sample,
    "InterDynDecode": sampler.decode,
    "InterDynCutAndDragReference": drag.reference,
    "InterDynSAM2VideoMasks": segmentation.segment,
    "InterDynMaskTrajectory": trajectory.animate,
    "InterDynDriveEditor": drive_editor.drive,
    "InterDynSyntheticScene": synthetic.make,
    "InterDynControlBranchLoader": native.load_branch,
    "InterDynApply": native.apply,
}.items()}

#: the ComfyUI version the node API below was verified with (comfy_api.v0_0_2 ships from it on)
TESTED_COMFYUI = "0.3.64"


async def comfy_entrypoint():
    """ComfyUI's V3 entry point: the extension that lists the pack's nodes."""
    try:
        from .declarations import InterDynExtension  # imports comfy_api: only ComfyUI calls this
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("comfy_api"):
            raise
        raise ImportError(f"ComfyUI-InterDyn declares its nodes with ComfyUI's versioned node API (comfy_api.v0_0_2), "
                          f"which this ComfyUI does not have ({e}): update ComfyUI (tested with "
                          f"v{TESTED_COMFYUI})") from e
    return InterDynExtension()


__all__ = ["FUNCTIONS", "comfy_entrypoint"]
