"""The metric networks (LPIPS, Inception, I3D, CoTracker), resolved from local files or injected; a missing one makes
its metrics unavailable with the reason."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from interdyn.metrics import (ALEXNET_WEIGHTS, I3D_WEIGHTS, INCEPTION_WEIGHTS, CoTrackerTracker, LucasKanadeTracker,
                              find_weights, load_i3d, load_inception, load_lpips, registry)


@dataclass
class MetricNetworks:
    """The networks the metrics need, each None when unavailable (with the reason in ``unavailable``).

    ``ids`` names each network (weights file or injected class) so cached features are only reused
    for the same network.
    """

    lpips: object = None
    inception: object = None
    i3d: object = None
    tracker: object = None
    tracker_name: str = ""
    unavailable: dict | None = None
    ids: dict | None = None
    devices: dict | None = None  # where to send inputs: the device for loaded networks, None (as given) for injected


def resolve_networks(*, lpips_net=None, lpips_alexnet=None, inception=None, inception_weights=None, i3d=None,
                     i3d_weights=None, tracker=None, cotracker_checkpoint=None, cotracker_code=None,
                     device: str | torch.device = "cpu", trust_i3d: bool = False) -> MetricNetworks:
    """Injected networks win; otherwise load each from the given path or the torch hub folder.

    Nothing is downloaded. A network that cannot be loaded makes its metrics unavailable, and the
    reason (the loader's error: which file, where it was looked for) is kept for the report.
    """
    nets = MetricNetworks(unavailable={}, ids={}, devices={})

    def attempt(name, loader, filenames, path, what):
        try:
            found = find_weights(filenames, path, what=what)
            net = loader(found, device=device)
        except (FileNotFoundError, ImportError, OSError, RuntimeError, ValueError) as err:
            nets.unavailable[name] = f"{type(err).__name__}: {err}"
            return None
        nets.ids[name] = f"file:{Path(found).resolve()}"
        nets.devices[name] = device
        return net

    if lpips_net is not None:
        nets.lpips, nets.ids["lpips"] = lpips_net, _network_id(lpips_net)
    else:
        nets.lpips = attempt("lpips", load_lpips, ALEXNET_WEIGHTS, lpips_alexnet, "LPIPS AlexNet backbone")
    if inception is not None:
        nets.inception, nets.ids["inception"] = inception, _network_id(inception)
    else:
        nets.inception = attempt("inception", load_inception, INCEPTION_WEIGHTS, inception_weights, "FID Inception-v3")
    if i3d is not None:
        nets.i3d, nets.ids["i3d"] = i3d, _network_id(i3d)
    else:
        nets.i3d = attempt("i3d", lambda path, device: load_i3d(path, device=device, trust=trust_i3d), I3D_WEIGHTS,
                           i3d_weights, "FVD I3D (TorchScript)")

    if tracker is not None:
        nets.tracker, nets.tracker_name = tracker, type(tracker).__name__
    elif cotracker_checkpoint is not None:
        if cotracker_code is not None and str(cotracker_code) not in sys.path:
            sys.path.insert(0, str(Path(cotracker_code).expanduser()))
        try:
            nets.tracker = CoTrackerTracker(cotracker_checkpoint, device=device)
            nets.tracker_name = f"CoTracker ({Path(cotracker_checkpoint).name})"
        except (FileNotFoundError, ImportError, OSError, RuntimeError, ValueError) as err:
            for metric in registry.metrics():  # the tracker's reason stands under its metrics' keys
                if metric.network == "tracker":
                    nets.unavailable.update(dict.fromkeys(metric.keys, f"{type(err).__name__}: {err}"))
    else:
        nets.tracker, nets.tracker_name = LucasKanadeTracker(), "LucasKanadeTracker (OpenCV; the paper used CoTracker3)"
    if nets.tracker is not None:
        nets.ids["tracker"] = (f"file:{Path(cotracker_checkpoint).resolve()}" if cotracker_checkpoint and tracker is None
                               else _network_id(nets.tracker))
    return nets


def _network_id(net) -> str:
    """Name of an injected network, for cache fingerprints."""
    return f"object:{type(net).__module__}.{type(net).__qualname__}"
