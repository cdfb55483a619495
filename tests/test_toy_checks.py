"""The toy recipe's stage gates (training/toy/checks.py), checked on oracles: the simulation itself must
pass, copies that blur, tint or freeze it must fail, each for the reason the gate names."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from training.toy.checks import gate_scenes, prior_check, prior_scene_check, vae_gate


def _scenes(n=4):
    return gate_scenes(n, world="toy")


def blurred(video):
    k = torch.ones(3, 1, 5, 5) / 25
    return F.conv2d(F.pad(video, (2, 2, 2, 2), mode="replicate"), k, groups=3)


def test_gate_scenes_are_toy_world_validation_scenes_with_motion():
    scenes = _scenes(3)
    assert all(s.meta["world"] == "toy" and s.meta["seed"] >= 2_000_000 for s, _ in scenes), \
        "gate scenes are validation seeds of the toy world, never probe or training seeds"
    assert all(r for _, r in scenes), "each gate scene moves at least one free object"


def test_vae_gate_passes_the_simulation_itself():
    result = vae_gate(lambda v: v.clone(), _scenes())
    assert result.passed, f"an exact round trip must pass: {result}"
    assert result.scores["psnr_db"] >= 99


def test_vae_gate_fails_a_blurred_round_trip():
    result = vae_gate(blurred, _scenes())
    assert not result.passed, "a 5x5 box blur keeps positions roughly but loses edges and small objects"
    assert any("PSNR" in f for f in result.failures), result.failures


def test_vae_gate_fails_a_tinted_round_trip_on_psnr():
    result = vae_gate(lambda v: (v + torch.tensor([0.08, 0.0, -0.05])[:, None, None]).clamp(0, 1), _scenes())
    assert not result.passed and any("PSNR" in f for f in result.failures), \
        f"a tint keeps the tracker happy (its palette is read off the video) but not the 32 dB bar: {result}"


def test_vae_gate_fails_a_round_trip_that_loses_motion_even_at_high_psnr():
    scenes = _scenes()
    # frames after the first replaced by frame 0: the objects stop (motion fidelity drops)
    result = vae_gate(lambda v: v[:1].expand_as(v).clone(), scenes, min_psnr_db=0.0)
    assert not result.passed and any("motion_fidelity" in f for f in result.failures), result.failures


def test_prior_check_on_the_simulation_keeps_objects_and_moves():
    scenes = _scenes()
    out = prior_check(lambda first, control, strength, seed: next(s.frames for s, _ in scenes
                                                                   if s.meta["seed"] == seed), scenes)
    assert out["kept"] == 1.0 and out["nothing_invented"] == 1.0, out
    assert out["moves"] == 1.0, "every gate scene moves a free object in the simulation"


def test_prior_check_on_a_frozen_frame_reports_no_motion():
    scenes = _scenes()
    out = prior_check(lambda first, control, strength, seed: first[None].expand(8, -1, -1, -1).clone(), scenes)
    assert out["moves"] == 0.0 and out["kept"] == 1.0 and out["contacts"] == 0, out


def test_prior_check_counts_an_object_that_vanishes_as_lost():
    scene, reacting = _scenes(1)[0]
    video = scene.frames.clone()
    k = next(k for k in range(len(scene.names)) if not bool(scene.driven[k]))
    bg = torch.tensor(scene.meta["background"]["colour"])[:, None]
    last = video[-1].reshape(3, -1)
    last[:, scene.masks[k, -1].flatten()] = bg  # the free object painted over with the background
    video[-1] = last.reshape(video[-1].shape)
    out = prior_scene_check(scene, video)
    assert scene.names[k] in out["lost"] and not out["kept"], out
