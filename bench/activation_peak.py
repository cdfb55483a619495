"""The 24 GB configuration's peak memory from the real training step, traced on the CPU.

Not a test, not a timing. ``bench/train_step.py``'s table counts the activations autograd *saves* (on the
meta device); the peak of a step is higher: backward's transient buffers, checkpointed blocks recomputed,
the optimizer's temporaries. This script runs the real code path, ``training.train.Trainer`` with
``training/configs/24gb.yaml`` (batch 1 x 4 accumulation, gradient checkpointing, bf16 frozen models,
fp32 branch), on SVD's REAL-size models (bench/realsize.py, random weights) on the CPU, and records every
tensor storage the step creates and frees (a dispatch mode, ``LiveBytes``): the peak of gradients,
optimizer state, activations and temporaries alive at once, on top of the models' weights.

A real-size step at 14 frames x 256x384 is hours on 2 CPU cores, so it runs at small clip sizes (the
widths and depths are the real ones; only frames x height x width shrink), fits the step's peak as
``a + b * frames * height * width`` (``a``: gradients and optimizer state, which do not depend on the clip
size; ``b``: convolutions, norms and flash-style attention are linear in it; printed: the fit's residual
at the sizes measured), and extrapolates to 14 x 256 x 384. Needs ~14 GB of RAM (real-size weights).

    python bench/activation_peak.py                 # long on a CPU: the first two sizes took 12 and 30 min
                                                    # on 2 busy cores (real-size models, every op traced)
    python bench/activation_peak.py --tiny          # tiny models, seconds (the code path only)
"""
from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import weakref
from pathlib import Path

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from realsize import build, configs, storage_bytes  # noqa: E402

GB = 1e9
FULL = (14, 256, 384)
TARGET_GB = 22.0  # what bench/gpu.py's 24gb.yaml row must stay below on a GPU


def _reset_accelerate() -> None:
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


class LiveBytes(TorchDispatchMode):
    """Bytes of the CPU tensor storages created inside the mode and still alive; their peak.

    Every op's outputs pass through ``__torch_dispatch__`` (forward, autograd's backward on this thread, the
    optimizer); a storage is counted once when it appears and uncounted when it is freed (a weak reference's
    callback). What a caching allocator calls "allocated bytes", without its rounding and fragmentation.
    """

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._refs: dict[int, weakref.ref] = {}

    def _on_free(self, key: int, nbytes: int):
        def callback(_):
            if self._refs.pop(key, None) is not None:
                self.live -= nbytes
        return callback

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # views and in-place results share an input's storage: nothing new was allocated
        inputs = {t.untyped_storage().data_ptr() for t in pytree.tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor) and t.device.type == "cpu"}
        for t in pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                key, nbytes = storage.data_ptr(), storage.nbytes()
                if nbytes and key not in self._refs and key not in inputs:
                    self._refs[key] = weakref.ref(storage, self._on_free(key, nbytes))
                    self.live += nbytes
                    self.peak = max(self.peak, self.live)
        return out


