"""Benchmark: load a real-size single-file SVD checkpoint; time and peak memory (not a test).

Writes a checkpoint with the exact keys and shapes of svd_xt_1_1.safetensors (all groups of
``shared/fixtures/svd_checkpoint_keys/svd.json``, filled with random fp16 values, about 4.8 GB) to
a temporary folder, then loads it with :func:`interdyn.single_file.load_svd_single_file` in a
fresh subprocess so that writing the file does not count. The child also reads every parameter
once, so the peak RSS includes all weights being resident (safetensors maps the file lazily:
without that the figure would only show what the loader itself touched).

Prints conversion time, file size, peak RSS and peak RSS / file size (target <= ~1.2), then
deletes the file (``--keep`` keeps it). Usage::

    python bench/convert_single_file.py [--dtype file,bfloat16] [--dir /big/tmp] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INTERDYN_SHARED", REPO.parent / "shared"))
MANIFEST = SHARED / "fixtures" / "svd_checkpoint_keys" / "svd.json"
GB = 1e9


# ------------------------------------------------------------------ writing the checkpoint
def _numel(shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _header(tensors: dict[str, list[int]]) -> tuple[bytes, int]:
    """safetensors header (8-byte length + JSON, padded to 8 bytes) and the data size, fp16."""
    entries, offset = {}, 0
    for key in sorted(tensors):
        nbytes = 2 * _numel(tensors[key])
        entries[key] = {"dtype": "F16", "shape": tensors[key], "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    entries["__metadata__"] = {"format": "pt", "note": "random fp16 weights with the SVD single-file key layout"}
    raw = json.dumps(entries, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw, offset


def write_checkpoint(path: Path, tensors: dict[str, list[int]]) -> int:
    """Stream a random fp16 checkpoint to ``path`` (one small random pool reused); returns its size."""
    import torch

    header, _ = _header(tensors)
    pool = (torch.randn(1 << 25, generator=torch.Generator().manual_seed(0)) * 0.02).half().numpy().tobytes()
    start = 0
    with open(path, "wb") as fh:
        fh.write(header)
        for key in sorted(tensors):
            remaining = 2 * _numel(tensors[key])
            while remaining:
                chunk = min(remaining, len(pool) - start)
                fh.write(pool[start:start + chunk])
                remaining -= chunk
                start = (start + chunk + 2 * 7919) % (len(pool) - 2 * 7919)  # vary the tiling, stay fp16-aligned
    return path.stat().st_size


# ------------------------------------------------------------------ measuring (child process)
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def child(path: str, dtype_name: str) -> None:
    import resource

    import torch
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel  # noqa: F401
    from transformers import CLIPVisionModelWithProjection  # noqa: F401

    sys.path.insert(0, str(REPO))
    from interdyn.single_file import load_svd_single_file

    torch.set_num_threads(1)
    baseline = _status_kb("VmRSS") * 1024
    dtype = None if dtype_name == "file" else getattr(torch, dtype_name)
    t0 = time.perf_counter()
    parts = load_svd_single_file(path, dtype=dtype)
    t_load = time.perf_counter() - t0
    after_load = _status_kb("VmRSS") * 1024
    t0 = time.perf_counter()
    param_bytes, checksum = 0, 0.0
    with torch.no_grad():
        for name in ("unet", "vae", "image_encoder"):
            for p in parts[name].parameters():
                param_bytes += p.numel() * p.element_size()
                checksum += float(p.float().sum()) if p.numel() < (1 << 22) else float(p.sum(dtype=torch.float32))
    t_touch = time.perf_counter() - t0
    print(json.dumps({
        "load_s": t_load,
        "touch_s": t_touch,
        "baseline_rss": baseline,
        "rss_after_load": after_load,
        "rss_after_touch": _status_kb("VmRSS") * 1024,
        "rss_anon": _status_kb("RssAnon") * 1024,
        "rss_file": _status_kb("RssFile") * 1024,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "param_bytes": param_bytes,
        "dtypes": sorted({str(p.dtype) for n in ("unet", "vae", "image_encoder") for p in parts[n].parameters()}),
        "unet_class": type(parts["unet"]).__name__,
    }))


# ------------------------------------------------------------------ driver
def measure(path: Path, size: int, dtype_name: str) -> int:
    """Run the child on ``path`` and print its figures; returns the child's exit code."""
    proc = subprocess.run([sys.executable, __file__, "--child", str(path), "--dtype", dtype_name],
                          capture_output=True, text=True, cwd=str(REPO))
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, sep="\n")
        return proc.returncode
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    how = "zero-copy map of the file" if dtype_name == "file" else "read tensor by tensor and cast"
    print(f"\n== dtype {dtype_name} -> params {', '.join(r['dtypes'])} (UNet class {r['unet_class']}; {how})")
    print(f"conversion time      : {r['load_s']:.2f} s (file in the page cache)")
    print(f"first read of weights: {r['touch_s']:.2f} s")
    print(f"file size            : {size / GB:.3f} GB; loaded parameters {r['param_bytes'] / GB:.3f} GB")
    print(f"RSS after imports    : {r['baseline_rss'] / GB:.3f} GB")
    print(f"RSS after load       : {r['rss_after_load'] / GB:.3f} GB")
    print(f"RSS after reading all: {r['rss_after_touch'] / GB:.3f} GB "
          f"(anon {r['rss_anon'] / GB:.3f}, file-backed {r['rss_file'] / GB:.3f})")
    print(f"peak RSS             : {r['peak_rss'] / GB:.3f} GB")
    print(f"peak RSS / file size : {r['peak_rss'] / size:.3f} (target <= ~1.2 when the dtype is kept)")
    print(f"(peak - imports) / loaded parameter bytes: {(r['peak_rss'] - r['baseline_rss']) / r['param_bytes']:.3f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", default="file",
                    help="'file' (keep the file's fp16) or a torch dtype name; comma-separated runs several loads")
    ap.add_argument("--dir", default=None, help="folder for the temporary checkpoint (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoint afterwards")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.dtype)
        return 0

    if not MANIFEST.is_file():
        print(f"manifest not found: {MANIFEST} (set INTERDYN_SHARED to the shared/ folder)")
        return 2
    tensors = {k: v["shape"] for k, v in json.loads(MANIFEST.read_text())["tensors"].items()}
    header, data = _header(tensors)
    expected = len(header) + data
    base = Path(args.dir or tempfile.gettempdir())
    free = shutil.disk_usage(base).free
    if free < expected + 1 * GB:
        print(f"not enough free disk space in {base}: need {expected / GB:.2f} GB + 1 GB margin, "
              f"have {free / GB:.2f} GB. Pass --dir to a bigger folder.")
        return 1

    folder = Path(tempfile.mkdtemp(prefix="svd_bench_", dir=base))
    path = folder / "svd_xt_1_1.safetensors"
    try:
        t0 = time.perf_counter()
        size = write_checkpoint(path, tensors)
        print(f"wrote {path} ({size / GB:.3f} GB, {len(tensors)} tensors, fp16) in {time.perf_counter() - t0:.1f} s")
        assert size == expected, f"written size {size} != planned {expected}"
        for dtype_name in args.dtype.split(","):
            code = measure(path, size, dtype_name)
            if code:
                return code
    finally:
        if args.keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
