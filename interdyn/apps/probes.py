"""Physics probes on the synthetic collision world: InterDyn's section 4.3, measured instead of shown.

The paper shows that a driving motion makes the rest of a scene react: force propagates to objects
the hand never touches, a different drive gives a different outcome, and the driven object follows
its mask. On the synthetic world (:mod:`interdyn.data.synthetic`) the simulation is the ground truth, so
each of these can be a number. All probes run on *held-out* scenes, seeds ``PROBE_SEED + i``; the
toy model was trained on scenes 0-5999 (VAE and prior) and on 3000 ``SeedSequence``-derived seeds
(control branch), which :func:`training_seeds` lists so tests can check the sets are disjoint.

Tracking
    Objects are flat-coloured, so the tracker is colour segmentation: every pixel of a video goes to
    the nearest colour of the scene's palette (background + each object's colour), or to nothing if
    it is farther than ``max_distance`` from all of them or not clearly nearer one colour than the
    others. The palette is read off the video itself where the true masks are known (frame 0, or
    the frame a driver enters; :func:`calibrated_palette`), so a decoder that tints colours is judged
    on motion, not tint. An object's
    track is the centroid of its pixels per frame (frames where it has fewer than ``min_pixels``
    keep the previous position). Ground truth and generated videos go through the same tracker,
    so its biases (a disc half outside the frame has its centroid inside) cancel.

Probes (each against two baselines: the same backbone with control strength 0, i.e. the plain
image-to-video prior, and copying the first frame)

1. **Force propagation**: for every free (uncontrolled) object that the simulation moves by more
   than ``moving_px``, the motion fidelity (the paper's eqs. 1-2,
   :func:`interdyn.metrics.motion.motion_fidelity_from_tracks`) of its generated track against its
   ground-truth track, with steps shorter than ``static_px`` counted as static (static vs static
   = 1, static vs moving = 0, moving vs moving = cosine of the directions). Also the end-point
   error of those objects in pixels.
2. **Counterfactual**: :func:`interdyn.data.synthetic.counterfactual_pair` gives the same first frame
   with two drives: one hits the free disc, one is turned away and misses it. Reported: the
   fraction of scenes where the disc's generated displacement under the hitting drive points the
   same way as the simulated one (cosine > 0), the mean cosine, and the fraction where the disc
   moves more (by at least ``moving_px``) under the hitting drive than under the missing one.
3. **Controlled-object adherence**: IoU, per frame after the first, of the driven object's pixels
   in the generated video with its simulated mask.
4. **First frame**: PSNR of the generated frame 0 against the input image (the model must give the
   image back, not a tinted or haloed copy of it).
5. **Objects**: whether the generated last frame holds the same objects as the simulated one
   (:func:`object_inventory`: none lost, none invented).
6. **Chains**: :func:`interdyn.data.synthetic.force_propagation_scene` (driver -> A -> B, B never touched
   by the driver): the motion fidelity of ``B``, reported separately.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from scipy import ndimage

from ..core.dual_clock import DualClock
from ..core.sampling import generate_video
from ..data.cut_and_drag import composite_reference
from ..data.synthetic import counterfactual_pair, dataset_scene_seed, force_propagation_scene, get_world, random_scene
from ..metrics.motion import motion_fidelity_from_tracks
from ..support.safe_output import atomic_files, claim_output_folder
from ..support.validation import check_count

PROBE_SEED = 1_000_000
VALIDATION_SEED = 2_000_000
STATIC_PX = 0.5
MOVING_PX = 2.0
METHODS = ("interdyn", "interdyn_dual_clock", "dual_clock", "no_control", "copy_first_frame", "simulation")
#: the training-free rows (Time-to-Move's dual-clock denoising), measured when run_probes gets dual_clock levels
DUAL_CLOCK_METHODS = ("dual_clock", "interdyn_dual_clock")
BASELINES = ("no_control", "copy_first_frame")


# ---------------------------------------------------------------------------- tracking
def scene_palette(meta: dict) -> torch.Tensor:
    """``[1 + O, 3]``: the background colour, then each object's colour (scene metadata order)."""
    colours = [meta["background"]["colour"]] + [o["colour"] for o in meta["objects"]]
    return torch.tensor(colours, dtype=torch.float32)


