"""Training-free dragging: the cut-and-drag reference (interdyn.data.cut_and_drag) and dual-clock denoising
(interdyn.core.dual_clock, Time-to-Move) in the library's sampler and the nodes.

The sampler is checked against a hand-written loop (the algorithm as the paper states it, written here again)
on a tiny model with the real structure; the reference video against transforms known in advance.
"""
from __future__ import annotations

import math

import pytest
import torch

from interdyn.core.dual_clock import SVD_SIGMA_STRONG, SVD_SIGMA_WEAK, DualClock, latent_region
from interdyn.core.sampling import (InterDynDenoiser, edm_denoised, encode_conditioning, karras_sigmas,
                                    sample_latents)
from interdyn.core.tiny import build_tiny_backbone, build_tiny_control_branch
from interdyn.data.cut_and_drag import cut_and_drag, mask_similarities
from interdyn.support.validation import InputError

H, W, F = 64, 64, 3


def grid():
    return torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")


def disc(cx, cy, r):
    ys, xs = grid()
    return ((xs - cx) ** 2 + (ys - cy) ** 2 <= r * r).float()


def ellipse(cx, cy, a, b, angle):
    ys, xs = grid()
    c, s = math.cos(angle), math.sin(angle)
    u, v = (xs - cx) * c + (ys - cy) * s, -(xs - cx) * s + (ys - cy) * c
    return ((u / a) ** 2 + (v / b) ** 2 <= 1).float()


def centroid(mask):
    ys, xs = grid()
    return float((mask * xs).sum() / mask.sum()), float((mask * ys).sum() / mask.sum())


def scene_with_red_disc():
    """A blue-grey picture with a red disc at (20, 30), radius 6."""
    image = torch.empty(3, H, W)
    image[0], image[1], image[2] = 0.2, 0.3, 0.6
    m = disc(20, 30, 6)
    red = torch.tensor([1.0, 0.0, 0.0])[:, None, None]
    return image * (1 - m) + red * m, m


# ------------------------------------------------------------------ the reference video
def test_a_translated_disc_lands_where_the_transform_says_and_its_hole_is_filled():
    image, m0 = scene_with_red_disc()
    moves = [(0, 0), (7.0, 2.0), (14.0, 4.0), (21.0, 6.0)]
    masks = torch.stack([disc(20 + dx, 30 + dy, 6) for dx, dy in moves])
    reference, region = cut_and_drag(image, masks)
    assert reference.shape == (4, 3, H, W) and region.shape == (4, H, W)
    assert torch.equal(reference[0], image), "frame 0 is the first frame itself: nothing changes there"
    for t, (dx, dy) in enumerate(moves):
        cx, cy = centroid(region[t])
        assert abs(cx - (20 + dx)) <= 0.5 and abs(cy - (30 + dy)) <= 0.5, (t, cx, cy)
        redness = reference[t, 0] - reference[t, 2]
        assert float(redness[region[t] > 0].mean()) > 0.9, "the pasted disc is the red one"
    old_place = disc(20, 30, 5) > 0
    last = reference[3]
    assert not bool((region[3] > 0)[old_place].any()), "the disc moved off its old place by frame 3"
    assert float((last[0] - last[2])[old_place].max()) < 0, "the hole holds no red: it was filled"
    assert torch.allclose(last[:, old_place], torch.tensor([0.2, 0.3, 0.6])[:, None], atol=0.02), \
        "a plain background fills back to its own colour"
    outside = (disc(20, 30, 8) == 0) & (region[3] == 0)
    assert torch.equal(last[:, outside], image[:, outside]), "pixels away from the object and its hole are untouched"


def test_scale_and_rotation_of_an_elongated_object_are_recovered():
    masks = torch.stack([ellipse(32, 32, 12, 5, 0.0), ellipse(36, 30, 12 * 1.3, 5 * 1.3, 0.5)])
    (_, _, s0, r0), (dx, dy, scale, rotation) = mask_similarities(masks)
    assert (s0, r0) == (1.0, 0.0)
    assert abs(dx - 4) < 0.3 and abs(dy + 2) < 0.3
    assert abs(scale - 1.3) < 0.05 and abs(rotation - 0.5) < 0.05, (scale, rotation)
    image = torch.full((3, H, W), 0.5)
    image[:, masks[0] > 0] = 0.9
    _, region = cut_and_drag(image, masks)
    inter = float((region[1] * masks[1]).sum())
    union = float(((region[1] + masks[1]) > 0).sum())
    assert inter / union > 0.9, "the warped first mask covers the second"


