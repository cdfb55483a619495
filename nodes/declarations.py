"""The nodes as ComfyUI sees them: V3 declarations (``comfy_api``) over the plain functions of this package.

Each class declares one node (its type name, inputs in widget order, tooltips, outputs) and its
``execute`` calls one function of :mod:`.loader`, :mod:`.control`, :mod:`.sampler`, ... with the
inputs by name; all behaviour and every check live in those functions, which the tests call without
ComfyUI. This is the only module of the pack that imports ``comfy_api``; ComfyUI imports it through
:func:`nodes.comfy_entrypoint`, so importing the pack elsewhere never needs ComfyUI.

The API is pinned to ``comfy_api.v0_0_2``, ComfyUI's first versioned node API (the version future
releases keep, while ``comfy_api.latest`` moves); see docs/architecture.md, "ComfyUI's V3 API".
Type names, input names and their order are those the V1 declarations had: saved workflows store
widget values by position, so they must never change (tests/test_workflows.py checks every workflow).
"""
from __future__ import annotations

from comfy_api.v0_0_2 import ComfyExtension, io

from ..interdyn.core.builtin import toy_world
from ..interdyn.core.control import CONTROL_PALETTE
from ..interdyn.core.dual_clock import SVD_SIGMA_STRONG, SVD_SIGMA_WEAK
from ..interdyn.core.sampling import DEFAULTS
from ..interdyn.data.synthetic import SCENE_PRESETS, WORLDS
from ..interdyn.data.trajectory import EASINGS
from . import control, drag, drive_editor, loader, models, native, sampler, segmentation, synthetic, trajectory
from .results import readable_errors

CATEGORY = "InterDyn"
InterDynModel = io.Custom("INTERDYN_MODEL")
InterDynControl = io.Custom("INTERDYN_CONTROL")

def _run(fn, inputs: dict) -> io.NodeOutput:
    """What every ``execute`` does: call the node's function with the inputs by name, a user error reported as
    ``InterDyn.InputError`` (:func:`.results.readable_errors`), the outputs (and the page's ``ui``, if any) as
    ComfyUI's ``NodeOutput``."""
    out = readable_errors(fn)(**inputs)
    return io.NodeOutput(*out, ui=getattr(out, "ui", None))


_COLOURS = ["white", "red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple", "azure", "lime", "rose"]
assert len(_COLOURS) == len(CONTROL_PALETTE)


class InterDynModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InterDynModelLoader", display_name="InterDyn Model Loader", category=CATEGORY,
            description=("Loads Stable Video Diffusion (a diffusers folder from models/diffusers or an svd*.safetensors "
                         "file from models/checkpoints) and an InterDyn control branch (a folder or .safetensors file "
                         "from models/interdyn). Nothing is downloaded: a missing file is an error naming the folders "
                         "searched. Models wait on ComfyUI's offload device and move to the GPU only while sampling."),
            inputs=[
                io.Combo.Input("svd", options=models.list_svd_models(), tooltip=(
                    "Stable Video Diffusion img2vid (14 frames): a diffusers folder in models/diffusers (with "
                    "model_index.json) or an svd*.safetensors checkpoint in models/checkpoints.")),
                io.Combo.Input("interdyn", options=models.list_control_branches(), tooltip=(
                    "InterDyn control branch: the official `controlnet` folder or an exported .safetensors file in "
                    "models/interdyn. 'none' samples plain SVD image-to-video (no control).")),
                io.Combo.Input("precision", options=models.PRECISIONS, default="auto", tooltip=(
                    "Weights dtype. auto: bf16/fp16 on a GPU, fp32 on the CPU. The VAE stays in fp32 when SVD's "
                    "config asks for it.")),
                io.Boolean.Input("keep_loaded", default=True, tooltip=(
                    "Keep the last loaded model in memory (CPU/offload device) for the next run with the same files "
                    "and precision. Off: load from disk every time.")),
            ],
            outputs=[InterDynModel.Output(display_name="model", tooltip=(
                "The SVD backbone and control branch, for the InterDyn Sampler and InterDyn Decode."))],
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(loader.load, inputs)


