"""training.toy.compare: the paired, per-scene comparison behind issue 33's ship rule (win objects kept and
motion fidelity by > 2 standard errors, lose nowhere by > 1). Expected numbers are worked out by hand below."""
from __future__ import annotations

import json
import math
import os

import pytest

from training.toy import compare as C
from interdyn.support.validation import InputError

SETTINGS = {"seed": 1_000_000, "num_scenes": 3, "num_chain_scenes": 1, "size": [64, 64], "world": "toy",
            "num_frames": 8, "static_px": 0.5, "moving_px": 2.0, "sampling": {"num_steps": 16}}


def probes(mf, epe, kept, *, iou=(0.8, 0.8, 0.8), seeds=(1_000_000, 1_000_001, 1_000_002), svd="a"):
    rows = [{"seed": s, "interdyn": {"motion_fidelity": m, "endpoint_error_px": e, "driven_iou": i,
                                     "first_frame_psnr_db": 34.0, "same_objects": k}}
            for s, m, e, k, i in zip(seeds, mf, epe, kept, iou)]
    cf = [{"seed": s, "interdyn": {"direction_agrees": True, "responds_to_drive": True}} for s in seeds]
    chain = [{"seed": seeds[0], "interdyn": {"motion_fidelity_b": 0.5}}]
    return {"settings": dict(SETTINGS, svd=svd), "force_propagation": rows, "counterfactual": cf, "chain": chain}


def rows_by_name(rows):
    return {r.name: r for r in rows}


def test_per_scene_differences_give_mean_standard_error_and_sign_where_lower_is_better():
    ref = probes(mf=[0.1, 0.2, 0.3], epe=[20.0, 30.0, 10.0], kept=[False, False, True])
    cand = probes(mf=[0.3, 0.6, 0.6], epe=[10.0, 30.0, 13.0], kept=[True, True, True], svd="b")
    r = rows_by_name(C.compare([(ref, cand)]))
    mf = r["motion fidelity"]
    # differences 0.2, 0.4, 0.3: mean 0.3, sample sd 0.1, SE 0.1 / sqrt(3)
    assert mf.better == pytest.approx(0.3) and mf.se == pytest.approx(0.1 / math.sqrt(3))
    assert mf.z == pytest.approx(0.3 / (0.1 / math.sqrt(3)))
    epe = r["end-point error (px)"]
    # lower is better: improvements +10, 0, -3 px -> mean +7/3, positive means the candidate is better
    assert epe.reference == pytest.approx(20.0) and epe.candidate == pytest.approx(53 / 3)
    assert epe.better == pytest.approx(7 / 3)
    kept = r["objects kept (last frame holds the same objects)"]
    assert (kept.reference, kept.candidate, kept.better) == pytest.approx((1 / 3, 1.0, 2 / 3)), "booleans as fractions"


def test_the_rule_ships_only_a_candidate_that_wins_both_and_loses_nowhere_beyond_one_error():
    ref = probes(mf=[0.1, 0.2, 0.3], epe=[20.0, 20.0, 20.0], kept=[False, False, False])
    wins = probes(mf=[0.3, 0.6, 0.6], epe=[20.0, 20.0, 20.0], kept=[True, True, True])
    ok, reasons = C.verdict(C.compare([(ref, wins)]))
    assert ok and not reasons, reasons
    # the same wins, but the driven object's IoU drops in every scene: a loss far beyond one standard error
    loses = probes(mf=[0.3, 0.6, 0.6], epe=[20.0, 20.0, 20.0], kept=[True, True, True], iou=(0.5, 0.4, 0.45))
    ok, reasons = C.verdict(C.compare([(ref, loses)]))
    assert not ok and any(r.startswith("driven-object IoU") for r in reasons), reasons
    # motion fidelity up by noise only: +0.1, -0.1, +0.1 -> about +0.6 SE
    noisy = probes(mf=[0.2, 0.1, 0.4], epe=[20.0, 20.0, 20.0], kept=[True, True, True])
    ok, reasons = C.verdict(C.compare([(ref, noisy)]))
    assert not ok and reasons[0].startswith("motion fidelity"), reasons