def test_a_disc_has_no_rotation_and_an_object_that_leaves_gives_an_empty_region():
    masks = torch.stack([disc(20, 30, 6), disc(30, 30, 6), torch.zeros(H, W)])
    sims = mask_similarities(masks)
    assert sims[1][3] == 0.0 and sims[2] is None
    image, _ = scene_with_red_disc()
    reference, region = cut_and_drag(image, masks)
    assert float(region[2].sum()) == 0 and float((reference[2, 0] - reference[2, 2]).max()) < 0


@pytest.mark.parametrize("case, words", [
    ("empty_first", "first frame of masks is empty"),
    ("size", "masks are 32x32 but first_frame is 64x64"),
    ("nan", "masks holds NaN"),
])
def test_reference_refuses_bad_masks(case, words):
    image, _ = scene_with_red_disc()
    masks = torch.stack([disc(20, 30, 6)] * 2)
    if case == "empty_first":
        masks[0] = 0
    elif case == "size":
        masks = masks[:, :32, :32]
    else:
        masks[1, 3, 3] = float("nan")
    with pytest.raises(InputError, match=words):
        cut_and_drag(image, masks)


# ------------------------------------------------------------------ the sampler
@pytest.fixture(scope="module")
def models():
    backbone = build_tiny_backbone(seed=0)
    return backbone, build_tiny_control_branch(backbone, seed=0)


@pytest.fixture(scope="module")
def drag():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, H, W, generator=g)
    masks = torch.stack([torch.zeros(H, W)] * F)
    for f in range(F):
        masks[f, 16:40, 8 + 8 * f:32 + 8 * f] = 1
    reference, region = cut_and_drag(image, masks)
    control = torch.zeros(1, F, 3, H, W)
    control[0, :, 0] = masks
    return image[None], reference, region, control


