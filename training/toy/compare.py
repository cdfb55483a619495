"""Paired comparison of two models' physics probes on the same scenes: issue 33's ship rule.

    python -m training.toy.compare v3/probes.json candidate/probes.json [more pairs ...] [--json OUT]
    python -m training.toy.compare v3_check.json candidate_check.json     # two priors' `checks prior --json`

Each ``probes.json`` is what ``interdyn probes`` writes. The two runs of a pair must probe the same scenes (same
first seed, scene count, world, frame count and sampling settings), so each metric is compared scene by scene:
the difference per scene (candidate minus reference, sign turned so that **positive is better** for every metric),
its mean, its standard error (sample standard deviation / sqrt(n)) and the mean in standard errors. Several pairs
(e.g. two seed ranges) are also pooled scene by scene.

Two priors' checks (``python -m training.toy.checks prior --json``) are compared the same way, scene by scene, on
objects kept, nothing invented, movement and contacts answered (no ship rule: a prior is not a model).

The rule: ship the candidate when it beats the reference on objects kept and on motion fidelity by more than two
standard errors and loses nowhere by more than one.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

from interdyn.support.validation import InputError, check_input_path
from interdyn.support.safe_output import write_text_atomic

# (name in the table, probe list, key, higher is better)
METRICS = (
    ("motion fidelity", "force_propagation", "motion_fidelity", True),
    ("end-point error (px)", "force_propagation", "endpoint_error_px", False),
    ("driven-object IoU", "force_propagation", "driven_iou", True),
    ("frame 0 PSNR (dB)", "force_propagation", "first_frame_psnr_db", True),
    ("objects kept (last frame holds the same objects)", "force_propagation", "same_objects", True),
    ("counterfactual: direction agrees", "counterfactual", "direction_agrees", True),
    ("counterfactual: responds to the drive", "counterfactual", "responds_to_drive", True),
    ("chain: motion fidelity of B", "chain", "motion_fidelity_b", True),
)
# the prior checks' per-scene values (training/toy/checks.py)
CHECK_METRICS = (
    ("every object kept", "kept", True),
    ("nothing invented", "nothing_invented", True),
    ("moves", "moves", True),
    ("contacts answered (per scene with contacts)", "answered_fraction", True),
)
#: the metrics a candidate must win by more than WIN standard errors; on every metric it may lose at most LOSE
MUST_WIN = ("motion fidelity", "objects kept (last frame holds the same objects)")
WIN, LOSE = 2.0, 1.0
#: settings that must agree for scenes to be paired (the model paths and timing may differ)
SAME = ("seed", "num_scenes", "num_chain_scenes", "size", "world", "num_frames", "static_px", "moving_px", "sampling")


@dataclass
class Paired:
    name: str
    reference: float
    candidate: float
    better: float  # mean per-scene difference, positive = candidate better
    se: float
    n: int

    @property
    def z(self) -> float:
        if self.se > 0:
            return self.better / self.se
        return 0.0 if self.better == 0 else math.copysign(math.inf, self.better)


def _load(path) -> dict:
    path = check_input_path(Path(path), "files", what="a JSON file")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, dict) or not (("settings" in data and "force_propagation" in data) or "scenes" in data):
        raise InputError(f"{path}: neither what `interdyn probes` writes (settings, force_propagation) nor what "
                         "`checks prior --json` writes (scenes)")
    return data


def is_check(data: dict) -> bool:
    return "scenes" in data and "force_propagation" not in data


def _check_values(scenes: list[dict], key: str) -> list[tuple[int, float]]:
    if key == "nothing_invented":
        return [(s["seed"], float(s["invented"] == 0)) for s in scenes]
    if key == "answered_fraction":
        return [(s["seed"], s["answered"] / s["contacts"]) for s in scenes if s["contacts"]]
    return [(s["seed"], float(s[key])) for s in scenes]


def check_values(reference: dict, candidate: dict) -> dict[str, tuple[list, list]]:
    """Per check metric, the two priors' per-scene values (contacts: the scenes where both videos made one)."""
    if [s["seed"] for s in reference["scenes"]] != [s["seed"] for s in candidate["scenes"]]:
        raise InputError("the two prior checks hold different scenes (run both with the same --seed and "
                         "--num-scenes)")
    out = {}
    for name, key, _ in CHECK_METRICS:
        a, b = _check_values(reference["scenes"], key), _check_values(candidate["scenes"], key)
        both = {s for s, _ in a} & {s for s, _ in b}
        out[name] = ([v for s, v in a if s in both], [v for s, v in b if s in both])
    return out


def compare_checks(pairs: list[tuple[dict, dict]]) -> list[Paired]:
    """Two priors' checks on the same scenes (the same seeds, in order), metric by metric, pooled over pairs."""
    return _pooled(pairs, check_values, [(name, higher) for name, _, higher in CHECK_METRICS])


def _values(data: dict, group: str, key: str, method: str) -> list[tuple[int, float]]:
    return [(row["seed"], float(row[method][key])) for row in data.get(group, [])]


