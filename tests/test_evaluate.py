"""Specifications of the evaluation runner (training/evaluate.py) and the baselines (training/baselines.py).

Tiny models (interdyn.core.tiny), three 64x64 clips of the synthetic world in the generic folder layout,
4 frames, 1 sampling step; LPIPS with a random AlexNet, fake Inception and I3D extractors injected
through the Python API. Nothing is downloaded.
"""
from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np
import pytest
import torch

from interdyn import metrics as M
from interdyn.core.tiny import write_tiny_models
from interdyn.data.video_io import read_video, write_video
from training import baselines
from training import evaluate as E
from training.evaluation import data as ED
from training.evaluation import generation as EG
from training.evaluation import pooling as EP
from interdyn.data.synthetic import default_scene, write_scene_folder

ALL_METHODS = ["interdyn", "no_control", "copy_first_frame", "coshand_independent", "coshand_autoregressive"]
SETTINGS = E.GenerationSettings(num_frames=4, height=64, width=64, num_steps=1, clip_fps=3.0, crop="center", seed=3)
LABELS = ["pushing something", "pushing something", "hitting something"]
TABLE1_HEADER = "| Method | SSIM↑ | PSNR↑ | LPIPS↓ | FID↓ | KID↓ | FVD↓ | KVD↓ | MF↑ |"


class FakeInception:
    """uint8 images [B,3,H,W] -> 8-d features (fixed projection of 2x2-pooled pixels); counts calls."""

    def __init__(self):
        self.weight = torch.randn(12, 8, generator=torch.Generator().manual_seed(0))
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        return torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 2).flatten(1) @ self.weight


class FakeI3D:
    """The I3D TorchScript's signature; clips [B,3,F,H,W] -> 2-d features of first and last frame; counts calls."""

    def __init__(self):
        self.weight = torch.randn(6, 2, generator=torch.Generator().manual_seed(1))
        self.calls = 0

    def __call__(self, x, rescale=False, resize=False, return_features=False):
        self.calls += 1
        x = x.float() / 127.5 - 1.0 if rescale else x.float()
        first_last = torch.cat([x[:, :, 0].mean((-1, -2)), x[:, :, -1].mean((-1, -2))], dim=1)
        return first_last @ self.weight


def blend_transition(image, control, source_control=None, t=None):
    """A stand-in state transition model: paints the target control half over the image."""
    return 0.5 * image + 0.5 * control


