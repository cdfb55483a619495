"""interdyn.core.native: InterDyn's residuals in the form a host UNet (ComfyUI's) adds them, without ComfyUI."""
from __future__ import annotations

import pytest
import torch

from interdyn.core.native import control_residuals, embed_control_frames, prepare_control_frames, sum_controls, tile_features
from interdyn.core.sampling import InterDynDenoiser, VideoConditioning
from interdyn.core.tiny import build_tiny_backbone, build_tiny_control_branch

F, H, W = 3, 64, 64


@pytest.fixture(scope="module")
def backbone():
    return build_tiny_backbone(0)


def _native_x0(backbone, branch, x, sigma, cond, control, strength):
    """x0 with the residuals of interdyn.core.native added once each, as a host UNet adds its control dict."""
    h, w = x.shape[-2:]
    x_in = torch.cat([x / (sigma**2 + 1) ** 0.5, cond.image_latents.unsqueeze(1).repeat(1, F, 1, 1, 1)], 2).flatten(0, 1)
    time_embeds = branch.add_time_proj(cond.added_time_ids.flatten()).reshape(1, -1).repeat(F, 1)
    features = tile_features(embed_control_frames(branch, control[0]), F, 1)
    res = control_residuals(branch, features, x_in, (0.25 * sigma.log()).repeat(F), cond.image_embeddings.repeat(F, 1, 1),
                            time_embeds, F, strength)
    assert res["input"] == [], "InterDyn never changes the encoder's features"
    v = backbone.unet(x_in.reshape(1, F, -1, h, w), 0.25 * sigma.log(), encoder_hidden_states=cond.image_embeddings,
                      added_time_ids=cond.added_time_ids, down_block_additional_residuals=res["output"],
                      mid_block_additional_residual=res["middle"][0], residual_mode="standard", return_dict=False)[0]
    return v * (-sigma / (sigma**2 + 1) ** 0.5) + x / (sigma**2 + 1)


