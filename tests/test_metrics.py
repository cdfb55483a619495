"""Specifications of interdyn.metrics: SSIM, PSNR, LPIPS, FID, KID, FVD, KVD, motion fidelity.

Expected values come from the metric definitions, hand computation, or the reference packages
(torchmetrics, torch-fidelity, lpips) — never from the code under test. No test downloads anything.
"""
from __future__ import annotations

import math
import os

import cv2
import numpy as np
import pytest
import torch

from interdyn import metrics as M

# ------------------------------------------------------------------------------------------------
# helpers


def random_clips(n=2, f=4, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, f, 3, h, w, generator=g)


def quantised_frames_after_first(videos):
    """Frames 1..F-1 as uint8 levels in [0, 1], written out independently of the library."""
    return (torch.round(videos[:, 1:].clamp(0, 1) * 255) / 255).reshape(-1, *videos.shape[2:])


def smooth_texture(size, seed, blur=1.0):
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), blur)


def translating_square(frames=6, h=80, w=112, dx=1.5, dy=0.75, size=48, seed=0):
    """A textured square moving (dx, dy) px per frame over a grey background (sub-pixel, bilinear),
    and a mask of its interior in frame 0 (4 px inside its border)."""
    tex = smooth_texture(size, seed)
    background = np.full((h, w, 3), 0.5, np.float32)
    x0, y0 = 20.0, 12.0
    out = []
    for t in range(frames):
        A = np.float32([[1, 0, x0 + dx * t], [0, 1, y0 + dy * t]])
        obj = cv2.warpAffine(tex, A, (w, h), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(np.ones((size, size), np.float32), A, (w, h), flags=cv2.INTER_LINEAR)[..., None]
        out.append(obj * alpha + background * (1 - alpha))
    mask = np.zeros((h, w), bool)
    mask[int(y0) + 4 : int(y0) + size - 4, int(x0) + 4 : int(x0) + size - 4] = True
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(mask)


def rotating_disc(frames=6, size=72, degrees_per_frame=3.0, seed=1):
    """A textured disc (radius 30) rotating about the image centre; mask of radius 20 in frame 0;
    the 2x3 rotation matrices of every frame."""
    tex = smooth_texture(size, seed)
    c = ((size - 1) / 2, (size - 1) / 2)
    yy, xx = np.mgrid[0:size, 0:size]
    r2 = (xx - c[0]) ** 2 + (yy - c[1]) ** 2
    mats, out = [], []
    for t in range(frames):
        A = cv2.getRotationMatrix2D(c, degrees_per_frame * t, 1.0)
        mats.append(torch.tensor(A, dtype=torch.float32))
        obj = cv2.warpAffine(tex, A, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out.append(np.where((r2 <= 30**2)[..., None], obj, 0.5).astype(np.float32))
    video = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()
    return video, torch.from_numpy(r2 <= 20**2), mats


@pytest.fixture(scope="module")
def random_lpips():
    """lpips.LPIPS with the published linear heads and a randomly initialised AlexNet (no download)."""
    import warnings

    import lpips

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's 'pretrained' deprecation, raised by lpips
        return lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()


class PooledProjection:
    """Fake Inception: a fixed random projection of 4x4-average-pooled uint8 images -> 16-d features.
    Records what it was called with."""

    def __init__(self, dim=16, seed=0):
        self.weight = torch.randn(3 * 16, dim, generator=torch.Generator().manual_seed(seed))
        self.calls = []

    def __call__(self, images):
        self.calls.append(images)
        pooled = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)
        return pooled @ self.weight


class FakeI3D:
    """Fake I3D TorchScript: rescales 0..255 to [-1,1] when asked (as the real one does), pools each
    clip over time and space to 2x2 and projects it to 12-d features. Records calls."""

    def __init__(self, seed=0):
        self.weight = torch.randn(3 * 2 * 2, 12, generator=torch.Generator().manual_seed(seed))
        self.calls = []

    def __call__(self, x, rescale=False, resize=False, return_features=False):
        self.calls.append(dict(dtype=x.dtype, shape=tuple(x.shape), rescale=rescale, resize=resize,
                               return_features=return_features, min=float(x.min()), max=float(x.max())))
        x = x.float()
        if rescale:
            x = x / 127.5 - 1.0
        first_last = torch.stack([x[:, :, 0], x[:, :, -1]], dim=2)  # the time order matters
        pooled = torch.nn.functional.adaptive_avg_pool3d(first_last, (2, 2, 1)).flatten(1)
        return pooled @ self.weight


# ------------------------------------------------------------------------------------------------
# SSIM and PSNR


def test_ssim_of_identical_videos_is_one():
    v = random_clips()
    assert M.ssim(v, v) == pytest.approx(1.0, abs=1e-6), "SSIM of a video with itself must be exactly 1"


def test_ssim_matches_torchmetrics_on_random_frames():
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    gen = random_clips(seed=1)
    ref = (gen + 0.1 * torch.randn(gen.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    expected = tm_ssim(quantised_frames_after_first(gen), quantised_frames_after_first(ref), data_range=1.0,
                       kernel_size=11, sigma=1.5, reduction="none")
    ours = M.ssim(gen, ref, reduction="none")
    assert ours.shape == (2, 3), "per-frame SSIM must be [N, F-1]: frame 0 is excluded"
    assert torch.allclose(ours.flatten(), expected, atol=1e-5), (
        f"SSIM must agree with torchmetrics (11x11 Gaussian, sigma 1.5) within 1e-5; max diff "
        f"{(ours.flatten() - expected).abs().max():.2e}"
    )
    assert M.ssim(gen, ref) == pytest.approx(float(expected.double().mean()), abs=1e-5), "mean = mean of per-frame SSIM"


def test_psnr_matches_torchmetrics_on_random_frames():
    from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr

    gen = random_clips(seed=3)
    ref = (gen + 0.05 * torch.randn(gen.shape, generator=torch.Generator().manual_seed(4))).clamp(0, 1)
    expected = tm_psnr(quantised_frames_after_first(gen), quantised_frames_after_first(ref), data_range=1.0,
                       reduction="none", dim=(1, 2, 3))
    ours = M.psnr(gen, ref, reduction="none").flatten()
    assert torch.allclose(ours, expected, atol=1e-4), (
        f"per-frame PSNR must agree with torchmetrics within 1e-4 dB; max diff {(ours - expected).abs().max():.2e}"
    )


def test_psnr_of_identical_frames_is_the_documented_cap():
    v = random_clips()
    assert M.psnr(v, v) == pytest.approx(100.0), "identical frames score max_db = 100 dB (MSE floor 1e-10), not inf"
    assert M.psnr(v, v, max_db=60.0) == pytest.approx(60.0), "the cap follows max_db"
    other = v.clone()
    other[0, 1] = 1 - other[0, 1]  # one frame differs, the other five are identical
    per_frame = M.psnr(other, v, reduction="none")
    assert torch.isfinite(per_frame).all(), "PSNR must stay finite with identical frames in the batch"
    assert (per_frame.flatten()[1:] == 100.0).all(), "each identical frame scores exactly the cap"


def test_frame_metrics_exclude_the_conditioning_frame(random_lpips):
    v = random_clips()
    other = v.clone()
    other[:, 0] = 1 - other[:, 0]  # only frame 0 differs
    net = random_lpips
    assert M.ssim(other, v) == pytest.approx(1.0, abs=1e-6), "frame 0 must not enter SSIM"
    assert M.psnr(other, v) == pytest.approx(100.0), "frame 0 must not enter PSNR"
    assert M.lpips(other, v, net=net) == pytest.approx(0.0, abs=1e-7), "frame 0 must not enter LPIPS"


def test_frame_metrics_compare_uint8_quantised_frames():
    v = torch.round(random_clips() * 255) / 255
    nudged = v + 0.4 / 255  # less than half a uint8 level: rounds back to the same frames
    assert M.ssim(nudged, v) == pytest.approx(1.0, abs=1e-6), "frames are quantised before SSIM"
    assert M.psnr(nudged, v) == pytest.approx(100.0), "frames are quantised before PSNR"


# ------------------------------------------------------------------------------------------------
# LPIPS


def test_lpips_of_identical_videos_is_zero_with_a_random_backbone(random_lpips):
    net = random_lpips
    v = random_clips()
    assert M.lpips(v, v, net=net) == pytest.approx(0.0, abs=1e-7), "LPIPS of a video with itself must be 0"
    assert M.lpips(random_clips(seed=5), v, net=net) > 0.0, "different frames must have positive LPIPS"


def test_lpips_equals_the_lpips_package_on_quantised_frames_in_minus_one_one(random_lpips):
    net = random_lpips
    gen, ref = random_clips(seed=6), random_clips(seed=7)
    with torch.no_grad():
        expected = net(quantised_frames_after_first(gen) * 2 - 1, quantised_frames_after_first(ref) * 2 - 1).flatten()
    ours = M.lpips(gen, ref, net=net, reduction="none", batch_size=4).flatten()
    assert torch.allclose(ours, expected, atol=1e-6), "LPIPS must be the package's distance on [-1,1] frames, batched"


def test_load_lpips_uses_local_alexnet_and_packaged_linear_heads(tmp_path):
    import lpips
    import torchvision

    torch.manual_seed(1)
    alexnet = torchvision.models.alexnet(weights=None)
    features_only = {k: v for k, v in alexnet.state_dict().items() if k.startswith("features.")}
    torch.save(features_only, tmp_path / M.ALEXNET_WEIGHTS)
    net = M.load_lpips(tmp_path)
    assert torch.equal(getattr(net.net.slice1, "0").weight, features_only["features.0.weight"]), "conv1 comes from the file"
    assert torch.equal(getattr(net.net.slice5, "10").bias, features_only["features.10.bias"]), "conv5 comes from the file"
    packaged = torch.load(os.path.join(os.path.dirname(lpips.__file__), "weights/v0.1/alex.pth"), map_location="cpu")
    assert torch.equal(net.lin0.model[1].weight, packaged["lin0.model.1.weight"]), "linear heads are the published ones"


def test_missing_weights_raise_naming_file_and_folder_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def no_download(*args, **kwargs):
        raise AssertionError("a metric tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    hub = str(tmp_path / "torch_home" / "hub" / "checkpoints")
    for loader, name in [(M.load_lpips, "alexnet-owt-7be5be79.pth"),
                         (M.load_inception, "weights-inception-2015-12-05-6726825d.pth"),
                         (M.load_i3d, "i3d_torchscript.pt")]:
        with pytest.raises(FileNotFoundError) as err:
            loader()
        assert name in str(err.value) and hub in str(err.value), (
            f"{loader.__name__}: the error must name the file and the hub folder it looked in: {err.value}"
        )


# ------------------------------------------------------------------------------------------------
# Fréchet distance, kernel distance, FID, KID


def test_frechet_distance_of_identical_feature_sets_is_zero():
    f = np.random.default_rng(0).normal(size=(300, 8))
    stats = M.feature_statistics(f)
    assert abs(M.frechet_distance(*stats, *stats)) < 1e-8, "a distribution is at distance 0 from itself"


def test_frechet_distance_of_a_shifted_set_is_the_squared_shift():
    f = np.random.default_rng(1).normal(size=(300, 8)) @ np.diag(np.arange(1, 9.0))
    d = np.array([1.0, -2.0, 0.5, 0, 3, 0, 0, -1])
    value = M.frechet_distance(*M.feature_statistics(f), *M.feature_statistics(f + d))
    assert value == pytest.approx(d @ d, rel=1e-6), "shifting by d leaves covariances equal: distance = |d|^2"


def test_frechet_distance_matches_torch_fidelity():
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    rng = np.random.default_rng(2)
    a = torch.from_numpy(rng.normal(size=(200, 6)))
    b = torch.from_numpy(rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 0.3)
    expected = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), False)
    ours = M.frechet_distance(*M.feature_statistics(a), *M.feature_statistics(b))
    assert ours == pytest.approx(expected["frechet_inception_distance"], rel=1e-6), (
        "FID (unbiased covariance) must agree with torch-fidelity's"
    )


def test_kernel_distance_matches_torch_fidelity_subset_for_subset():
    from torch_fidelity.metric_kid import kid_features_to_metric

    rng = np.random.default_rng(3)
    a = torch.from_numpy(rng.normal(size=(60, 5)))
    b = torch.from_numpy(rng.normal(size=(50, 5)) + 0.5)
    expected = kid_features_to_metric(a, b, kid_subsets=20, kid_subset_size=40, rng_seed=7, verbose=False)
    mean, std = M.kernel_distance(a, b, num_subsets=20, subset_size=40, seed=7)
    assert mean == pytest.approx(expected["kernel_inception_distance_mean"], rel=1e-9), "KID mean must equal torch-fidelity's"
    assert std == pytest.approx(expected["kernel_inception_distance_std"], rel=1e-9), "KID std must equal torch-fidelity's"


def test_unbiased_kid_separates_same_and_different_distributions():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, _ = M.kernel_distance(a, b, num_subsets=20, subset_size=200)
    diff, _ = M.kernel_distance(a, b + 1.0, num_subsets=20, subset_size=200)
    assert abs(same) < 0.01, f"two samples of one distribution must have KID ~ 0 (unbiased), got {same}"
    assert diff > 0.5, f"a mean shift of 1 per dimension must give a clearly positive KID, got {diff}"


def test_fid_and_kid_use_uint8_frames_after_the_first_and_report_counts():
    extractor = PooledProjection()
    gen, ref = random_clips(n=3, f=5, seed=8), random_clips(n=3, f=5, seed=8)
    result = M.fid(gen, ref, feature_extractor=extractor, batch_size=5)
    assert all(c.dtype == torch.uint8 for c in extractor.calls), "the extractor receives uint8 images (Inception convention)"
    assert sum(c.shape[0] for c in extractor.calls) == 2 * 3 * 4, "frames 1..F-1 of every clip, on both sides"
    assert abs(result.value) < 1e-6, "identical frame sets have FID 0"
    assert (result.num_generated, result.num_reference, result.frames_per_clip) == (12, 12, 4), "counts are frames"
    far = M.kid(gen, (ref * 0.3), feature_extractor=extractor, num_subsets=10)
    near = M.kid(gen, random_clips(n=3, f=5, seed=9), feature_extractor=extractor, num_subsets=10)
    assert far.value > near.value, "darker frames are further than other frames of the same noise distribution"
    assert far.std is not None and far.num_generated == 12, "KID reports the std over subsets and the frame count"


def test_load_inception_reads_local_torch_fidelity_weights(tmp_path, monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    # Build a randomly initialised extractor without any weights file, and save it as the weights.
    with monkeypatch.context() as patch:
        patch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        torch.manual_seed(0)
        random_net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(random_net.state_dict(), path)
    torch.set_flush_denormal(True)  # random deep nets underflow to denormals, which are slow on CPUs
    try:
        loaded = M.load_inception(path)
        images = torch.randint(0, 256, (1, 3, 40, 50), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        features = loaded(images)
        assert features.shape == (1, 2048), "FID features are the 2048-d pool features"
        with torch.no_grad():
            expected = random_net(images)[0]
        assert torch.allclose(features, expected, atol=1e-5), "weights come from the local file"
    finally:
        torch.set_flush_denormal(False)
        path.unlink()


# ------------------------------------------------------------------------------------------------
# FVD and KVD


def test_fvd_feeds_the_detector_as_stylegan_v_does():
    detector = FakeI3D()
    gen = random_clips(n=3, f=5, seed=10)
    result = M.fvd(gen, gen.clone(), detector=detector, batch_size=2)
    call = detector.calls[0]
    assert call["dtype"] == torch.uint8 and call["shape"] == (2, 3, 5, 32, 48), "uint8 clips [B, 3, F, H, W]"
    assert (call["rescale"], call["resize"], call["return_features"]) == (True, True, True), "StyleGAN-V's kwargs"
    assert abs(result.value) < 1e-6, "identical clip sets have FVD 0"
    assert (result.num_generated, result.num_reference, result.frames_per_clip) == (3, 3, 5), "clips and frames reported"


def test_fvd_signed_input_range_is_the_same_clips_in_minus_one_one():
    detector = FakeI3D()
    gen, ref = random_clips(n=4, f=3, seed=11), random_clips(n=4, f=3, seed=12)
    a = M.fvd(gen, ref, detector=detector, input_range="uint8").value
    b = M.fvd(gen, ref, detector=detector, input_range="signed").value
    call = detector.calls[-1]
    assert call["dtype"] == torch.float32 and not call["rescale"], "signed mode: float clips and rescale=False"
    assert -1.0 <= call["min"] and call["max"] <= 1.0, "signed mode: values in [-1, 1]"
    assert b == pytest.approx(a, rel=1e-5), "both conventions give the detector the same [-1,1] clips"


def test_fvd_uses_the_biased_covariance_of_detector_features():
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    detector = FakeI3D()
    gen, ref = random_clips(n=6, f=4, seed=13), random_clips(n=5, f=4, seed=14) * 0.8
    fg = detector((torch.round(gen * 255).to(torch.uint8)).permute(0, 2, 1, 3, 4), rescale=True).double().numpy()
    fr = detector((torch.round(ref * 255).to(torch.uint8)).permute(0, 2, 1, 3, 4), rescale=True).double().numpy()
    stats = lambda f: {"mu": f.mean(0), "sigma": np.cov(f, rowvar=False, bias=True)}  # StyleGAN-V's FeatureStats
    expected = fid_statistics_to_metric(stats(fg), stats(fr), False)["frechet_inception_distance"]
    assert M.fvd(gen, ref, detector=detector).value == pytest.approx(expected, rel=1e-6), (
        "FVD = Fréchet distance of the biased (1/n) feature statistics, as StyleGAN-V computes them"
    )


def test_fvd_sees_temporal_order_and_kvd_separates_distributions():
    detector = FakeI3D()
    gen = random_clips(n=8, f=4, seed=15)
    same = M.kvd(gen, gen.clone(), detector=detector, num_subsets=10)
    reversed_ = M.fvd(gen.flip(1), gen, detector=detector)
    darker = M.kvd(gen * 0.3, gen, detector=detector, num_subsets=10)
    assert reversed_.value > 1e-3, "FVD works on clips, so reversing time must change it"
    assert darker.value > abs(same.value) + 1e-3, "KVD must be larger for a different distribution"
    assert darker.num_generated == 8 and darker.std is not None, "KVD reports clips and the std over subsets"


def test_load_i3d_reads_a_torchscript_file_from_a_folder(tmp_path):
    class TinyDetector(torch.nn.Module):
        def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
            x = x.float()
            if rescale:
                x = x / 127.5 - 1.0
            return x.mean(dim=(2, 3, 4))

    torch.jit.script(TinyDetector()).save(str(tmp_path / "i3d_torchscript.pt"))
    with pytest.raises(M.UntrustedWeightsError, match="not the published FVD I3D file"):
        M.load_i3d(tmp_path)  # a TorchScript file is code: an unknown one loads only when trusted
    detector = M.load_i3d(tmp_path, trust=True)
    v = random_clips(n=3, f=3)
    result = M.fvd(v, v, detector=detector)
    assert abs(result.value) < 1e-9 and result.num_generated == 3, "the loaded TorchScript detector drives FVD"


# ------------------------------------------------------------------------------------------------
# trackers


def test_lucas_kanade_recovers_a_known_translation():
    video, mask = translating_square(dx=1.5, dy=0.75)
    queries = M.sample_query_points(mask, 100, seed=0)
    tracks, visible = M.LucasKanadeTracker().track(video, queries)
    truth = queries[None] + torch.arange(6.0)[:, None, None] * torch.tensor([1.5, 0.75])
    error = (tracks - truth).norm(dim=-1)[1:]
    assert tracks.shape == (6, 100, 2) and visible.shape == (6, 100), "tracks [F, P, 2], visibility [F, P]"
    assert torch.equal(tracks[0], queries), "frame 0 of the tracks is the queries"
    assert visible.all(), "interior points of a textured square stay tracked"
    assert error.median() < 0.25, f"median endpoint error must be < 0.25 px (measured ~0.03), got {error.median():.3f}"


def test_lucas_kanade_recovers_a_known_rotation():
    video, mask, mats = rotating_disc(degrees_per_frame=3.0)
    queries = M.sample_query_points(mask, 100, seed=0)
    tracks, _ = M.LucasKanadeTracker().track(video, queries)
    truth = torch.stack([queries @ A[:, :2].T + A[:, 2] for A in mats])
    error = (tracks - truth).norm(dim=-1)[1:]
    assert error.median() < 0.5, f"median endpoint error must be < 0.5 px (measured ~0.2), got {error.median():.3f}"
    assert M.motion_fidelity_from_tracks(truth, tracks) > 0.98, "tracked step directions must match the rotation"


def test_cotracker_needs_its_code_and_a_local_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        M.CoTrackerTracker(tmp_path / "scaled_offline.pth")
    ckpt = tmp_path / "scaled_offline.pth"
    ckpt.write_bytes(b"not really")
    try:
        import cotracker  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="cotracker"):
            M.CoTrackerTracker(ckpt)


def test_cotracker_tracker_speaks_cotrackers_predictor_interface():
    class EchoPredictor(torch.nn.Module):
        def forward(self, video, queries):
            self.seen = (video.clone(), queries.clone())
            f = video.shape[1]
            tracks = queries[:, None, :, 1:].repeat(1, f, 1, 1) + torch.arange(f)[None, :, None, None]
            return tracks, torch.ones(tracks.shape[:3], dtype=torch.bool)

    predictor = EchoPredictor()
    video = random_clips(n=1, f=3)[0]
    queries = torch.tensor([[4.0, 5.0], [10.0, 2.0]])
    tracks, visible = M.CoTrackerTracker(predictor=predictor).track(video, queries)
    seen_video, seen_queries = predictor.seen
    assert torch.allclose(seen_video, video[None] * 255), "CoTracker takes [1, F, 3, H, W] float in 0..255"
    assert torch.equal(seen_queries, torch.tensor([[[0.0, 4, 5], [0, 10, 2]]])), "queries are (t=0, x, y)"
    assert tracks.shape == (3, 2, 2) and torch.equal(tracks[2], queries + 2), "tracks come back as [F, P, 2]"


# ------------------------------------------------------------------------------------------------
# motion fidelity


def test_motion_fidelity_by_hand():
    right, up = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = lambda steps: torch.cumsum(torch.stack([torch.zeros(2), *steps]), 0)
    gt = torch.stack([path([right, right]), path([up, up])], dim=1)  # 2 tracks, 3 frames
    gen = torch.stack([path([right, up]), path([right * 3, right * 3])], dim=1)
    # corr[gt i, gen j]: (right,right)vs(right,up)=0.5, vs(right,right)=1; (up,up)vs(right,up)=0.5, vs right=0
    # gen term: mean over gen of max over gt = (0.5 + 1)/2 ; gt term: mean over gt of max over gen = (1 + 0.5)/2
    assert M.motion_fidelity_from_tracks(gt, gen) == pytest.approx(0.75), "eq. (2) computed by hand"
    assert M.motion_fidelity_from_tracks(gt, gt) == pytest.approx(1.0), "identical tracks give exactly 1"
    assert M.motion_fidelity_from_tracks(gt[:, :1], -gt[:, :1]) == pytest.approx(-1.0), "opposite motion gives -1"
    # with both tracks, each best match of -gt is perpendicular: every max is cos 90 deg = 0
    assert M.motion_fidelity_from_tracks(gt, -gt) == pytest.approx(0.0), "max picks the perpendicular track: 0"


def test_static_steps_follow_the_documented_rule_without_nan():
    still = torch.zeros(3, 1, 2)
    moving = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]], [[2.0, 0.0]]])
    half = torch.tensor([[[0.0, 0.0]], [[0.0, 0.0]], [[1.0, 0.0]]])  # static, then moving right
    corr = M.tracklet_correlation(torch.cat([still, moving], 1), torch.cat([still, half], 1))
    assert not torch.isnan(corr).any(), "zero displacements must not produce NaN"
    assert corr[0, 0] == 1.0, "static vs static steps have similarity 1"
    assert corr[1, 0] == 0.0, "moving vs static steps have similarity 0"
    assert corr[1, 1] == pytest.approx(0.5), "(moving vs static = 0, moving vs moving = 1) averages to 0.5"


