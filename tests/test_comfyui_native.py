"""InterDyn on ComfyUI's own SVD path (Load InterDyn Control Branch + Apply InterDyn) equals the pack's sampler.

Skipped unless ``COMFYUI_PATH`` points at a ComfyUI checkout whose requirements are installed for
``COMFYUI_PYTHON`` (default: this Python). ``tests/comfyui_native_check.py`` runs in that Python (it imports
``comfy``), builds ComfyUI's SVD objects from the tiny single-file checkpoint of
``../shared/fixtures/svd_single_file_tiny`` with ComfyUI's classes and ours with ``interdyn.single_file``, feeds
both the same conditioning tensors, control frames and noise on the CPU in fp32, and prints a JSON report that
these tests read.

The two UNet definitions differ in one constant: the GroupNorm eps of the ResNets (1e-5 in Stability's SGM code,
which ComfyUI runs; 1e-6 in diffusers' SVD blocks). The parity figures are measured with our UNet's eps set to
ComfyUI's; the report also gives them with diffusers' eps (README, "Numerics of the native path").
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMFYUI = os.environ.get("COMFYUI_PATH")
PYTHON = os.environ.get("COMFYUI_PYTHON", sys.executable)
FIXTURE = Path(os.environ.get("SVD_TINY_FIXTURE", Path(os.environ.get("INTERDYN_SHARED", REPO.parent / "shared")) / "fixtures"
                              / "svd_single_file_tiny"))

def comfyui_markers(purpose: str) -> list:
    """The skips of a test module that runs ComfyUI's own nodes on the tiny single-file SVD (``purpose``: what it
    would check), each with the reason and the variable that fixes it."""
    return [
        pytest.mark.skipif(not COMFYUI or not (Path(COMFYUI) / "main.py").is_file(),
                           reason="set COMFYUI_PATH to a ComfyUI checkout (folder with main.py) with its requirements "
                                  "installed (and COMFYUI_PYTHON to its Python if it is not this one) to " + purpose),
        pytest.mark.skipif(not (FIXTURE / "tiny_svd.safetensors").is_file(),
                           reason=f"the tiny single-file SVD fixture is missing ({FIXTURE}; set SVD_TINY_FIXTURE)"),
    ]


pytestmark = comfyui_markers("compare the native path with the pack's sampler")


@pytest.fixture(scope="module")
def report():
    done = subprocess.run([PYTHON, str(REPO / "tests" / "comfyui_native_check.py")], capture_output=True, text=True,
                          timeout=900, env={**os.environ, "SVD_TINY_FIXTURE": str(FIXTURE)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, f"the native check failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    result = json.loads(lines[-1][len("REPORT "):])
    print("\nnative path vs pack sampler:", json.dumps(result))
    return result


@pytest.mark.parametrize("mode", ["official", "standard"])
def test_one_denoiser_call_equals_the_pack_denoiser(report, mode):
    r = report[f"denoiser_{mode}"]
    assert r["control_effect"] > 0.05, f"the control must change x0 visibly, or parity proves nothing: {r}"
    assert r["rel_max_diff"] < 1e-5, f"{mode}: ComfyUI's SVD + Apply InterDyn x0 differs from InterDynDenoiser: {r}"


def test_a_whole_native_run_gives_the_pack_sampler_frames(report):
    r = report["whole_run"]
    assert r["frames_max_abs_diff"] < 1e-3, f"native KSampler (euler, karras) frames differ from ours: {r}"
    assert r["frames_max_abs_diff_diffusers_eps"] < 1e-3, f"even with diffusers' GroupNorm eps the frames agree: {r}"


def test_chained_controls_are_summed(report):
    assert report["chained_0.5_plus_0.3_vs_0.8"] < 1e-5, \
        "two Apply InterDyn of strengths 0.5 and 0.3 in a chain act as one of 0.8 (previous residuals summed in)"


def test_the_branch_runs_once_per_step_and_the_cnn_once_per_video(report):
    assert report["native_run_calls"] == {"branch": 4, "cnn": 1}, \
        f"4 steps: one batched branch call per step for both CFG halves, the CNN once: {report['native_run_calls']}"


def test_no_branch_compute_at_strength_0_or_outside_the_window(report):
    assert report["calls_strength_0"] == {"branch": 0, "cnn": 0}, f"strength 0: {report['calls_strength_0']}"
    assert report["calls_outside_window"] == {"branch": 0, "cnn": 0}, \
        f"a window no step falls in: {report['calls_outside_window']}"
    assert report["calls_first_half"]["branch"] == report["expected_first_half"], \
        f"start 0, end 0.5: one call per step whose sigma is in the window: {report['calls_first_half']}"


def test_comfyui_model_manager_holds_the_branch_and_frees_it(report):
    assert report["loaded_after_run"], "after a run the branch is in comfy.model_management.current_loaded_models"
    assert not report["loaded_after_free"], "unload_all_models (POST /free) removes it"


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_half_precision_branches_run_on_the_cpu(report, dtype):
    r = report[f"denoiser_official_{dtype}_branch"]
    assert "error" not in r and r["finite"], f"{dtype} branch: {r}"
    assert r["rel_vs_fp32"] < 0.05, f"{dtype} branch x0 stays near fp32's: {r}"