def traced_step(backbone, cnn, frames: int, height: int, width: int, optimizer: str) -> dict[str, float]:
    """``weights`` (every model's parameters and buffers before the step) and ``step_peak`` (the peak of what
    one optimizer step of the 24gb.yaml setup, 4 micro-batches, allocates: gradients, optimizer state,
    activations, temporaries)."""
    from training.config import load_config
    from training.train import Trainer

    _reset_accelerate()
    gen = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as out:
        config = load_config(REPO / "training" / "configs" / "24gb.yaml", dict(
            output_dir=str(Path(out) / "run"), report_to="none", progress_bar=False, validation_every=0,
            checkpoint_every=10**9, num_workers=0, cpu=True, mixed_precision="bf16", dataset="synthetic",
            pretrained_model="random (bench/activation_peak.py)", resume=None, control_cnn_channels=list(cnn),
            num_frames=frames, height=height, width=width, optimizer=optimizer, optimizer_fallback=None))
        clip = {"frames": torch.rand(frames, 3, height, width, generator=gen),
                "control": (torch.rand(frames, 3, height, width, generator=gen) > 0.5).float(),
                "meta": {"fps": 6.0, "source": "random"}}
        batch = {k: (v[None] if torch.is_tensor(v) else [v]) for k, v in clip.items()}
        trainer = Trainer(config, dataset=[clip], backbone=backbone)
        modules = [trainer.branch, backbone.unet, backbone.vae, backbone.image_encoder]
        weights = storage_bytes(t for m in modules for t in [*m.parameters(), *m.buffers()])
        micro = config.gradient_accumulation_steps
        assert micro >= 3, "needs micro-batches between the first (gradients appear) and the last (optimizer step)"
        forward_backward = 0
        with LiveBytes() as tracker:
            for k in range(micro):
                start, tracker.peak = tracker.live, tracker.live
                trainer.train_micro_batch(batch)
                if 0 < k < micro - 1:  # gradients already there, no optimizer step: forward + backward alone
                    forward_backward = max(forward_backward, tracker.peak - start)
                if k == micro - 1:
                    last = tracker.peak - start
        result = {"weights": float(weights), "forward_backward": float(forward_backward),
                  "state": float(tracker.live), "grads": float(start), "optimizer_extra": float(last) - tracker.live}
        del trainer, tracker
    _reset_accelerate()
    gc.collect()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models (checks the code path in seconds)")
    parser.add_argument("--sizes", default="2x64x64,4x64x64,2x128x128",
                        help="clip sizes FRAMESxHxW to measure (default %(default)s)")
    parser.add_argument("--optimizer", default=None, help="adamw8bit (default when bitsandbytes imports) or "
                                                          "adamw_bf16 (the config's fallback)")
    args = parser.parse_args(argv)
    if args.optimizer is None:
        try:
            import bitsandbytes  # noqa: F401
            args.optimizer = "adamw8bit"
        except ImportError:
            args.optimizer = "adamw_bf16"
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    start = time.perf_counter()
    torch.manual_seed(0)
    c = configs(args.tiny)
    backbone, _ = build("cpu", torch.bfloat16, tiny=args.tiny, branch=False)
    print(f"24gb.yaml training step ({args.optimizer}), {'TINY' if args.tiny else 'real-size'} models, traced on "
          "the CPU (peak over one optimizer step = 4 micro-batches)")
    print(f"   {'frames x H x W':>16s}{'weights':>11s}{'gradients':>11s}{'opt state':>11s}{'fwd+bwd':>11s}"
          f"{'last+step':>11s}")
    rows = []
    for f, h, w in sizes:
        r = traced_step(backbone, c["cnn"], f, h, w, args.optimizer)
        rows.append((f * h * w, r))
        print(f"   {f'{f} x {h} x {w}':>16s}" + "".join(f"{r[k] / GB:8.3f} GB" for k in (
            "weights", "grads", "state", "forward_backward", "optimizer_extra"))
            + f"   ({time.perf_counter() - start:.0f} s)", flush=True)
    n = torch.tensor([float(x) for x, _ in rows], dtype=torch.float64)
    y = torch.tensor([r["forward_backward"] for _, r in rows], dtype=torch.float64)
    a, b = torch.linalg.lstsq(torch.stack([torch.ones_like(n), n], 1), y[:, None]).solution[:, 0].tolist()
    residual = max(abs(a + b * float(ni) - float(yi)) / float(yi) for ni, yi in zip(n, y))
    full = FULL[0] * FULL[1] * FULL[2]
    last = rows[-1][1]
    static = last["weights"] + last["grads"] + last["state"]
    fb = a + b * full
    print(f"   fit: forward + backward = {a / GB:.3f} GB + {b * 1e6 / GB:.3f} GB per million frame-pixels (largest "
          f"residual at the measured sizes {100 * residual:.1f} %)")
    print(f"   at {FULL[0]} x {FULL[1]} x {FULL[2]}, from the second optimizer step on: weights + gradients + "
          f"optimizer state {static / GB:.2f} GB + max(forward + backward {fb / GB:.2f} GB, last micro-batch with the optimizer step "
          f"{last['optimizer_extra'] / GB:.2f} GB) = {(static + max(fb, last['optimizer_extra'])) / GB:.2f} GB "
          f"of tensors (a GPU must stay below {TARGET_GB:.0f} GB with its allocator's overhead)")
    print(f"   ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