@pytest.fixture(scope="module")
def random_lpips():
    import lpips

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Tiny model files and three synthetic clips (8 frames at 6 fps -> 4 frames at 3 fps), two labels."""
    root = tmp_path_factory.mktemp("eval")
    models = write_tiny_models(root / "models", seed=0)
    data = root / "data"
    for k, label in enumerate(LABELS):
        folder = write_scene_folder(default_scene(k, size=(64, 64), num_frames=8), data / f"clip{k}")
        (folder / "label.txt").write_text(label)
    return {"root": root, "data": data, **models}


@pytest.fixture(scope="module")
def first_run(world, random_lpips):
    """One full run: every method, every metric network given."""
    nets = dict(lpips_net=random_lpips, inception=FakeInception(), i3d=FakeI3D())
    out = world["root"] / "out"
    calls = []
    original = EG.generate_video

    def counting_generate_video(*args, **kwargs):
        calls.append(kwargs.get("control_strength"))
        return original(*args, **kwargs)

    EG.generate_video = counting_generate_video
    try:
        results = E.evaluate(world["data"], ALL_METHODS, out_dir=out, svd=world["svd"], interdyn=world["interdyn"],
                             coshand=blend_transition, settings=SETTINGS, mf_points=50, kid_subsets=5,
                             progress=False, **nets)
    finally:
        EG.generate_video = original
    return {"results": results, "out": out, "calls": calls, "nets": nets}


def _stack(paths):
    return torch.stack([torch.from_numpy(read_video(p)[0]).permute(0, 3, 1, 2).float() / 255 for p in paths])


# ---------------------------------------------------------------------------- end to end
def test_runner_generates_every_method_and_writes_table1_shaped_like_the_paper(first_run):
    out, results = first_run["out"], first_run["results"]
    assert sorted(first_run["calls"]) == [0.0] * 3 + [1.0] * 3, \
        f"the sampler runs once per clip for interdyn (strength 1) and no_control (strength 0): {first_run['calls']}"
    lines = (out / "table1.md").read_text().splitlines()
    assert lines[0] == TABLE1_HEADER, f"Table 1 columns are the paper's, got {lines[0]!r}"
    rows = [line for line in lines[2:] if line.startswith("| ")]
    names = [row.split("|")[1].strip() for row in rows]
    assert names == [E.DISPLAY_NAMES[m] for m in ALL_METHODS], f"one row per method in order, got {names}"
    for row in rows:
        cells = [c.strip() for c in row.split("|")[2:-1]]
        assert len(cells) == 8 and all(math.isfinite(float(c)) for c in cells), f"all 8 values finite: {row}"
    for method in ALL_METHODS:
        for key in E.METRICS:
            value = EP.metric_value(results["methods"][method]["metrics"][key])
            assert value is not None and math.isfinite(value), f"{method} {key} is finite with every network given"
    assert json.loads((out / "results.json").read_text())["settings"]["num_clips"] == 3, "results.json is written"
    for method in ALL_METHODS:
        for k in range(3):
            assert (out / "generated" / method / f"clip{k}" / "generated.mp4").is_file(), f"{method} clip{k} cached"


def test_per_class_table_counts_clips_and_averages_motion_fidelity_per_label(first_run):
    out, results = first_run["out"], first_run["results"]
    lines = (out / "table_s3.md").read_text().splitlines()
    assert lines[0].startswith("| Class | Count | MF↑ InterDyn |"), f"Table S3 header: {lines[0]!r}"
    rows = {row.split("|")[1].strip(): row.split("|")[2].strip() for row in lines[2:] if row.startswith("| ")}
    assert rows == {"hitting something": "1", "pushing something": "2"}, f"labels from label.txt with counts: {rows}"
    per_clip = results["per_clip"]["interdyn"]
    pushing = np.mean([per_clip[i]["mf"] for i in ("clip0", "clip1")])
    assert results["per_class"]["pushing something"]["mf"]["interdyn"] == pytest.approx(pushing), \
        "a class's MF is the mean of its clips' MF"


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_pooled_scores_equal_evaluate_videos_on_the_stacked_clips(first_run, world):
    """The per-clip cache is an implementation detail: the numbers are those of interdyn.metrics on all clips."""
    out, nets = first_run["out"], first_run["nets"]
    dataset = E.open_dataset(world["data"], SETTINGS)
    reference = torch.stack([dataset[i]["frames"] for i in range(3)])
    masks = torch.stack([ED.object_mask(dataset[i]["meta"]) for i in range(3)])
    generated = _stack([out / "generated" / "interdyn" / f"clip{k}" / "generated.mp4" for k in range(3)])
    expected = M.evaluate_videos(generated, reference, lpips_net=nets["lpips_net"], inception=FakeInception(),
                                 i3d=FakeI3D(), kid_subsets=5)
    got = first_run["results"]["methods"]["interdyn"]["metrics"]
    for key in ("ssim", "psnr", "lpips"):
        assert got[key] == pytest.approx(getattr(expected, key), rel=1e-6), f"{key} pooled over all frames"
    for key in ("fid", "kid", "fvd", "kvd"):
        assert got[key]["value"] == pytest.approx(getattr(expected, key).value, rel=1e-6, abs=1e-9), \
            f"{key} from the features of all clips"
    mf = M.motion_fidelity(generated, reference, masks, tracker=M.LucasKanadeTracker(), num_points=50)
    assert got["mf"]["value"] == pytest.approx(mf.value), "MF: clip i samples its points with seed i"


def test_rerun_skips_generation_and_feature_extraction(first_run, world, monkeypatch):
    calls = []
    monkeypatch.setattr(EG, "generate_video", lambda *a, **k: calls.append(1))
    inception, i3d = FakeInception(), FakeI3D()
    results = E.evaluate(world["data"], ALL_METHODS, out_dir=first_run["out"], svd=world["svd"],
                         interdyn=world["interdyn"], coshand=blend_transition, settings=SETTINGS, mf_points=50,
                         kid_subsets=5, progress=False, lpips_net=first_run["nets"]["lpips_net"],
                         inception=inception, i3d=i3d)
    assert calls == [], "cached videos are not generated again"
    assert inception.calls == 0 and i3d.calls == 0, "cached features are not extracted again"
    assert results["run"]["generated"] == 0 and results["run"]["cached"] == 15, f"run counts: {results['run']}"
    assert results["methods"] == first_run["results"]["methods"], "a resumed run reports the same numbers"


def test_rerun_with_other_sampling_settings_is_refused(first_run, world):
    other = E.GenerationSettings(**{**SETTINGS.__dict__, "num_steps": 2})
    with pytest.raises(ValueError, match="num_steps"):
        E.evaluate(world["data"], ["interdyn"], out_dir=first_run["out"], svd=world["svd"],
                   interdyn=world["interdyn"], settings=other, progress=False)


# ---------------------------------------------------------------------------- baselines
@pytest.fixture()
def static_clip(tmp_path):
    """One clip whose 8 frames are identical (lossless), with a hand mask and an object mask."""
    frame = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    folder = tmp_path / "static" / "still"
    write_video(folder / "video.mp4", frame.expand(8, 3, 64, 64), 6, lossless=True)
    mask = torch.zeros(8, 64, 64, dtype=torch.bool)
    mask[:, 10:20, 10:20] = True
    write_video(folder / "mask_hand.mp4", mask, 6, lossless=True)
    write_video(folder / "mask_box.mp4", torch.roll(mask, 30, dims=2), 6, lossless=True)
    return tmp_path / "static"


def test_copy_first_frame_is_perfect_on_a_static_video_and_missing_weights_are_reported(static_clip, tmp_path,
                                                                                           monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))  # no metric weights anywhere
    code = E.main(["--data", str(static_clip), "--out", str(tmp_path / "out"), "--methods", "copy_first_frame",
                   "--frames", "4", "--height", "64", "--width", "64", "--clip-fps", "3", "--crop", "center",
                   "--no-progress"])
    assert code == 0, "the CLI succeeds without any metric weights"
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    entry = results["methods"]["copy_first_frame"]
    assert entry["metrics"]["ssim"] == pytest.approx(1.0, abs=1e-6), "copying frame 0 of a static clip: SSIM 1"
    assert entry["metrics"]["psnr"] == pytest.approx(100.0), "and PSNR at its documented cap"
    for key in ("lpips", "fid", "kid", "fvd", "kvd"):
        assert entry["metrics"][key] is None and "not found" in entry["unavailable"][key], \
            f"{key} is unavailable with the reason (the missing file), not a crash: {entry['unavailable'].get(key)}"
    assert entry["metrics"]["mf"]["value"] == pytest.approx(1.0), "MF (LK, no weights) of a static copy is 1"
    table = (tmp_path / "out" / "table1.md").read_text()
    assert "| Copy first frame | 1.000 | 100.00 | n/a | n/a | n/a | n/a | n/a | 1.000 |" in table, table
    assert "LPIPS↓ n/a: FileNotFoundError" in table, "the table says why a column is n/a"
    assert "Copy first frame" in capsys.readouterr().out, "the CLI prints the tables"


def test_generated_folders_are_scored_like_our_own_videos(static_clip, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    first = E.evaluate(static_clip, ["copy_first_frame"], out_dir=tmp_path / "a", settings=SETTINGS, progress=False)
    again = E.evaluate(static_clip, out_dir=tmp_path / "b", settings=SETTINGS, progress=False,
                       generated={"copy": tmp_path / "a" / "generated" / "copy_first_frame"})
    assert list(again["methods"]) == ["copy"], "only the --generated method is evaluated"
    assert again["methods"]["copy"]["metrics"]["ssim"] == first["methods"]["copy_first_frame"]["metrics"]["ssim"], \
        "a generated folder in the <id>/generated.mp4 layout gives the same scores"
    with pytest.raises(FileNotFoundError, match="still"):
        E.evaluate(static_clip, out_dir=tmp_path / "c", settings=SETTINGS, progress=False,
                   generated={"empty": tmp_path / "b"})


class RecordingTransition:
    """A fake CosHand: records its inputs and returns a distinct image per call."""

    def __init__(self):
        self.calls = []

    def __call__(self, image, control, *, source_control, t):
        self.calls.append(dict(image=image.clone(), control=control.clone(), source=source_control.clone(), t=t))
        return torch.full_like(image, t / 10)


def test_coshand_independent_predicts_each_frame_from_the_first_frame():
    first, control = torch.rand(3, 8, 8), torch.rand(4, 3, 8, 8)
    fake = RecordingTransition()
    video = baselines.coshand_independent(fake, first, control)
    assert [c["t"] for c in fake.calls] == [1, 2, 3], "one call per frame after the first"
    for c in fake.calls:
        assert torch.equal(c["image"], first), f"frame {c['t']} starts from the first frame"
        assert torch.equal(c["control"], control[c["t"]]), f"frame {c['t']} targets the control at t"
        assert torch.equal(c["source"], control[0]), "the input image's control is frame 0's"
    assert torch.equal(video[0], first) and torch.allclose(video[2], torch.full_like(first, 0.2)), \
        "frame 0 is the input, frame t the transition's output"


def test_coshand_autoregressive_feeds_each_prediction_back():
    first, control = torch.rand(3, 8, 8), torch.rand(4, 3, 8, 8)
    fake = RecordingTransition()
    video = baselines.coshand_autoregressive(fake, first, control)
    assert torch.equal(fake.calls[0]["image"], first), "frame 1 starts from the first frame"
    for c in fake.calls[1:]:
        assert torch.equal(c["image"], video[c["t"] - 1]), f"frame {c['t']} starts from the prediction of t-1"
    for c in fake.calls:
        assert torch.equal(c["control"], control[c["t"]]) and torch.equal(c["source"], control[c["t"] - 1]), \
            f"frame {c['t']}: target control t, source control t-1"


def test_transitions_get_only_the_keywords_they_accept_and_load_from_module_strings(tmp_path):
    seen = []
    two_args = lambda image, control: seen.append("ok") or image  # noqa: E731
    baselines.coshand_independent(two_args, torch.rand(3, 4, 4), torch.rand(3, 3, 4, 4))
    assert seen == ["ok", "ok"], "a transition taking only (image, control) works"
    (tmp_path / "my_model.py").write_text("def step(image, control, **kw):\n    return image\n")
    fn = baselines.load_transition(f"{tmp_path / 'my_model.py'}:step")
    assert fn(torch.ones(3, 2, 2), None).sum() == 12, "file.py:function resolves to the function"
    assert baselines.load_transition("training.baselines:copy_first_frame") is baselines.copy_first_frame, \
        "module:function resolves to the function"
    with pytest.raises(ValueError, match="returned shape"):
        baselines.coshand_autoregressive(lambda image, control: image[:1], torch.rand(3, 4, 4), torch.rand(2, 3, 4, 4))


def test_corrupt_metric_weights_become_n_a_with_a_reason_and_never_advice_to_unpickle(static_clip, tmp_path,
                                                                                       monkeypatch):
    """A random-bytes LPIPS file aborted the whole run with torch's UnpicklingError, whose text advises re-running
    with weights_only=False (issue 23): a bad file is reported like a missing one. The bytes are seeded: which error
    torch raises depends on them (an UnpicklingError, or an IndexError inside the unpickler), and both read as a
    damaged file."""
    import random

    from interdyn.metrics import ALEXNET_WEIGHTS, INCEPTION_WEIGHTS

    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    for seed, name in enumerate((ALEXNET_WEIGHTS, INCEPTION_WEIGHTS[0])):
        (home / "hub" / "checkpoints" / name).write_bytes(random.Random(seed).randbytes(4096))
    monkeypatch.setenv("TORCH_HOME", str(home))
    code = E.main(["--data", str(static_clip), "--out", str(tmp_path / "out"), "--methods", "copy_first_frame",
                   "--frames", "4", "--height", "64", "--width", "64", "--clip-fps", "3", "--crop", "center",
                   "--no-progress"])
    assert code == 0, "the run goes on without the unreadable networks"
    entry = json.loads((tmp_path / "out" / "results.json").read_text())["methods"]["copy_first_frame"]
    name_of = {"lpips": ALEXNET_WEIGHTS, "fid": INCEPTION_WEIGHTS[0]}
    for key in ("lpips", "fid"):
        reason = entry["unavailable"][key]
        assert entry["metrics"][key] is None and name_of[key] in reason, f"{key}: the file is named: {reason}"
        assert "not a plain tensor file" in reason or "damaged or not a torch file" in reason, f"{key}: {reason}"
        assert "weights_only=False" not in reason and "weights_only set to False" not in reason, reason


def test_a_metric_is_added_by_one_registry_entry(static_clip, tmp_path, monkeypatch):
    """interdyn.metrics.registry is the only list the runner reads: a new frame metric (here the mean absolute error
    of frames 1.., written as its own function) gets its per-clip score, its pooled value, its per-clip entry and
    its Table 1 column from its entry alone."""
    from interdyn.metrics import registry

    def mae(generated, reference, net, device):  # [N, F-1] per-frame scores, as the registry's contract says
        return (generated[:, 1:] - reference[:, 1:]).abs().flatten(2).mean(-1)

    entry = registry.FrameMetric(registry.Column("mae", "MAE↓", "{:.4f}"), mae)
    monkeypatch.setattr(registry, "FRAME_METRICS", (*registry.FRAME_METRICS, entry))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    results = E.evaluate(static_clip, ["copy_first_frame"], out_dir=tmp_path / "out", settings=SETTINGS,
                         progress=False)
    entry = results["methods"]["copy_first_frame"]
    assert entry["metrics"]["mae"] == pytest.approx(0.0, abs=1e-7), "copying frame 0 of a static clip: no error"
    assert entry["metrics"]["ssim"] == pytest.approx(1.0, abs=1e-6), "the shipped metrics are still there"
    assert results["per_clip"]["copy_first_frame"]["still"]["mae"] == pytest.approx(0.0, abs=1e-7)
    table = (tmp_path / "out" / "table1.md").read_text()
    assert "| MAE↓ |" in table and "| 0.0000 |" in table, table
    assert [c.key for c in registry.COLUMNS] == ["ssim", "psnr", "lpips", "fid", "kid", "fvd", "kvd", "mf"], \
        "Table 1's shipped columns, in the paper's order"


def test_evaluate_videos_reads_the_same_registry(monkeypatch):
    """The one-call API computes what the registry lists: a metric added by one entry (mean absolute error of
    frames 1..) shows up in ``EvaluationResult.extra`` with the value its own function gives, beside SSIM/PSNR."""
    from interdyn.metrics import registry

    def mae(generated, reference, net, device):
        return (generated[:, 1:] - reference[:, 1:]).abs().flatten(2).mean(-1)

    monkeypatch.setattr(registry, "FRAME_METRICS",
                        (*registry.FRAME_METRICS, registry.FrameMetric(registry.Column("mae", "MAE↓", "{:.4f}"), mae)))
    reference = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    generated = (reference + 0.1).clamp(0, 1)
    result = M.evaluate_videos(generated, reference)
    expected = float((generated[:, 1:] - reference[:, 1:]).abs().double().mean())
    assert result.extra["mae"] == pytest.approx(expected, rel=1e-6), "the registered metric is computed"
    assert result.ssim < 1 and result.psnr < 100, "the shipped frame metrics are still computed"
    assert result.lpips is None and result.fid is None, "no network given: those metrics are not computed"


def _inside_mask_agreement(generated, reference, masks, net, *, num_points=100, seed=0):
    """A stand-in clip metric: per clip, 1 - the mean absolute difference inside its first-frame mask over all
    frames; NaN where the mask has fewer than ``num_points`` pixels (the kind's contract)."""
    masks = masks[:, 0] if masks.ndim == 4 else masks
    out = []
    for g, r, m in zip(generated, reference, masks.bool()):
        out.append(float("nan") if int(m.sum()) < num_points else
                   1.0 - float((g - r).abs().mean(1)[:, m].double().mean()))
    return np.array(out, dtype=np.float64)


def test_a_clip_metric_is_added_by_one_registry_entry(static_clip, tmp_path, monkeypatch):
    """Motion fidelity's kind (one score per clip on its object mask, with the tracker) is open too: a new entry in
    CLIP_METRICS gets its per-clip score, its pooled value with the clips it scored, its per-clip entry, its Table 1
    column, and a place in evaluate_videos, from the entry alone."""
    from interdyn.metrics import registry

    entry = registry.ClipMetric(registry.Column("agree", "AGREE↑", "{:.2f}"), _inside_mask_agreement,
                                network="tracker")
    monkeypatch.setattr(registry, "CLIP_METRICS", (*registry.CLIP_METRICS, entry))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))
    results = E.evaluate(static_clip, ["copy_first_frame"], out_dir=tmp_path / "out", settings=SETTINGS,
                         progress=False, mf_points=50)
    pooled = results["methods"]["copy_first_frame"]["metrics"]["agree"]
    assert pooled == {"value": pytest.approx(1.0), "num_evaluated": 1, "num_skipped": 0, "skipped": []}, \
        f"pooled as motion fidelity is, over the clips with a mask of at least --mf-points pixels: {pooled}"
    assert results["methods"]["copy_first_frame"]["metrics"]["mf"]["value"] == pytest.approx(1.0), "MF still there"
    assert results["per_clip"]["copy_first_frame"]["still"]["agree"] == pytest.approx(1.0), "its per-clip entry"
    table = (tmp_path / "out" / "table1.md").read_text()
    assert "| MF↑ | AGREE↑ |" in table and table.splitlines()[2].endswith("| 1.000 | 1.00 |"), table

    again = E.evaluate(static_clip, ["copy_first_frame"], out_dir=tmp_path / "small", settings=SETTINGS,
                       progress=False, mf_points=101)  # the 10x10 object mask is too small now
    assert again["methods"]["copy_first_frame"]["metrics"]["agree"] is None
    assert "no clip has an object mask" in again["methods"]["copy_first_frame"]["unavailable"]["agree"], \
        "a set where no clip can be scored gives the reason, as motion fidelity does"

    reference = torch.rand(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    masks = torch.zeros(2, 32, 32, dtype=torch.bool)
    masks[0, :12, :12] = True  # 144 pixels; clip 1 has none and is skipped
    result = M.evaluate_videos(reference, reference, masks=masks, tracker=M.LucasKanadeTracker())
    assert result.extra["agree"].value == pytest.approx(1.0) and result.extra["agree"].skipped == [1], \
        f"evaluate_videos computes it too, clip by clip: {result.extra['agree']}"
    assert result.motion_fidelity.value == pytest.approx(1.0) and result.motion_fidelity.skipped == [1]


# ---------------------------------------------------------------------------- training-free drag rows (issue 37)
DRAG_METHODS = ["interdyn", "dual_clock", "interdyn_dual_clock"]


@pytest.fixture(scope="module")
def drag_run(world, random_lpips):
    """InterDyn, the training-free drag alone and InterDyn + drag on the same clips and seed (4 Euler steps: the
    levels are the schedule's 2nd and 3rd, so the drag starts late and holds the driver for one step)."""
    from interdyn.core.sampling import karras_sigmas

    sigmas = karras_sigmas(4)
    settings = E.GenerationSettings(num_frames=4, height=64, width=64, num_steps=4, clip_fps=3.0, crop="center", seed=3,
                                    sigma_weak=float(sigmas[1]), sigma_strong=float(sigmas[2]))
    out = world["root"] / "out_drag"
    clocks = []
    original = EG.generate_video

    def recording_generate_video(*args, **kwargs):
        clocks.append((kwargs.get("control_strength"), kwargs.get("dual_clock")))
        return original(*args, **kwargs)

    EG.generate_video = recording_generate_video
    try:
        results = E.evaluate(world["data"], DRAG_METHODS, out_dir=out, svd=world["svd"], interdyn=world["interdyn"],
                             settings=settings, mf_points=20, kid_subsets=2, progress=False, lpips_net=random_lpips,
                             inception=FakeInception(), i3d=FakeI3D())
    finally:
        EG.generate_video = original
    return {"results": results, "out": out, "clocks": clocks, "settings": settings}


def test_the_training_free_drag_and_interdyn_plus_drag_are_rows_of_the_evaluation(drag_run):
    out, results = drag_run["out"], drag_run["results"]
    lines = (out / "table1.md").read_text().splitlines()
    names = [row.split("|")[1].strip() for row in lines[2:] if row.startswith("| ")]
    assert names == ["InterDyn", "Training-free drag (dual clock, no branch)", "InterDyn + dual clock"], names
    for method in DRAG_METHODS:
        assert results["methods"][method]["num_clips"] == 3
        assert math.isfinite(EP.metric_value(results["methods"][method]["metrics"]["psnr"])), method
    # the same seed and sampler for every row: what differs is the branch and the dual clock
    videos = {m: _stack(sorted((out / "generated" / m).glob("clip*/generated.mp4"))) for m in DRAG_METHODS}
    pairs = (("interdyn", "dual_clock"), ("interdyn", "interdyn_dual_clock"), ("dual_clock", "interdyn_dual_clock"))
    for a, b in pairs:
        diff = float((videos[a] - videos[b]).abs().max())
        assert diff > 0.05, f"{a} and {b} must be different videos (max |diff| {diff})"
    recorded = json.loads((out / "generated" / "dual_clock" / "settings.json").read_text())
    s = drag_run["settings"]
    assert (recorded["sigma_weak"], recorded["sigma_strong"]) == (s.sigma_weak, s.sigma_strong), \
        "the levels are recorded beside the cached videos (a rerun with other levels is refused)"


def test_the_drag_rows_sample_with_and_without_the_branch_from_the_clips_driver(drag_run, world):
    s = drag_run["settings"]
    by_kind = {}
    for strength, clock in drag_run["clocks"]:
        by_kind.setdefault((strength, clock is not None), []).append(clock)
    assert {k: len(v) for k, v in by_kind.items()} == {(1.0, False): 3, (0.0, True): 3, (1.0, True): 3}, \
        "per clip: InterDyn (branch, no clock), the drag alone (strength 0, clock), InterDyn + drag (both)"
    dataset = ED.open_dataset(world["data"], s)
    for k, clock in enumerate(by_kind[(0.0, True)]):
        sample = dataset[k]
        frames = sample["frames"].float()
        driver = torch.stack([m.float() for name, m in sample["meta"]["masks"].items()
                              if name in set(sample["meta"].get("driven") or ()) | {"hand"}]).amax(0)
        assert (clock.sigma_weak, clock.sigma_strong) == (s.sigma_weak, s.sigma_strong)
        assert torch.equal(clock.region, (driver > 0.5).float()), "the region is the driver's masks"
        assert clock.region[1:].sum() > 0, "the driver is in the clip"
        held = clock.region.bool()[:, None].expand_as(frames)
        assert float((clock.reference - frames).abs()[held].max()) < 1e-6, \
            "under its masks the reference shows the driver as the clip does"
        # elsewhere it is the first frame (the reaction is never in the reference): away from the driver's first
        # place (its filled hole, grown by a pixel) and from where it is now
        hole = torch.nn.functional.max_pool2d(clock.region[:1, None], 3, 1, 1)[0, 0].bool()
        still = ~(held | hole[None, None])
        assert float((clock.reference - frames[:1]).abs()[still].max()) < 1e-6
        assert float((frames - frames[:1]).abs()[still].max()) > 0.05, \
            "the clip itself moves there (the struck object): the reference does not"


def test_dual_clock_flags_are_checked_before_anything_loads(tmp_path, monkeypatch, capsys):
    import interdyn.core.loading as loading

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the flags were checked")

    monkeypatch.setattr(loading, "load_svd_backbone", no_loading)
    monkeypatch.setattr(loading, "load_control_branch", no_loading)
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--svd", str(tmp_path)]
    cases = [(["--sigma-weak", "5"], "--sigma-weak needs --dual-clock"),
             (["--dual-clock", "--sigma-weak", "5", "--sigma-strong", "10"], "--sigma-strong (10.0) must not be above "
                                                                            "--sigma-weak (5.0)"),
             (["--dual-clock", "--sigma-weak", "nan"], "--sigma-weak must be a finite number"),
             (["--dual-clock", "--sigma-strong", "-1"], "--sigma-strong must be a noise level >= 0"),
             (["--methods", "dual_clock", "--sigma-weak", "0", "--sigma-strong", "0"], "--sigma-weak must be > 0")]
    for extra, message in cases:
        assert E.main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, (extra, err)
    assert not (tmp_path / "out").exists(), "nothing was written"


def test_dual_clock_adds_the_drag_rows_to_the_methods(tmp_path, monkeypatch, capsys):
    asked = []

    def stop(data, methods, **kwargs):
        asked.append((methods, kwargs["settings"]))
        raise ValueError("stopped by the test")

    monkeypatch.setattr(E, "evaluate", stop)
    base = ["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--svd", str(tmp_path)]
    E.main(base + ["--dual-clock", "--sigma-weak", "10", "--sigma-strong", "1"])
    E.main(base + ["--dual-clock", "--interdyn", str(tmp_path)])
    E.main(base + ["--methods", "no_control,dual_clock"])
    capsys.readouterr()
    (m1, s1), (m2, s2), (m3, s3) = asked
    assert m1 == ["interdyn", "no_control", "copy_first_frame", "dual_clock"], "no branch given: the drag alone"
    assert (s1.sigma_weak, s1.sigma_strong) == (10.0, 1.0)
    assert m2 == ["interdyn", "no_control", "copy_first_frame", "dual_clock", "interdyn_dual_clock"]
    assert m3 == ["no_control", "dual_clock"], "listed methods are kept as they are"
    from interdyn.core.dual_clock import SVD_SIGMA_STRONG, SVD_SIGMA_WEAK
    assert (s2.sigma_weak, s2.sigma_strong) == (s3.sigma_weak, s3.sigma_strong) == (SVD_SIGMA_WEAK, SVD_SIGMA_STRONG)
