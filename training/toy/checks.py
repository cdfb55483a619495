"""Gates between the toy recipe's stages, measured with the probes' own tracker (``interdyn.apps.probes``).

A stage is good enough when the next one can learn what the probes measure from it, not when a loss
reaches a round number:

* :func:`vae_gate`: the VAE's round trip of held-out scenes must score, on the probes' tracker, within
  ``tolerance`` (5 %) of the simulation itself (motion fidelity of the objects that move, the driven
  object's IoU, the object inventory of the last frame) and reach ``min_psnr_db`` (32 dB; the probes
  ask 30 dB of the generated frame 0, which goes through the VAE). A VAE that tints colours or blurs
  edges fails here before hours of prior training are spent on it;
* :func:`prior_check`: the image-to-video prior alone (control strength 0), given a first frame, must
  keep every object of it (none lost, none invented) and make a scene move; where its own video
  brings a moving object against another, the other should be displaced (it learned contacts).

Scenes are validation seeds (``interdyn.apps.probes.VALIDATION_SEED`` and up): never trained on, never the
probe scenes. ``python -m training.toy.checks vae --vae DIR`` and ``... prior --svd DIR`` print the
result; ``run_recipe.sh`` stops when the VAE gate fails.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from diffusers import AutoencoderKLTemporalDecoder
from scipy import ndimage

from interdyn.apps import probes
from interdyn.core.builtin import TOY_SAMPLING
from interdyn.core.loading import load_svd_backbone
from interdyn.support.safe_output import write_text_atomic

#: the tracker measures a round trip must keep (as a fraction of the simulation's own score)
GATE_MEASURES = ("motion_fidelity", "driven_iou", "same_objects")


def gate_scenes(num_scenes: int, *, seed: int = probes.VALIDATION_SEED, world: str = "toy", size=(64, 64),
                num_frames: int = 8) -> list:
    """``num_scenes`` ``(scene, reacting)`` pairs (:func:`interdyn.apps.probes.force_scene`) from ``seed`` on, each
    with at least one free object the simulation moves."""
    out, s = [], int(seed)
    while len(out) < num_scenes:
        scene, reacting = probes.force_scene(s, size, num_frames, world=world)
        if reacting:
            out.append((scene, reacting))
        s += 1
    return out


def tracker_scores(scenes: Sequence, videos: Sequence[torch.Tensor]) -> dict:
    """Means over ``scenes`` of the probes' per-scene measures of ``videos`` (``[F, 3, H, W]`` in [0, 1], one
    per scene): motion fidelity of the moving free objects, driven-object IoU, the fraction of last frames
    with the same objects as the simulation, and the PSNR over all frames."""
    mf, iou, same, psnr = [], [], [], []
    for (scene, reacting), video in zip(scenes, videos):
        m = probes.probe_force_scene(scene, reacting, {"video": video})["video"]
        mf.append(m["motion_fidelity"])
        if m["driven_iou"] is not None:
            iou.append(m["driven_iou"])
        same.append(float(m["same_objects"]))
        mse = float(torch.nn.functional.mse_loss(video.float().clamp(0, 1), scene.frames.float()))
        psnr.append(10 * math.log10(1.0 / max(mse, 1e-10)))
    mean = lambda v: sum(v) / len(v) if v else float("nan")  # noqa: E731
    return {"motion_fidelity": mean(mf), "driven_iou": mean(iou), "same_objects": mean(same), "psnr_db": mean(psnr),
            "num_scenes": len(scenes)}


@dataclass
class GateResult:
    passed: bool
    scores: dict
    reference: dict
    failures: list = field(default_factory=list)

    def __str__(self) -> str:
        rows = [f"{k}: {self.scores[k]:.3f} (simulation {self.reference[k]:.3f})" for k in GATE_MEASURES]
        rows.append(f"psnr_db: {self.scores['psnr_db']:.2f}")
        verdict = "PASSED" if self.passed else "FAILED: " + "; ".join(self.failures)
        return f"{verdict}\n  " + "\n  ".join(rows)


def vae_gate(reconstruct: Callable[[torch.Tensor], torch.Tensor], scenes: Sequence, *, min_psnr_db: float = 32.0,
             tolerance: float = 0.05) -> GateResult:
    """Is a VAE good enough to train a prior on? ``reconstruct(video [F, 3, H, W]) -> video`` is its round trip.

    Passes when the round trip's PSNR is at least ``min_psnr_db`` and each of :data:`GATE_MEASURES` is at
    least ``1 - tolerance`` times what the simulation itself scores (the tracker's ceiling)."""
    reference = tracker_scores(scenes, [s.frames for s, _ in scenes])
    with torch.no_grad():
        scores = tracker_scores(scenes, [reconstruct(s.frames).float().clamp(0, 1) for s, _ in scenes])
    failures = [f"{k} {scores[k]:.3f} < {1 - tolerance:.2f} x the simulation's {reference[k]:.3f}"
                for k in GATE_MEASURES if not scores[k] >= (1 - tolerance) * reference[k]]
    if not scores["psnr_db"] >= min_psnr_db:
        failures.append(f"PSNR {scores['psnr_db']:.2f} dB < {min_psnr_db} dB")
    return GateResult(not failures, scores, reference, failures)


def vae_round_trip(vae) -> Callable[[torch.Tensor], torch.Tensor]:
    """``video [F, 3, H, W] in [0, 1] -> video``: encode (posterior mode) and decode with a temporal VAE."""
    def reconstruct(video):
        x = video.float().to(vae.device) * 2 - 1
        return ((vae.decode(vae.encode(x).latent_dist.mode(), num_frames=x.shape[0]).sample + 1) / 2).cpu()
    return reconstruct


# ---------------------------------------------------------------------------- the prior alone
def _free_objects(scene) -> list[int]:
    return [k for k in range(len(scene.names)) if not bool(scene.driven[k])]


def prior_scene_check(scene, video: torch.Tensor, *, moving_px: float = probes.MOVING_PX,
                      min_pixels: int = 6, lost_fraction: float = 0.3, contact_margin: float = 1.5) -> dict:
    """One scene's measures of a video the prior made from its first frame without control.

    ``kept``: every free object visible in frame 0 still has at least ``lost_fraction`` of its frame-0
    pixel count in the last frame; ``invented``: blobs of no scene colour in the last frame (as
    :func:`interdyn.apps.probes.object_inventory` counts them); ``moves``: some free object's track moves by
    ``moving_px``; ``contacts``/``answered``: pairs of free objects that come into contact in the video
    (centroid distance below the sum of radii + ``contact_margin``) while one of them moves, and of those
    the ones where the other is then displaced by ``moving_px``."""
    first_masks = scene.masks[:, :1].expand(-1, video.shape[0], -1, -1)
    palette = probes.calibrated_palette(video, first_masks, scene.meta)
    labels = probes.colour_labels(video, palette)
    free = _free_objects(scene)
    visible = [k for k in free if int(scene.masks[k, 0].sum()) >= min_pixels]
    lost = [scene.names[k] for k in visible
            if int((labels[-1] == k + 1).sum()) < lost_fraction * int(scene.masks[k, 0].sum())]
    cross = ndimage.generate_binary_structure(2, 1)
    unknown = ndimage.binary_opening((labels[-1] == -1).numpy(), structure=cross)
    blobs, count = ndimage.label(unknown, structure=cross)
    invented = sum(1 for b in range(1, count + 1) if int((blobs == b).sum()) >= min_pixels)
    tracks = probes.centroid_tracks(torch.stack([labels == k + 1 for k in range(len(scene.names))]))
    travel = {k: float((tracks[k] - tracks[k, :1]).norm(dim=-1).amax()) for k in free
              if not torch.isnan(tracks[k]).any()}
    moves = any(v >= moving_px for v in travel.values())
    radius = {k: float(scene.meta["objects"][k].get("radius") or 0.0) for k in free}
    contacts = answered = 0
    for a in free:
        for b in free:
            if a == b or a not in travel or b not in travel or travel[a] < moving_px:
                continue
            dist = (tracks[a] - tracks[b]).norm(dim=-1)
            touch = torch.nonzero(dist < radius[a] + radius[b] + contact_margin).flatten()
            if touch.numel() == 0 or int(touch[0]) >= video.shape[0] - 1:
                continue
            t = int(touch[0])
            contacts += 1
            answered += int(float((tracks[b, t:] - tracks[b, t]).norm(dim=-1).amax()) >= moving_px)
    return {"seed": int(scene.meta["seed"]), "kept": not lost, "lost": lost, "invented": invented, "moves": moves,
            "contacts": contacts, "answered": answered}


def prior_check(generate: Callable, scenes: Sequence) -> dict:
    """The prior alone on ``scenes`` (``(scene, _)`` pairs): ``generate(first_frame, control, 0.0, seed)``.

    Returns the fraction of scenes with every object kept, with nothing invented, that move, and the
    fraction of contacts in the generated videos that displace the object hit (None without contacts)."""
    per_scene = []
    for scene, _ in scenes:
        video = generate(scene.frames[0], scene.control, 0.0, int(scene.meta["seed"]))
        per_scene.append(prior_scene_check(scene, video.float().clamp(0, 1)))
    n = len(per_scene)
    contacts = sum(p["contacts"] for p in per_scene)
    out = {"num_scenes": n, "kept": sum(p["kept"] for p in per_scene) / n,
           "nothing_invented": sum(p["invented"] == 0 for p in per_scene) / n,
           "moves": sum(p["moves"] for p in per_scene) / n,
           "contacts": contacts,
           "contacts_answered": sum(p["answered"] for p in per_scene) / contacts if contacts else None}
    # the standard error of each fraction (binomial: sqrt(p (1 - p) / n)), to read differences against
    for key, count in (("kept", n), ("nothing_invented", n), ("moves", n), ("contacts_answered", contacts)):
        out[f"{key}_se"] = fraction_se(out[key], count)
    out["scenes"] = per_scene
    return out


def fraction_se(fraction: float | None, count: int) -> float | None:
    """The binomial standard error ``sqrt(p (1 - p) / n)`` of a fraction over ``count`` trials (None without)."""
    if fraction is None or not count:
        return None
    return math.sqrt(fraction * (1.0 - fraction) / count)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.toy.checks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("vae", help="the VAE gate on held-out scenes")
    v.add_argument("--vae", required=True, help="a temporal VAE folder (diffusers)")
    v.add_argument("--min-psnr", type=float, default=32.0)
    q = sub.add_parser("prior", help="the prior alone (no control) on held-out scenes")
    q.add_argument("--svd", required=True, help="an SVD folder (the prior stage's svd/)")
    q.add_argument("--steps", type=int, default=16, help="Euler steps")
    q.add_argument("--seed", type=int, default=probes.VALIDATION_SEED, help="first held-out scene seed")
    for s in (v, q):
        s.add_argument("--num-scenes", type=int, default=16)
        s.add_argument("--world", default="toy")
        s.add_argument("--json", help="also write the result to this JSON file")
    a = p.parse_args(argv)
    scenes = gate_scenes(a.num_scenes, world=a.world, seed=getattr(a, "seed", probes.VALIDATION_SEED))
    if a.cmd == "vae":
        vae = AutoencoderKLTemporalDecoder.from_pretrained(a.vae, local_files_only=True).eval()
        result = vae_gate(vae_round_trip(vae), scenes, min_psnr_db=a.min_psnr)
        print(result)
        out, code = {"passed": result.passed, "scores": result.scores, "reference": result.reference,
                     "failures": result.failures}, 0 if result.passed else 3
    else:
        sampling = dict(TOY_SAMPLING, num_steps=a.steps)
        generate = probes.model_generator(load_svd_backbone(a.svd, dtype=torch.float32), None, sampling)
        out = prior_check(generate, scenes)
        print(json.dumps({k: v for k, v in out.items() if k != "scenes"}, indent=1))
        code = 0
    if a.json:
        write_text_atomic(a.json, json.dumps(out, indent=1))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
