"""Stage 4 of the toy-physics recipe: put the trained toy model into the package, in fp16.

    python -m training.toy.package --svd runs/toy/svd --control runs/toy/interdyn_toy_physics.safetensors

Writes ``interdyn/assets/toy_physics/svd/`` (a diffusers SVD folder) and
``interdyn/assets/toy_physics/interdyn_toy_physics.safetensors`` (our single-file control branch
format), both in float16, replacing what is there only once everything is written. Before that it
checks that fp16 holds quality: the same scenes are generated with the float32 weights and with
the fp16 weights (upcast to float32 for computing, as the loaders do on a CPU) and the largest
pixel difference is printed and stored in the branch's provenance.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from interdyn.core.builtin import TOY_BRANCH, TOY_DIR, TOY_SAMPLING, TOY_SIZE
from interdyn.core.loading import load_control_branch, load_svd_backbone, save_control_branch, save_svd_folder
from interdyn.core.sampling import generate_video
from interdyn.data.synthetic import default_scene, get_world
from interdyn.support.safe_output import atomic_files


def _generate_probe_videos(backbone, branch, seeds, num_steps: int | None = None, world: str = "toy") -> torch.Tensor:
    sampling = dict(TOY_SAMPLING, **({} if num_steps is None else {"num_steps": num_steps}))
    videos = []
    for seed in seeds:
        scene = default_scene(seed, size=TOY_SIZE, num_frames=sampling["num_frames"], world=world)
        with torch.no_grad():
            videos.append(generate_video(backbone, scene.frames[:1], scene.control[None], branch, generator=seed,
                                         **sampling)[0])
    return torch.stack(videos)


def _portable(value):
    """Provenance without the training machine's paths: absolute paths keep their last two parts."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return "/".join(Path(value).parts[-2:])
    return value


def package(svd: Path, control: Path, out: Path = TOY_DIR, provenance: dict | None = None,
            check_scenes: int = 4, check_steps: int | None = None, world: str = "toy") -> dict:
    """Write the fp16 package into ``out``; the fp16 check generates ``check_scenes`` validation scenes with
    the built-in sampling settings (``check_steps`` Euler steps instead, for smoke tests). ``world``: the
    synthetic world the model was trained on, stored in the branch's provenance (the demo and the probes
    read it there, :func:`interdyn.core.builtin.toy_world`)."""
    world = get_world(world).name

    backbone = load_svd_backbone(svd, dtype=torch.float32)
    branch = load_control_branch(control, dtype=torch.float32, backbone=backbone)
    seeds = [2_000_000 + i for i in range(check_scenes)]  # validation seeds, not the probe seeds
    reference = _generate_probe_videos(backbone, branch, seeds, check_steps, world)

    with atomic_files([out / "svd", out / TOY_BRANCH.name]) as (svd_folder, branch_file):  # replaced together
        for module in (backbone.unet, backbone.vae, backbone.image_encoder):
            module.to(torch.float16)
        save_svd_folder(backbone, svd_folder)
        for config_file in svd_folder.glob("*/config.json"):  # no paths of the training machine
            config = json.loads(config_file.read_text())
            config.pop("_name_or_path", None)
            config_file.write_text(json.dumps(config, indent=2))
        info = _portable({**(getattr(branch, "provenance", None) or {}), **(provenance or {}), "world": world})
        save_control_branch(branch, branch_file, dtype=torch.float16, provenance=info)
        # fp16 check: reload the staged files the way users will
        backbone16 = load_svd_backbone(svd_folder, dtype=torch.float32)
        branch16 = load_control_branch(branch_file, dtype=torch.float32, backbone=backbone16)
        diff = float((_generate_probe_videos(backbone16, branch16, seeds, check_steps, world) - reference).abs().max())
        sampling = dict(TOY_SAMPLING, **({} if check_steps is None else {"num_steps": check_steps}))
        info["fp16_check"] = {"max_abs_pixel_difference": diff, "scenes": seeds, "sampling": sampling}
        save_control_branch(branch16, branch_file, dtype=torch.float16, provenance=info)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"fp16 vs fp32 on {len(seeds)} validation scenes: max |pixel difference| {diff:.4f}")
    print(f"wrote {out} ({size / 1e6:.1f} MB)")
    return {"fp16_max_abs_pixel_difference": diff, "bytes": size}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.toy.package", description=__doc__.splitlines()[0])
    p.add_argument("--svd", type=Path, required=True, help="toy backbone folder (stage 2 output)")
    p.add_argument("--control", type=Path, required=True, help="exported control branch (.safetensors)")
    p.add_argument("--out", type=Path, default=TOY_DIR, help="destination (default: the package's assets)")
    p.add_argument("--provenance", type=Path, help="JSON file with the training record to store in the branch")
    p.add_argument("--world", default="toy", choices=["toy", "full"], help="synthetic world it was trained on")
    a = p.parse_args(argv)
    prov = json.loads(a.provenance.read_text()) if a.provenance else {}
    package(a.svd, a.control, a.out, prov, world=a.world)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