def hand_written_dual_clock(backbone, image, noise, reference_latents, region, sigmas, weak, strong, seed,
                            denoiser_kwargs):
    """Time-to-Move's dual clock as the paper states it: start from the reference noised to t_weak, Euler
    steps, and after each step whose new level is >= t_strong put the reference (noised to that level with
    the same noise) back inside the region."""
    cond = encode_conditioning(backbone, image, fps=7, motion_bucket_id=40, noise_aug_strength=0.02,
                               generator=torch.Generator().manual_seed(seed))
    denoiser = InterDynDenoiser(backbone, cond, F, len(sigmas) - 1, **denoiser_kwargs)
    start = next(i for i, s in enumerate(sigmas.tolist()) if s <= weak * (1 + 1e-5))
    x = reference_latents + sigmas[start] * noise
    trace = [x.clone()]
    for i in range(start, len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x = x + (x - denoiser(x, s, i)) / s * (s_next - s)
        trace.append(x.clone())  # before the replacement
        if float(s_next) >= strong * (1 - 1e-5):
            x = torch.where(region > 0, reference_latents + s_next * noise, x)
        trace.append(x.clone())  # after it
    return x, trace


def reference_latents_of(backbone, reference):
    vae = backbone.vae
    with torch.no_grad():
        return (vae.encode(reference * 2 - 1).latent_dist.mode() * vae.config.scaling_factor)[None]


@pytest.mark.parametrize("with_branch", [False, True])
def test_sampler_equals_a_hand_written_dual_clock_for_three_steps(models, drag, with_branch):
    backbone, branch = models
    image, reference, region, control = drag
    sigmas = karras_sigmas(5, backbone.sigma_min, backbone.sigma_max)
    weak, strong = float(sigmas[2]), float(sigmas[3])  # three steps run: 2->3 (held), 3->4 (held), 4->5 (free)
    noise = torch.randn(1, F, backbone.latent_channels, H // 8, W // 8, generator=torch.Generator().manual_seed(3))
    kwargs = dict(num_frames=F, num_steps=5, generator=11, latents=noise, min_guidance=1.0, max_guidance=2.0,
                  dual_clock=DualClock(reference, region, weak, strong))
    if with_branch:
        got = sample_latents(backbone, image, control, branch, **kwargs)
        den = dict(control_branch=branch, control=control, min_guidance=1.0, max_guidance=2.0)
    else:
        got = sample_latents(backbone, image, **kwargs)
        den = dict(min_guidance=1.0, max_guidance=2.0)
    ref_lat = reference_latents_of(backbone, reference)
    region_lat = latent_region(region[None], backbone.vae_scale_factor)
    want, trace = hand_written_dual_clock(backbone, image, noise, ref_lat, region_lat, sigmas, weak, strong, 11, den)
    assert len(trace) == 1 + 2 * 3, "three steps ran"
    assert not torch.equal(trace[1], trace[2]), "the first step's replacement changed the held region"
    assert torch.equal(trace[-2], trace[-1]), "the last step (below t_strong) is free"
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_with_sigma_strong_zero_the_held_region_is_the_references_latents(models, drag):
    """No freedom inside the region: its latents at the end are the reference's round trip through the VAE's
    encoder, exactly."""
    backbone, _ = models
    image, reference, region, _ = drag
    sigmas = karras_sigmas(4, backbone.sigma_min, backbone.sigma_max)
    out = sample_latents(backbone, image, num_frames=F, num_steps=4, generator=2,
                         dual_clock=DualClock(reference, region, float(sigmas[-2]), 0.0))
    held = latent_region(region[None], backbone.vae_scale_factor).expand_as(out) > 0
    ref_lat = reference_latents_of(backbone, reference)
    assert torch.equal(out[held], ref_lat.expand_as(out)[held])
    assert not torch.equal(out[~held], ref_lat.expand_as(out)[~held]), "outside the region the model denoised"


def test_dual_clock_skips_the_steps_above_t_weak_and_calls_the_model_once_per_remaining_step(models, drag):
    backbone, _ = models
    image, reference, region, _ = drag
    seen = []
    sample_latents(backbone, image, num_frames=F, num_steps=6, generator=0,
                   dual_clock=DualClock(reference, region, SVD_SIGMA_WEAK, SVD_SIGMA_STRONG),
                   callback=lambda info: seen.append((info.step, info.total, round(info.sigma, 3))))
    sigmas = karras_sigmas(6, backbone.sigma_min, backbone.sigma_max)
    start = next(i for i, s in enumerate(sigmas.tolist()) if s <= SVD_SIGMA_WEAK)
    assert [s[1] for s in seen] == [6 - start] * (6 - start), "progress counts the steps that run"
    assert seen[0][2] == round(float(sigmas[start]), 3)


def test_svd_defaults_are_the_authors_step_indices_as_noise_levels():
    """Time-to-Move's SVD settings: 50 steps, t_weak at step 16 and t_strong at step 21."""
    sigmas = karras_sigmas(50, 0.002, 700.0)
    assert SVD_SIGMA_WEAK == pytest.approx(float(sigmas[16]), rel=1e-6)
    assert SVD_SIGMA_STRONG == pytest.approx(float(sigmas[21]), rel=1e-6)


def test_dual_clock_off_is_todays_sampler(models, drag):
    """No dual clock: the same latents as before the option existed (same seed, same calls)."""
    backbone, branch = models
    image, _, _, control = drag
    a = sample_latents(backbone, image, control, branch, num_frames=F, num_steps=2, generator=4)
    b = sample_latents(backbone, image, control, branch, num_frames=F, num_steps=2, generator=4, dual_clock=None)
    assert torch.equal(a, b)


@pytest.mark.parametrize("change, words", [
    (dict(sigma_weak=10.0, sigma_strong=20.0), r"sigma_strong \(20.0\) must not be above sigma_weak \(10.0\)"),
    (dict(sigma_weak=0.0, sigma_strong=0.0), "sigma_weak must be > 0"),
    (dict(sigma_weak=1e6), r"sigma_weak must be a noise level in \[0, 700\]"),
    (dict(sigma_strong=-1.0), r"sigma_strong must be a noise level"),
    (dict(sigma_weak=float("nan")), "sigma_weak must be a finite number"),
    (dict(region="empty"), "region is empty"),
    (dict(region="full"), "region covers every pixel"),
    (dict(reference="short"), "reference has 2 frames but the video has 3"),
    (dict(reference="small"), r"reference must be \[batch, frames, 3, 64, 64\]"),
])
def test_bad_dual_clock_arguments_are_refused_before_any_model_call(models, drag, change, words, monkeypatch):
    backbone, _ = models
    image, reference, region, _ = drag
    fields = dict(reference=reference, region=region, sigma_weak=SVD_SIGMA_WEAK, sigma_strong=SVD_SIGMA_STRONG)
    for key, value in change.items():
        if value == "empty":
            value = torch.zeros_like(region)
        elif value == "full":
            value = torch.ones_like(region)
        elif value == "short":
            value = reference[:2]
        elif value == "small":
            value = reference[..., :32, :32]
        fields[key] = value

    def forbidden(*args, **kwargs):
        raise AssertionError("the model ran before the arguments were checked")

    monkeypatch.setattr(backbone.unet, "forward", forbidden)
    monkeypatch.setattr(backbone.vae, "encode", forbidden)
    with pytest.raises(InputError, match=words):
        sample_latents(backbone, image, num_frames=F, num_steps=2, generator=0, dual_clock=DualClock(**fields))


# ------------------------------------------------------------------ the nodes
class TinyModel:
    """What InterDyn Model Loader hands the sampler, for the node functions without ComfyUI."""

    def __init__(self, backbone, branch=None):
        import contextlib

        self.backbone, self.control_branch, self.load_device = backbone, branch, "cpu"
        self.on_device = lambda which: contextlib.nullcontext()


def test_the_drag_nodes_run_plain_svd_from_a_drawn_drive(models, drag, monkeypatch):
    """Cut and Drag Reference -> InterDyn Sampler (no branch, no control) -> latents; the names in errors are the
    sockets' and widgets'."""
    from test_nodes import import_pack

    pack = import_pack("pack_drag")  # as ComfyUI imports it (relative imports: the pack has its own interdyn)
    FUNCTIONS, host = pack.nodes.FUNCTIONS, pack.nodes.host
    PackInputError = pack.interdyn.support.validation.InputError
    monkeypatch.setattr(host, "progress_bar", lambda total: type("P", (), {"update_absolute": lambda *a: None})())
    monkeypatch.setattr(host, "latent_previewer", lambda device: None)
    monkeypatch.setattr(host, "throw_if_interrupted", lambda: None)
    backbone, _ = models
    image, _, _, control = drag
    comfy_image = image.permute(0, 2, 3, 1)
    masks = control[0, :, 0]
    reference, region = FUNCTIONS["InterDynCutAndDragReference"](image=comfy_image, masks=masks)
    assert reference.shape == (F, H, W, 3) and region.shape == (F, H, W)
    common = dict(model=TinyModel(backbone), image=comfy_image, width=W, height=H, frames=F, steps=3, min_cfg=1.0,
                  max_cfg=1.0, fps=7, motion_bucket_id=40, noise_aug_strength=0.02, seed=0, control_strength=1.0,
                  control_start=0.0, control_end=1.0)
    (latent,) = FUNCTIONS["InterDynSampler"](**common, drag_reference=reference, drag_region=region,
                                             sigma_weak=float(karras_sigmas(3, 0.002, 700.0)[1]), sigma_strong=0.0)
    assert latent["samples"].shape[0] == F
    with pytest.raises(PackInputError, match="sigma_strong .* must not be above sigma_weak"):
        FUNCTIONS["InterDynSampler"](**common, drag_reference=reference, drag_region=region, sigma_weak=5.0,
                                     sigma_strong=6.0)
    with pytest.raises(PackInputError, match="drag_region is empty"):
        FUNCTIONS["InterDynSampler"](**common, drag_reference=reference, drag_region=region * 0)
    with pytest.raises(PackInputError, match="connect both"):
        FUNCTIONS["InterDynSampler"](**common, drag_reference=reference)


def test_a_driver_that_enters_is_pasted_from_its_appearance_frames():
    """composite_reference (Cut and Drag Reference's `appearance`): the first frame, with each frame's pixels of the
    appearance video pasted under that frame's mask; nothing else of the appearance leaks in."""
    from interdyn.data.cut_and_drag import composite_reference

    image, _ = scene_with_red_disc()
    appearance = torch.rand(3, 3, H, W, generator=torch.Generator().manual_seed(0))
    masks = torch.stack([torch.zeros(H, W), disc(5, 40, 5), disc(15, 40, 5)])  # enters from the left edge
    reference, region = composite_reference(image, appearance, masks)
    assert torch.equal(reference[0], image), "nothing to paste in frame 0: the picture itself"
    for t in (1, 2):
        inside, outside = masks[t] > 0, masks[t] == 0
        assert torch.allclose(reference[t][:, inside], appearance[t][:, inside])
        assert torch.equal(reference[t][:, outside], image[:, outside])
        assert torch.equal(region[t], masks[t])