def calibrated_palette(video: torch.Tensor, masks: torch.Tensor, meta: dict) -> torch.Tensor:
    """``[1 + O, 3]`` palette read off the video itself where the true masks ``[O, F, H, W]`` are known:
    each object's colour is the median of its pixels (1-pixel eroded, away from blended edges) in the
    first frame that shows it (frame 0, or the frame a driver enters), the background's that of
    frame 0's pixels away from every object. A model whose decoder shifts colours (a tiny VAE does)
    is then tracked by where its objects go, not penalised for their tint."""
    palette = scene_palette(meta)
    masks = masks.bool()
    pad = torch.nn.functional.pad(masks.float(), (1, 1, 1, 1), value=0.0)  # [O, F, H+2, W+2]
    eroded = -torch.nn.functional.max_pool2d(-pad, 3, stride=1) > 0.5
    dilated = torch.nn.functional.max_pool2d(pad, 3, stride=1) > 0.5
    for k in range(masks.shape[0]):
        for region_masks in (eroded[k], masks[k]):
            shown = torch.nonzero(region_masks.flatten(1).sum(dim=1) >= 3).flatten()
            if shown.numel():
                f = int(shown[0])
                palette[k + 1] = video[f].float().flatten(1)[:, region_masks[f].flatten()].median(dim=1).values
                break
    away = ~dilated[:, 0].any(dim=0)
    if int(away.sum()) >= 1:
        palette[0] = video[0].float().flatten(1)[:, away.flatten()].median(dim=1).values
    return palette


def colour_labels(video: torch.Tensor, palette: torch.Tensor, max_distance: float = 0.3,
                  ratio: float = 0.6) -> torch.Tensor:
    """``[F, H, W]`` int64: index of the nearest palette colour per pixel (Euclidean in RGB 0..1), or
    ``-1`` where it is farther than ``max_distance`` or not clearly nearest (distance above ``ratio``
    times the second nearest: a blend of two colours at an edge can lie near a third colour).
    ``video`` is ``[F, 3, H, W]`` in [0, 1]."""
    if video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"video must be [F, 3, H, W], got {tuple(video.shape)}")
    pixels = video.float().permute(0, 2, 3, 1)  # [F, H, W, 3]
    dist = (pixels[..., None, :] - palette.to(pixels)).norm(dim=-1)  # [F, H, W, K]
    two = dist.topk(2, dim=-1, largest=False)
    best, second, label = two.values[..., 0], two.values[..., 1], two.indices[..., 0]
    ok = (best <= max_distance) & (best <= ratio * second)
    return torch.where(ok, label, torch.full_like(label, -1))


def object_masks(video: torch.Tensor, meta: dict, true_masks: torch.Tensor | None = None,
                 max_distance: float = 0.3) -> torch.Tensor:
    """``[O, F, H, W]`` bool: each object's pixels in ``video`` by colour; with ``true_masks``
    (``[O, F, H, W]``, the simulation's) the palette is :func:`calibrated_palette`, otherwise the
    metadata's colours."""
    palette = scene_palette(meta) if true_masks is None else calibrated_palette(video, true_masks, meta)
    labels = colour_labels(video, palette, max_distance)
    return torch.stack([labels == k + 1 for k in range(len(meta["objects"]))])


def centroid_tracks(masks: torch.Tensor, min_pixels: int = 3) -> torch.Tensor:
    """``[O, F, 2]`` float32 ``(x, y)`` pixel centres of mass of ``[O, F, H, W]`` masks.

    A frame where an object has fewer than ``min_pixels`` pixels keeps its previous position (the
    next found one for leading frames); an object never found is NaN throughout."""
    o, f, h, w = masks.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32) + 0.5, torch.arange(w, dtype=torch.float32) + 0.5,
                            indexing="ij")
    m = masks.float()
    count = m.sum(dim=(-2, -1))
    cx = (m * xs).sum(dim=(-2, -1)) / count.clamp_min(1)
    cy = (m * ys).sum(dim=(-2, -1)) / count.clamp_min(1)
    tracks = torch.stack([cx, cy], dim=-1)
    found = count >= min_pixels
    out = torch.full_like(tracks, float("nan"))
    for k in range(o):
        idx = torch.nonzero(found[k]).flatten()
        if idx.numel() == 0:
            continue
        last = tracks[k, idx[0]]
        for t in range(f):
            if found[k, t]:
                last = tracks[k, t]
            out[k, t] = last
    return out


