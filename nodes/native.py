"""InterDyn inside ComfyUI's own SVD graphs: Load InterDyn Control Branch -> CONTROL_NET, Apply InterDyn.

The native path: ComfyUI's SVD model (Image Only Checkpoint Loader), its conditioning, samplers,
schedulers and model manager, with InterDyn as a control on the conditioning, wired like Apply
ControlNet (Advanced). The control object itself is :mod:`.native_control` (ComfyUI only).
"""
from __future__ import annotations

from ..interdyn.loading import PRECISIONS, load_control_branch
from ..interdyn.validation import check_image_tensor
from . import convert, host, models

CONTROL_NET = "CONTROL_NET"
WEIGHT_DTYPES = ["default", "fp16", "bf16", "fp32"]
CONTROL_FOLDERS = ("interdyn", "controlnet")


class InterDynControlBranchLoader:
    DESCRIPTION = ("Loads an InterDyn control branch (the official `controlnet` folder, an exported .safetensors "
                   "file from models/interdyn or models/controlnet, or the built-in toy model) as a CONTROL_NET for "
                   "Apply InterDyn in ComfyUI's own SVD graphs. ComfyUI's model manager loads, offloads and casts it "
                   "like its own ControlNets. The residual mode (official 4,4,4,4,3,3,3,2,2,2,1,1 or standard) comes "
                   "with the weights.")
    CATEGORY = "InterDyn"
    FUNCTION = "load"
    RETURN_TYPES = (CONTROL_NET,)
    RETURN_NAMES = ("control_net",)
    OUTPUT_TOOLTIPS = ("The InterDyn control branch, for Apply InterDyn.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "control_branch": (models.list_control_branches(CONTROL_FOLDERS, none=False), {
                "tooltip": "InterDyn control branch: a folder with config.json (the official release's `controlnet`) "
                           "or an exported .safetensors file, in models/interdyn or models/controlnet; "
                           "builtin:toy-physics is the small model shipped with the pack (for its toy backbone)."}),
            "weight_dtype": (WEIGHT_DTYPES, {
                "default": "default",
                "tooltip": "dtype of the branch's weights. default: what ComfyUI picks for diffusion models on "
                           "this device (fp32 on the CPU, fp16/bf16 on a GPU)."}),
        }}

    def load(self, control_branch, weight_dtype):
        if weight_dtype not in WEIGHT_DTYPES:
            raise ValueError(f"weight_dtype must be one of {WEIGHT_DTYPES}, got {weight_dtype!r}")
        path = models.resolve_control_branch(control_branch, CONTROL_FOLDERS)
        if not host.in_comfyui():
            raise RuntimeError("Load InterDyn Control Branch gives a ComfyUI CONTROL_NET and runs inside ComfyUI only; "
                               "outside it use interdyn.loading.load_control_branch or `interdyn generate`")
        from .native_control import make_control

        dtype = host.default_weight_dtype() if weight_dtype == "default" else PRECISIONS[weight_dtype]
        branch = load_control_branch(path, dtype=dtype, device=host.offload_device())
        return (make_control(branch, control_branch),)


class InterDynApply:
    DESCRIPTION = ("Puts InterDyn's driving motion on SVD conditioning, like Apply ControlNet (Advanced): connect "
                   "the positive and negative outputs of SVD_img2vid_Conditioning, the control branch and the control "
                   "frames (one per video frame), then sample with any KSampler. The control acts on both CFG halves, "
                   "as InterDyn requires; other ControlNets applied before are kept and summed in.")
    CATEGORY = "InterDyn"
    FUNCTION = "apply"
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    OUTPUT_TOOLTIPS = ("Positive conditioning with the InterDyn control.",
                       "Negative conditioning with the same InterDyn control (InterDyn keeps the control on the "
                       "unconditional half).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "positive": ("CONDITIONING", {"tooltip": "Positive output of SVD_img2vid_Conditioning."}),
            "negative": ("CONDITIONING", {"tooltip": "Negative output of SVD_img2vid_Conditioning."}),
            "control_net": (CONTROL_NET, {"tooltip": "From Load InterDyn Control Branch."}),
            "image": ("IMAGE", {"tooltip": "Control frames, one per video frame along the batch, in [0, 1] (e.g. "
                                           "the preview output of InterDyn Control From Masks/Renders). Resized and "
                                           "centre-cropped to the video size when they differ."}),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01,
                                   "tooltip": "Scale of the control branch's residuals (1 = as trained; 0 = plain SVD, "
                                              "the branch does not run)."}),
            "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001,
                                        "tooltip": "Where in the sampling (as ComfyUI counts it: percent of the noise "
                                                   "schedule) the control starts acting."}),
            "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001,
                                      "tooltip": "Where in the sampling the control stops acting."}),
        }}

    def apply(self, positive, negative, control_net, image, strength, start_percent, end_percent):
        from .native_control import is_interdyn_control

        if not is_interdyn_control(control_net):
            raise ValueError(f"control_net must come from Load InterDyn Control Branch, got {type(control_net).__name__}")
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
