"""interdyn.apps.probes: the physics probes, checked on oracle videos (the simulation itself, a frozen copy,
a mirrored motion) and, end to end, with the built-in model on a couple of held-out scenes."""
from __future__ import annotations

import math

import pytest
import torch

from interdyn.apps import probes
from interdyn.data.synthetic import counterfactual_pair, dataset_scene_seed, default_scene, random_scene


def test_colour_tracker_recovers_simulated_centres():
    errors = []
    for seed in range(probes.PROBE_SEED, probes.PROBE_SEED + 6):
        scene = random_scene(seed, size=(64, 64), num_frames=8)
        tracks = probes.track_objects(scene.frames, scene.meta)
        area = scene.masks.sum(dim=(-2, -1)).float()  # [O, F] visible pixels
        for k in range(len(scene.names)):
            # free objects stay inside the frame (walls); skip frames where a driver covers part of one
            unoccluded = area[k] >= 0.97 * area[k].max()
            if not scene.driven[k]:
                errors.append((tracks[k] - scene.tracks[k]).norm(dim=-1)[unoccluded].max().item())
    errors = torch.tensor(errors)
    assert errors.median() < 0.3 and errors.max() < 2.0, \
        f"colour-centroid tracks of unoccluded free objects should match the simulated centres (median of the " \
        f"per-object worst error < 0.3 px, all < 2 px), got median {errors.median():.2f}, max {errors.max():.2f} px"


def test_tracker_keeps_last_position_and_marks_never_seen_objects():
    masks = torch.zeros(2, 3, 8, 8, dtype=torch.bool)
    masks[0, 0, 2:4, 2:4] = True  # frame 0 only; frames 1-2 keep its centre (3, 3)
    tracks = probes.centroid_tracks(masks)
    assert torch.allclose(tracks[0], torch.tensor([[3.0, 3.0]] * 3)), f"a lost object keeps its last centre, got {tracks[0]}"
    assert torch.isnan(tracks[1]).all(), "an object never found must be NaN, not a made-up position"
    assert probes.track_motion_fidelity(tracks[0], tracks[1]) == 0.0, "a vanished object scores 0"


def test_force_probe_ranks_oracle_above_frozen_and_mirrored_videos():
    scene, reacting = probes.force_scene(probes.PROBE_SEED)
    assert reacting, "the first probe scene has a free object that the simulation moves"
    frozen = scene.frames[:1].expand_as(scene.frames).clone()
    mirrored = scene.frames.flip(-1)  # every motion's x component reversed
    record = probes.probe_force_scene(scene, reacting, {"interdyn": scene.frames, "no_control": mirrored,
                                                        "copy_first_frame": frozen})
    assert record["interdyn"]["motion_fidelity"] == pytest.approx(1.0, abs=1e-6), \
        "the simulation compared with itself has motion fidelity 1"
    assert record["interdyn"]["endpoint_error_px"] < 1e-4
    assert record["copy_first_frame"]["motion_fidelity"] < 0.8, \
        "a frozen video cannot follow an object that moves"
    assert record["copy_first_frame"]["endpoint_error_px"] > probes.MOVING_PX
    assert record["interdyn"]["driven_iou"] > 0.75, \
        "the simulated driver matches its own mask (edge pixels blending two colours are left out, hence < 1)"
    assert record["copy_first_frame"]["driven_iou"] < record["interdyn"]["driven_iou"]


def test_counterfactual_probe_on_oracle_and_on_a_drive_blind_model():
    factual, counter = counterfactual_pair(probes.PROBE_SEED, mode="redirect", size=(64, 64), num_frames=8)
    assert torch.equal(factual.frames[0], counter.frames[0]), "a counterfactual pair shares frame 0"
    oracle = probes.probe_counterfactual(factual, counter, {"interdyn": factual.frames}, {"interdyn": counter.frames})
    assert oracle["interdyn"]["direction_agrees"] and oracle["interdyn"]["cosine"] > 0.95
    assert oracle["interdyn"]["responds_to_drive"], "the simulated disc moves when hit and stays when missed"
    # a model that ignores the drive gives the same video for both drives: it cannot respond to it
    blind = probes.probe_counterfactual(factual, counter, {"interdyn": factual.frames}, {"interdyn": factual.frames})
    assert not blind["interdyn"]["responds_to_drive"]