def track_objects(video: torch.Tensor, meta: dict, true_masks: torch.Tensor | None = None,
                  max_distance: float = 0.3, min_pixels: int = 3) -> torch.Tensor:
    """``[O, F, 2]`` centroid tracks of every object of the scene in ``video`` (see module docstring)."""
    return centroid_tracks(object_masks(video, meta, true_masks, max_distance), min_pixels)


# ---------------------------------------------------------------------------- per-clip measures
def track_motion_fidelity(reference: torch.Tensor, generated: torch.Tensor, static_px: float = STATIC_PX) -> float:
    """Motion fidelity of one object's generated ``[F, 2]`` track against its reference track.

    A generated object that was never found (NaN track) scores 0: it did not move with the scene."""
    if torch.isnan(generated).any():
        return 0.0
    return motion_fidelity_from_tracks(reference[:, None], generated[:, None], static_eps=static_px)


def mask_iou(generated: torch.Tensor, reference: torch.Tensor) -> float | None:
    """Mean IoU over frames where ``reference`` ``[F, H, W]`` is not empty; None if it never is."""
    values = []
    for g, r in zip(generated.bool(), reference.bool()):
        if r.any():
            values.append(float((g & r).sum()) / float((g | r).sum()))
    return sum(values) / len(values) if values else None


def displacement(track: torch.Tensor) -> torch.Tensor:
    """Last minus first position of an ``[F, 2]`` track (zero for a never-found, NaN track)."""
    d = track[-1] - track[0]
    return torch.zeros(2) if torch.isnan(d).any() else d


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    return 0.0 if na < 1e-9 or nb < 1e-9 else float(a @ b) / (na * nb)