def test_motion_fidelity_of_identical_videos_is_one():
    video, mask = translating_square()
    result = M.motion_fidelity(video[None], video[None], mask[None], tracker=M.LucasKanadeTracker())
    assert result.value == pytest.approx(1.0), "a video has perfect motion fidelity with itself"
    assert (result.num_evaluated, result.num_skipped) == (1, 0), "one clip evaluated"


def test_motion_fidelity_ranks_true_motion_above_shuffled_static_and_reversed():
    video, mask = translating_square()
    ref, masks, lk = video[None], mask[None], M.LucasKanadeTracker()
    score = lambda gen: M.motion_fidelity(gen, ref, masks, tracker=lk).value
    true = score(translating_square(seed=3)[0][None])  # same motion, different texture
    shuffled = score(ref[:, [0, 3, 1, 5, 2, 4]])
    static = score(ref[:, :1].expand_as(ref).contiguous())
    reversed_ = score(ref[:, [0, 5, 4, 3, 2, 1]])
    assert true > 0.95, f"the same motion on another texture must score near 1, got {true}"
    assert true > shuffled and true > static and true > reversed_, (
        f"true motion must rank first: true {true:.3f}, shuffled {shuffled:.3f}, static {static:.3f}, "
        f"reversed {reversed_:.3f}"
    )
    assert static == pytest.approx(0.0), "a frozen video against a moving one scores 0 (moving vs static steps)"