def test_report_summary_and_markdown():
    report = probes.ProbeReport(settings={"seed": probes.PROBE_SEED})
    for mf_ours, mf_other in ((0.9, 0.5), (0.7, 0.6)):
        rec = {"seed": 0, "reacting": ["a"]}
        for method, mf in (("interdyn", mf_ours), ("no_control", mf_other), ("copy_first_frame", 0.3)):
            rec[method] = {"motion_fidelity": mf, "endpoint_error_px": 1.0, "driven_iou": 0.5}
        report.force.append(rec)
    s = report.summary()
    assert s["interdyn"]["motion_fidelity"]["mean"] == pytest.approx(0.8)
    assert s["interdyn"]["motion_fidelity"]["std"] == pytest.approx(0.1)
    assert s["interdyn_minus_no_control"]["motion_fidelity"]["mean"] == pytest.approx(0.25)
    assert s["interdyn_minus_no_control"]["wins"]["fraction"] == 1.0
    md = report.to_markdown()
    assert "0.800 ± 0.100" in md and "copy the first frame" in md


def test_probe_seeds_are_held_out_from_training():
    train = probes.training_seeds()
    assert len(train) == 9000, "6000 VAE/prior scenes + 3000 control-branch scenes, all distinct"
    probe_range = range(probes.PROBE_SEED, probes.PROBE_SEED + 1000)
    assert not train.intersection(probe_range), "probe scenes must not be training scenes"
    assert not train.intersection(range(probes.VALIDATION_SEED, probes.VALIDATION_SEED + 1000))
    # the control-branch dataset derives its seeds with this function
    from training.data.datasets import SyntheticClips

    ds = SyntheticClips(3000, seed=0, num_frames=8, preset="mix")
    assert {ds.scene_seed(i) for i in range(0, 3000, 97)} <= train


def test_default_scene_is_the_demo_situation():
    scene = default_scene(probes.PROBE_SEED, size=(64, 64), num_frames=8)
    hit = scene.first_contact(0, 1)
    assert hit is not None and hit <= 4, "the driver reaches the free disc early enough to see it move on"
    assert not math.isnan(float(probes.track_objects(scene.frames, scene.meta)[0, 0, 0]))


def _paint_disc(frame: torch.Tensor, centre: tuple[int, int], radius: float, colour) -> None:
    yy, xx = torch.meshgrid(torch.arange(frame.shape[-2]), torch.arange(frame.shape[-1]), indexing="ij")
    disc = (yy - centre[1]) ** 2 + (xx - centre[0]) ** 2 < radius**2
    frame[:, disc] = torch.tensor(colour, dtype=frame.dtype)[:, None]