def frame_psnr(generated: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR (dB) of one ``[3, H, W]`` frame in [0, 1] against another."""
    mse = float(torch.nn.functional.mse_loss(generated.float().clamp(0, 1), reference.float().clamp(0, 1)))
    return 10 * math.log10(1.0 / max(mse, 1e-10))


def object_inventory(video: torch.Tensor, meta: dict, true_masks: torch.Tensor, frame: int = -1,
                     min_pixels: int = 6, lost_fraction: float = 0.3) -> dict:
    """Are the simulation's objects in frame ``frame`` of ``video``, and nothing else?

    Pixels are labelled by colour as for tracking (palette read off ``video`` where ``true_masks`` says
    each object is). Lost: an object that covers at least ``min_pixels`` in the simulated frame but
    has fewer than ``lost_fraction`` of that many pixels of its colour in the video. Invented: a
    connected blob of non-background pixels (after removing 1-pixel edges, where colours blend) of at
    least ``min_pixels`` whose colour is no object of the frame (an unknown colour, or an object the
    simulated frame does not show) or repeats an object, away from every simulated object's outline
    (pieces of an object split by an occluder, or blurred by fast motion into another colour, touch an
    outline and are not counted)."""
    palette = calibrated_palette(video, true_masks, meta)
    labels = colour_labels(video[frame][None], palette)[0]  # [H, W]
    truth = true_masks[:, frame].bool()
    visible = [k for k in range(truth.shape[0]) if int(truth[k].sum()) >= min_pixels]
    lost = [meta["objects"][k]["name"] for k in visible
            if int((labels == k + 1).sum()) < lost_fraction * int(truth[k].sum())]
    cross = ndimage.generate_binary_structure(2, 1)
    near_any = ndimage.binary_dilation(truth.any(dim=0).numpy(), structure=cross, iterations=2)
    invented = []
    for k in range(-1, len(meta["objects"])):  # -1: a colour of no object nor of the background
        if k == -1:
            # 1-pixel edges blend two colours; opening removes them and keeps solid blobs
            region = ndimage.binary_opening((labels == -1).numpy(), structure=cross)
        else:
            region = (labels == k + 1).numpy()
        blobs, count = ndimage.label(region, structure=cross)
        found = sorted(((int((blobs == b).sum()), b) for b in range(1, count + 1)), reverse=True)
        found = [(a, b) for a, b in found if a >= min_pixels]
        name = "unknown colour" if k == -1 else meta["objects"][k]["name"]
        candidates = found
        if k in visible and found:  # the object itself: its largest blob on its simulated outline, else its largest
            near = ndimage.binary_dilation(truth[k].numpy(), structure=cross, iterations=2)
            on_outline = [f for f in found if (near & (blobs == f[1])).any()]
            itself = on_outline[0] if on_outline else found[0]
            candidates = [f for f in found if f != itself]
        # a blob touching some object's simulated outline is a piece of that object (split by an occluder, or
        # blurred by fast motion into a neighbouring colour), not a new object
        extra = [(a, b) for a, b in candidates if not (near_any & (blobs == b)).any()]
        invented += [name] * len(extra)
    return {"expected": [meta["objects"][k]["name"] for k in visible], "lost": lost, "invented": invented,
            "same_objects": not lost and not invented}


# ---------------------------------------------------------------------------- generation
Generate = Callable[[torch.Tensor, torch.Tensor, float, int], torch.Tensor]


def model_generator(backbone, branch, sampling: dict) -> Generate:
    """``generate(first_frame [3,H,W], control [F,3,H,W], strength, seed, dual_clock=None) -> [F,3,H,W]`` with fixed
    settings (``dual_clock``: a :class:`~interdyn.core.dual_clock.DualClock`, training-free dragging)."""
    def generate(first_frame, control, strength, seed, dual_clock=None):
        with torch.no_grad():
            return generate_video(backbone, first_frame[None], control[None], branch, control_strength=strength,
                                  generator=int(seed), dual_clock=dual_clock, **sampling)[0].float().cpu()

    return generate


def drive_reference(scene) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference a training-free drag gets for a probe scene: the first frame with the driven objects pasted
    where the simulation puts them, in their own colours (:func:`interdyn.data.cut_and_drag.composite_reference`;
    drivers enter from outside the picture, so they cannot be cut from the first frame). Everything else stays
    still: the reference carries the drive, never the reaction."""
    driven = scene.masks[scene.driven.bool()].float().amax(dim=0)  # [F, H, W]
    return composite_reference(scene.frames[0], scene.frames, driven)


def method_videos(generate: Generate, frames: torch.Tensor, control: torch.Tensor, seed: int, *, scene=None,
                  dual_clock: tuple[float, float] | None = None) -> dict:
    """Every method's video for one scene (same noise seed for every model run); ``simulation`` is the
    ground truth itself, the ceiling the tracker allows. With ``dual_clock`` = ``(sigma_weak, sigma_strong)`` and
    the ``scene``, also the training-free drag alone (``dual_clock``: control strength 0) and with the branch
    (``interdyn_dual_clock``), from :func:`drive_reference`."""
    videos = {"interdyn": generate(frames[0], control, 1.0, seed)}
    if dual_clock is not None:
        reference, region = drive_reference(scene)
        clock = DualClock(reference, region, *dual_clock)
        videos["interdyn_dual_clock"] = generate(frames[0], control, 1.0, seed, dual_clock=clock)
        videos["dual_clock"] = generate(frames[0], control, 0.0, seed, dual_clock=clock)
    videos.update({"no_control": generate(frames[0], control, 0.0, seed),
                   "copy_first_frame": frames[:1].expand_as(frames).clone(),
                   "simulation": frames})
    return videos


def force_scene(seed: int, size=(64, 64), num_frames: int = 8, moving_px: float = MOVING_PX, world="full"):
    """The probe scene for ``seed``: a :func:`~interdyn.data.synthetic.random_scene` of ``world`` and the indices
    of its free objects that the simulation moves by more than ``moving_px`` (may be empty)."""
    scene = random_scene(int(seed), size=tuple(size), num_frames=num_frames, world=world)
    travel = (scene.tracks - scene.tracks[:, :1]).norm(dim=-1).amax(dim=1)
    reacting = [k for k in range(len(scene.names)) if not bool(scene.driven[k]) and float(travel[k]) > moving_px]
    return scene, reacting


def probe_force_scene(scene, reacting: Sequence[int], videos: dict, static_px: float = STATIC_PX) -> dict:
    """Probes 1 and 3 on one scene: per method, motion fidelity and end-point error of the reacting
    free objects, and IoU of the driven objects."""
    gt_tracks = track_objects(scene.frames, scene.meta, scene.masks)
    driven = [k for k in range(len(scene.names)) if bool(scene.driven[k])]
    out = {"seed": int(scene.meta["seed"]), "reacting": [scene.names[k] for k in reacting]}
    for method, video in videos.items():
        masks = object_masks(video, scene.meta, scene.masks)
        tracks = centroid_tracks(masks)
        mf = [track_motion_fidelity(gt_tracks[k], tracks[k], static_px) for k in reacting]
        epe = [float((tracks[k, -1] - gt_tracks[k, -1]).norm()) if not torch.isnan(tracks[k]).any()
               else float("nan") for k in reacting]
        ious = [mask_iou(masks[k, 1:], scene.masks[k, 1:]) for k in driven]
        ious = [v for v in ious if v is not None]
        inventory = object_inventory(video, scene.meta, scene.masks)
        out[method] = {
            "motion_fidelity": sum(mf) / len(mf) if mf else None,
            "endpoint_error_px": _nanmean(epe) if epe else None,
            "driven_iou": sum(ious) / len(ious) if ious else None,
            "first_frame_psnr_db": frame_psnr(video[0], scene.frames[0]),
            "same_objects": inventory["same_objects"], "lost": inventory["lost"], "invented": inventory["invented"],
        }
    return out


def probe_chain_scene(scene, videos: dict, static_px: float = STATIC_PX) -> dict:
    """Probe 6 on one :func:`~interdyn.data.synthetic.force_propagation_scene`: motion fidelity and end-point
    error of ``B`` (object 1), which only ``A`` (object 0) touches."""
    gt = track_objects(scene.frames, scene.meta, scene.masks)[1]
    out = {"seed": int(scene.meta["seed"])}
    for method, video in videos.items():
        track = track_objects(video, scene.meta, scene.masks)[1]
        out[method] = {"motion_fidelity_b": track_motion_fidelity(gt, track, static_px),
                       "endpoint_error_b_px": float((track[-1] - gt[-1]).norm())
                       if not torch.isnan(track).any() else None}
    return out


def probe_counterfactual(factual, counter, videos_f: dict, videos_c: dict, moving_px: float = MOVING_PX) -> dict:
    """Probe 2 on one pair: the free disc's (object 0) displacement under both drives, per method."""
    sim_f = displacement(factual.tracks[0])
    out = {"seed": int(factual.meta["seed"]), "simulated_displacement": sim_f.tolist()}
    for method in videos_f:
        d_f = displacement(track_objects(videos_f[method], factual.meta, factual.masks)[0])
        d_c = displacement(track_objects(videos_c[method], counter.meta, counter.masks)[0])
        c = cosine(d_f, sim_f)
        out[method] = {"displacement_hit": d_f.tolist(), "displacement_miss": d_c.tolist(), "cosine": c,
                       "direction_agrees": c > 0.0,
                       "responds_to_drive": float(d_f.norm()) >= float(d_c.norm()) + moving_px}
    return out


def _nanmean(values):
    v = [x for x in values if x is not None and not math.isnan(x)]
    return sum(v) / len(v) if v else None


# ---------------------------------------------------------------------------- the runner
@dataclass
class ProbeReport:
    """Per-scene records and the summary of :func:`run_probes` (``to_json`` / ``to_markdown``)."""

    settings: dict
    force: list[dict] = field(default_factory=list)
    counterfactual: list[dict] = field(default_factory=list)
    chain: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def methods(self) -> list[str]:
        records = self.force + self.counterfactual + self.chain
        return [m for m in METHODS if any(m in r for r in records)]

    def summary(self) -> dict:
        s: dict = {}
        for method in self.methods():
            mf = [r[method]["motion_fidelity"] for r in self.force if r[method]["motion_fidelity"] is not None]
            epe = [r[method]["endpoint_error_px"] for r in self.force if r[method]["endpoint_error_px"] is not None]
            iou = [r[method]["driven_iou"] for r in self.force if r[method]["driven_iou"] is not None]
            cf = [r[method] for r in self.counterfactual]
            chain = [r[method] for r in self.chain if method in r]
            s[method] = {
                "motion_fidelity": _stats(mf), "endpoint_error_px": _stats(epe), "driven_iou": _stats(iou),
                "first_frame_psnr_db": _stats([r[method].get("first_frame_psnr_db") for r in self.force]),
                "same_objects": _fraction([r[method]["same_objects"] for r in self.force
                                           if "same_objects" in r[method]]),
                "chain_motion_fidelity_b": _stats([c["motion_fidelity_b"] for c in chain]),
                "direction_agreement": _fraction([c["direction_agrees"] for c in cf]),
                "mean_cosine": _stats([c["cosine"] for c in cf]),
                "responds_to_drive": _fraction([c["responds_to_drive"] for c in cf]),
            }
        if self.force:
            ours = [r["interdyn"]["motion_fidelity"] for r in self.force]
            for base in BASELINES:
                other = [r[base]["motion_fidelity"] for r in self.force]
                diff = [a - b for a, b in zip(ours, other)]
                s[f"interdyn_minus_{base}"] = {"motion_fidelity": _stats(diff),
                                               "wins": _fraction([d > 0 for d in diff])}
        if self.chain:
            ours = [r["interdyn"]["motion_fidelity_b"] for r in self.chain]
            for base in BASELINES:
                diff = [a - r[base]["motion_fidelity_b"] for a, r in zip(ours, self.chain)]
                s[f"chain_interdyn_minus_{base}"] = {"motion_fidelity_b": _stats(diff),
                                                     "wins": _fraction([d > 0 for d in diff])}
        return s

    def to_json(self) -> dict:
        return {"settings": self.settings, "summary": self.summary(), "force_propagation": self.force,
                "counterfactual": self.counterfactual, "chain": self.chain, "seconds": self.seconds}

    def to_markdown(self) -> str:
        s = self.summary()
        n_f, n_c = len(self.force), len(self.counterfactual)
        lines = [f"Held-out scenes: {n_f} force-propagation scenes, {n_c} counterfactual pairs "
                 f"(seeds from {self.settings['seed']}); mean ± standard deviation over scenes.", "",
                 "| method | force propagation: motion fidelity ↑ | end-point error (px) ↓ | driven-object IoU ↑ "
                 "| counterfactual: direction agrees ↑ | mean cosine ↑ | responds to the drive ↑ |",
                 "|---|---|---|---|---|---|---|"]
        names = {"interdyn": "InterDyn (toy)", "no_control": "same model, control strength 0",
                 "dual_clock": "training-free drag (dual clock, no branch)",
                 "interdyn_dual_clock": "InterDyn + dual clock",
                 "copy_first_frame": "copy the first frame",
                 "simulation": "the simulation itself (ceiling of the colour tracker)"}
        for method in self.methods():
            m = s[method]
            lines.append(f"| {names[method]} | {_fmt(m['motion_fidelity'])} | {_fmt(m['endpoint_error_px'], 1)} | "
                         f"{_fmt(m['driven_iou'])} | {_pct(m['direction_agreement'])} | {_fmt(m['mean_cosine'])} | "
                         f"{_pct(m['responds_to_drive'])} |")
        for base in BASELINES:
            d = s.get(f"interdyn_minus_{base}")
            if d:
                lines.append("")
                lines.append(f"InterDyn minus {names[base]}, motion fidelity per scene: {_fmt(d['motion_fidelity'])}; "
                             f"InterDyn higher in {_pct(d['wins'])} of scenes.")
        lines += ["", f"Same scenes: frame 0 against the input image, and the objects of the last frame ({n_f} scenes); "
                  f"chains driver -> A -> B ({len(self.chain)} scenes): motion fidelity of B, which the driver never "
                  "touches.", "",
                  "| method | frame 0 PSNR (dB) ↑ | last frame holds the same objects ↑ | chain: motion fidelity of B ↑ |",
                  "|---|---|---|---|"]
        for method in self.methods():
            m = s[method]
            lines.append(f"| {names[method]} | {_fmt(m['first_frame_psnr_db'], 1)} | {_pct(m['same_objects'])} | "
                         f"{_fmt(m['chain_motion_fidelity_b'])} |")
        for base in BASELINES:
            d = s.get(f"chain_interdyn_minus_{base}")
            if d:
                lines.append("")
                lines.append(f"Chains, InterDyn minus {names[base]}, motion fidelity of B per scene: "
                             f"{_fmt(d['motion_fidelity_b'])}; InterDyn higher in {_pct(d['wins'])} of scenes.")
        return "\n".join(lines) + "\n"


def _stats(values) -> dict | None:
    values = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "n": len(values)}


