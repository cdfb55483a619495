"""Measure InterDyn on ComfyUI's native SVD path against the pack's own sampler; print one JSON report.

Run with ComfyUI's Python (``COMFYUI_PATH`` = the checkout): ``tests/test_comfyui_native.py`` does it in a
subprocess. Everything runs on the CPU in fp32 with the tiny single-file SVD checkpoint of
``../shared/fixtures/svd_single_file_tiny`` (``SVD_TINY_FIXTURE`` overrides the folder): ComfyUI's model
objects are built from it with ComfyUI's classes (``comfy_tiny_svd``), ours with ``interdyn.single_file``.
Both sides get identical conditioning tensors (CLIP embedding, image latent, time ids), control frames
and initial noise, so what is measured is the denoiser, the control and the sampler loop.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURE = Path(os.environ.get("SVD_TINY_FIXTURE", Path(os.environ.get("INTERDYN_SHARED", REPO.parent / "shared")) / "fixtures"
                              / "svd_single_file_tiny"))
F, H, W = 3, 128, 128  # latents 16x16: at 8x8 the deepest level is 1x1 and GroupNorm statistics of 2 values
# amplify float rounding (measured 6e-4 relative between two correct UNet implementations)
SIGMA, STRENGTH, STEPS, CFG = 2.5, 0.8, 4, 3.0
SGM_RESNET_EPS, DIFFUSERS_RESNET_EPS = 1e-5, 1e-6
FPS, MOTION, AUG = 7, 40, 0.02


def _start_comfy():
    sys.argv = [sys.argv[0], "--cpu"]
    sys.path.insert(0, os.environ["COMFYUI_PATH"])
    sys.path.insert(0, str(HERE))
    import comfy.options

    comfy.options.enable_args_parsing()
    import comfy.cli_args  # noqa: F401  (parses --cpu)


def _import_pack():
    """The repository as ComfyUI imports a custom node folder: a package, relative imports inside."""
    spec = importlib.util.spec_from_file_location("interdyn_pack", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules["interdyn_pack"] = pack
    spec.loader.exec_module(pack)
    return pack


def set_resnet_groupnorm_eps(unet, eps: float) -> None:
    """The one difference between the two UNet definitions: the GroupNorms of the (spatial and temporal)
    ResNets have eps 1e-5 in Stability's SGM code, which ComfyUI runs, and 1e-6 in diffusers' SVD blocks."""
    import torch

    for name, module in unet.named_modules():
        if isinstance(module, torch.nn.GroupNorm) and ("spatial_res_block" in name or "temporal_res_block" in name):
            module.eps = eps


def rel(a, b) -> float:
    return float((a.detach().float() - b.detach().float()).abs().max() / b.detach().float().abs().max())


def main() -> dict:
    _start_comfy()
    import torch

    import comfy.model_management as mm
    import comfy.sample
    import comfy.samplers
    import folder_paths
    from comfy_extras.nodes_video_model import VideoLinearCFGGuidance
    from comfy_tiny_svd import load_tiny_svd

    pack = _import_pack()
    from interdyn_pack.interdyn.core.loading import load_control_branch, save_control_branch
    from interdyn_pack.interdyn.models.backbone import SVDBackbone
    from interdyn_pack.interdyn.models.controlnet import InterDynControlNet
    from interdyn_pack.interdyn.core.sampling import (InterDynDenoiser, VideoConditioning, decode_latents, karras_sigmas,
                                                 sample_euler)
    from interdyn_pack.interdyn.single_file import load_svd_single_file
    from interdyn_pack.interdyn.core.tiny import TINY_CONTROL_CNN, perturb_zero_convs

    load_branch = pack.nodes.FUNCTIONS["InterDynControlBranchLoader"]
    apply = pack.nodes.FUNCTIONS["InterDynApply"]
    report: dict = {"sizes": {"frames": F, "height": H, "width": W}}
    t0 = time.time()

    ckpt = FIXTURE / "tiny_svd.safetensors"
    patcher, clip_vision, vae = load_tiny_svd(ckpt, FIXTURE / "configs.json")
    model = VideoLinearCFGGuidance().patch(patcher, 1.0)[0]
    parts = load_svd_single_file(ckpt, dtype=torch.float32, unet_head_dim=16, clip_head_dim=16, num_frames=F)
    backbone = SVDBackbone(parts["unet"], parts["vae"], parts["image_encoder"])

    g = torch.Generator().manual_seed(0)
    embedding = torch.randn(1, 1, 16, generator=g)
    image_latent = torch.randn(1, 4, H // 8, W // 8, generator=g)
    frames = torch.rand(F, H, W, 3, generator=g)  # control frames, a ComfyUI IMAGE
    x = torch.randn(F, 4, H // 8, W // 8, generator=g) * SIGMA
    noise = torch.randn(F, 4, H // 8, W // 8, generator=g)
    opts = {"motion_bucket_id": MOTION, "fps": FPS, "augmentation_level": AUG}
    positive = [[embedding, {**opts, "concat_latent_image": image_latent}]]
    negative = [[torch.zeros_like(embedding), {**opts, "concat_latent_image": torch.zeros_like(image_latent)}]]
    # diffusers' convention: the time id is fps - 1, as ComfyUI's SVD_img2vid.encode_adm passes it
    cond = VideoConditioning(embedding, image_latent, torch.tensor([[FPS - 1, MOTION, AUG]], dtype=torch.float32))
    control = frames.permute(0, 3, 1, 2)[None]

    tmp = Path(tempfile.mkdtemp(prefix="interdyn_native_"))
    folder_paths.add_model_folder_path("interdyn", str(tmp))

    def comfy_x0(pos, neg, sigma=SIGMA):
        out = {}

        def one_call(m, latent, sigmas, extra_args=None, callback=None, disable=None):
            out["x0"] = m(x.to(latent), sigmas[0] * latent.new_ones([latent.shape[0]]), **extra_args)
            return latent

        comfy.sample.sample_custom(model, torch.zeros_like(x), CFG, comfy.samplers.KSAMPLER(one_call),
                                   torch.tensor([sigma, 0.0]), pos, neg, torch.zeros_like(x), seed=0)
        return out["x0"]

    def our_denoiser(branch, steps=1, strength=STRENGTH):
        return InterDynDenoiser(backbone, cond, F, steps, control_branch=branch, control=control,
                                control_strength=strength, min_guidance=1.0, max_guidance=CFG)

    plain = comfy_x0(positive, negative)
    controls = {}
    for mode in ("official", "standard"):
        torch.manual_seed(1)
        branch = InterDynControlNet.from_unet(backbone.unet, conditioning_embedding_out_channels=TINY_CONTROL_CNN,
                                              residual_mode=mode)
        perturb_zero_convs(branch, 0)
        save_control_branch(branch, tmp / f"branch_{mode}.safetensors")
        ours_branch = load_control_branch(tmp / f"branch_{mode}.safetensors", dtype=torch.float32)
        control_net = load_branch(f"branch_{mode}.safetensors", "fp32")[0]
        controls[mode] = control_net
        pos, neg = apply(positive, negative, control_net, frames, STRENGTH, 0.0, 1.0)
        theirs = comfy_x0(pos, neg)
        ours_diffusers_eps = our_denoiser(ours_branch)(x[None], torch.tensor(SIGMA), 0)[0]
        set_resnet_groupnorm_eps(backbone.unet, SGM_RESNET_EPS)
        ours = our_denoiser(ours_branch)(x[None], torch.tensor(SIGMA), 0)[0]
        set_resnet_groupnorm_eps(backbone.unet, DIFFUSERS_RESNET_EPS)
        report[f"denoiser_{mode}"] = {"rel_max_diff": rel(theirs, ours), "control_effect": rel(theirs, plain),
                                      "rel_max_diff_diffusers_eps": rel(theirs, ours_diffusers_eps)}
        if mode == "official":
            official_branch = ours_branch

    # chaining: two InterDyn controls of strengths 0.5 and 0.3 sum to one of 0.8 (residuals are linear in strength)
    pos, neg = apply(positive, negative, controls["official"], frames, 0.5, 0.0, 1.0)
    pos, neg = apply(pos, neg, controls["official"], frames, 0.3, 0.0, 1.0)
    set_resnet_groupnorm_eps(backbone.unet, SGM_RESNET_EPS)  # from here on: the same UNet numerics on both sides
    single = our_denoiser(official_branch)(x[None], torch.tensor(SIGMA), 0)[0]
    report["chained_0.5_plus_0.3_vs_0.8"] = rel(comfy_x0(pos, neg), single)

    # a whole run: native KSampler (euler, karras) vs our sampler, same initial noise, frames compared
    branch_module = controls["official"].branch
    calls = {"branch": 0, "cnn": 0}
    branch_module.conv_in.register_forward_hook(lambda *a: calls.__setitem__("branch", calls["branch"] + 1))
    branch_module.controlnet_cond_embedding.register_forward_hook(lambda *a: calls.__setitem__("cnn", calls["cnn"] + 1))

    def native_run(start=0.0, end=1.0, strength=STRENGTH):
        calls.update(branch=0, cnn=0)
        pos, neg = apply(positive, negative, controls["official"], frames, strength, start, end)
        latent = comfy.sample.sample(model, noise, STEPS, CFG, "euler", "karras", pos, neg, torch.zeros_like(noise),
                                     seed=0)
        return latent, dict(calls)

    latent, counted = native_run()
    report["native_run_calls"] = counted
    report["loaded_after_run"] = any(lm.model is controls["official"].patcher for lm in mm.current_loaded_models)
    native_frames = vae.decode(latent)  # [F, H, W, 3] in [0, 1]
    sigmas = karras_sigmas(STEPS)
    ours_latent = sample_euler(our_denoiser(official_branch, STEPS), noise[None] * (sigmas[0] ** 2 + 1) ** 0.5, sigmas)
    ours_frames = decode_latents(backbone, ours_latent)[0].permute(0, 2, 3, 1)
    set_resnet_groupnorm_eps(backbone.unet, DIFFUSERS_RESNET_EPS)
    ours_latent_d = sample_euler(our_denoiser(official_branch, STEPS), noise[None] * (sigmas[0] ** 2 + 1) ** 0.5, sigmas)
    ours_frames_d = decode_latents(backbone, ours_latent_d)[0].permute(0, 2, 3, 1)
    set_resnet_groupnorm_eps(backbone.unet, SGM_RESNET_EPS)
    report["whole_run"] = {"frames_max_abs_diff": float((native_frames - ours_frames).abs().max()),
                           "frames_max_abs_diff_diffusers_eps": float((native_frames - ours_frames_d).abs().max()),
                           "latent_rel_max_diff": rel(latent * 0.18215, ours_latent[0]),
                           "sigmas_max_abs_diff": float((comfy.samplers.calculate_sigmas(
                               patcher.get_model_object("model_sampling"), "karras", STEPS) - sigmas).abs().max())}

    mm.unload_all_models()  # what POST /free with unload_models does
    report["loaded_after_free"] = any(lm.model is controls["official"].patcher for lm in mm.current_loaded_models)

    # no branch compute where it has no effect
    ms = patcher.get_model_object("model_sampling")
    report["calls_strength_0"] = native_run(strength=0.0)[1]
    window = (0.3, 0.4)  # sigmas 15.1 .. 4.3: no Karras sigma of 4 steps (700, 70.7, 2.27, 0.002) falls inside
    report["calls_outside_window"] = native_run(*window)[1]
    half = native_run(0.0, 0.5)[1]
    report["calls_first_half"] = half
    step_sigmas = comfy.samplers.calculate_sigmas(ms, "karras", STEPS)[:-1]
    report["expected_first_half"] = int((step_sigmas >= ms.percent_to_sigma(0.5)).sum())

    # half-precision branches on the fp32 model (CPU): finite and close to fp32
    for dtype in ("bf16", "fp16"):
        try:
            net = load_branch("branch_official.safetensors", dtype)[0]
            pos, neg = apply(positive, negative, net, frames, STRENGTH, 0.0, 1.0)
            out = comfy_x0(pos, neg)
            report[f"denoiser_official_{dtype}_branch"] = {"finite": bool(torch.isfinite(out).all()),
                                                          "rel_vs_fp32": rel(out, single)}
        except Exception as err:  # noqa: BLE001 - report, the test decides
            report[f"denoiser_official_{dtype}_branch"] = {"error": f"{type(err).__name__}: {err}"}
    report["seconds"] = round(time.time() - t0, 1)
    return report


if __name__ == "__main__":
    print("REPORT " + json.dumps(main()))