def test_clips_whose_mask_has_fewer_than_100_pixels_are_skipped_and_counted():
    video, mask = translating_square()
    small = torch.zeros_like(mask)
    small[20:29, 30:41] = True  # 99 pixels
    videos = torch.stack([video, video, video])
    masks = torch.stack([mask, small, mask])
    result = M.motion_fidelity(videos, videos, masks, tracker=M.LucasKanadeTracker())
    assert result.skipped == [1] and result.num_skipped == 1, "the 99-pixel mask must be skipped"
    assert result.num_evaluated == 2 and result.per_clip[1] is None, "the other clips are evaluated"
    assert result.value == pytest.approx(1.0), "the mean covers evaluated clips only"
    none = M.motion_fidelity(videos[1:2], videos[1:2], masks[1:2], tracker=M.LucasKanadeTracker())
    assert math.isnan(none.value) and none.num_skipped == 1, "no evaluable clip gives NaN, with the count"


def test_query_points_are_distinct_mask_pixels():
    mask = torch.zeros(20, 30, dtype=torch.bool)
    mask[5:15, 10:25] = True
    q = M.sample_query_points(mask, 100, seed=1)
    assert q.shape == (100, 2), "100 (x, y) points"
    assert mask[q[:, 1].long(), q[:, 0].long()].all(), "every point lies on the mask (x = column, y = row)"
    assert len({tuple(p) for p in q.tolist()}) == 100, "points are drawn without replacement"


# ------------------------------------------------------------------------------------------------
# all at once


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # 2 clips, 6 frames: singular covariances
def test_evaluate_videos_runs_every_metric_given_its_network(random_lpips):
    video, mask = translating_square(frames=4)
    videos = torch.stack([video, translating_square(frames=4, seed=2)[0]])
    result = M.evaluate_videos(
        videos, videos.clone(), lpips_net=random_lpips,
        inception=PooledProjection(), i3d=FakeI3D(), masks=torch.stack([mask, mask]),
        tracker=M.LucasKanadeTracker(), kid_subsets=5,
    )
    assert result.ssim == pytest.approx(1.0, abs=1e-6) and result.psnr == pytest.approx(100.0), "identical videos"
    assert result.lpips == pytest.approx(0.0, abs=1e-7) and abs(result.fid.value) < 1e-6, "identical videos"
    assert result.fvd.num_generated == 2 and result.motion_fidelity.value == pytest.approx(1.0), "all metrics ran"
    assert set(result.as_dict()) >= {"ssim", "psnr", "lpips", "fid", "kid", "fvd", "kvd", "motion_fidelity"}, "as_dict"
