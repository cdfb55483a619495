"""InterDyn inside ComfyUI's own SVD graphs: Load InterDyn Control Branch -> CONTROL_NET, Apply InterDyn.

The native path: ComfyUI's SVD model (Image Only Checkpoint Loader), its conditioning, samplers,
schedulers and model manager, with InterDyn as a control on the conditioning, wired like Apply
ControlNet (Advanced). The control object itself is :mod:`.native_control` (ComfyUI only).
"""
from __future__ import annotations

from ..interdyn.core.loading import PRECISIONS, load_control_branch
from ..interdyn.support.validation import check_finite, check_image_tensor
from . import convert, host, models
from .native_control import is_interdyn_control, make_control

WEIGHT_DTYPES = ["default", "fp16", "bf16", "fp32"]
CONTROL_FOLDERS = ("interdyn", "controlnet")


def load_branch(control_branch, weight_dtype):
    """Load InterDyn Control Branch: a branch file -> ComfyUI CONTROL_NET (a 1-tuple); inside ComfyUI only."""
    if weight_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype must be one of {WEIGHT_DTYPES}, got {weight_dtype!r}")
    path = models.resolve_control_branch(control_branch, CONTROL_FOLDERS)
    if not host.in_comfyui():
        raise RuntimeError("Load InterDyn Control Branch gives a ComfyUI CONTROL_NET and runs inside ComfyUI only; "
                           "outside it use interdyn.core.loading.load_control_branch or `interdyn generate`")
    dtype = host.default_weight_dtype() if weight_dtype == "default" else PRECISIONS[weight_dtype]
    branch = load_control_branch(path, dtype=dtype, device=host.offload_device(), name="control_branch")
    return (make_control(branch, control_branch),)


def apply(positive, negative, control_net, image, strength, start_percent, end_percent):
    """Apply InterDyn: the control on both halves of SVD conditioning -> (positive, negative)."""
    if not is_interdyn_control(control_net):
        raise ValueError(f"control_net must come from Load InterDyn Control Branch, got {type(control_net).__name__}")
    for name, value in (("strength", strength), ("start_percent", start_percent), ("end_percent", end_percent)):
        check_finite(value, name)  # ComfyUI's range check lets NaN through (every comparison with it is false)
    if start_percent > end_percent:
        raise ValueError(f"start_percent ({start_percent}) must not be after end_percent ({end_percent})")
    frames = convert.image_to_frames(image, "image")
    check_image_tensor(frames, "image")
    if strength == 0:
        return (positive, negative)  # as Apply ControlNet: no control attached, the branch never runs
    controls = {}  # one control per previous control, shared by both halves (they batch together)
    out = []
    for conditioning in (positive, negative):
        entries = []
        for embedding, options in conditioning:
            options = options.copy()
            previous = options.get("control")
            if previous not in controls:
                control = control_net.copy().set_cond_hint(frames, strength, (start_percent, end_percent))
                control.set_previous_controlnet(previous)
                controls[previous] = control
            options["control"] = controls[previous]
            options["control_apply_to_uncond"] = False
            entries.append([embedding, options])
        out.append(entries)
    return (out[0], out[1])
