"""Make docs/dual_clock_contact_sheet.png: one probe scene, the simulation and every method's video side by side.

Rows: the simulation, the reference a training-free drag gets (the first frame with the driver pasted along its
path), InterDyn, the drag alone (dual clock, no branch), InterDyn + dual clock, and the prior alone. The same scene
and seed as the probes (``interdyn.apps.probes``); the authors' SVD levels.

    python docs/tools/make_dual_clock_sheet.py [--seed 1000000] [--out docs/dual_clock_contact_sheet.png]

A maintainer's tool (not shipped in the wheel).
"""
from __future__ import annotations

import argparse

import torch

from interdyn.apps import probes
from interdyn.apps.contact_sheet import write_contact_sheet
from interdyn.core.builtin import TOY_PHYSICS, TOY_SAMPLING, toy_world
from interdyn.core.dual_clock import SVD_SIGMA_STRONG, SVD_SIGMA_WEAK
from interdyn.core.loading import load_control_branch, load_svd_backbone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=probes.PROBE_SEED)
    parser.add_argument("--out", default="docs/dual_clock_contact_sheet.png")
    args = parser.parse_args()
    backbone = load_svd_backbone(TOY_PHYSICS)
    generate = probes.model_generator(backbone, load_control_branch(TOY_PHYSICS, backbone=backbone), dict(TOY_SAMPLING))
    seed = args.seed
    while True:  # the first probe scene from --seed whose simulation moves a free object
        scene, reacting = probes.force_scene(seed, world=toy_world())
        if reacting:
            break
        seed += 1
    videos = probes.method_videos(generate, scene.frames, scene.control, seed, scene=scene,
                                  dual_clock=(SVD_SIGMA_WEAK, SVD_SIGMA_STRONG))
    reference, _ = probes.drive_reference(scene)
    rows = [("simulation", scene.frames), ("drag reference", reference), ("InterDyn", videos["interdyn"]),
            ("drag alone", videos["dual_clock"]), ("InterDyn + drag", videos["interdyn_dual_clock"]),
            ("prior alone", videos["no_control"])]
    write_contact_sheet(args.out, [(label, v.float().clamp(0, 1)) for label, v in rows], zoom=3,
                        title=f"probe scene {seed}: training-free drag vs InterDyn (toy model)")
    print(f"wrote {args.out} (scene {seed})")


if __name__ == "__main__":
    main()