def pair_values(reference: dict, candidate: dict, method: str = "interdyn") -> dict[str, tuple[list, list]]:
    """Per metric, the reference's and the candidate's per-scene values in scene order (checked to match)."""
    for key in SAME:
        if reference["settings"].get(key) != candidate["settings"].get(key):
            raise InputError(f"the two probe runs did not probe the same scenes: settings[{key!r}] is "
                             f"{reference['settings'].get(key)!r} against {candidate['settings'].get(key)!r}")
    out = {}
    for name, group, key, _ in METRICS:
        a, b = _values(reference, group, key, method), _values(candidate, group, key, method)
        if [s for s, _ in a] != [s for s, _ in b]:
            raise InputError(f"{name}: the two runs hold different scenes")
        out[name] = ([v for _, v in a], [v for _, v in b])
    return out


def paired(name: str, ref: list[float], cand: list[float], higher_is_better: bool) -> Paired:
    sign = 1.0 if higher_is_better else -1.0
    d = [sign * (c - r) for r, c in zip(ref, cand)]
    n = len(d)
    mean = sum(d) / n if n else 0.0
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n) if n > 1 else 0.0
    return Paired(name, sum(ref) / max(n, 1), sum(cand) / max(n, 1), mean, se, n)


def _pooled(pairs: list[tuple[dict, dict]], values, metrics: list[tuple[str, bool]]) -> list[Paired]:
    """The per-scene values of every pair (``values(reference, candidate)``) pooled, then compared per metric."""
    pooled: dict[str, tuple[list, list]] = {name: ([], []) for name, _ in metrics}
    for reference, candidate in pairs:
        for name, (a, b) in values(reference, candidate).items():
            pooled[name][0].extend(a)
            pooled[name][1].extend(b)
    return [paired(name, *pooled[name], higher) for name, higher in metrics]


def compare(pairs: list[tuple[dict, dict]], method: str = "interdyn") -> list[Paired]:
    """Pool the scenes of every pair and compare metric by metric."""
    return _pooled(pairs, lambda ref, cand: pair_values(ref, cand, method),
                   [(name, higher) for name, _, _, higher in METRICS])


def verdict(rows: list[Paired]) -> tuple[bool, list[str]]:
    """Issue 33's rule; the reasons list every metric that fails it."""
    reasons = [f"{r.name}: {r.z:+.1f} SE, not above +{WIN:g}" for r in rows if r.name in MUST_WIN and not r.z > WIN]
    reasons += [f"{r.name}: {r.z:+.1f} SE, a loss beyond {LOSE:g}" for r in rows if r.z < -LOSE]
    return not reasons, reasons


def format_table(rows: list[Paired], title: str, rule: bool = True) -> str:
    lines = [f"{title}", "", "| metric | reference | candidate | candidate better by (per scene) | in SE | scenes |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.reference:.3f} | {r.candidate:.3f} | {r.better:+.3f} ± {r.se:.3f} | "
                     f"{r.z:+.1f} | {r.n} |")
    if not rule:
        return "\n".join(lines)
    ok, reasons = verdict(rows)
    lines += ["", "ship: yes (wins objects kept and motion fidelity by > 2 SE, loses nowhere by > 1 SE)" if ok
              else "ship: no (" + "; ".join(reasons) + ")"]
    return "\n".join(lines)


def _row_json(r: Paired) -> dict:
    return r.__dict__ | {"z": r.z if math.isfinite(r.z) else str(r.z)}  # JSON has no infinity


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.toy.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="REFERENCE CANDIDATE",
                   help="pairs of probes.json (or of `checks prior --json` files): reference first, candidate second "
                        "(repeat for more seed ranges)")
    p.add_argument("--method", default="interdyn", help="which row of the probes to compare (default interdyn)")
    p.add_argument("--json", help="also write the comparison to this JSON file")
    a = p.parse_args(argv)
    if len(a.files) % 2:
        p.error(f"files: give pairs (reference, candidate); got {len(a.files)} file(s)")
    try:
        data = [_load(f) for f in a.files]
        pairs = list(zip(data[0::2], data[1::2]))
        report = {}
        checks = [is_check(d) for d in data]
        if any(checks) and not all(checks):
            raise InputError("give either probes.json files or `checks prior --json` files, not both")
        run, rule, kind = (compare_checks, False, "prior check") if all(checks) else \
            ((lambda ps: compare(ps, a.method)), True, "probes")
        for (ref, cand), ref_path, cand_path in zip(pairs, a.files[0::2], a.files[1::2]):
            first = ref["scenes"][0]["seed"] if kind == "prior check" else ref["settings"]["seed"]
            title = f"{cand_path} against {ref_path} ({kind}, seeds {first}+)"
            rows = run([(ref, cand)])
            print(format_table(rows, title, rule=rule), end="\n\n")
            report[title] = [_row_json(r) for r in rows]
        if len(pairs) > 1:
            rows = run(pairs)
            print(format_table(rows, f"pooled over {len(pairs)} seed ranges", rule=rule))
            report["pooled"] = [_row_json(r) for r in rows]
    except InputError as exc:
        print(f"error: {exc}")
        return 2
    if a.json:
        write_text_atomic(a.json, json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
