"""Dual-clock denoising (training-free drag) composed of ComfyUI's own nodes equals the pack's sampler.

ComfyUI 0.3.64's inpainting path is Time-to-Move's replacement: with a latent noise mask, ``KSamplerX0Inpaint``
(``comfy/samplers.py``) sets the masked-out cells to ``latent_image + sigma * noise`` before every model call and the
denoised estimate there to ``latent_image``, so an Euler step lands them on ``latent_image + sigma_next * noise``.
``tests/comfyui_native_dual_clock_check.py`` runs that graph node by node in ComfyUI's Python (VAE Encode of the cut
and drag reference, Set Latent Noise Mask with the inverted region, sampling from t_weak to t_strong with the noise
added, the mask cleared with a Solid Mask of 1.0, sampling to the end with no noise added) on the tiny single-file
SVD, both with SamplerCustomAdvanced + Split Sigmas and with two KSampler (Advanced), and with Apply InterDyn on the
conditioning (InterDyn + drag), next to the pack's ``sample_latents(..., dual_clock=DualClock(...))`` on the same
conditioning tensors, sigmas and noise.

Skipped unless ``COMFYUI_PATH`` points at a ComfyUI checkout whose requirements are installed for ``COMFYUI_PYTHON``
(default: this Python).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from test_comfyui_native import FIXTURE, PYTHON, REPO, comfyui_markers

pytestmark = comfyui_markers("run dual-clock denoising as ComfyUI's own nodes")


@pytest.fixture(scope="module")
def report():
    done = subprocess.run([PYTHON, str(REPO / "tests" / "comfyui_native_dual_clock_check.py")], capture_output=True,
                          text=True, timeout=900, env={**os.environ, "SVD_TINY_FIXTURE": str(FIXTURE)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, f"the check failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    result = json.loads(lines[-1][len("REPORT "):])
    print("\nnative dual clock vs pack sampler:", json.dumps(result), file=sys.stderr)
    return result


def test_the_graph_holds_exactly_the_cells_the_pack_holds(report):
    # a region on the 8-px grid: ComfyUI's bilinear mask resize and the pack's majority rule give the same 0/1 cells
    assert report["latent_masks_equal"] and report["latent_mask_values"] == [0.0, 1.0], report
    assert report["held_cells"] > 0
    assert report["reference_encode_rel"] < 1e-5, "VAE Encode = the pack's encode_reference (posterior mode, scaled)"


def test_the_native_graph_gives_the_pack_samplers_video(report):
    assert report["drag_effect_rel"] > 0.05, f"the dual clock must change the video, or parity proves nothing: {report}"
    assert report["native_vs_pack_latent_rel"] < 2e-5, f"latents differ beyond float rounding: {report}"
    assert report["native_vs_pack_frames_max_abs"] < 1e-4, f"decoded frames differ: {report}"


def test_two_ksampler_advanced_are_the_same_graph(report):
    # start_at_step / end_at_step slice the same Karras list as Split Sigmas; the noise is the same seed's draw
    assert report["ksampler_vs_custom_max_abs"] < 1e-6, report
    assert report["ksampler_vs_pack_latent_rel"] < 2e-5, report


def test_with_apply_interdyn_the_native_graph_gives_interdyn_plus_drag(report):
    # Apply InterDyn on both conditionings + the same graph = the pack's sampler with the branch and dual_clock
    assert report["branch_effect_rel"] > 0.05, f"the branch must change the dragged video: {report}"
    assert report["branch_native_vs_pack_latent_rel"] < 2e-5, report


def test_after_the_held_phase_the_region_is_the_reference_renoised_with_the_samplings_noise(report):
    assert report["held_region_vs_renoised_reference_rel"] < 1e-5, report


def test_the_mask_must_be_cleared_before_the_free_phase(report):
    # SamplerCustomAdvanced / KSampler (Advanced) copy the input latent dict, noise_mask included, into their output:
    # fed on as it is, the second sampler keeps the region at the first one's noisy t_strong latent
    assert report["noise_mask_rides_along"], report
    assert report["carried_region_vs_noisy_input_max_abs"] < 1e-6, report
    assert report["carried_region_noise_std"] > 3 * report["cleared_region_noise_std"], \
        f"the uncleared region stays noisy, the cleared one is denoised: {report}"


def test_with_t_strong_at_the_last_level_the_region_is_the_references_latent(report):
    # one sampler from t_weak to sigma 0 with the mask: the held cells end on VAE Encode's latents of the reference
    assert report["zero_native_region_vs_reference_max_abs"] < 1e-5 * max(1.0, report["reference_latent_abs_max"]), \
        report
    assert report["zero_pack_region_vs_reference_max_abs"] < 1e-6, report
    assert report["zero_native_vs_pack_latent_rel"] < 2e-5, report


def test_off_the_grid_the_two_masks_differ_only_on_partly_covered_cells(report):
    # ComfyUI resizes the mask bilinearly (comfy.utils.reshape_mask): a cell's value is read between its two centre
    # pixels, so a cell fully inside or outside the region is 0 or 1 on both sides; only edge cells can differ
    disc = report["disc"]
    assert disc["cells_differ_not_partial"] == 0, disc
    assert disc["cells_differ"] <= disc["cells_partial"], disc