# ---------------------------------------------------------------------------------------------- control
def _size_inputs() -> list:
    return [
        io.Int.Input("width", default=384, min=64, max=2048, step=64, tooltip=(
            "Width of the video in pixels, a multiple of 64 (paper: 384). Use the same on the sampler.")),
        io.Int.Input("height", default=256, min=64, max=2048, step=64, tooltip=(
            "Height of the video in pixels, a multiple of 64 (paper: 256). Use the same on the sampler.")),
        io.Int.Input("frames", default=14, min=1, max=128, tooltip=(
            "Number of control frames = frames of the generated video (SVD: 14).")),
        io.Float.Input("source_fps", default=7.0, min=0.01, max=1000.0, step=0.01, tooltip=(
            "Frame rate of the incoming masks/renders (e.g. the fps output of Get Video Components). Equal to "
            "target_fps: no resampling.")),
        io.Float.Input("target_fps", default=7.0, min=0.01, max=1000.0, step=0.01, tooltip=(
            "Frame rate of the generated video (paper: 7). Frames are picked from the source nearest in time, never "
            "blended.")),
        io.Combo.Input("crop", options=control.CROPS, default="center", tooltip=(
            "How the frames are cropped to the aspect ratio after scaling: center, or around the masks' bounding box "
            "over all frames (mask). With 'mask', connect the first frame to 'image' so it gets the same crop.")),
        io.Int.Input("start_frame", default=0, min=0, max=100000, tooltip="First source frame used (skip a lead-in)."),
    ]


def _image_input():
    return io.Image.Input("image", optional=True, tooltip=(
        "Optional first frame (same size as the masks/renders' source video). It is returned resized and cropped "
        "exactly like the control: connect that output to the sampler's image."))


def _control_outputs() -> list:
    return [
        InterDynControl.Output(display_name="control", tooltip=(
            "Control frames [frames, 3, height, width] in [0, 1] for the InterDyn Sampler.")),
        io.Image.Output(display_name="preview", tooltip="The control frames as an IMAGE batch, to preview or save."),
        io.Image.Output(display_name="image", tooltip=(
            "The optional first frame, scaled and cropped like the control (empty if not connected).")),
    ]