def _empty_spot(scene, radius: int = 4) -> tuple[int, int]:
    """A centre in the last frame at least ``radius + 4`` px from every object."""
    occupied = scene.masks[:, -1].any(dim=0).float()[None, None]
    near = torch.nn.functional.max_pool2d(occupied, 2 * radius + 9, stride=1, padding=radius + 4)[0, 0].bool()
    free = torch.nonzero(~near[radius + 1:-radius - 1, radius + 1:-radius - 1])
    y, x = (int(v) + radius + 1 for v in free[len(free) // 2])
    return x, y


def test_object_inventory_passes_the_simulation_and_catches_lost_and_invented_objects():
    seeds = range(probes.PROBE_SEED, probes.PROBE_SEED + 30)
    sim_ok = lost_caught = new_caught = copy_caught = 0
    for seed in seeds:
        scene = random_scene(seed, size=(64, 64), num_frames=8)
        sim_ok += probes.object_inventory(scene.frames, scene.meta, scene.masks)["same_objects"]
        k = next(i for i in range(len(scene.names)) if scene.masks[i, -1].sum() >= 6)
        painted = scene.frames.clone()  # object k painted over with the background colour in the last frame
        bg = torch.tensor(scene.meta["background"]["colour"])[:, None]
        painted[-1][:, scene.masks[k, -1]] = bg
        inv = probes.object_inventory(painted, scene.meta, scene.masks)
        lost_caught += scene.names[k] in inv["lost"] and not inv["same_objects"]
        spot = _empty_spot(scene)
        added = scene.frames.clone()  # a disc of a colour no object has, where nothing is
        _paint_disc(added[-1], spot, 4, (0.9, 0.1, 0.9))
        new_caught += not probes.object_inventory(added, scene.meta, scene.masks)["same_objects"]
        copied = scene.frames.clone()  # a second disc of object k's colour, away from every object
        _paint_disc(copied[-1], spot, 4, scene.meta["objects"][k]["colour"])
        copy_caught += scene.names[k] in probes.object_inventory(copied, scene.meta, scene.masks)["invented"]
    n = len(seeds)
    assert sim_ok == n, f"the simulation must hold its own objects in every scene, did in {sim_ok}/{n}"
    assert lost_caught == n, f"an object painted out must be reported lost, was in {lost_caught}/{n}"
    assert new_caught == n, f"a disc of a new colour must count as invented, did in {new_caught}/{n}"
    assert copy_caught == n, f"a copy of an object away from it must count as invented, did in {copy_caught}/{n}"


def test_chain_probe_scores_the_simulation_one_and_a_frozen_video_lower():
    from interdyn.data.synthetic import force_propagation_scene

    scene = force_propagation_scene(probes.PROBE_SEED, size=(64, 64), num_frames=8)
    frozen = scene.frames[:1].expand_as(scene.frames).clone()
    rec = probes.probe_chain_scene(scene, {"simulation": scene.frames, "copy_first_frame": frozen})
    assert rec["simulation"]["motion_fidelity_b"] == pytest.approx(1.0), "B's own track matches itself"
    assert rec["copy_first_frame"]["motion_fidelity_b"] < 0.9, "B moves in a chain scene; a frozen video misses it"
    assert rec["simulation"]["endpoint_error_b_px"] == pytest.approx(0.0, abs=1e-6)


def test_first_frame_psnr_is_infinite_like_for_a_copy_and_low_for_a_tinted_frame():
    scene = random_scene(probes.PROBE_SEED, size=(64, 64), num_frames=8)
    assert probes.frame_psnr(scene.frames[0], scene.frames[0]) >= 99, "an exact copy has (capped) infinite PSNR"
    tinted = (scene.frames[0] + torch.tensor([0.1, 0.0, -0.1])[:, None, None]).clamp(0, 1)
    assert probes.frame_psnr(tinted, scene.frames[0]) < 25, "a 0.1 tint is far below the 30 dB bar"


def test_training_mix_holds_random_scenes_chains_and_hit_miss_pairs():
    from interdyn.data.synthetic import TRAINING_MIX, counterfactual_pair as pair, mixed_scene

    presets = [mixed_scene(7, i, size=(64, 64), num_frames=8).meta["preset"] for i in range(10)]
    assert presets.count("random") == 6 and presets.count("force_propagation") == 2, presets
    assert {"counterfactual_factual", "counterfactual_redirect"} <= set(presets), presets
    hit = mixed_scene(7, TRAINING_MIX.index("hit"), size=(64, 64), num_frames=8)
    assert torch.equal(hit.frames, pair(7, mode="redirect", size=(64, 64), num_frames=8)[0].frames)


def test_probes_run_on_the_world_they_are_given():
    """The toy model is trained on the toy world; its probes must draw their scenes from it too."""
    seen = []

    def frozen(first_frame, control, strength, seed):
        seen.append(first_frame)
        return first_frame[None].expand(control.shape[0], -1, -1, -1).clone()

    report = probes.run_probes(frozen, num_scenes=1, num_chain_scenes=1, world="toy")
    assert report.settings["world"] == "toy"
    background = probes.scene_palette({"background": {"colour": [40 / 255, 42 / 255, 50 / 255]}, "objects": []})[0]
    for frame in seen:  # every probe scene's first frame has the toy world's one plain background in its corner
        assert torch.allclose(frame[:, 0, 0], background, atol=1 / 255), frame[:, 0, 0]


def test_dual_clock_rows_get_the_drivers_reference_and_the_same_seed():
    """`interdyn probes --dual-clock`: the training-free drag (strength 0) and InterDyn + drag rows are generated
    from the reference of the drive (the first frame with the driver pasted along its masks: it never holds the
    reaction), with the levels given, the scene's seed, and appear in the report's tables."""
    calls = []

    def generate(first_frame, control, strength, seed, dual_clock=None):
        calls.append((strength, seed, dual_clock))
        if dual_clock is None:
            return first_frame[None].expand(control.shape[0], -1, -1, -1).clone()
        return dual_clock.reference.clone()  # "follows the reference exactly"

    report = probes.run_probes(generate, num_scenes=1, num_chain_scenes=1, world="toy", dual_clock=(10.0, 1.0))
    clocked = [c for c in calls if c[2] is not None]
    assert {c[0] for c in clocked} == {0.0, 1.0}, "alone (no branch) and with the branch"
    assert all((c[2].sigma_weak, c[2].sigma_strong) == (10.0, 1.0) for c in clocked)
    row = report.force[0]["dual_clock"]
    assert row["driven_iou"] is not None and row["driven_iou"] > 0.8, "the reference carries the driver on its path"
    assert report.settings["dual_clock"] == {"sigma_weak": 10.0, "sigma_strong": 1.0}
    table = report.to_markdown()
    assert "training-free drag (dual clock, no branch)" in table and "InterDyn + dual clock" in table


#: bad dual-clock levels and the one message each gets (interdyn.core.dual_clock.check_levels, in the flags' names)
BAD_LEVELS = [
    (["--dual-clock", "--sigma-weak", "5", "--sigma-strong", "10"], "--sigma-strong (10.0) must not be above "
                                                                    "--sigma-weak (5.0)"),
    (["--dual-clock", "--sigma-weak", "nan"], "--sigma-weak must be a finite number"),
    (["--dual-clock", "--sigma-strong", "inf"], "--sigma-strong must be a finite number"),
    (["--dual-clock", "--sigma-strong", "-1"], "--sigma-strong must be a noise level >= 0"),
    (["--dual-clock", "--sigma-weak", "-3"], "--sigma-weak must be a noise level >= 0"),
    (["--dual-clock", "--sigma-weak", "0", "--sigma-strong", "0"], "--sigma-weak must be > 0"),
    (["--sigma-weak", "5"], "--sigma-weak needs --dual-clock"),
]


@pytest.mark.parametrize("extra,message", BAD_LEVELS, ids=[" ".join(c[0]) for c in BAD_LEVELS])
def test_probes_and_evaluate_refuse_a_bad_dual_clock_level_with_the_same_line(extra, message, tmp_path, monkeypatch,
                                                                              capsys):
    """Issue 37/35: one check per bad value. ``interdyn probes`` had its own level check, whose one combined line
    ("--sigma-strong (10.0) must be >= 0 and not above --sigma-weak (5.0), which must be > 0") did not say which
    rule was broken, while ``interdyn evaluate`` used :func:`interdyn.core.dual_clock.check_levels`; both now give
    that check's line for each bad value, in their own flags' names, before any model loads or anything is
    written."""
    from interdyn.apps.cli import main as cli
    from interdyn.core import loading
    from training.evaluate import main as evaluate

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the levels were checked")

    monkeypatch.setattr(loading, "load_svd_backbone", no_loading)
    monkeypatch.setattr(loading, "load_control_branch", no_loading)
    (tmp_path / "data").mkdir()
    lines = {}
    for command, run, argv in (
            ("probes", cli, ["probes", "--out", str(tmp_path / "probes"), "--num-scenes", "1", "--steps", "1"]),
            ("evaluate", evaluate, ["--data", str(tmp_path / "data"), "--out", str(tmp_path / "evaluation")])):
        assert run(argv + extra) == 2, f"{command} {extra}: an error exit"
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, f"{command}: one line: {err}"
        lines[command] = err.removesuffix(" (run with --debug for the traceback)")  # the interdyn command's hint
        assert not (tmp_path / command).exists() and not (tmp_path / "evaluation").exists(), "nothing was written"
    assert lines["probes"] == lines["evaluate"] and lines["probes"].startswith(f"error: {message}"), lines