def _fraction(flags) -> dict | None:
    flags = list(flags)
    return {"fraction": sum(bool(f) for f in flags) / len(flags), "n": len(flags)} if flags else None


def _fmt(stat, digits: int = 3) -> str:
    return "n/a" if not stat else f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _pct(frac) -> str:
    return "n/a" if not frac else f"{100 * frac['fraction']:.0f}% ({round(frac['fraction'] * frac['n'])}/{frac['n']})"


def run_probes(generate: Generate, *, num_scenes: int = 50, seed: int = PROBE_SEED, size=(64, 64),
               num_frames: int = 8, progress: Callable[[str, int, int], None] | None = None,
               settings: dict | None = None, num_chain_scenes: int | None = None, world="full",
               dual_clock: tuple[float, float] | None = None) -> ProbeReport:
    """Run the three probes on ``num_scenes`` held-out scenes (and as many counterfactual pairs).

    Force-propagation scenes are ``random_scene(seed + i)`` for the first ``num_scenes`` values of
    ``i`` whose simulation moves at least one free object; counterfactual pairs are
    ``counterfactual_pair(seed + i, mode="redirect")``; chains are ``force_propagation_scene(seed + i)``
    for ``i < num_chain_scenes`` (default: half of ``num_scenes``, at least 1). Every scene is of ``world``
    (:class:`interdyn.data.synthetic.World`: the one the model was trained on). ``dual_clock`` =
    ``(sigma_weak, sigma_strong)`` adds the training-free rows (:data:`DUAL_CLOCK_METHODS`)."""
    check_count(num_scenes, "num_scenes")
    check_count(num_frames, "num_frames", minimum=2)
    world = get_world(world).name
    num_chain = max(1, num_scenes // 2) if num_chain_scenes is None else check_count(num_chain_scenes,
                                                                                      "num_chain_scenes")

    t0 = time.time()
    report = ProbeReport(settings={"seed": seed, "num_scenes": num_scenes, "num_chain_scenes": num_chain,
                                   "size": list(size), "world": world,
                                   "num_frames": num_frames, "static_px": STATIC_PX, "moving_px": MOVING_PX,
                                   **({"dual_clock": {"sigma_weak": dual_clock[0], "sigma_strong": dual_clock[1]}}
                                      if dual_clock is not None else {}),
                                   **(settings or {})})
    scene_seed = seed
    while len(report.force) < num_scenes:
        scene, reacting = force_scene(scene_seed, size, num_frames, world=world)
        if reacting:  # scenes where no free object moves say nothing about force propagation
            videos = method_videos(generate, scene.frames, scene.control, scene_seed, scene=scene, dual_clock=dual_clock)
            report.force.append(probe_force_scene(scene, reacting, videos))
            if progress:
                progress("force propagation", len(report.force), num_scenes)
        scene_seed += 1
    for i in range(num_scenes):
        factual, counter = counterfactual_pair(seed + i, mode="redirect", size=tuple(size), num_frames=num_frames,
                                               world=world)
        vf = method_videos(generate, factual.frames, factual.control, seed + i, scene=factual, dual_clock=dual_clock)
        vc = method_videos(generate, counter.frames, counter.control, seed + i, scene=counter, dual_clock=dual_clock)
        report.counterfactual.append(probe_counterfactual(factual, counter, vf, vc))
        if progress:
            progress("counterfactual", i + 1, num_scenes)
    for i in range(num_chain):
        scene = force_propagation_scene(seed + i, size=tuple(size), num_frames=num_frames, world=world)
        videos = method_videos(generate, scene.frames, scene.control, seed + i, scene=scene, dual_clock=dual_clock)
        report.chain.append(probe_chain_scene(scene, videos))
        if progress:
            progress("chains", i + 1, num_chain)
    report.seconds = time.time() - t0
    return report


