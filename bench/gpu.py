"""GPU benchmark at the real size: sampling and training speed, memory and FLOP efficiency (not a test).

One command, no downloads. Builds SVD's real-size UNet, temporal VAE, CLIP ViT-H/14 image encoder and
the InterDyn control branch from their real configs with random weights (bench/realsize.py: allocated
straight on the device in the run's dtype) and measures, through the project's own code:

* sampling (interdyn.core.sampling.generate_video): seconds per video (14 frames, 256x384, 50 Euler steps,
  CFG 1 -> 3) without and with the control branch, in fp16 and bf16; peak memory; FLOPs per video
  (torch.utils.flop_counter, as bench/sampler.py counts them), achieved TFLOP/s, the fraction of the
  device's dense peak, and control / plain time against its compute floor (the FLOP ratio); the VAE
  decode's peak memory with all frames at once and in two chunks;
* options, each against the plain run in the same process (bf16, with control): ``--compile``
  (``torch.compile`` of UNet and branch), ``--sdpa {flash,efficient,math}`` (SDPA backend),
  ``--channels-last``;
* training (training.train.Trainer.train_micro_batch, the real step: accelerate bf16 autocast, fp32
  master weights, clipping, the optimizer): seconds per optimizer step and peak memory at batch 1 and 4,
  with and without gradient checkpointing (8-bit AdamW when bitsandbytes imports, else AdamW), and the
  training/configs/24gb.yaml setup (batch 1 x 4 accumulation), whose peak must stay below 22 GB;
* host synchronisations per sampling run and per optimizer step (CUDA sync debug mode).

Prints one table and writes JSON (``--out``, default ``bench/results/gpu_<device>_<date>.json``).
Without CUDA it runs the same code on tiny models on the CPU in seconds (a smoke run, not a timing):
the test suite runs it so that it keeps working.

    python bench/gpu.py                       # on a CUDA machine: ~5 min on an H100-class GPU
    python bench/gpu.py --compile --sdpa flash --channels-last
    python bench/gpu.py --smoke               # tiny models on the CPU (what CI runs)
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import json
import platform
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this repository's `training` first (sam2 installs an unrelated one)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from realsize import build, configs  # noqa: E402

GB = 1e9
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
# dense tensor-core TFLOP/s with fp32 accumulation (vendor datasheets); first matching name wins
PEAK_TFLOPS: list[tuple[str, dict[str, float | None]]] = [
    ("GH200", {"fp16": 989, "bf16": 989}), ("H200", {"fp16": 989, "bf16": 989}),
    ("H100 NVL", {"fp16": 835, "bf16": 835}), ("H100 PCIe", {"fp16": 756, "bf16": 756}),
    ("H100", {"fp16": 989, "bf16": 989}), ("H800", {"fp16": 989, "bf16": 989}),
    ("B200", {"fp16": 2250, "bf16": 2250}), ("A100", {"fp16": 312, "bf16": 312}),
    ("A800", {"fp16": 312, "bf16": 312}), ("L40S", {"fp16": 362, "bf16": 362}),
    ("L40", {"fp16": 181, "bf16": 181}), ("L4", {"fp16": 121, "bf16": 121}),
    ("RTX 6000 Ada", {"fp16": 364, "bf16": 364}), ("RTX A6000", {"fp16": 155, "bf16": 155}),
    ("RTX 4090", {"fp16": 165, "bf16": 165}), ("RTX 3090", {"fp16": 71, "bf16": 71}),
    ("A10", {"fp16": 125, "bf16": 125}), ("V100", {"fp16": 125, "bf16": None}), ("T4", {"fp16": 65, "bf16": None}),
]
TRAIN_MEMORY_TARGET_GB = 22.0


def device_peak(name: str) -> dict[str, float | None] | None:
    for key, peaks in PEAK_TFLOPS:
        if key.lower() in name.lower():
            return peaks
    return None


# ---------------------------------------------------------------------------- measurement helpers
class Device:
    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        gc.collect()
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gb(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.device) / GB if self.cuda else None

    @contextlib.contextmanager
    def count_syncs(self, out: dict):
        """``out["syncs"]``: host synchronisations inside (CUDA sync debug mode); None on the CPU."""
        if not self.cuda:
            out["syncs"] = None
            yield
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield
            finally:
                torch.cuda.set_sync_debug_mode("default")
        out["syncs"] = sum("synchronizing" in str(w.message).lower() for w in caught)


def timed(dev: Device, fn, repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        dev.sync()
        t = time.perf_counter()
        fn()
        dev.sync()
        times.append(time.perf_counter() - t)
    return times


def host_syncs(dev: Device, fn) -> int | None:
    """Host synchronisations of one run of ``fn`` on CUDA; None on the CPU (there is nothing to count, so
    ``fn`` does not run)."""
    if not dev.cuda:
        return None
    syncs = {}
    with dev.count_syncs(syncs):
        fn()
    return syncs["syncs"]


def flops_of(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def efficiency(flops: float, seconds: float, peak: float | None) -> dict:
    tflops = flops / seconds / 1e12 if seconds else None
    return {"tflops_per_s": tflops, "fraction_of_peak": (tflops / peak) if (peak and tflops) else None}


def _error(err: BaseException) -> str:
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return "out of memory"
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"


# ---------------------------------------------------------------------------- sampling
def sampler_section(args, dev: Device, peaks: dict | None) -> tuple[list[dict], list[dict], dict]:
    from interdyn.core.sampling import decode_latents, generate_video, sample_latents

    rows, options, decode = [], [], {}
    h, w = args.height, args.width
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, h, w, generator=gen)
    control = (torch.rand(1, args.frames, 3, h, w, generator=gen) > 0.5).float()
    common = dict(num_frames=args.frames, min_guidance=1.0, max_guidance=3.0, fps=7, motion_bucket_id=40,
                  noise_aug_strength=0.02)
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        peak = (peaks or {}).get(dtype_name)
        backbone, branch = build(dev.device, dtype, tiny=args.smoke)

        def video(with_control: bool, steps: int = args.steps):
            return generate_video(backbone, image, control if with_control else None,
                                  branch if with_control else None, generator=0, num_steps=steps, **common)

        by_control = {}
        for with_control in (False, True):
            row = {"section": "sampler", "dtype": dtype_name, "control": with_control, "steps": args.steps,
                   "frames": args.frames, "size": f"{h}x{w}"}
            try:
                # FLOPs: fixed (CLIP, VAE encode/decode, control CNN) + steps x per-step, from 1- and 2-step runs
                f1, f2 = flops_of(lambda: video(with_control, 1)), flops_of(lambda: video(with_control, 2))
                row["flops_per_step"], row["flops_fixed"] = f2 - f1, f1 - (f2 - f1)
                row["flops"] = row["flops_fixed"] + args.steps * row["flops_per_step"]
                dev.reset_peak()
                # the FLOP runs above warmed up the CPU smoke run; a GPU gets its own warm-up run
                times = timed(dev, lambda: video(with_control), args.repeats, warmup=1 if dev.cuda else 0)
                row["s_per_video"] = statistics.median(times)
                row["times"] = times
                row["peak_gb"] = dev.peak_gb()
                row["host_syncs_2_steps"] = host_syncs(dev, lambda: video(with_control, 2))
                row.update(efficiency(row["flops"], row["s_per_video"], peak))
                by_control[with_control] = row
            except Exception as err:  # noqa: BLE001 - a benchmark row reports its failure and goes on
                row["error"] = _error(err)
            rows.append(row)
        if len(by_control) == 2:
            plain, ctrl = by_control[False], by_control[True]
            ctrl["x_plain"] = ctrl["s_per_video"] / plain["s_per_video"]
            ctrl["x_plain_floor"] = ctrl["flops"] / plain["flops"]

        if dtype_name == args.dtypes[-1]:
            options = options_section(args, dev, backbone, branch, lambda: video(True), peak,
                                      by_control.get(True, {}).get("flops"))
            # the VAE decode's peak, all frames at once vs two chunks (chunks cost temporal consistency)
            try:
                latents = sample_latents(backbone, image, control, branch, generator=0, num_steps=1, **common)
                for chunk in (None, (args.frames + 1) // 2):
                    dev.reset_peak()
                    base = torch.cuda.memory_allocated(dev.device) / GB if dev.cuda else None
                    t = timed(dev, lambda: decode_latents(backbone, latents, chunk), 1, warmup=0)[0]
                    peak_gb = dev.peak_gb()
                    decode[f"chunk_{chunk or args.frames}"] = {
                        "s": t, "peak_gb": peak_gb, "above_weights_gb": (peak_gb - base) if dev.cuda else None}
            except Exception as err:  # noqa: BLE001
                decode["error"] = _error(err)
        del backbone, branch
        dev.reset_peak()
    return rows, options, decode


@contextlib.contextmanager
def option_context(option: str, modules: list[torch.nn.Module]):
    if option.startswith("sdpa="):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        backend = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                   "math": SDPBackend.MATH}[option.split("=", 1)[1]]
        with sdpa_kernel(backend):
            yield
    elif option == "channels_last":
        for m in modules:
            m.to(memory_format=torch.channels_last)
        try:
            yield
        finally:
            for m in modules:
                m.to(memory_format=torch.contiguous_format)
    elif option == "compile":
        originals = [m.forward for m in modules]
        for m in modules:
            m.forward = torch.compile(m.forward)
        try:
            yield
        finally:
            for m, f in zip(modules, originals):
                m.forward = f
    else:
        yield


def options_section(args, dev: Device, backbone, branch, run, peak, flops) -> list[dict]:
    wanted = (["compile"] if args.compile else []) + ([f"sdpa={args.sdpa}"] if args.sdpa else []) + \
             (["channels_last"] if args.channels_last else [])
    if not wanted:
        return []
    rows = []
    plain = statistics.median(timed(dev, run, args.repeats))
    rows.append({"section": "option", "option": "plain", "dtype": args.dtypes[-1], "s_per_video": plain,
                 **efficiency(flops or 0, plain, peak)})
    for option in wanted:
        row = {"section": "option", "option": option, "dtype": args.dtypes[-1]}
        try:
            with option_context(option, [backbone.unet, branch]):
                dev.sync()
                start = time.perf_counter()
                run()  # warm-up (compilation for --compile)
                dev.sync()
                row["warmup_s"] = time.perf_counter() - start
                dev.reset_peak()
                row["s_per_video"] = statistics.median(timed(dev, run, args.repeats, warmup=0))
                row["peak_gb"] = dev.peak_gb()
            row["x_plain"] = row["s_per_video"] / plain
            row.update(efficiency(flops or 0, row["s_per_video"], peak))
        except Exception as err:  # noqa: BLE001
            row["error"] = _error(err)
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- training
def _reset_accelerate() -> None:
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _has_bitsandbytes() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def training_section(args, dev: Device, peaks: dict | None) -> list[dict]:
    from training.config import load_config
    from training.train import Trainer

    peak = (peaks or {}).get("bf16")
    backbone, _ = build(dev.device, torch.bfloat16, tiny=args.smoke, branch=False)
    c = configs(args.smoke)
    optimizer = "adamw8bit" if _has_bitsandbytes() else "adamw"
    setups = [dict(name=f"batch {b}{', checkpointing' if ck else ''}", batch_size=b, gradient_accumulation_steps=1,
                   gradient_checkpointing=ck, optimizer=optimizer, optimizer_fallback=None)
              for b in (1, 4) for ck in (False, True)]
    setups.append(dict(name="24gb.yaml (batch 1 x 4 accumulation)", config="24gb"))
    rows = []
    gen = torch.Generator().manual_seed(0)
    for setup in setups:
        name = setup.pop("name")
        setup.pop("config", None)
        row = {"section": "training", "setup": name}
        trainer = None
        try:
            _reset_accelerate()
            with tempfile.TemporaryDirectory() as out:
                config = load_config(REPO / "training" / "configs" / "24gb.yaml", dict(
                    setup, output_dir=out, report_to="none", progress_bar=False, validation_every=0,
                    checkpoint_every=10**9, num_workers=0, cpu=not dev.cuda, mixed_precision="bf16",
                    pretrained_model="random (bench/gpu.py)", dataset="synthetic", resume=None,
                    control_cnn_channels=list(c["cnn"]), num_frames=args.frames, height=args.height,
                    width=args.width))
                row.update(batch=config.batch_size, accumulation=config.gradient_accumulation_steps,
                           checkpointing=config.gradient_checkpointing, optimizer=config.optimizer)
                f, b = args.frames, config.batch_size
                batch = {"frames": torch.rand(b, f, 3, args.height, args.width, generator=gen),
                         "control": (torch.rand(b, f, 3, args.height, args.width, generator=gen) > 0.5).float(),
                         "meta": [{"fps": 6.0, "source": f"random-{i}"} for i in range(b)]}
                clips = [{"frames": batch["frames"][i], "control": batch["control"][i], "meta": batch["meta"][i]}
                         for i in range(b)]
                dev.reset_peak()
                trainer = Trainer(config, dataset=clips, backbone=backbone)
                row["optimizer_class"] = type(trainer.optimizer.optimizer).__name__
                micro = config.gradient_accumulation_steps

                def optimizer_step():
                    for _ in range(micro):
                        trainer.train_micro_batch(batch)

                row["flops_per_step"] = flops_of(optimizer_step)  # also the warm-up step
                times = timed(dev, optimizer_step, args.train_steps, warmup=0)
                row["s_per_step"] = statistics.median(times)
                row["clips_per_s"] = b * micro / row["s_per_step"]
                row["peak_gb"] = dev.peak_gb()
                row["host_syncs_per_step"] = host_syncs(dev, optimizer_step)
                row.update(efficiency(row["flops_per_step"], row["s_per_step"], peak))
                if dev.cuda and name.startswith("24gb"):
                    row["below_22gb"] = row["peak_gb"] < TRAIN_MEMORY_TARGET_GB
        except Exception as err:  # noqa: BLE001
            row["error"] = _error(err)
        finally:
            del trainer
            _reset_accelerate()
            dev.reset_peak()
        rows.append(row)
    del backbone
    dev.reset_peak()
    return rows


# ---------------------------------------------------------------------------- report
def _fmt(v, spec: str, unit: str = "") -> str:
    return "-" if v is None else f"{v:{spec}}{unit}"


def print_table(result: dict) -> None:
    print(f"\nInterDyn at {'the real size' if not result['smoke'] else 'TINY size (CPU smoke run, not a timing)'} "
          f"on {result['device']} ({result['date']}, torch {result['torch']})")
    print(f"{'run':44s}{'time':>12s}{'peak mem':>10s}{'TFLOP/s':>9s}{'of peak':>9s}{'x plain (floor)':>17s}"
          f"{'syncs':>7s}")
    for r in result["sampler"]:
        label = f"sample {r['dtype']}, {'control' if r['control'] else 'plain SVD'}"
        if "error" in r:
            print(f"{label:44s}  {r['error']}")
            continue
        ratio = f"{r['x_plain']:.2f} ({r['x_plain_floor']:.2f})" if "x_plain" in r else ""
        print(f"{label:44s}{_fmt(r['s_per_video'], '.2f', ' s/vid'):>12s}{_fmt(r['peak_gb'], '.1f', ' GB'):>10s}"
              f"{_fmt(r['tflops_per_s'], '.1f'):>9s}{_fmt(r['fraction_of_peak'], '.1%'):>9s}{ratio:>17s}"
              f"{_fmt(r['host_syncs_2_steps'], 'd'):>7s}")
    for r in result["options"]:
        label = f"  option {r['option']} ({r['dtype']}, control)"
        if "error" in r:
            print(f"{label:44s}  {r['error']}")
            continue
        ratio = f"{r['x_plain']:.2f}" if "x_plain" in r else "1"
        print(f"{label:44s}{_fmt(r['s_per_video'], '.2f', ' s/vid'):>12s}{_fmt(r.get('peak_gb'), '.1f', ' GB'):>10s}"
              f"{_fmt(r['tflops_per_s'], '.1f'):>9s}{_fmt(r['fraction_of_peak'], '.1%'):>9s}{ratio:>17s}")
    for key, d in result["decode"].items():
        if key == "error":
            print(f"{'  VAE decode':44s}  {d}")
            continue
        print(f"{'  VAE decode, ' + key.replace('_', ' ') + ' frames':44s}{_fmt(d['s'], '.2f', ' s'):>12s}"
              f"{_fmt(d['peak_gb'], '.1f', ' GB'):>10s}")
    for r in result["training"]:
        label = f"train {r['setup']}"
        if "error" in r:
            print(f"{label:44s}  {r['error']}")
            continue
        print(f"{label:44s}{_fmt(r['s_per_step'], '.2f', ' s/st'):>12s}{_fmt(r['peak_gb'], '.1f', ' GB'):>10s}"
              f"{_fmt(r['tflops_per_s'], '.1f'):>9s}{_fmt(r['fraction_of_peak'], '.1%'):>9s}{'':>17s}"
              f"{_fmt(r['host_syncs_per_step'], 'd'):>7s}")
    print(f"peaks: {result['peak_tflops'] or 'unknown'} dense TFLOP/s; training optimizer {result['train_optimizer']}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU even if CUDA is present")
    parser.add_argument("--dtypes", default=None, help="comma-separated: fp16,bf16 (default both; smoke: bf16)")
    parser.add_argument("--steps", type=int, default=None, help="Euler steps per video (default 50; smoke 2)")
    parser.add_argument("--frames", type=int, default=None, help="frames (default 14; smoke 2)")
    parser.add_argument("--size", default=None, help="HxW (default 256x384; smoke 64x64)")
    parser.add_argument("--repeats", type=int, default=None, help="timed videos per row (default 3; smoke 1)")
    parser.add_argument("--train-steps", type=int, default=None, help="timed optimizer steps (default 3; smoke 1)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile of UNet and branch")
    parser.add_argument("--sdpa", choices=("flash", "efficient", "math"), help="also measure this SDPA backend")
    parser.add_argument("--channels-last", action="store_true", help="also measure channels-last weights")
    parser.add_argument("--skip-sampler", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default bench/results/gpu_<device>_<date>"
                                                               ".json)")
    args = parser.parse_args(argv)
    args.smoke = args.smoke or not torch.cuda.is_available()
    smoke = args.smoke
    args.dtypes = (args.dtypes or ("bf16" if smoke else "fp16,bf16")).split(",")
    for d in args.dtypes:
        if d not in DTYPES:
            parser.error(f"--dtypes: unknown dtype {d!r}; use fp16, bf16 or fp32")
    args.steps = args.steps or (2 if smoke else 50)
    args.frames = args.frames or (2 if smoke else 14)
    args.repeats = args.repeats or (1 if smoke else 3)
    args.train_steps = args.train_steps or (1 if smoke else 3)
    size = args.size or ("64x64" if smoke else "256x384")
    if not re.fullmatch(r"\d+x\d+", size) or any(int(v) % 64 for v in size.split("x")):
        parser.error(f"--size must be HxW with multiples of 64, got {size!r}")
    args.height, args.width = (int(v) for v in size.split("x"))

    dev = Device(torch.device("cpu" if smoke else "cuda"))
    name = torch.cuda.get_device_name(dev.device) if dev.cuda else f"CPU {platform.machine()}"
    peaks = device_peak(name) if dev.cuda else None
    torch.manual_seed(0)
    started = time.perf_counter()
    result = {
        "device": name, "smoke": smoke, "date": _dt.date.today().isoformat(), "torch": torch.__version__,
        "cuda": torch.version.cuda if dev.cuda else None, "peak_tflops": peaks,
        "settings": {"steps": args.steps, "frames": args.frames, "size": f"{args.height}x{args.width}",
                     "cfg": [1.0, 3.0], "repeats": args.repeats, "train_steps": args.train_steps,
                     "dtypes": args.dtypes},
        "train_optimizer": "adamw8bit" if _has_bitsandbytes() else "adamw (bitsandbytes not importable)",
        "sampler": [], "options": [], "decode": {}, "training": [],
    }
    if not args.skip_sampler:
        result["sampler"], result["options"], result["decode"] = sampler_section(args, dev, peaks)
    if not args.skip_training:
        result["training"] = training_section(args, dev, peaks)
    result["wall_s"] = time.perf_counter() - started
    print_table(result)
    out = args.out or REPO / "bench" / "results" / (
        f"gpu_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}_{result['date']}{'_smoke' if smoke else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
