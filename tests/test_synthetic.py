"""interdyn.data.synthetic: the 2D collision world, checked against physics invariants."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch

from interdyn.data.video_io import read_video
from interdyn.data.synthetic import (
    SceneObject,
    counterfactual_pair,
    default_scene,
    force_propagation_scene,
    random_scene,
    simulate,
    write_scene_folder,
)

SEEDS = range(4)


def kinetic_energy(masses, velocities) -> float:
    return float(sum(0.5 * m * (v[0] ** 2 + v[1] ** 2) for m, v in zip(masses, velocities)))


def momentum(masses, velocities) -> np.ndarray:
    return np.sum([m * np.asarray(v, np.float64) for m, v in zip(masses, velocities)], axis=0)


def half_extents(entry: dict) -> tuple[float, float]:
    """Axis-aligned half extents of an object described in scene.meta["objects"]."""
    if entry["kind"] == "disc":
        return entry["radius"], entry["radius"]
    hw, hh = entry["half_size"]
    c, s = abs(math.cos(entry["angle"])), abs(math.sin(entry["angle"]))
    return c * hw + s * hh, s * hw + c * hh


def erode(mask: np.ndarray) -> np.ndarray:
    """4-neighbour erosion of [..., H, W] bool masks (pixels at the image border are dropped)."""
    out = mask.copy()
    out[..., 1:, :] &= mask[..., :-1, :]
    out[..., :-1, :] &= mask[..., 1:, :]
    out[..., :, 1:] &= mask[..., :, :-1]
    out[..., :, :-1] &= mask[..., :, 1:]
    out[..., 0, :] = out[..., -1, :] = out[..., :, 0] = out[..., :, -1] = False
    return out


def dilate(mask: np.ndarray) -> np.ndarray:
    return ~erode(~mask)


def first_move(track: torch.Tensor, tol: float = 1e-4) -> int | None:
    """First frame at which a track has left its frame-0 position."""
    moved = (track - track[0]).norm(dim=-1) > tol
    return int(moved.nonzero()[0]) if bool(moved.any()) else None


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("make", [default_scene, random_scene, force_propagation_scene])
def test_same_seed_gives_the_same_scene(make):
    a, b, c = make(3), make(3), make(4)
    for key in ("frames", "masks", "tracks", "velocities", "control"):
        assert torch.equal(a[key], b[key]), f"{make.__name__}: {key} must be a pure function of the seed"
    assert a.meta == b.meta, f"{make.__name__}: metadata must be a pure function of the seed"
    assert not torch.equal(a.frames, c.frames), f"{make.__name__}: another seed must give another scene"


def test_shapes_follow_size_and_frame_count():
    scene = random_scene(0, size=(37, 53), num_frames=9)
    o = len(scene.meta["objects"])
    assert scene.frames.shape == (9, 3, 37, 53) and scene.frames.dtype == torch.float32, "frames are [F,3,H,W] float"
    assert scene.control.shape == (9, 3, 37, 53), "control frames are [F,3,H,W]"
    assert scene.masks.shape == (o, 9, 37, 53) and scene.masks.dtype == torch.bool, "masks are [O,F,H,W] bool"
    assert scene.tracks.shape == (o, 9, 2) and scene.velocities.shape == (o, 9, 2), "tracks are [O,F,2]"
    assert float(scene.frames.min()) >= 0 and float(scene.frames.max()) <= 1, "frames are in [0, 1]"


# --------------------------------------------------------------------------- physics


def two_disc_collision(restitution=1.0, radius_b=5.0, offset_y=0.0, vb=(-2.0, 0.0), friction=0.0):
    objects = [
        SceneObject("disc", position=(16.0, 32.0), velocity=(2.0, 0.0), radius=5.0),
        SceneObject("disc", position=(48.0, 32.0 + offset_y), velocity=vb, radius=radius_b),
    ]
    scene = simulate(objects, size=(64, 64), num_frames=10, restitution=restitution, friction=friction,
                     antialias=1)
    masses = [o["mass"] for o in scene.meta["objects"]]
    return scene, masses


def test_equal_discs_head_on_exchange_velocities():
    scene, _ = two_disc_collision()
    assert scene.first_contact(0, 1) is not None, "the discs are set up to meet (gap 22 px at 4 px/frame)"
    v = scene.velocities[:, -1].double()
    assert torch.allclose(v[0], torch.tensor([-2.0, 0.0], dtype=torch.float64), atol=0.02), \
        "an elastic head-on hit between equal masses hands each disc the other's velocity"
    assert torch.allclose(v[1], torch.tensor([2.0, 0.0], dtype=torch.float64), atol=0.02), \
        "an elastic head-on hit between equal masses hands each disc the other's velocity"


def test_elastic_glancing_collision_conserves_energy_and_momentum():
    scene, masses = two_disc_collision(radius_b=7.0, offset_y=4.0, vb=(-1.0, 0.5))
    assert scene.first_contact(0, 1) is not None, "the discs are set up to meet off-centre"
    before, after = scene.velocities[:, 0].tolist(), scene.velocities[:, -1].tolist()
    assert after[0] != pytest.approx(before[0]), "the collision must change the velocities"
    e0, e1 = kinetic_energy(masses, before), kinetic_energy(masses, after)
    assert e1 == pytest.approx(e0, rel=0.02), "restitution 1 without friction keeps kinetic energy"
    p0, p1 = momentum(masses, before), momentum(masses, after)
    assert np.allclose(p1, p0, rtol=0.01, atol=1e-3 * np.abs(p0).max()), "collisions conserve momentum"


def test_restitution_scales_the_separation_speed():
    scene, masses = two_disc_collision(restitution=0.5)
    v0, v1 = scene.velocities[:, 0], scene.velocities[:, -1]
    approach = float(v0[0, 0] - v0[1, 0])
    separation = float(v1[1, 0] - v1[0, 0])
    assert separation == pytest.approx(0.5 * approach, rel=0.03), \
        "Newton's law of restitution: separation speed = e * approach speed"
    assert momentum(masses, v1.tolist()) == pytest.approx(momentum(masses, v0.tolist()), abs=1e-3), \
        "an inelastic collision still conserves momentum"


def test_friction_damps_speed_by_the_given_fraction_per_frame():
    scene = simulate([SceneObject("disc", position=(10.0, 32.0), velocity=(3.0, 0.0), radius=4.0)],
                     size=(64, 200), num_frames=6, friction=0.2)
    speeds = scene.velocities[0, :, 0].double()
    expected = 3.0 * 0.8 ** torch.arange(6, dtype=torch.float64)
    assert torch.allclose(speeds, expected, rtol=1e-4), "friction 0.2 = 20% of the speed lost per frame"


def test_boxes_collide_as_boxes():
    # equal axis-aligned boxes, centres 11 px apart vertically: their faces meet with a 1 px
    # overlap, so the contact normal is horizontal; round stand-ins would push along the
    # centre line and give the boxes vertical velocity
    objects = [
        SceneObject("box", position=(12.0, 30.0), velocity=(2.0, 0.0), half_size=(6.0, 6.0)),
        SceneObject("box", position=(40.0, 41.0), velocity=(0.0, 0.0), half_size=(6.0, 6.0)),
    ]
    scene = simulate(objects, size=(64, 64), num_frames=14, antialias=1)
    assert scene.first_contact(0, 1) is not None, \
        "boxes 11 px apart vertically with half heights 6 overlap; they must collide"
    v = scene.velocities[:, -1]
    assert torch.allclose(v, torch.tensor([[0.0, 0.0], [2.0, 0.0]]), atol=0.02), \
        "equal boxes hitting face-on exchange velocities, with no vertical component"


def test_driven_disc_pushes_a_box_and_is_not_pushed_back():
    path = [(0.0, -8.0, 32.0), (10.0, 52.0, 32.0)]
    objects = [SceneObject("box", position=(30.0, 32.0), half_size=(5.0, 4.0), angle=0.4),
               SceneObject("disc", radius=7.0, path=path)]
    scene = simulate(objects, size=(64, 64), num_frames=11, restitution=0.5, friction=0.05)
    driver = scene.tracks[1]
    expected = torch.tensor([[-8.0 + 6.0 * t, 32.0] for t in range(11)])
    assert torch.allclose(driver, expected, atol=1e-4), "a driven object follows its path exactly (infinite mass)"
    assert float(scene.tracks[0, -1, 0] - scene.tracks[0, 0, 0]) > 5.0, "the rotated box must be pushed along"


@pytest.mark.parametrize("size", [(64, 64), (48, 80), (80, 48)])
def test_free_disc_rests_until_the_driver_reaches_it_then_moves_on(size):
    for seed in SEEDS:
        scene = default_scene(seed, size=size)
        disc, driver = scene.meta["objects"]
        assert not disc["driven"] and driver["driven"], "default scene: object 0 free, object 1 driven"
        reach = disc["radius"] + driver["radius"]
        gap = (scene.tracks[0] - scene.tracks[1]).norm(dim=-1)
        step = (scene.tracks[1, 1:] - scene.tracks[1, :-1]).norm(dim=-1).max()
        k = first_move(scene.tracks[0])
        assert k is not None, f"seed {seed}: the driven disc must set the free disc moving"
        assert k >= 1 and bool((gap[:k] > reach - 1e-3).all()), \
            f"seed {seed}: the free disc must not move before the driver touches it"
        assert float(gap[k - 1]) <= reach + float(step) + 1e-3, \
            f"seed {seed}: the free disc must start moving in the interval the driver reaches it"
        assert k <= scene.frames.shape[0] - 4, f"seed {seed}: contact must happen well inside the clip"
        shift = scene.tracks[0, -1] - scene.tracks[0, 0]
        heading = scene.tracks[1, -1] - scene.tracks[1, 0]
        assert float(shift.norm()) >= 3.0, f"seed {seed}: the pushed disc must move on after contact"
        assert float(shift @ heading) > 0, f"seed {seed}: the disc must move the way it was pushed"
        ys, xs = scene.masks[0, -1].nonzero(as_tuple=True)
        centroid = torch.stack([xs.float().mean() + 0.5, ys.float().mean() + 0.5])
        assert float((centroid - scene.tracks[0, -1]).norm()) < 1.5, \
            f"seed {seed}: the disc's mask must follow its track (pixel centres at +0.5)"


def test_force_propagates_from_driver_through_a_to_b():
    for seed in SEEDS:
        scene = force_propagation_scene(seed)
        names = [o["name"] for o in scene.meta["objects"]]
        assert names == ["A", "B", "driver"], "probe layout: free A, free B, driven disc"
        r = [o["radius"] for o in scene.meta["objects"]]
        ka, kb = first_move(scene.tracks[0]), first_move(scene.tracks[1])
        assert ka is not None and kb is not None, f"seed {seed}: both free discs must end up moving"
        assert ka < kb <= scene.frames.shape[0] - 2, f"seed {seed}: A must move first, B later, inside the clip"
        gap_db = (scene.tracks[2, :kb + 1] - scene.tracks[1, :kb + 1]).norm(dim=-1)
        assert bool((gap_db > r[1] + r[2] - 1e-3).all()), f"seed {seed}: the driver must not reach B itself"
        gap_ab = (scene.tracks[0] - scene.tracks[1]).norm(dim=-1)
        a_step = (scene.tracks[0, 1:] - scene.tracks[0, :-1]).norm(dim=-1).max()
        assert float(gap_ab[kb - 1]) <= r[0] + r[1] + float(a_step) + 1e-3, \
            f"seed {seed}: B must start moving when A reaches it"


@pytest.mark.parametrize("seed", list(range(6)))
def test_free_objects_stay_inside_the_walls(seed):
    for scene in (random_scene(seed), force_propagation_scene(seed), default_scene(seed),
                  force_propagation_scene(seed, size=(40, 72)), random_scene(seed, size=(72, 40))):
        h, w = scene.meta["size"]
        for k, entry in enumerate(scene.meta["objects"]):
            if entry["driven"]:
                continue
            ex, ey = half_extents(entry)
            x, y = scene.tracks[k, :, 0], scene.tracks[k, :, 1]
            assert bool((x >= ex - 1e-3).all() and (x <= w - ex + 1e-3).all()), \
                f"{scene.meta['preset']} seed {seed}: {entry['name']} crossed a side wall"
            assert bool((y >= ey - 1e-3).all() and (y <= h - ey + 1e-3).all()), \
                f"{scene.meta['preset']} seed {seed}: {entry['name']} crossed the top or bottom wall"


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("seed", list(SEEDS))
def test_masks_agree_with_rendered_colours(seed):
    scene = random_scene(seed, textured=False)
    frames = scene.frames.permute(0, 2, 3, 1).numpy()
    masks = scene.masks.numpy()
    assert int(masks.sum(axis=0).max()) <= 1, "visible masks of different objects must not overlap"
    for k, entry in enumerate(scene.meta["objects"]):
        inner = erode(masks[k])
        if inner.any():
            err = np.abs(frames[inner] - np.asarray(entry["colour"])).max()
            assert err < 1e-5, f"seed {seed}: pixels inside {entry['name']}'s mask must have its colour"
    far = ~dilate(masks.any(axis=0))
    bg = np.asarray(scene.meta["background"]["colour"])
    assert np.abs(frames[far] - bg).max() < 1e-5, f"seed {seed}: pixels away from all masks show the background"


@pytest.mark.parametrize("kind", ["disc", "box"])
def test_mask_area_matches_the_shape_area(kind):
    obj = SceneObject(kind, position=(20.3, 17.6), radius=7.0, half_size=(6.0, 4.0), angle=0.5)
    scene = simulate([obj], size=(40, 40), num_frames=1, antialias=4)
    area = math.pi * 7.0**2 if kind == "disc" else 4 * 6.0 * 4.0
    perimeter = 2 * math.pi * 7.0 if kind == "disc" else 4 * (6.0 + 4.0)
    pixels = int(scene.masks[0, 0].sum())
    assert abs(pixels - area) < 0.15 * perimeter, \
        f"a mask holds the pixels at least half covered: about the {kind}'s area, not a dilated or eroded shape"


def test_control_shows_only_the_driven_objects():
    for seed in SEEDS:
        scene = random_scene(seed, num_driven=(2, 2))
        control = scene.control.permute(0, 2, 3, 1).numpy()
        driven = scene.driven.numpy()
        union = scene.masks.numpy()[driven].any(axis=0)
        lit = control.max(axis=-1) > 0
        assert np.array_equal(lit, union), f"seed {seed}: control must be non-black exactly on driven objects"
        colours = []
        for k in np.flatnonzero(driven):
            pix = control[scene.masks[k].numpy()]
            if len(pix):
                assert (pix == pix[0]).all(), f"seed {seed}: each driven object has one control colour"
                colours.append(tuple(pix[0]))
        assert len(set(colours)) == len(colours), f"seed {seed}: driven objects get distinct control colours"
    single = default_scene(0)
    hand = single.hand_mask.numpy()
    assert hand.any(), "the default scene's driver enters the frame"
    c = single.control.permute(0, 2, 3, 1).numpy()
    assert (c[hand] == 1.0).all() and (c[~hand] == 0.0).all(), "a single driven object is white on black"


@pytest.mark.parametrize("mode", ["redirect", "static", "remove"])
def test_counterfactual_pair_shares_frame_zero_and_differs_later(mode):
    factual, counter = counterfactual_pair(1, mode=mode)
    assert torch.equal(factual.frames[0], counter.frames[0]), f"{mode}: both scenes must start from the same image"
    assert float((factual.frames[-1] - counter.frames[-1]).abs().max()) > 0.2, \
        f"{mode}: a different drive must lead to a different ending"
    assert first_move(factual.tracks[0]) is not None, f"{mode}: in the factual scene the disc is pushed"
    assert first_move(counter.tracks[0]) is None, f"{mode}: without the push the disc stays where it was"
    assert not torch.equal(factual.control, counter.control), \
        f"{mode}: the two drives must differ in their control frames"


def test_one_demo_scene_takes_well_under_half_a_second():
    default_scene(0)  # warm up imports and caches
    times = []
    for seed in range(3):
        t = time.perf_counter()
        default_scene(seed)
        times.append(time.perf_counter() - t)
    assert min(times) < 0.25, f"64x64x14 scenes must be cheap to generate for training, took {min(times):.3f}s"


# --------------------------------------------------------------------------- folder layout


def test_scene_folder_layout_round_trips(tmp_path):
    scene = force_propagation_scene(0)
    folder = write_scene_folder(scene, tmp_path / "000000")
    names = sorted(p.name for p in folder.iterdir())
    expected = ["control.mp4", "mask_A.mp4", "mask_B.mp4", "mask_hand.mp4", "meta.json", "tracks.json", "video.mp4"]
    assert names == expected, "the folder holds the released examples' layout plus control/tracks/meta"
    hand, fps = read_video(folder / "mask_hand.mp4")
    assert np.array_equal(hand[..., 0] > 127, scene.hand_mask.numpy()), "mask_hand is the driver union, exactly"
    assert np.array_equal(hand[..., 0], hand[..., 2]), "mask_hand is white on black"
    a, _ = read_video(folder / "mask_A.mp4")
    assert np.array_equal(a[..., 0] > 127, scene.masks[0].numpy()), "per-object masks are stored losslessly"
    control, _ = read_video(folder / "control.mp4")
    assert np.array_equal(control, (scene.control.permute(0, 2, 3, 1).numpy() * 255).round()), \
        "control frames are stored losslessly"
    video, _ = read_video(folder / "video.mp4")
    mse = np.mean((video / 255.0 - scene.frames.permute(0, 2, 3, 1).numpy()) ** 2)
    assert 10 * np.log10(1.0 / mse) > 30.0, "the RGB video is lossy but close"
    assert fps == pytest.approx(scene.meta["fps"]), "files carry the scene's frame rate"
    tracks = json.loads((folder / "tracks.json").read_text())
    assert np.allclose(tracks["objects"][1]["positions"], scene.tracks[1].numpy()), "tracks.json holds the tracks"
    assert json.loads((folder / "meta.json").read_text())["seed"] == 0, "meta.json holds the metadata"


def test_free_object_outside_the_walls_is_refused():
    with pytest.raises(ValueError, match="walls"):
        simulate([SceneObject("disc", position=(2.0, 30.0), radius=5.0)], size=(64, 64))


def test_control_matches_the_inference_control_encoding():
    from interdyn.core.control import masks_to_control

    scene = random_scene(2, num_driven=(2, 3))
    assert torch.equal(scene.control, masks_to_control(scene.masks[scene.driven])), \
        "training control frames must be the ones interdyn.core.control builds from the same masks at inference"


def test_toy_world_scenes_have_one_plain_background_discs_and_four_colours():
    """The built-in model's world (interdyn.data.synthetic.TOY_WORLD): what it may vary is fixed, every preset
    still makes its situation (pushes, chains, hit/miss pairs)."""
    from interdyn.data.synthetic import BACKGROUND_COLOURS, OBJECT_COLOURS, TOY_WORLD, mixed_scene

    colours = set()
    for i in range(20):
        s = mixed_scene(100 + i, i, size=(64, 64), num_frames=8, world="toy")
        assert s.meta["world"] == "toy"
        assert tuple(s.meta["background"]["colour"]) == BACKGROUND_COLOURS[0] and s.meta["background"]["texture"] == 0
        assert all(o["kind"] == "disc" for o in s.meta["objects"]), "discs only"
        assert sum(not o["driven"] for o in s.meta["objects"]) <= 2, "one or two free objects"
        colours |= {tuple(o["colour"]) for o in s.meta["objects"] if not o["driven"]}
    assert colours <= set(OBJECT_COLOURS[:4]) and TOY_WORLD.object_colours == OBJECT_COLOURS[:4], colours


def test_the_full_world_is_the_default_and_unknown_worlds_are_refused():
    from interdyn.data.synthetic import get_world, random_scene

    a = random_scene(5, size=(64, 64), num_frames=4)
    b = random_scene(5, size=(64, 64), num_frames=4, world="full")
    assert a.meta["world"] == "full" and torch.equal(a.frames, b.frames), "world='full' is today's world"
    with pytest.raises(ValueError, match="world must be one of"):
        get_world("moon")