@pytest.mark.parametrize("mode", ["official", "standard"])
def test_residuals_added_once_equal_the_denoiser_in_the_branch_mode(backbone, mode):
    torch.manual_seed(1)
    branch = build_tiny_control_branch(backbone, 0, mode)
    control = torch.rand(1, F, 3, H, W)
    x = torch.randn(1, F, 4, H // 8, W // 8) * 2.5
    sigma = torch.tensor(2.5)
    cond = VideoConditioning(torch.randn(1, 1, 32), torch.randn(1, 4, H // 8, W // 8), torch.tensor([[6.0, 40.0, 0.02]]))
    ref = InterDynDenoiser(backbone, cond, F, 1, control_branch=branch, control=control, control_strength=0.7,
                           min_guidance=1, max_guidance=1)(x, sigma, 0)
    ours = _native_x0(backbone, branch, x, sigma, cond, control, 0.7)
    rel = ((ours - ref).abs().max() / ref.abs().max()).item()
    assert rel < 1e-5, f"{mode}: one addition of multiplicity-scaled residuals must equal the {mode} injection (rel {rel:.2e})"


def test_official_output_residuals_are_the_standard_ones_times_4_4_4_4_3_3_3_2_2_2_1_1(backbone):
    official = build_tiny_control_branch(backbone, 0, "official")
    standard = build_tiny_control_branch(backbone, 0, "standard")
    args = (torch.randn(F, 8, 8, 8), torch.full((F,), 0.2), torch.randn(F, 1, 32), torch.randn(F, 24))
    feats = embed_control_frames(official, torch.rand(F, 3, H, W))
    a = control_residuals(official, feats, *args, F, 0.5)
    b = control_residuals(standard, feats, *args, F, 0.5)
    ratios = [round((x.norm() / y.norm()).item(), 4) for x, y in zip(a["output"], b["output"])]
    assert ratios == [4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1], f"skip k is added m_k times by the official release: {ratios}"
    assert torch.equal(a["middle"][0], b["middle"][0]), "the mid residual is added once in both modes"


def test_sum_controls_adds_previous_position_by_position():
    one, two = torch.ones(1), torch.full((1,), 2.0)
    merged = sum_controls({"middle": [one], "output": [one, None]}, {"middle": [two], "output": [two, two, two]})
    assert [t.item() for t in merged["output"]] == [3.0, 2.0, 2.0], "previous residuals are summed in, or kept alone"
    assert merged["middle"][0].item() == 3.0 and merged["input"] == []
    assert sum_controls({"output": [one]}, None)["output"] == [one], "without a previous control, ours unchanged"


def test_tile_features_repeats_per_chunk_and_refuses_a_frame_count_mismatch():
    feats = torch.arange(3.0).reshape(3, 1, 1, 1)
    assert tile_features(feats, 6, 2).flatten().tolist() == [0, 1, 2, 0, 1, 2], "cond and uncond halves get the same control"
    with pytest.raises(ValueError, match="control has 3 frames but the video has 4"):
        tile_features(feats, 8, 2)


def test_prepare_control_frames_fits_the_latent_size_and_keeps_a_fitting_one():
    frames = torch.rand(2, 3, 32, 48)
    assert prepare_control_frames(frames, 32, 48) is frames, "frames of the right size are not resampled"
    assert tuple(prepare_control_frames(frames, 64, 64).shape) == (2, 3, 64, 64)
    with pytest.raises(ValueError, match="control frames must be"):
        prepare_control_frames(torch.rand(2, 32, 48), 32, 48)


# ---------------------------------------------------------------------------- the nodes, without ComfyUI
@pytest.fixture(scope="module")
def pack():
    from test_nodes import import_pack

    return import_pack("native_nodes_check_pack")


def test_branch_loader_lists_interdyn_and_controlnet_folders_and_the_builtin(pack, tmp_path, monkeypatch):
    for kind, name in (("interdyn", "mine.safetensors"), ("controlnet", "theirs.safetensors")):
        (tmp_path / kind).mkdir()
        (tmp_path / kind / name).write_bytes(b"")
    monkeypatch.setattr(pack.nodes.host, "model_folders", lambda kind: [str(tmp_path / kind)])
    from test_nodes import combo_options, declared

    names = combo_options(declared(pack)["InterDynControlBranchLoader"].INPUT_TYPES()["required"]["control_branch"])
    assert names == ["builtin:toy-physics", "mine.safetensors", "theirs.safetensors"], \
        f"models/interdyn and models/controlnet entries after the built-in model, no 'none': {names}"


def test_branch_loader_outside_comfyui_says_it_needs_comfyui(pack):
    load_branch = pack.nodes.FUNCTIONS["InterDynControlBranchLoader"]
    with pytest.raises(RuntimeError, match="inside ComfyUI only"):
        load_branch("builtin:toy-physics", "fp32")
    with pytest.raises(ValueError, match="weight_dtype"):
        load_branch("builtin:toy-physics", "fp8")


def test_apply_refuses_a_control_net_that_is_not_interdyn(pack):
    apply = pack.nodes.FUNCTIONS["InterDynApply"]
    with pytest.raises(ValueError, match="control_net must come from Load InterDyn Control Branch"):
        apply([], [], object(), torch.rand(3, 64, 64, 3), 1.0, 0.0, 1.0)


@pytest.mark.parametrize("widget", ["strength", "start_percent", "end_percent"])
def test_apply_refuses_a_nan_widget_value_naming_it(pack, monkeypatch, widget):
    """Issue 34 item 8, checked by class: ComfyUI checks a FLOAT widget against its min and max, which NaN passes
    (every comparison with it is false; an API prompt can send it). Apply InterDyn handed a NaN strength on to the
    control (a NaN video); it refuses it naming the widget, as the Sampler and the control nodes do."""
    monkeypatch.setattr(pack.nodes.native, "is_interdyn_control", lambda control: True)

    class Control:  # what Load InterDyn Control Branch gives, as far as Apply uses it
        def copy(self):
            return self

        def set_cond_hint(self, *args):
            return self

        def set_previous_controlnet(self, previous):
            pass

    values = {"strength": 1.0, "start_percent": 0.0, "end_percent": 1.0, widget: float("nan")}
    with pytest.raises(ValueError, match=f"^{widget} must be a finite number"):
        pack.nodes.FUNCTIONS["InterDynApply"]([[torch.zeros(1), {}]], [[torch.zeros(1), {}]], Control(),
                                              torch.rand(3, 64, 64, 3), **values)
