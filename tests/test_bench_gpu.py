"""bench/gpu.py's CPU smoke mode: the GPU benchmark's code path stays alive without a GPU."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # tests/conftest.py


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "bench" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_known_device_peaks_match_by_name_and_unknown_devices_say_so():
    bench = load_bench()
    assert bench.device_peak("NVIDIA H100 PCIe")["bf16"] == 756, "the PCIe H100 is not the SXM one"
    assert bench.device_peak("NVIDIA L40S")["bf16"] == 362 and bench.device_peak("NVIDIA L4")["bf16"] == 121, \
        "L40S is matched before L4"
    assert bench.device_peak("NVIDIA Tesla V100-SXM2-16GB")["bf16"] is None, "V100 has no bf16 tensor cores"
    assert bench.device_peak("Some Future GPU") is None, "unknown devices have no peak (reported as unknown)"


@pytest.mark.slow  # about 3 minutes on 2 idle cores: every section of the benchmark once, on tiny models
def test_cpu_smoke_run_writes_sane_json(tmp_path):
    bench = load_bench()
    out = tmp_path / "smoke.json"
    result = bench.main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["smoke"] is True and saved["device"].startswith("CPU"), "without a GPU it is a CPU smoke run"
    assert {"sampler", "options", "decode", "training", "settings", "peak_tflops"} <= set(saved), "all sections"
    sampler = saved["sampler"]
    assert [(r["dtype"], r["control"]) for r in sampler] == [("bf16", False), ("bf16", True)], "plain and control"
    for r in sampler:
        assert "error" not in r, f"sampler row failed: {r.get('error')}"
        assert r["s_per_video"] > 0 and r["flops_per_step"] > 0 and r["flops"] > r["flops_fixed"] > 0, \
            f"time and FLOPs are measured: {r}"
    control, plain = sampler[1], sampler[0]
    assert control["flops_per_step"] > plain["flops_per_step"], "the branch adds FLOPs to every step"
    assert control["x_plain_floor"] == pytest.approx(control["flops"] / plain["flops"]), "floor = FLOP ratio"
    setups = [r["setup"] for r in saved["training"]]
    assert len(setups) == 5 and setups[-1].startswith("24gb.yaml"), "4 batch/checkpointing rows + the 24 GB config"
    for r in saved["training"]:
        assert "error" not in r, f"training row {r['setup']} failed: {r.get('error')}"
        assert r["s_per_step"] > 0 and r["flops_per_step"] > 0, f"training step measured: {r}"
    last = saved["training"][-1]
    assert (last["batch"], last["accumulation"], last["checkpointing"]) == (1, 4, True), "the 24 GB setup as filed"
    assert last["optimizer_class"] in ("AdamW8bit", "AdamWBF16State"), "8-bit AdamW or its bf16-state fallback"
    assert saved["training"][1]["flops_per_step"] > saved["training"][0]["flops_per_step"], \
        "gradient checkpointing recomputes the forward: more FLOPs"
    assert result["training"][0]["setup"] == saved["training"][0]["setup"], "the returned dict is what was written"


def test_live_bytes_counts_allocations_not_views():
    """bench/activation_peak.py's tracker: new storages count until freed; views and in-place ops add nothing."""
    import torch

    spec = importlib.util.spec_from_file_location("bench_activation_peak", REPO / "bench" / "activation_peak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    weights = torch.ones(256)  # exists before: using it allocates nothing
    with module.LiveBytes() as tracker:
        a = torch.empty(1000)  # 4000 bytes
        view = a.view(10, 100).t()
        a.add_(1.0)
        b = weights.detach() * 2  # the product is new (1024 bytes), the detach is a view
        assert tracker.live == 4000 + 1024, tracker.live
        del a, view
        assert tracker.live == 1024, "a storage is uncounted when its last tensor is freed"
        c = torch.cat([b, b])  # 2048 bytes
        assert tracker.live == 1024 + 2048 and tracker.peak == 4000 + 1024, (tracker.live, tracker.peak)
        del b, c
    assert tracker.live == 0
