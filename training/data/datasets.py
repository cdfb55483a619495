"""The seeded sampler, the synthetic-world dataset and :func:`build_dataset`.

Every dataset yields samples in the one format of :mod:`training.data.samples` (re-exported here).
Datasets are indexed by *keys* from :class:`EpochShuffleSampler`: key ``k`` means item
``k % len(dataset)`` in epoch ``k // len(dataset)``. Datasets with random choices (start
frames) draw them from a generator seeded by ``(seed, epoch, item)``, so an item is the same
whichever worker loads it and after a resume.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from interdyn.data import synthetic

from .folder import FolderClips
from .samples import check_sample, collate_samples, item_rng, make_sample, split_key

__all__ = ["make_sample", "check_sample", "collate_samples", "split_key", "item_rng", "EpochShuffleSampler",
           "SyntheticClips", "build_dataset"]


# ---------------------------------------------------------------------------- order
class EpochShuffleSampler(Sampler[int]):
    """Yields keys ``epoch * n + i`` over a permutation of the items seeded by ``(seed, epoch)``.

    Stateless apart from the epoch (set with :meth:`set_epoch`), so every process computes the
    same order and a resumed run restores it from the epoch number alone.
    """

    def __init__(self, num_items: int, seed: int = 0, shuffle: bool = True):
        if num_items < 1:
            raise ValueError("the dataset is empty: nothing to sample")
        self.num_items, self.seed, self.shuffle, self.epoch = int(num_items), int(seed), bool(shuffle), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_items

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, self.epoch, 0x5A]).generate_state(1)[0]))
            order = torch.randperm(self.num_items, generator=g).tolist()
        else:
            order = range(self.num_items)
        base = self.epoch * self.num_items
        return iter([base + i for i in order])


# ---------------------------------------------------------------------------- synthetic world
class SyntheticClips(Dataset):
    """Clips of the synthetic collision world (:mod:`interdyn.data.synthetic`), made on the fly.

    Item ``i`` is the scene generated from ``(seed, i)``, ``num_frames`` frames of
    ``height x width`` at the world's frame rate (one simulated frame per model frame); it is
    the same in every epoch. Control: the driven objects' masks in ``CONTROL_PALETTE`` colours
    (one driver = white). ``meta["masks"]`` holds every object's visible mask.
    ``cache`` keeps that many generated clips in memory (per worker).
    """

    PRESETS = ("random", "default", "force_propagation", "mix")

    def __init__(self, num_scenes: int, *, height: int = 64, width: int = 64, num_frames: int = 14, seed: int = 0,
                 preset: str = "random", cache: int = 64, world: str = "full"):
        if preset not in self.PRESETS:
            raise ValueError(f"preset must be one of {self.PRESETS}, got {preset!r}")
        self.world = synthetic.get_world(world).name
        if num_scenes < 1:
            raise ValueError("num_scenes must be >= 1")
        self.num_scenes, self.size, self.num_frames = int(num_scenes), (int(height), int(width)), int(num_frames)
        self.seed, self.preset, self.cache_size = int(seed), preset, int(cache)
        self._cache: OrderedDict[int, dict] = OrderedDict()

    def __len__(self) -> int:
        return self.num_scenes

    def scene_seed(self, index: int) -> int:
        return synthetic.dataset_scene_seed(self.seed, index)

    def _generate(self, index: int) -> dict:
        if self.preset == "mix":  # interdyn.data.synthetic.TRAINING_MIX: random, chains, hit/miss pairs
            scene = synthetic.mixed_scene(self.scene_seed(index), index, size=self.size, num_frames=self.num_frames,
                                          world=self.world)
        else:
            make = {"random": synthetic.random_scene, "default": synthetic.default_scene,
                    "force_propagation": synthetic.force_propagation_scene}[self.preset]
            scene = make(self.scene_seed(index), size=self.size, num_frames=self.num_frames, world=self.world)
        masks = {name: scene.masks[k] for k, name in enumerate(scene.names)}
        return make_sample(scene.frames, scene.control, source=f"synthetic:{self.seed}/{index}",
                           label=self.preset, fps=scene.meta["fps"], masks=masks,
                           driven=[n for n, d in zip(scene.names, scene.driven.tolist()) if d])

    def __getitem__(self, key: int) -> dict:
        index, _ = split_key(key, self.num_scenes)
        sample = self._cache.get(index)
        if sample is None:
            sample = self._generate(index)
            if self.cache_size > 0:
                self._cache[index] = sample
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(index)
        return {"frames": sample["frames"], "control": sample["control"], "meta": dict(sample["meta"])}


def build_dataset(config) -> Dataset:
    """The training dataset a :class:`training.config.TrainConfig` describes."""
    if config.dataset == "synthetic":
        return SyntheticClips(config.synthetic_num_scenes, height=config.height, width=config.width,
                              num_frames=config.num_frames, seed=config.seed, preset=config.synthetic_preset,
                              cache=config.synthetic_cache, world=config.synthetic_world)
    if config.dataset == "folder":
        return FolderClips(config.data_root, num_frames=config.num_frames, height=config.height, width=config.width,
                           fps=config.clip_fps, crop=config.crop, seed=config.seed,
                           min_height=config.min_source_height, min_width=config.min_source_width)
    raise ValueError(f"unknown dataset {config.dataset!r}: use 'synthetic' or 'folder'")