#: the files :func:`write_report` writes (a folder holding them is a probes output of ours)
PROBE_FILES = ("probes.json", "probes.md")


def write_report(report: ProbeReport, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``probes.json`` and ``probes.md`` into folder ``out`` (atomically, as one set).

    ``out`` must be new, empty or a probes folder of ours (:mod:`interdyn.support.safe_output`)."""
    out = claim_output_folder(out, what="probes output folder", kind="probes", signature_files=PROBE_FILES)
    paths = [out / name for name in PROBE_FILES]
    with atomic_files(paths) as temporaries:  # both replaced, or neither
        for tmp, text in zip(temporaries, (json.dumps(report.to_json(), indent=1), report.to_markdown())):
            tmp.write_text(text, encoding="utf-8")
    return paths[0], paths[1]


def training_seeds(prior_scenes: int = 6000, control_scenes: int = 3000, control_seed: int = 0) -> set[int]:
    """Scene seeds the built-in toy model was trained on: ``mixed_scene(0..prior_scenes-1)`` for the
    VAE and the prior and the control-branch dataset's ``SeedSequence`` seeds (as
    ``training.data.SyntheticClips`` derives them). Every preset of the mix draws from these seeds."""
    return set(range(prior_scenes)) | {dataset_scene_seed(control_seed, i) for i in range(control_scenes)}
