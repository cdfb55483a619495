"""Parity with the official InterDyn release and with diffusers' SVD pipeline.

Reference numbers come from ../shared/fixtures/official_interdyn_tiny (made by running the
official code on tiny random models); its README shows every plausible mistake moves
``frames`` by >= 3e-3, while float-order noise is ~5e-6, so 1e-4 separates the two.
"""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import fixture_dir
from interdyn.core.loading import load_control_branch, load_svd_backbone, save_svd_folder
from interdyn.core.sampling import decode_latents, generate_video, karras_sigmas, sample_latents

FRAMES_ATOL = 1e-4
# Against a live diffusers pipeline built in this process (another module instance, another code path
# for preprocessing) the float-order noise after the sampler reaches 1.2e-4 on some CPUs (issue 18:
# 1.15e-4 on a 2-core Xeon). 5e-4 is 4x that noise and still 7x below the smallest real mistake the
# fixture README measures on frames (fps - 1 in the time ids: 3.6e-3).
LIVE_DIFFUSERS_ATOL = 5e-4
FORWARD_RTOL = 1e-5


@pytest.fixture(scope="module")
def ref():
    root = fixture_dir("official_interdyn_tiny")
    backbone = load_svd_backbone(root / "svd_tiny")
    branch = load_control_branch(root / "interdyn_tiny" / "controlnet", backbone=backbone)
    params = json.loads((root / "params.json").read_text())["official_pipeline_call"]
    return dict(root=root, backbone=backbone, branch=branch, params=params,
                inputs=load_file(root / "inputs.safetensors"), expected=load_file(root / "expected.safetensors"))


def official_call_kwargs(p: dict) -> dict:
    # the official pipeline passes fps unchanged; ours takes diffusers' convention (fps - 1 reaches the UNet)
    return dict(num_frames=p["num_frames"], num_steps=p["num_inference_steps"], min_guidance=p["min_guidance_scale"],
                max_guidance=p["max_guidance_scale"], fps=p["fps"] + 1, motion_bucket_id=p["motion_bucket_id"],
                noise_aug_strength=p["noise_aug_strength"], control_strength=p["controlnet_cond_scale"],
                decode_chunk_size=p["decode_chunk_size"])


def run(ref, **overrides):
    kwargs = {**official_call_kwargs(ref["params"]), **overrides}
    generator = torch.Generator("cpu").manual_seed(ref["params"]["seed"])
    return generate_video(ref["backbone"], ref["inputs"]["image"], ref["inputs"]["control"], ref["branch"],
                          generator=generator, **kwargs)


def test_official_checkpoint_gets_official_residual_mode(ref):
    assert ref["branch"].residual_mode == "official", "a config written by ControlNetSDVModel must select the official mode"
    assert ref["branch"].residual_multiplicities() == [4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1], \
        "the fixture README measured these multiplicities on the official UNet"


def test_sigmas_match_the_fixture_schedule(ref):
    measured = json.loads((ref["root"] / "params.json").read_text())["measured"]["scheduler_sigmas"]
    ours = karras_sigmas(3, ref["backbone"].sigma_min, ref["backbone"].sigma_max)
    assert torch.allclose(ours, torch.tensor(measured), rtol=1e-6, atol=0), f"Karras sigmas {ours} != {measured}"


def test_control_branch_residuals_and_unet_output_match_official(ref):
    e = ref["expected"]
    args = (e["fwd_sample"], e["fwd_timestep"], e["fwd_encoder_hidden_states"], e["fwd_added_time_ids"])
    with torch.no_grad():
        down, mid = ref["branch"](*args, controlnet_cond=e["fwd_controlnet_cond"], return_dict=False)
        out = ref["backbone"].unet(*args, down_block_additional_residuals=down, mid_block_additional_residual=mid,
                                   residual_mode=ref["branch"].residual_mode).sample
    pairs = [(f"down_res_{k:02d}", d) for k, d in enumerate(down)] + [("mid_res", mid), ("unet_out", out)]
    for name, ours in pairs:
        want = e[name]
        rel = ((ours - want).abs().max() / want.abs().max()).item()
        assert rel <= FORWARD_RTOL, f"{name}: relative error {rel:.2e} > {FORWARD_RTOL} against the official code"