class InterDynControlFromMasks(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        mask_tip = ("Optional masks of another object over time (MASK batch, same size and frame count as mask_1), "
                    "drawn in the next palette colour ({colour} when mask_1 holds one object).")
        return io.Schema(
            node_id="InterDynControlFromMasks", display_name="InterDyn Control From Masks", category=CATEGORY,
            description=("Builds InterDyn control frames from mask sequences: each object is drawn in its own colour "
                         "(mask_1's first object white, then " + ", ".join(_COLOURS[1:5]) + ", ...) on black; later "
                         "objects cover earlier ones. Resamples from source_fps to target_fps, scales and crops to "
                         "width x height."),
            inputs=[
                io.Mask.Input("mask_1", tooltip=(
                    "Masks of the driving hand/object over time (MASK batch, one mask per source frame), drawn in "
                    "white. Can hold several objects one after another: see objects_in_mask_1.")),
                *_size_inputs(),
                io.Int.Input("objects_in_mask_1", default=1, min=1, max=len(CONTROL_PALETTE), tooltip=(
                    "How many objects mask_1 holds one after another (connect SAM2 Video Masks' object_count with "
                    "its object_masks); each gets its own colour.")),
                *[io.Mask.Input(f"mask_{n}", optional=True, tooltip=mask_tip.format(colour=_COLOURS[n - 1]))
                  for n in (2, 3, 4)],
                _image_input(),
            ],
            outputs=_control_outputs(),
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(control.from_masks, inputs)


class InterDynControlFromRenders(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InterDynControlFromRenders", display_name="InterDyn Control From Renders", category=CATEGORY,
            description=("Uses RGB frames as InterDyn control frames as they are (e.g. renders of coloured object "
                         "masks, or a mask video loaded as images): resamples from source_fps to target_fps, scales "
                         "and crops to width x height."),
            inputs=[
                io.Image.Input("renders", tooltip=(
                    "Control frames as an IMAGE batch (one image per source frame), black background.")),
                *_size_inputs(),
                _image_input(),
            ],
            outputs=_control_outputs(),
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(control.from_renders, inputs)


# ---------------------------------------------------------------------------------------------- sampling
class InterDynSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        d = DEFAULTS
        return io.Schema(
            node_id="InterDynSampler", display_name="InterDyn Sampler", category=CATEGORY,
            description=("Generates a video from a first frame and a driving motion (InterDyn control frames) with "
                         "Stable Video Diffusion: EDM Euler steps with a per-frame CFG ramp from min_cfg to max_cfg, "
                         "the control branch active between control_start and control_end. Cancel stops it after the "
                         "current step. Defaults are the paper's."),
            inputs=[
                InterDynModel.Input("model", tooltip="From InterDyn Model Loader."),
                io.Image.Input("image", tooltip=(
                    "First frame of the video; scaled and center-cropped to width x height. Each image of a batch "
                    "starts its own video.")),
                io.Int.Input("width", default=d["width"], min=64, max=2048, step=64, tooltip=(
                    "Video width, a multiple of 64 (paper: 384); the control must have it too.")),
                io.Int.Input("height", default=d["height"], min=64, max=2048, step=64, tooltip=(
                    "Video height, a multiple of 64 (paper: 256); the control must have it too.")),
                io.Int.Input("frames", default=d["num_frames"], min=1, max=128, tooltip=(
                    "Frames to generate (SVD: 14); the control must have as many.")),
                io.Int.Input("steps", default=d["num_steps"], min=1, max=500, tooltip="Euler steps (paper: 50)."),
                io.Float.Input("min_cfg", default=d["min_guidance"], min=1.0, max=30.0, step=0.1, tooltip=(
                    "Guidance scale of the first frame; it rises linearly to max_cfg at the last frame (paper: 1.0).")),
                io.Float.Input("max_cfg", default=d["max_guidance"], min=1.0, max=30.0, step=0.1, tooltip=(
                    "Guidance scale of the last frame (paper: 3.0). 1: no CFG, one model pass per step.")),
                io.Int.Input("fps", default=d["fps"], min=1, max=120, tooltip=(
                    "Frame rate conditioning, in diffusers' convention (paper: 7, which the official pipeline passes "
                    "as 6).")),
                io.Int.Input("motion_bucket_id", default=d["motion_bucket_id"], min=0, max=1023, tooltip=(
                    "SVD's amount-of-motion conditioning (paper: 40).")),
                io.Float.Input("noise_aug_strength", default=d["noise_aug_strength"], min=0.0, max=10.0, step=0.01,
                               tooltip="Noise added to the first frame before encoding (paper: 0.02)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True, tooltip=(
                    "Seed of the noise (CPU generator: the same seed gives the same video on any device).")),
                io.Float.Input("control_strength", default=1.0, min=0.0, max=10.0, step=0.05, tooltip=(
                    "Scale of the control branch's residuals (1 = as trained; 0 = plain SVD).")),
                io.Float.Input("control_start", default=0.0, min=0.0, max=1.0, step=0.01, tooltip=(
                    "Fraction of the steps at which the control starts acting.")),
                io.Float.Input("control_end", default=1.0, min=0.0, max=1.0, step=0.01, tooltip=(
                    "Fraction of the steps at which the control stops acting.")),
                InterDynControl.Input("control", optional=True, tooltip=(
                    "Driving motion from InterDyn Control From Masks/Renders. Without it: plain SVD image-to-video.")),
                io.Image.Input("drag_reference", optional=True, tooltip=(
                    "Training-free dragging (Time-to-Move's dual-clock denoising): the reference video from Cut and "
                    "Drag Reference. Works on plain SVD (interdyn = 'none') or with the control branch and a control.")),
                io.Mask.Input("drag_region", optional=True, tooltip=(
                    "The region the reference holds (the dragged object in every frame), from Cut and Drag Reference.")),
                io.Float.Input("sigma_weak", default=SVD_SIGMA_WEAK, min=0.0, max=1000.0, step=0.5, tooltip=(
                    "Dragging only. The paper's t_weak as a noise level: the whole video starts from the reference "
                    "noised to it (the steps above it are skipped). Higher: more freedom for the scene. Default: the "
                    "authors' SVD setting (step 16 of 50).")),
                io.Float.Input("sigma_strong", default=SVD_SIGMA_STRONG, min=0.0, max=1000.0, step=0.5, tooltip=(
                    "Dragging only. The paper's t_strong: the dragged region is held to the reference down to this "
                    "noise level, then denoised freely. Lower: the object follows the drag more tightly (0: exactly). "
                    "Default: the authors' SVD setting (step 21 of 50).")),
            ],
            outputs=[io.Latent.Output(display_name="latent", tooltip=(
                "Video latents, the frames of each video one after another along the batch (in SVD's scaled latent "
                "space): decode with InterDyn Decode."))],
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(sampler.sample, inputs)


class InterDynDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InterDynDecode", display_name="InterDyn Decode", category=CATEGORY,
            description=("Decodes InterDyn Sampler latents to frames with SVD's temporal VAE, each video separately. "
                         "Connect the IMAGE to Create Video / Save Animated WEBP."),
            inputs=[
                InterDynModel.Input("model", tooltip="The model that sampled the latents (its VAE decodes them)."),
                io.Latent.Input("latent", tooltip="Video latents from InterDyn Sampler."),
                io.Int.Input("decode_chunk_size", default=14, min=0, max=128, tooltip=(
                    "Frames decoded together (0 = a whole video at once). Smaller uses less memory, with slightly "
                    "less temporal consistency.")),
            ],
            outputs=[io.Image.Output(display_name="frames", tooltip=(
                "The video frames as an IMAGE batch (videos one after another)."))],
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(sampler.decode, inputs)


class InterDynCutAndDragReference(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InterDynCutAndDragReference", display_name="Cut and Drag Reference", category=CATEGORY,
            description=("Training-free dragging (Time-to-Move): cuts the object under the first mask out of the first "
                         "frame and moves it along the masks (translation, scale and rotation read from the masks), "
                         "filling the hole it leaves from its rim. Connect both outputs to the InterDyn Sampler's "
                         "drag_reference and drag_region."),
            inputs=[
                io.Image.Input("image", tooltip="The first frame (the first image of a batch is used)."),
                io.Mask.Input("masks", tooltip=(
                    "The dragged object in every frame, at the image's size: Drive Editor, Mask Trajectory, SAM2 "
                    "Video Masks or any mask sequence. Frame 0 marks what is cut out.")),
                io.Image.Input("appearance", optional=True, tooltip=(
                    "For an object that enters the picture (not in the first frame to cut from): frames that show it "
                    "where the masks are, e.g. renders; only the pixels under the masks are used.")),
            ],
            outputs=[io.Image.Output(display_name="drag_reference", tooltip=(
                         "The crude animation the sampler follows (frame 0 is the image itself).")),
                     io.Mask.Output(display_name="drag_region", tooltip=(
                         "Where the reference shows the object, per frame."))],
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(drag.reference, inputs)


# ---------------------------------------------------------------------------------------------- masks and motion
class SAM2VideoMasks(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InterDynSAM2VideoMasks", display_name="SAM2 Video Masks", category=CATEGORY,
            description=("Tracks objects through video frames with SAM2 (local checkpoint from models/sam2) from boxes "
                         "and/or points placed on one frame. Outputs the merged masks, every object's masks one "
                         "object after another, and the object count (connect both to InterDyn Control From Masks' "
                         "mask_1 and objects_in_mask_1 for one colour per object)."),
            inputs=[
                io.Image.Input("images", tooltip="Video frames (IMAGE batch), e.g. from Get Video Components."),
                io.Combo.Input("sam2_model", options=models.list_sam2_checkpoints(), tooltip=(
                    "SAM2 / SAM2.1 checkpoint (.pt or .safetensors) in models/sam2; the size (tiny, small, "
                    "base_plus, large) is read from the file name, e.g. sam2.1_hiera_tiny.pt.")),
                io.String.Input("prompts", multiline=True, default=segmentation.DEFAULT_PROMPTS, tooltip=(
                    "JSON list, one entry per object: {\"box\": [x0, y0, x1, y1]} and/or {\"points\": [[x, y], "
                    "...], \"labels\": [1, 0, ...]} (1 on the object, 0 background), in pixels of the frames. May "
                    "be empty when bbox is connected.")),
                io.Int.Input("prompt_frame", default=0, min=0, max=100000, tooltip=(
                    "Frame the prompts are placed on; masks propagate forward and back from it.")),
                io.Combo.Input("device", options=["auto", "cpu"], default="auto", tooltip=(
                    "auto: ComfyUI's device (GPU if any); cpu: always the CPU.")),
                io.Int.Input("resolution", default=1024, min=256, max=2048, step=32, tooltip=(
                    "SAM2's input size (1024 as trained); 512 runs much faster on the CPU with coarser masks.")),
                io.BBOX.Input("bbox", optional=True, tooltip=(
                    "Optional boxes [x0, y0, x1, y1] from a detector node; each box is one more object, after the "
                    "JSON prompts.")),
            ],
            outputs=[
                io.Mask.Output(display_name="masks", tooltip=(
                    "All objects merged: one mask per frame [frames, H, W] (white driving control).")),
                io.Mask.Output(display_name="object_masks", tooltip=(
                    "Each object's masks, object after object: [objects x frames, H, W], in prompt order (JSON "
                    "prompts first, then bbox boxes).")),
                io.Int.Output(display_name="object_count", tooltip="Number of tracked objects."),
            ],
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(segmentation.segment, inputs)


_INTERPOLATION_TIP = "bilinear: soft edges; nearest: stays binary."


class InterDynMaskTrajectory(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InterDynMaskTrajectory", display_name="InterDyn Mask Trajectory", category=CATEGORY,
            description=("Authors a driving motion without a video: moves one mask (the first of the batch) along "
                         "keyframes of position, scale and rotation with easing, one mask per output frame. Feed the "
                         "result to InterDyn Control From Masks with source_fps = target_fps."),
            inputs=[
                io.Mask.Input("mask", tooltip=(
                    "The hand/object mask drawn on the first frame (only the first mask of a batch is used).")),
                io.String.Input("keyframes", multiline=True, default=trajectory.DEFAULT_KEYFRAMES, tooltip=(
                    "JSON list of {frame, x, y, scale, rotation, easing}: x, y offset in pixels of the mask (x "
                    "right, y down), scale about the mask's centre, rotation in degrees clockwise, easing towards "
                    "the next keyframe: " + ", ".join(EASINGS) + ". Missing values: no offset, scale 1, rotation 0, "
                    "linear.")),
                io.Int.Input("frames", default=14, min=1, max=1024, tooltip=(
                    "Number of output masks (frames 0 .. frames-1).")),
                io.Combo.Input("interpolation", options=["bilinear", "nearest"], default="bilinear",
                               tooltip=_INTERPOLATION_TIP),
                io.String.Input("coordinates", optional=True, force_input=True, tooltip=(
                    "A drawn path: the KJNodes Spline Editor's coordinates (or ComfyUI's Wan tracks), pixels of the "
                    "mask. The mask follows the track starting nearest to it, resampled to frames; it replaces the "
                    "keyframes' x, y.")),
            ],
            outputs=[io.Mask.Output(display_name="masks", tooltip=(
                "The moved mask, one per frame [frames, H, W], same size as the input mask."))],
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(trajectory.animate, inputs)


class InterDynDriveEditor(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InterDynDriveEditor", display_name="InterDyn Drive Editor", category=CATEGORY,
            description=("Draw the driving motion on the picture: in the canvas, draw the hand/object (ellipse, "
                         "rectangle, brush) or connect its mask, click on the picture to add keyframes of its path "
                         "(Shift-click appends, Ctrl-click inserts, right-click or Delete removes), drag them, drag "
                         "their marks in time on the timeline, set scale, rotation and easing, and scrub to see the "
                         "mask at any frame. Outputs one mask per frame for InterDyn Control From Masks "
                         "(source_fps = target_fps). A path from the KJNodes Spline Editor (coordinates) can drive it "
                         "too. A drive drawn on a picture of another size is fitted to this one."),
            inputs=[
                io.Image.Input("image", tooltip=(
                    "The first frame of the scene: the canvas shows it, and the masks have its size (only the first "
                    "image of a batch is used).")),
                io.String.Input("shape", multiline=True, default=drive_editor.DEFAULT_SHAPE, tooltip=(
                    "The driver's shape as drawn in the canvas (JSON, written by the editor): {\"size\": [W, H], "
                    "\"shapes\": [ellipse {cx, cy, rx, ry}, rect {x, y, w, h}, brush {radius, points}, each "
                    "optionally \"subtract\": true]}. Ignored when a mask is connected.")),
                io.String.Input("keyframes", multiline=True, default=drive_editor.DEFAULT_KEYFRAMES, tooltip=(
                    "The path as drawn in the canvas (JSON, written by the editor): a list of {frame, x, y, scale, "
                    "rotation, easing}; x, y move the driver's centre in pixels of the image (x right, y down), "
                    "rotation in degrees clockwise, easing towards the next keyframe: " + ", ".join(EASINGS) + ".")),
                io.Int.Input("frames", default=14, min=1, max=1024, tooltip=(
                    "Number of output masks (frames 0 .. frames-1): the video's length.")),
                io.Combo.Input("interpolation", options=["bilinear", "nearest"], default="bilinear",
                               tooltip=_INTERPOLATION_TIP),
                io.Mask.Input("mask", optional=True, tooltip=(
                    "The driver's mask on the first frame (e.g. from SAM2 or Load Image as Mask), the image's size. "
                    "When connected it replaces the drawn shape.")),
                io.String.Input("coordinates", optional=True, force_input=True, tooltip=(
                    "A drawn path: the KJNodes Spline Editor's coordinates (or ComfyUI's Wan tracks), pixels of this "
                    "image. The driver follows the track starting nearest to it, resampled to frames; it replaces "
                    "the keyframes' x, y. The canvas draws it after a run.")),
                io.Boolean.Input("snap_to_track_start", default=False, optional=True, tooltip=(
                    "With coordinates connected: on, the driver's centre moves onto the track's first point and "
                    "then along the track itself; off, the driver keeps its drawn place and follows the track's "
                    "movement from there.")),
            ],
            outputs=[io.Mask.Output(display_name="masks", tooltip=(
                "The driver's mask at every frame [frames, H, W], the size of the image."))],
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(drive_editor.drive, inputs)


class InterDynSyntheticScene(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InterDynSyntheticScene", display_name="InterDyn Synthetic Scene", category=CATEGORY,
            description=("A scene of InterDyn's synthetic collision world (the one the built-in toy-physics model was "
                         "trained on), simulated with exact 2D physics: the first frame to animate, the masks of the "
                         "driven object(s) (the 'hand'), and the simulated video as ground truth. Seeds from 1000000 "
                         "were never seen in training. Needs no files."),
            inputs=[
                io.Combo.Input("preset", options=list(SCENE_PRESETS), default="push", tooltip=(
                    "push: a driven disc enters and pushes a free disc. random: 1-3 free discs/boxes and 1-2 drivers "
                    "(the training distribution). chain: the driver hits disc A, which hits disc B. hit / miss: a "
                    "counterfactual pair, the same first frame for the same seed; the driver hits the disc, or is "
                    "turned away and misses it.")),
                io.Int.Input("seed", default=1000000, min=0, max=2**31 - 1, control_after_generate=True, tooltip=(
                    "Layout, colours and physics parameters. Seeds >= 1000000 are held out from the built-in model's "
                    "training.")),
                io.Int.Input("width", default=64, min=32, max=1024, step=32, tooltip=(
                    "Width in pixels (the built-in model works at 64).")),
                io.Int.Input("height", default=64, min=32, max=1024, step=32, tooltip=(
                    "Height in pixels (the built-in model works at 64).")),
                io.Int.Input("frames", default=8, min=2, max=128, tooltip=(
                    "Number of frames (the built-in model works with 8).")),
                io.Combo.Input("world", options=list(WORLDS), default=toy_world(), optional=True, tooltip=(
                    "toy: the built-in model's world (one background, four colours, discs, 1-2 free objects); full: "
                    "every background, colour and shape of the collision world. Default: the world the shipped "
                    "built-in model was trained on.")),
            ],
            outputs=[
                io.Image.Output(display_name="first_frame", tooltip="Frame 0 of the scene [1, H, W, 3]: the image to animate."),
                io.Mask.Output(display_name="driver_masks", tooltip=(
                    "The driven objects' masks, one per frame [frames, H, W]: the driving motion.")),
                io.Image.Output(display_name="ground_truth", tooltip=(
                    "The simulated video [frames, H, W, 3], to compare with the generated one.")),
                io.Float.Output(display_name="fps", tooltip="The scene's frame rate (one simulated frame per video frame)."),
            ],
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(synthetic.make, inputs)


# ---------------------------------------------------------------------------------------------- native path
class InterDynControlBranchLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InterDynControlBranchLoader", display_name="Load InterDyn Control Branch", category=CATEGORY,
            description=("Loads an InterDyn control branch (the official `controlnet` folder, an exported "
                         ".safetensors file from models/interdyn or models/controlnet, or the built-in toy model) as "
                         "a CONTROL_NET for Apply InterDyn in ComfyUI's own SVD graphs. ComfyUI's model manager "
                         "loads, offloads and casts it like its own ControlNets. The residual mode (official "
                         "4,4,4,4,3,3,3,2,2,2,1,1 or standard) comes with the weights."),
            inputs=[
                io.Combo.Input("control_branch", options=models.list_control_branches(native.CONTROL_FOLDERS,
                                                                                        none=False), tooltip=(
                    "InterDyn control branch: a folder with config.json (the official release's `controlnet`) or an "
                    "exported .safetensors file, in models/interdyn or models/controlnet; builtin:toy-physics is the "
                    "small model shipped with the pack (for its toy backbone).")),
                io.Combo.Input("weight_dtype", options=native.WEIGHT_DTYPES, default="default", tooltip=(
                    "dtype of the branch's weights. default: what ComfyUI picks for diffusion models on this device "
                    "(fp32 on the CPU, fp16/bf16 on a GPU).")),
            ],
            outputs=[io.ControlNet.Output(display_name="control_net", tooltip=(
                "The InterDyn control branch, for Apply InterDyn."))],
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(native.load_branch, inputs)


class InterDynApply(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="InterDynApply", display_name="Apply InterDyn", category=CATEGORY,
            description=("Puts InterDyn's driving motion on SVD conditioning, like Apply ControlNet (Advanced): "
                         "connect the positive and negative outputs of SVD_img2vid_Conditioning, the control branch "
                         "and the control frames (one per video frame), then sample with any KSampler. The control "
                         "acts on both CFG halves, as InterDyn requires; other ControlNets applied before are kept "
                         "and summed in."),
            inputs=[
                io.Conditioning.Input("positive", tooltip="Positive output of SVD_img2vid_Conditioning."),
                io.Conditioning.Input("negative", tooltip="Negative output of SVD_img2vid_Conditioning."),
                io.ControlNet.Input("control_net", tooltip="From Load InterDyn Control Branch."),
                io.Image.Input("image", tooltip=(
                    "Control frames, one per video frame along the batch, in [0, 1] (e.g. the preview output of "
                    "InterDyn Control From Masks/Renders). Resized and centre-cropped to the video size when they "
                    "differ.")),
                io.Float.Input("strength", default=1.0, min=0.0, max=10.0, step=0.01, tooltip=(
                    "Scale of the control branch's residuals (1 = as trained; 0 = plain SVD, the branch does not "
                    "run).")),
                io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.001, tooltip=(
                    "Where in the sampling (as ComfyUI counts it: percent of the noise schedule) the control starts "
                    "acting.")),
                io.Float.Input("end_percent", default=1.0, min=0.0, max=1.0, step=0.001, tooltip=(
                    "Where in the sampling the control stops acting.")),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive", tooltip="Positive conditioning with the InterDyn control."),
                io.Conditioning.Output(display_name="negative", tooltip=(
                    "Negative conditioning with the same InterDyn control (InterDyn keeps the control on the "
                    "unconditional half).")),
            ],
        )

    @classmethod
    def execute(cls, **inputs):
        return _run(native.apply, inputs)


#: every node, in the order of the Add Node menu
NODES: list[type[io.ComfyNode]] = [
    InterDynModelLoader, InterDynControlFromMasks, InterDynControlFromRenders, InterDynSampler, InterDynDecode,
    InterDynCutAndDragReference,
    SAM2VideoMasks, InterDynMaskTrajectory, InterDynDriveEditor, InterDynSyntheticScene,
    InterDynControlBranchLoader, InterDynApply,
]


class InterDynExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)
