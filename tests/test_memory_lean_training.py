"""The 24 GB training setup: bf16-state AdamW, the optimizer fallback, the config, and a sync-free step loop."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.config import load_config
from training.optimizers import AdamWBF16State, stochastic_round_to_bf16_
from training.train import Trainer, build_optimizer

REPO = Path(__file__).resolve().parents[1]
CONFIG_24GB = REPO / "training" / "configs" / "24gb.yaml"
TINY_YAML = REPO / "training" / "configs" / "cpu_tiny.yaml"


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # tests/conftest.py


def test_stochastic_rounding_to_bf16_is_unbiased():
    torch.manual_seed(0)
    value = torch.full((200_000,), 1.001)  # bf16 can only hold 1.0 or 1.0078125 here
    out = stochastic_round_to_bf16_(torch.empty(value.shape, dtype=torch.bfloat16), value)
    assert set(out.float().unique().tolist()) == {1.0, 1.0078125}, "each value rounds to a neighbouring bf16"
    assert abs(out.float().mean().item() - 1.001) < 1e-4, "the mean of the rounded values is the value"
    neg = stochastic_round_to_bf16_(torch.empty(value.shape, dtype=torch.bfloat16), -value)
    assert abs(neg.float().mean().item() + 1.001) < 1e-4, "negative values round symmetrically"


def test_bf16_state_adamw_follows_torch_adamw_with_half_the_state():
    torch.manual_seed(0)
    target = torch.randn(64, 32)
    ours, ref = torch.zeros(64, 32, requires_grad=True), torch.zeros(64, 32, requires_grad=True)
    opt_ours = AdamWBF16State([ours], lr=1e-2, weight_decay=0.01)
    opt_ref = torch.optim.AdamW([ref], lr=1e-2, weight_decay=0.01)
    for _ in range(300):
        for p, opt in ((ours, opt_ours), (ref, opt_ref)):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
    err = (ours - ref).abs().max().item()
    assert err < 2e-2 * target.abs().max().item(), f"300 steps stay close to torch's AdamW (max diff {err:.4f})"
    state = opt_ours.state[ours]
    assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.bfloat16, "moments are stored in bf16"
    ref_bytes = sum(t.nbytes for t in opt_ref.state[ref].values() if torch.is_tensor(t) and t.ndim)
    our_bytes = sum(t.nbytes for t in state.values() if torch.is_tensor(t) and t.ndim)
    assert our_bytes * 2 == ref_bytes, "the state takes half of torch AdamW's bytes"


def test_adamw8bit_without_bitsandbytes_uses_the_configured_fallback(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import fails as if not installed
    params = [torch.nn.Parameter(torch.zeros(3))]
    config = load_config(None, {"pretrained_model": "tiny", "optimizer": "adamw8bit",
                                "optimizer_fallback": "adamw_bf16"})
    assert isinstance(build_optimizer(config, params), AdamWBF16State), "the fallback replaces 8-bit AdamW"
    config = load_config(None, {"pretrained_model": "tiny", "optimizer": "adamw8bit"})
    with pytest.raises(ImportError, match="optimizer_fallback"):
        build_optimizer(config, params)


def test_24gb_config_is_batch_1_x_4_bf16_checkpointed_with_lean_optimizer():
    config = load_config(CONFIG_24GB)
    assert config.batch_size * config.gradient_accumulation_steps == 4, "effective batch 4, as the paper per GPU"
    assert config.batch_size == 1, "batch 1 per micro-batch keeps activations at a quarter"
    assert config.mixed_precision == "bf16" and config.gradient_checkpointing, "bf16 frozen weights, checkpointing"
    assert config.optimizer == "adamw8bit" and config.optimizer_fallback == "adamw_bf16", "lean optimizer state"
    assert (config.num_frames, config.height, config.width) == (14, 256, 384), "the paper's clip size"


def test_training_step_reads_device_values_once_per_optimizer_step(tmp_path):
    """Host reads (item/float/bool/tolist) of the loss, norm and mean: one per optimizer step, not per micro-batch."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from training.data.datasets import SyntheticClips, collate_samples

    config = load_config(TINY_YAML, dict(output_dir=str(tmp_path), report_to="none", progress_bar=False,
                                         gradient_accumulation_steps=3, synthetic_num_scenes=2, max_steps=1))
    trainer = Trainer(config)
    batch = collate_samples([SyntheticClips(2, height=64, width=64, num_frames=4)[0]])
    reads = {"n": 0}

    class Count(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._local_scalar_dense.default:
                reads["n"] += 1
            return func(*args, **(kwargs or {}))

    original_tolist = torch.Tensor.tolist

    def counting_tolist(self):
        reads["n"] += 1
        return original_tolist(self)

    # not counted: the optimizer's own step counters (CPU tensors on every device for torch AdamW)
    step = trainer.optimizer.step

    def optimizer_step(*args, **kwargs):
        before = reads["n"]
        try:
            return step(*args, **kwargs)
        finally:
            reads["n"] = before

    trainer.optimizer.step = optimizer_step
    torch.Tensor.tolist = counting_tolist
    try:
        counts = []
        for _ in range(3):
            reads["n"] = 0
            with Count():
                trainer.train_micro_batch(batch)
            counts.append(reads["n"])
    finally:
        torch.Tensor.tolist = original_tolist
    # one CPU read on every device, not a sync: the control batch's range check (normalize_control runs before
    # the batch moves to the device); the per-clip noise augmentation strengths stay a tensor (one batched
    # conditioning call), so they are no longer read one by one
    per_clip_cpu_reads = counts[0]
    assert counts[0] == counts[1] == 1, f"accumulating micro-batches read back no device value (counts {counts})"
    assert counts[2] == per_clip_cpu_reads + 1, f"the optimizer step reads the device once (counts {counts})"
    assert trainer.last_loss == trainer.last_loss, "the step's mean loss comes with that one read"