def test_frames_match_official_pipeline(ref):
    diff = (run(ref) - ref["expected"]["frames"]).abs().max().item()
    assert diff <= FRAMES_ATOL, f"frames differ from the official pipeline by {diff:.2e} (> {FRAMES_ATOL})"


def test_frames_given_initial_latents_match_official(ref):
    out = run(ref, latents=ref["expected"]["init_latents"])
    diff = (out - ref["expected"]["frames_given_latents"]).abs().max().item()
    assert diff <= FRAMES_ATOL, f"with explicit latents the frames differ by {diff:.2e} (> {FRAMES_ATOL})"


def test_control_strength_zero_matches_official_and_diffusers(ref):
    out = run(ref, control_strength=0.0)
    diff = (out - ref["expected"]["frames_cond_scale_0"]).abs().max().item()
    assert diff <= FRAMES_ATOL, f"strength 0 differs from the official scale-0 call by {diff:.2e}"
    # stock diffusers StableVideoDiffusionPipeline (fps=7 there: it subtracts 1 itself)
    diff_svd = (out - ref["expected"]["svd_frames"]).abs().max().item()
    assert diff_svd <= FRAMES_ATOL, f"strength 0 differs from diffusers' SVD pipeline by {diff_svd:.2e}"


def test_without_control_branch_equals_plain_svd(ref):
    kwargs = official_call_kwargs(ref["params"])
    kwargs.pop("control_strength")
    chunk = kwargs.pop("decode_chunk_size")
    generator = torch.Generator("cpu").manual_seed(ref["params"]["seed"])
    latents = sample_latents(ref["backbone"], ref["inputs"]["image"], generator=generator, **kwargs)
    out = decode_latents(ref["backbone"], latents, chunk)
    diff = (out - ref["expected"]["frames_cond_scale_0"]).abs().max().item()
    assert diff <= FRAMES_ATOL, f"no control branch should be plain SVD; differs by {diff:.2e}"


def test_matches_live_diffusers_pipeline_on_another_backbone(tmp_path):
    """Our sampler vs diffusers' StableVideoDiffusionPipeline on a freshly built tiny backbone."""
    from diffusers import StableVideoDiffusionPipeline
    from PIL import Image

    from interdyn.core.tiny import build_tiny_backbone

    save_svd_folder(build_tiny_backbone(seed=7), tmp_path / "svd")
    backbone = load_svd_backbone(tmp_path / "svd")
    pipe = StableVideoDiffusionPipeline.from_pretrained(tmp_path / "svd", local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    # diffusers turns a PIL image into a channels-last-strided tensor, whose VAE convolution rounds
    # differently (fixture README: "memory layout"); make it contiguous to compare the maths alone
    preprocess = pipe.video_processor.preprocess
    pipe.video_processor.preprocess = lambda *a, **k: preprocess(*a, **k).contiguous()
    g = torch.Generator().manual_seed(3)
    image_u8 = (torch.rand(3, 64, 64, generator=g) * 255).round().to(torch.uint8)
    image = image_u8.float() / 255
    kw = dict(height=64, width=64, num_frames=4, num_inference_steps=2, min_guidance_scale=1.5,
              max_guidance_scale=2.5, fps=9, motion_bucket_id=90, noise_aug_strength=0.05)
    want = pipe(Image.fromarray(image_u8.permute(1, 2, 0).numpy()), generator=torch.Generator().manual_seed(11),
                output_type="pt", **kw).frames
    ours = generate_video(backbone, image[None], generator=torch.Generator().manual_seed(11), num_frames=4, num_steps=2,
                          min_guidance=1.5, max_guidance=2.5, fps=9, motion_bucket_id=90, noise_aug_strength=0.05)
    diff = (ours - want).abs().max().item()
    assert diff <= LIVE_DIFFUSERS_ATOL, f"differs from diffusers' SVD pipeline by {diff:.2e} (> {LIVE_DIFFUSERS_ATOL})"
