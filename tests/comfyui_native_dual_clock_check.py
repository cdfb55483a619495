"""Run dual-clock denoising as a graph of ComfyUI's own nodes and the pack's sampler side by side; print one report.

Run with ComfyUI's Python (``COMFYUI_PATH`` = the checkout): ``tests/test_comfyui_native_dual_clock.py`` does it in
a subprocess. CPU, fp32, the tiny single-file SVD of ``../shared/fixtures/svd_single_file_tiny`` (ComfyUI's objects
built by ``comfy_tiny_svd``, ours by ``interdyn.single_file``), as ``comfyui_native_check.py``.

The graph, called node by node (the nodes' own classes and methods): VAE Encode (the reference frames) ->
Set Latent Noise Mask (Invert Mask of the region: 1 = free) -> Basic Scheduler (karras) -> Split Sigmas at t_weak
-> Split Sigmas at t_strong -> SamplerCustomAdvanced (Random Noise, CFG Guider on Video Linear CFG Guidance, euler)
on the held part -> Set Latent Noise Mask (Solid Mask 1.0: every cell free again) -> SamplerCustomAdvanced (Disable
Noise) on the rest; the same with two KSampler (Advanced) instead of the sigma nodes and the two
SamplerCustomAdvanced; and with Apply InterDyn on the conditioning (InterDyn + drag).
The pack side is ``sample_latents(..., dual_clock=DualClock(...))`` with the same conditioning tensors (the pack's
``encode_conditioning`` output handed to ComfyUI's conditioning), the same sigmas and the same noise (the
Random Noise node's tensor passed as ``latents``).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from comfyui_native_check import (FIXTURE, SGM_RESNET_EPS, _import_pack, _start_comfy,  # noqa: E402
                                  set_resnet_groupnorm_eps)

F, H, W = 3, 128, 128         # latents 16x16 (see comfyui_native_check)
STEPS, CFG, SEED = 8, 3.0, 7  # 8 Karras steps 700 -> 0.002: 700, 229, 67.6, 18.0, 4.2, 0.84, 0.14, 0.017, 0.002, 0
WEAK, STRONG = 2, 4           # the two clocks as schedule indices: start at sigmas[2], hold the region to sigmas[4]
FPS, MOTION, AUG = 7, 40, 0.02


def _scene(aligned: bool):
    """A first frame (gradient, a bright square or disc) and masks moving the object right by 16 px a frame.
    ``aligned``: a 32x32 square on 8-px cells (its latent mask is exactly 0/1 on both sides); else a disc."""
    import torch

    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    image = torch.stack([xs / W, ys / H, torch.full_like(xs, 0.4)])
    masks = torch.zeros(F, H, W)
    for f in range(F):
        if aligned:
            masks[f, 48:80, 16 + 16 * f:48 + 16 * f] = 1
        else:
            masks[f] = (((xs - (37.3 + 16 * f)) ** 2 + (ys - 61.7) ** 2) < 15.5 ** 2).float()
    image = image * (1 - masks[0]) + torch.tensor([0.95, 0.9, 0.2])[:, None, None] * masks[0]
    return image, masks


def main() -> dict:
    _start_comfy()
    import torch

    torch.set_grad_enabled(False)
    import comfy.utils
    import nodes as core
    from comfy_extras.nodes_custom_sampler import (BasicScheduler, CFGGuider, DisableNoise, KSamplerSelect,
                                                   RandomNoise, SamplerCustomAdvanced, SplitSigmas)
    from comfy_extras.nodes_mask import InvertMask, SolidMask
    from comfy_extras.nodes_video_model import VideoLinearCFGGuidance
    from comfy_tiny_svd import load_tiny_svd

    pack = _import_pack()
    from interdyn_pack.interdyn.core.dual_clock import DualClock, encode_reference, latent_region
    from interdyn_pack.interdyn.core.sampling import decode_latents, encode_conditioning, sample_latents
    from interdyn_pack.interdyn.data.cut_and_drag import cut_and_drag
    from interdyn_pack.interdyn.models.backbone import SVDBackbone
    from interdyn_pack.interdyn.single_file import load_svd_single_file

    convert = pack.nodes.convert
    cut_and_drag_node = pack.nodes.FUNCTIONS["InterDynCutAndDragReference"]
    t0 = time.time()
    ckpt = FIXTURE / "tiny_svd.safetensors"
    patcher, _clip_vision, vae = load_tiny_svd(ckpt, FIXTURE / "configs.json")
    model = VideoLinearCFGGuidance().patch(patcher, 1.0)[0]
    parts = load_svd_single_file(ckpt, dtype=torch.float32, unet_head_dim=16, clip_head_dim=16, num_frames=F)
    backbone = SVDBackbone(parts["unet"], parts["vae"], parts["image_encoder"], clip_mean=tuple(parts["clip_mean"]),
                           clip_std=tuple(parts["clip_std"]), clip_size=int(parts["clip_size"]))
    set_resnet_groupnorm_eps(backbone.unet, SGM_RESNET_EPS)  # ComfyUI's UNet numerics on our side too
    scale = patcher.model.latent_format.scale_factor

    image, masks = _scene(aligned=True)
    # the pack's node, as the workflow wires it: IMAGE / MASK in, reference IMAGE [F, H, W, 3] and region MASK out
    ref_image, region = cut_and_drag_node(convert.frames_to_image(image[None]), masks)
    reference = ref_image.permute(0, 3, 1, 2)  # [F, 3, H, W] for the library

    # conditioning: the pack's tensors, handed to ComfyUI as SVD_img2vid_Conditioning would hand its own
    cond = encode_conditioning(backbone, image[None], fps=FPS, motion_bucket_id=MOTION, noise_aug_strength=AUG,
                               generator=torch.Generator("cpu").manual_seed(SEED))
    opts = {"motion_bucket_id": MOTION, "fps": FPS, "augmentation_level": AUG}
    positive = [[cond.image_embeddings, {**opts, "concat_latent_image": cond.image_latents}]]
    negative = [[torch.zeros_like(cond.image_embeddings),
                 {**opts, "concat_latent_image": torch.zeros_like(cond.image_latents)}]]

    # ------------------------------------------------------------ the graph, node by node
    ref_latent = core.VAEEncode().encode(vae, ref_image)[0]
    free = InvertMask().invert(region)[0]
    masked = core.SetLatentNoiseMask().set_mask(ref_latent, free)[0]
    sigmas = BasicScheduler().get_sigmas(model, "karras", STEPS, 1.0)[0]
    _, from_weak = SplitSigmas().get_sigmas(sigmas, WEAK)
    held_sigmas, free_sigmas = SplitSigmas().get_sigmas(from_weak, STRONG - WEAK)
    guider = CFGGuider().get_guider(model, positive, negative, CFG)[0]
    euler = KSamplerSelect().get_sampler("euler")[0]
    random_noise = RandomNoise().get_noise(SEED)[0]
    noise = random_noise.generate_noise(masked)  # the tensor SamplerCustomAdvanced draws from this node
    advanced = SamplerCustomAdvanced()
    held_out = advanced.sample(random_noise, guider, euler, held_sigmas, masked)[0]
    cleared = core.SetLatentNoiseMask().set_mask(held_out, SolidMask().solid(1.0, W, H)[0])[0]
    native = advanced.sample(DisableNoise().get_noise()[0], guider, euler, free_sigmas, cleared)[0]
    # the README's first wording: the second sampler fed the first's output as it is (its noise mask rides along)
    carried = advanced.sample(DisableNoise().get_noise()[0], guider, euler, free_sigmas, held_out)[0]
    native_frames = core.VAEDecode().decode(vae, native)[0]
    # the same with two KSampler (Advanced) nodes (the shipped workflow): steps START..STRONG with the noise added and
    # the leftover noise returned, then STRONG..end without adding noise
    ksampler = core.KSamplerAdvanced()
    ks_held = ksampler.sample(model, "enable", SEED, STEPS, CFG, "euler", "karras", positive, negative, masked, WEAK,
                              STRONG, "enable")[0]
    ks_cleared = core.SetLatentNoiseMask().set_mask(ks_held, SolidMask().solid(1.0, W, H)[0])[0]
    ksampler_out = ksampler.sample(model, "disable", SEED, STEPS, CFG, "euler", "karras", positive, negative,
                                   ks_cleared, STRONG, 10000, "disable")[0]

    # ------------------------------------------------------------ the pack's sampler, same inputs
    def ours(sigma_strong):
        dc = DualClock(reference, region, float(sigmas[WEAK]), sigma_strong)
        return sample_latents(backbone, image[None], num_frames=F, min_guidance=1.0, max_guidance=CFG, fps=FPS,
                              motion_bucket_id=MOTION, noise_aug_strength=AUG, generator=SEED, latents=noise[None],
                              sigmas=sigmas, dual_clock=dc)[0]

    pack_latent = ours(float(sigmas[STRONG]))
    pack_frames = decode_latents(backbone, pack_latent[None])[0].permute(0, 2, 3, 1)
    plain = sample_latents(backbone, image[None], num_frames=F, min_guidance=1.0, max_guidance=CFG, fps=FPS,
                           motion_bucket_id=MOTION, noise_aug_strength=AUG, generator=SEED, latents=noise[None],
                           sigmas=sigmas)[0]

    def rel(a, b):
        return float((a - b).abs().max() / b.abs().max())

    held = 1 - comfy.utils.reshape_mask(free.reshape(-1, 1, H, W), noise.shape)  # ComfyUI's latent mask, 1 = held
    ours_held = latent_region(region[None], 8)[0].expand_as(held)
    ref_scaled = ref_latent["samples"] * scale
    pack_ref = encode_reference(backbone, reference[None].float())[0]
    report = {
        "sigmas": [round(float(s), 4) for s in sigmas],
        "held_sigmas": [round(float(s), 4) for s in held_sigmas],
        "free_sigmas": [round(float(s), 4) for s in free_sigmas],
        "sigma_weak": float(sigmas[WEAK]), "sigma_strong": float(sigmas[STRONG]),
        "held_cells": int(held[:, 0].sum()),
        "latent_masks_equal": bool(torch.equal(held, ours_held)),
        "latent_mask_values": sorted({float(v) for v in held.unique()}),
        "reference_encode_rel": rel(ref_scaled, pack_ref),
        "noise_mask_rides_along": "noise_mask" in held_out,
        "native_vs_pack_latent_rel": rel(native["samples"] * scale, pack_latent),
        "native_vs_pack_frames_max_abs": float((native_frames - pack_frames).abs().max()),
        "ksampler_vs_pack_latent_rel": rel(ksampler_out["samples"] * scale, pack_latent),
        "ksampler_vs_custom_max_abs": float((ksampler_out["samples"] - native["samples"]).abs().max()),
        "drag_effect_rel": rel(pack_latent, plain),
        # after the held part, the region is the reference noised to t_strong with the sampling's own noise
        "held_region_vs_renoised_reference_rel": rel((held_out["samples"] * scale) * held,
                                                     (ref_scaled + float(sigmas[STRONG]) * noise) * held),
        # without clearing the mask, the second sampler keeps the region at the noisy t_strong latent
        "carried_region_vs_noisy_input_max_abs": float(((carried["samples"] - held_out["samples"]) * held).abs().max()),
        "carried_region_noise_std": float((carried["samples"] * scale - ref_scaled)[held.bool()].std()),
        "cleared_region_noise_std": float((native["samples"] * scale - ref_scaled)[held.bool()].std()),
    }

    # InterDyn + drag: Apply InterDyn (the drive's masks as control frames) on both conditionings, the same graph
    import folder_paths
    from interdyn_pack.interdyn.core.loading import load_control_branch, save_control_branch
    from interdyn_pack.interdyn.core.tiny import TINY_CONTROL_CNN, perturb_zero_convs
    from interdyn_pack.interdyn.models.controlnet import InterDynControlNet

    tmp = Path(tempfile.mkdtemp(prefix="interdyn_native_drag_"))
    folder_paths.add_model_folder_path("interdyn", str(tmp))
    torch.manual_seed(1)
    branch = InterDynControlNet.from_unet(backbone.unet, conditioning_embedding_out_channels=TINY_CONTROL_CNN,
                                          residual_mode="official")
    perturb_zero_convs(branch, 0)
    save_control_branch(branch, tmp / "branch.safetensors")
    control_net = pack.nodes.FUNCTIONS["InterDynControlBranchLoader"]("branch.safetensors", "fp32")[0]
    control = masks[:, None].expand(F, 3, H, W)  # the drive's masks, white on black
    pos_c, neg_c = pack.nodes.FUNCTIONS["InterDynApply"](positive, negative, control_net,
                                                          convert.frames_to_image(control), 1.0, 0.0, 1.0)
    with_branch_held = ksampler.sample(model, "enable", SEED, STEPS, CFG, "euler", "karras", pos_c, neg_c, masked,
                                       WEAK, STRONG, "enable")[0]
    with_branch = ksampler.sample(model, "disable", SEED, STEPS, CFG, "euler", "karras", pos_c, neg_c,
                                  core.SetLatentNoiseMask().set_mask(with_branch_held,
                                                                     SolidMask().solid(1.0, W, H)[0])[0],
                                  STRONG, 10000, "disable")[0]
    pack_branch = load_control_branch(tmp / "branch.safetensors", dtype=torch.float32)
    pack_with_branch = sample_latents(
        backbone, image[None], control[None], pack_branch, control_strength=1.0, num_frames=F, min_guidance=1.0,
        max_guidance=CFG, fps=FPS, motion_bucket_id=MOTION, noise_aug_strength=AUG, generator=SEED,
        latents=noise[None], sigmas=sigmas,
        dual_clock=DualClock(reference, region, float(sigmas[WEAK]), float(sigmas[STRONG])))[0]
    report["branch_native_vs_pack_latent_rel"] = rel(with_branch["samples"] * scale, pack_with_branch)
    report["branch_effect_rel"] = rel(pack_with_branch, pack_latent)

    # sigma_strong at the last level (0): one SamplerCustomAdvanced from t_weak to the end, the mask never cleared:
    # the region is the reference's latents (VAE Encode's round trip) on both sides
    to_zero = advanced.sample(random_noise, guider, euler, from_weak, masked)[0]
    pack_zero = ours(0.0)
    report["zero_native_region_vs_reference_max_abs"] = float(((to_zero["samples"] - ref_latent["samples"]) * held)
                                                              .abs().max())
    report["zero_pack_region_vs_reference_max_abs"] = float(((pack_zero - pack_ref) * ours_held).abs().max())
    report["zero_native_vs_pack_latent_rel"] = rel(to_zero["samples"] * scale, pack_zero)
    report["reference_latent_abs_max"] = float(ref_scaled.abs().max())

    # a region off the 8-px grid (a disc): ComfyUI resizes the mask bilinearly (comfy.utils.reshape_mask), the
    # pack keeps a cell when more than half its pixels are in; where do the two masks disagree?
    disc_image, disc_masks = _scene(aligned=False)
    _, disc_region = cut_and_drag(disc_image, disc_masks)
    native_mask = 1 - comfy.utils.reshape_mask((1 - disc_region).reshape(-1, 1, H, W), noise.shape)[:, 0]
    pack_mask = latent_region(disc_region[None], 8)[0, :, 0]
    cover = torch.nn.functional.avg_pool2d(disc_region[:, None], 8)[:, 0]
    partial = (cover > 0) & (cover < 1)
    differ = (native_mask - pack_mask).abs() > 1e-6
    report["disc"] = {"cells_held_pack": int(pack_mask.sum()), "cells_partial": int(partial.sum()),
                      "cells_differ": int(differ.sum()), "cells_differ_not_partial": int((differ & ~partial).sum()),
                      "soft_cells_native": int(((native_mask > 1e-6) & (native_mask < 1 - 1e-6)).sum())}
    report["seconds"] = round(time.time() - t0, 1)
    return report


if __name__ == "__main__":
    print("REPORT " + json.dumps(main()))