def test_two_seed_ranges_pool_their_scenes():
    seeds2 = (4_000_000, 4_000_001, 4_000_002)
    ref1 = probes(mf=[0.1, 0.2, 0.3], epe=[20.0] * 3, kept=[False] * 3)
    cand1 = probes(mf=[0.2, 0.3, 0.4], epe=[20.0] * 3, kept=[True] * 3)
    ref2 = probes(mf=[0.0, 0.0, 0.0], epe=[20.0] * 3, kept=[False] * 3, seeds=seeds2)
    cand2 = probes(mf=[0.3, 0.3, 0.3], epe=[20.0] * 3, kept=[False] * 3, seeds=seeds2)
    for p in (ref2, cand2):
        p["settings"]["seed"] = 4_000_000
        p["chain"][0]["seed"] = seeds2[0]
    r = rows_by_name(C.compare([(ref1, cand1), (ref2, cand2)]))
    assert r["motion fidelity"].n == 6 and r["motion fidelity"].better == pytest.approx(0.2), "(3*0.1 + 3*0.3) / 6"
    assert r["chain: motion fidelity of B"].n == 2


def test_runs_of_different_scenes_or_settings_are_refused_by_name(tmp_path):
    ref = probes(mf=[0.1, 0.2, 0.3], epe=[20.0] * 3, kept=[False] * 3)
    other = probes(mf=[0.1, 0.2, 0.3], epe=[20.0] * 3, kept=[False] * 3)
    other["settings"]["sampling"] = {"num_steps": 32}
    with pytest.raises(InputError, match="settings\\['sampling'\\]"):
        C.compare([(ref, other)])
    shifted = probes(mf=[0.1, 0.2, 0.3], epe=[20.0] * 3, kept=[False] * 3, seeds=(1, 2, 3))
    with pytest.raises(InputError, match="different scenes"):
        C.compare([(ref, shifted)])
    (tmp_path / "a.json").write_text(json.dumps(ref))
    (tmp_path / "b.json").write_text("{not json")
    assert C.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 2, "a broken file is one line, exit 2"
    os.mkfifo(tmp_path / "pipe.json")  # opening it would block forever: refused before it is opened
    assert C.main([str(tmp_path / "a.json"), str(tmp_path / "pipe.json")]) == 2


def check(kept, invented, contacts=(0, 0, 0), answered=(0, 0, 0), seeds=(2_000_000, 2_000_001, 2_000_002)):
    return {"num_scenes": len(seeds), "scenes": [
        {"seed": s, "kept": k, "lost": [], "invented": i, "moves": True, "contacts": c, "answered": a}
        for s, k, i, c, a in zip(seeds, kept, invented, contacts, answered)]}


def test_two_priors_checks_are_compared_scene_by_scene_and_contacts_only_where_both_made_one(tmp_path, capsys):
    ref = check(kept=[False, True, False], invented=[1, 0, 2], contacts=[2, 0, 1], answered=[1, 0, 1])
    cand = check(kept=[True, True, True], invented=[0, 0, 1], contacts=[2, 1, 0], answered=[2, 1, 0])
    r = rows_by_name(C.compare_checks([(ref, cand)]))
    assert r["every object kept"].better == pytest.approx(2 / 3)
    assert (r["nothing invented"].reference, r["nothing invented"].candidate) == pytest.approx((1 / 3, 2 / 3))
    answered = r["contacts answered (per scene with contacts)"]
    # only the first scene has contacts in both videos: 1/2 answered against 2/2
    assert answered.n == 1 and answered.better == pytest.approx(0.5)
    (tmp_path / "a.json").write_text(json.dumps(ref))
    (tmp_path / "b.json").write_text(json.dumps(cand))
    assert C.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "| every object kept | 0.333 | 1.000 | +0.667" in out and "ship:" not in out, out
    (tmp_path / "p.json").write_text(json.dumps(probes(mf=[0.1] * 3, epe=[20.0] * 3, kept=[True] * 3)))
    assert C.main([str(tmp_path / "a.json"), str(tmp_path / "p.json")]) == 2, "a check and a probes file do not pair"
    shifted = check(kept=[True] * 3, invented=[0] * 3, seeds=(3_000_000, 3_000_001, 3_000_002))
    with pytest.raises(InputError, match="different scenes"):
        C.compare_checks([(ref, shifted)])
