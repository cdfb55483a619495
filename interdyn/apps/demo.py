"""`interdyn demo`: the built-in toy-physics model on held-out scenes that show what InterDyn is for.

Three scenes, never trained on (validation seeds, disjoint from the probe seeds):

* **hit** and **miss**: the same first frame, two driving motions. The driver (a disc that enters
  from outside the frame) either hits the free disc or is turned away and misses it; a model with
  interactive dynamics moves the free disc in the first video and leaves it alone in the second.
* **chain**: the driver hits disc A, which hits disc B; B is never touched by the driver.

For each scene the model sees the first frame and the driver's masks only. The demo writes one mp4
per scene (driving masks | InterDyn | simulated ground truth; for the hit scene also the same model at
control strength 0, the prior alone), a labelled PNG contact sheet of all of them, and prints the probe numbers of these scenes
(:mod:`interdyn.apps.probes`; the averages over many held-out scenes come from `interdyn probes`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from . import probes
from .contact_sheet import write_contact_sheet
# the loader through its module: tests replace loading.load_toy_physics to prove nothing samples before the checks
from ..core import loading
from ..core.builtin import TOY_PHYSICS, TOY_SAMPLING, TOY_SIZE, toy_world
from ..data.synthetic import counterfactual_pair, force_propagation_scene
from ..data.video_io import write_video
from ..support.safe_output import atomic_files, check_output_path, claim_output_folder, clean_stale_temporaries
from ..support.validation import SAMPLING_BOUNDS, check_count, check_seed, check_video_size

#: First validation seed (never trained on, not a probe seed): the demo's default scenes.
DEMO_SEED = 2_000_000


def _upscale(video: torch.Tensor, factor: int) -> torch.Tensor:
    """Nearest-neighbour enlargement of ``[F, 3, H, W]`` frames, so 64-pixel videos can be seen."""
    return video.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def _side_by_side(*videos: torch.Tensor) -> torch.Tensor:
    return torch.cat(videos, dim=-1)


#: files only the demo writes: a folder holding one is a demo output even without our marker (older versions)
DEMO_SIGNATURE_FILES = ("contact_sheet.png", "chain.mp4")


def check_zoom(zoom, name: str = "zoom") -> int:
    """``zoom`` a whole number >= 1 whose enlarged videos (four 64-pixel panels side by side, 8 frames) fit the
    memory budget (:func:`interdyn.support.validation.check_video_size`), checked before any sampling."""
    zoom = check_count(zoom, name)
    height, width = TOY_SIZE[0] * zoom, 4 * TOY_SIZE[1] * zoom
    check_video_size(TOY_SAMPLING["num_frames"], height, width, what="the enlarged demo videos",
                     label=f"{name} {zoom} ({TOY_SAMPLING['num_frames']} frames of {height}x{width})")
    return zoom


def demo_scenes(seed: int, size, num_frames: int, world="full") -> dict:
    """``{"hit": scene, "miss": scene, "chain": scene}`` for ``seed`` (hit and miss share frame 0), of ``world``."""
    hit, miss = counterfactual_pair(seed, mode="redirect", size=tuple(size), num_frames=num_frames, world=world)
    return {"hit": hit, "miss": miss,
            "chain": force_propagation_scene(seed, size=tuple(size), num_frames=num_frames, world=world)}


def run_demo(out: str | Path, *, seed: int = DEMO_SEED, num_steps: int | None = None, zoom: int = 4,
             echo: Callable[[str], None] = print) -> dict:
    """Run the demo into folder ``out``; returns the per-scene measurements and the written paths."""
    check_output_path(out, "out", folder=True)
    check_zoom(zoom, "zoom")
    check_seed(seed, "seed")
    sampling = dict(TOY_SAMPLING)
    if num_steps is not None:
        sampling["num_steps"] = check_count(num_steps, "num_steps", maximum=SAMPLING_BOUNDS["num_steps"])
    # a folder of ours (or new/empty): never someone else's
    out = claim_output_folder(out, what="out", kind="demo", signature_files=DEMO_SIGNATURE_FILES)
    clean_stale_temporaries(out)  # left there by a killed demo
    t0 = time.time()
    echo(f"interdyn demo: the built-in toy-physics model ({TOY_PHYSICS}, trained by this project on its synthetic "
         f"collision world; {TOY_SIZE[1]}x{TOY_SIZE[0]}, {sampling['num_frames']} frames, "
         f"{sampling['num_steps']} steps).\nScenes from seed {seed} (never trained on). The model sees the first "
         "frame and the driver's masks only; the rest of the scene must react by itself.")
    scenes = demo_scenes(seed, TOY_SIZE, sampling["num_frames"], world=toy_world())
    hit, miss, chain = scenes["hit"], scenes["miss"], scenes["chain"]
    generate = probes.model_generator(*loading.load_toy_physics(), sampling)
    # four generations: InterDyn on each scene, and the prior alone (strength 0) on the hit scene's first frame
    videos = {}
    for name, s in scenes.items():
        videos[name] = {"interdyn": generate(s.frames[0], s.control, 1.0, seed),
                        "copy_first_frame": s.frames[:1].expand_as(s.frames).clone(), "simulation": s.frames}
    videos["hit"]["no_control"] = generate(hit.frames[0], hit.control, 0.0, seed)

    free = [k for k, d in enumerate(hit.driven.tolist()) if not d]
    force = probes.probe_force_scene(hit, free, videos["hit"])
    counter = probes.probe_counterfactual(hit, miss, {k: videos["hit"][k] for k in videos["miss"]}, videos["miss"])
    chained = probes.probe_chain_scene(chain, videos["chain"])

    fps = scenes["hit"].meta["fps"]
    rows = []
    for name, what in (("hit", "driver hits the disc"), ("miss", "same frame 0, driver misses"),
                       ("chain", "driver -> A -> B")):
        scene, v = scenes[name], videos[name]
        rows += [(f"{name}: driving masks\n({what})", scene.control), (f"{name}: InterDyn (toy)", v["interdyn"]),
                 (f"{name}: simulation", scene.frames)]
        if "no_control" in v:
            rows.append((f"{name}: control strength 0\n(the prior alone)", v["no_control"]))
    paths = [out / f"{name}.mp4" for name in scenes] + [out / "contact_sheet.png"]
    with atomic_files(paths) as temporaries:  # the three videos and the sheet are replaced together, or none of them
        for (name, scene), tmp in zip(scenes.items(), temporaries):
            v = videos[name]
            parts = [scene.control, v["interdyn"], scene.frames] + ([v["no_control"]] if "no_control" in v else [])
            write_video(tmp, _upscale(_side_by_side(*parts), zoom), fps=fps)
        write_contact_sheet(temporaries[-1], rows, zoom=2,
                            title=f"interdyn demo, built-in toy-physics model, scenes of seed {seed}")

    def fmt(v, d=3):
        return "n/a" if v is None else f"{v:.{d}f}"

    echo("\nhit scene: the free disc after the driver hits it")
    echo(f"  {'':20s} {'motion fidelity':>16s} {'end-point err px':>17s} {'driver IoU':>11s} {'frame 0 PSNR':>13s}"
         f" {'same objects':>13s}")
    for method in ("interdyn", "no_control", "copy_first_frame"):
        m = force[method]
        echo(f"  {method:20s} {fmt(m['motion_fidelity']):>16s} {fmt(m['endpoint_error_px'], 1):>17s} "
             f"{fmt(m['driven_iou']):>11s} {fmt(m['first_frame_psnr_db'], 1):>13s} {str(m['same_objects']):>13s}")
    echo("\nhit vs miss (same first frame): how far the free disc moves, in pixels")
    for method in ("interdyn", "simulation"):
        c = counter[method]
        hit_px, miss_px = torch.tensor(c["displacement_hit"]).norm(), torch.tensor(c["displacement_miss"]).norm()
        echo(f"  {method:20s} hit {hit_px:5.1f}  miss {miss_px:5.1f}  direction agrees with the simulation: "
             f"{c['direction_agrees']}  responds to the drive: {c['responds_to_drive']}")
    echo("\nchain: disc B, which only disc A touches")
    for method in ("interdyn", "copy_first_frame"):
        c = chained[method]
        echo(f"  {method:20s} motion fidelity of B {fmt(c['motion_fidelity_b'])}  end-point error of B "
             f"{fmt(c['endpoint_error_b_px'], 1)} px")
    seconds = time.time() - t0
    echo(f"\ndone in {seconds:.1f}s; wrote " + ", ".join(str(p) for p in paths))
    echo("each mp4, left to right: driving masks | InterDyn | simulated ground truth (hit.mp4 also: control strength 0)")
    return {"force": force, "counterfactual": counter, "chain": chained, "paths": paths, "seconds": seconds}
