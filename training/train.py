"""Train the InterDyn control branch on a frozen Stable Video Diffusion backbone.

    accelerate launch -m training.train --config training/configs/one_gpu.yaml [--key value ...]
    python -m training.train --config training/configs/cpu_tiny.yaml
    torchrun --nproc_per_node 2 -m training.train --config training/configs/cpu_tiny.yaml   # 2 CPU processes

The method is InterDyn's (sec. 4.1): SVD's UNet, VAE and CLIP image encoder are frozen (eval
mode, no gradients, not in the optimizer, cast to the mixed-precision dtype); the control branch
(:meth:`interdyn.models.InterDynControlNet.from_unet`, residual mode ``standard``) is trained
in float32 with Adam on SVD's EDM v-prediction loss (:mod:`training.losses`).

Checkpoints: ``output_dir/checkpoint-<step>/`` written by ``accelerator.save_state`` into a hidden
temporary folder (:func:`interdyn.support.safe_output.temporary_name`) and moved into place whole when complete
(:func:`interdyn.support.safe_output.move_into_place`), the newest ``checkpoints_keep`` kept. Besides
accelerate's files each holds ``control_branch.safetensors`` (and ``control_branch_ema.safetensors``)
in our single-file format, ``unet_config.json``, ``config.yaml``, ``trainer_state.json`` (the loop
counters) and ``ema_state.json``; :mod:`training.export` reads those. Resuming never unpickles
anything: the loop counters and the EMA come from JSON and safetensors (they are not registered with
accelerate, which would pickle them), and accelerate's optimizer, scheduler and RNG files are read
with ``torch.load(weights_only=True)`` only (:func:`load_checkpoint`). A run starts by removing what a run
killed while saving left (the lock's clean-up of our temporaries; ``.tmp-checkpoint-*`` of older versions); a
resumed run cuts ``loss.csv`` back to the resumed step, and a ``max_steps`` below the checkpoint's step is
refused. ``output_dir`` must be new, empty or a run of ours (``--resume`` to
continue one), and one run at a time writes it (``.interdyn-lock``, :class:`interdyn.support.distributed.OutputLock`:
a second run on the same folder is refused). A full or read-only disk, or a file-size limit, while saving removes
the half-written temporary folder and ends in one line; the last checkpoint is intact. ``--resume latest`` continues exactly: weights, optimizer,
LR schedule, EMA, RNG states, the accumulation counter and the data order (epoch and position
in it) are restored, and all noise is drawn from generators keyed by the optimizer step and the
clip's place in the step's global batch (so 2 processes x batch 1 draw what 1 process x 2
accumulated micro-batches of 1, or 1 process x batch 2, draws for the same clips).

A non-finite loss (or gradient norm) stops the run before the bad update, without saving, and
names the step; the last good checkpoint stays the newest one.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration, set_seed
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from interdyn.core.loading import backbone_fingerprint, load_control_branch, load_svd_backbone, save_control_branch
from interdyn.core.sampling import DEFAULTS, generate_video
from interdyn.core.tiny import TINY_CONTROL_CNN, build_tiny_backbone
from interdyn.data.video_io import write_video
from interdyn.models.backbone import SVDBackbone
from interdyn.models.controlnet import InterDynControlNet
from interdyn.support import distributed
from interdyn.support.safe_output import (OutputError, mark_folder, move_into_place, readable_tree,
                                          storage_message_or_raise, temporary_name, write_text_atomic)

from .checkpoints import (BRANCH_FILE, CHECKPOINT_PREFIX, EMA_FILE, EMA_STATE_FILE, STATE_FILE,
                          UNET_CONFIG_FILE, CheckpointError, TrainingState, params_fingerprint, branch_from_state,
                          check_resume_step, check_run_folder, claim_run_folder, list_checkpoints, load_checkpoint,
                          resolve_resume, truncate_loss_log)
from .config import TrainConfig, parse_args
from .data.datasets import EpochShuffleSampler, build_dataset, collate_samples
from .data.folder import DataError
from .losses import NoiseSettings, clip_generators, predict_v, prepare_inputs, v_loss
from .optimizers import AdamWBF16State
from .loop_control import RateWindow, StopRequest, TrainingInterrupted  # noqa: F401 (TrainingInterrupted: public here)

PAPER_CONTROL_CNN = (16, 32, 96, 256)


class NonFiniteLossError(RuntimeError):
    """Training stopped because the loss or the gradient norm was NaN or infinite."""


# ---------------------------------------------------------------------------- models
def weight_dtype_of(mixed_precision: str) -> torch.dtype:
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision, torch.float32)


def build_backbone(config: TrainConfig) -> SVDBackbone:
    """The frozen SVD backbone in float32 on the CPU (``tiny`` = :func:`interdyn.core.tiny.build_tiny_backbone`)."""
    if config.pretrained_model == "tiny":
        backbone = build_tiny_backbone(config.tiny_seed)
    else:
        backbone = load_svd_backbone(config.pretrained_model, dtype=torch.float32, device="cpu")
    for module in (backbone.unet, backbone.vae, backbone.image_encoder):
        module.eval().requires_grad_(False)
    return backbone


def build_control_branch(config: TrainConfig, backbone: SVDBackbone) -> InterDynControlNet:
    """The trainable branch (float32, train mode): a copy of the UNet encoder or ``init_control_branch``."""
    if config.init_control_branch:
        branch = load_control_branch(config.init_control_branch, dtype=torch.float32, backbone=backbone)
        if branch.residual_mode != config.residual_mode:
            print(f"note: {config.init_control_branch} uses residual mode {branch.residual_mode!r}; training keeps "
                  f"it (config says {config.residual_mode!r})", file=sys.stderr)
    else:
        channels = config.control_cnn_channels
        if channels is None:
            channels = TINY_CONTROL_CNN if config.pretrained_model == "tiny" else PAPER_CONTROL_CNN
        factor = 2 ** (len(channels) - 1)  # each stage after the first halves the resolution
        if factor != backbone.vae_scale_factor:
            raise ValueError(f"control_cnn_channels {list(channels)} downsample the control by {factor}, but the "
                             f"backbone's VAE downsamples by {backbone.vae_scale_factor}: give "
                             f"{int(math.log2(backbone.vae_scale_factor)) + 1} widths")
        branch = InterDynControlNet.from_unet(backbone.unet, conditioning_embedding_out_channels=tuple(channels),
                                              residual_mode=config.residual_mode)
    if branch.dtype != torch.float32:
        branch.to(torch.float32)
    return branch.train().requires_grad_(True)


def place_backbone(backbone: SVDBackbone, device: torch.device, dtype: torch.dtype) -> None:
    """Move the frozen modules to ``device`` in ``dtype``; the VAE stays float32 in fp16 runs if it asks to."""
    keep_fp32 = dtype == torch.float16 and backbone.vae.config.get("force_upcast", False)
    for module, want in ((backbone.unet, dtype), (backbone.image_encoder, dtype),
                         (backbone.vae, torch.float32 if keep_fp32 else dtype)):
        module.to(device=device, **({"dtype": want} if module.dtype != want else {}))


def weights_are_sharded(accelerator) -> bool:
    """True when no process holds the whole control branch (FSDP, DeepSpeed ZeRO-3)."""
    kind = accelerator.distributed_type.name
    if kind == "FSDP":
        return True
    if kind == "DEEPSPEED":
        return getattr(accelerator.state.deepspeed_plugin, "zero_stage", 0) == 3
    return False


def build_optimizer(config: TrainConfig, params) -> torch.optim.Optimizer:
    kwargs = dict(lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_epsilon,
                  weight_decay=config.weight_decay)
    name = config.optimizer
    if name == "adamw8bit":
        try:
            import bitsandbytes as bnb  # an optional dependency, needed by this optimizer only
        except ImportError:
            if config.optimizer_fallback is None:
                raise ImportError("optimizer 'adamw8bit' needs bitsandbytes (pip install bitsandbytes); or use "
                                  "'adamw_bf16' / 'adamw', or set optimizer_fallback") from None
            name = config.optimizer_fallback
            print(f"note: optimizer 'adamw8bit' needs bitsandbytes, which is not installed: using optimizer_fallback "
                  f"{name!r}", file=sys.stderr)
        else:
            return bnb.optim.AdamW8bit(params, **kwargs)
    if name == "adamw_bf16":
        return AdamWBF16State(params, **kwargs)
    return torch.optim.AdamW(params, **kwargs)


# ---------------------------------------------------------------------------- checkpoints
#: SVD's temporal convolutions span this many frames (kernel (3, 1, 1), padding 1 in time)
TEMPORAL_KERNEL = 3


def cpu_bf16_fallback(config: TrainConfig) -> TrainConfig:
    """``config`` with ``mixed_precision="no"`` where bf16 is known to give a NaN gradient, with a note saying so.

    On the CPU, oneDNN's avx512_bf16 kernels (AMD EPYC with avx512_bf16; an Intel CPU limited to them with
    ``ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16``) compute the weight gradient of a bf16 ``Conv3d`` with a temporal
    kernel of 3 as NaN in some elements when the clip has fewer frames than the kernel (2): torch's kernel, not
    this project's code (a single ``Conv3d`` reproduces it; ``bench/conv3d_bf16.py``). Such clips train in
    float32 on the CPU; GPUs and clips of 3 frames or more are unaffected."""
    cpu = config.cpu or not torch.cuda.is_available()
    if config.mixed_precision == "bf16" and cpu and config.num_frames < TEMPORAL_KERNEL:
        print(f"[interdyn-train] note: bf16 on the CPU with {config.num_frames}-frame clips gives NaN weight "
              f"gradients in oneDNN's avx512_bf16 Conv3d (clips shorter than the temporal kernel, "
              f"{TEMPORAL_KERNEL}); training in float32 instead (mixed_precision no)", file=sys.stderr)
        return dataclasses.replace(config, mixed_precision="no")
    return config


class Trainer:
    """One training run; :func:`train` is the function to call."""

    def __init__(self, config: TrainConfig, dataset: Dataset | None = None,
                 on_step_end: Callable[["Trainer"], None] | None = None, backbone: SVDBackbone | None = None):
        config = cpu_bf16_fallback(config)
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.on_step_end = on_step_end
        check_run_folder(self.output_dir, config.resume)  # before any model is built
        self.resume_state = check_resume_step(self.output_dir, config.resume, config.max_steps)
        self.run_tag: str | None = None  # the lock's run id, the same on every rank (checkpoint temporaries)
        trackers = None if config.report_to in ("none", "", None) else config.report_to
        self.accelerator = Accelerator(
            gradient_accumulation_steps=config.gradient_accumulation_steps, mixed_precision=config.mixed_precision,
            log_with=trackers, cpu=config.cpu,
            project_config=ProjectConfiguration(project_dir=str(self.output_dir),
                                                logging_dir=str(self.output_dir / "logs")))
        acc = self.accelerator
        set_seed(config.seed)
        self.weight_dtype = weight_dtype_of(acc.mixed_precision)
        self.sharded = weights_are_sharded(acc)
        if config.use_ema and self.sharded:
            raise ValueError("use_ema needs whole weights on every process: use DDP or DeepSpeed ZeRO-2, not FSDP or "
                             "ZeRO-3")

        # ``backbone``: an already built frozen backbone (bench/gpu.py passes real-size random models)
        self.backbone = build_backbone(config) if backbone is None else backbone
        for module in (self.backbone.unet, self.backbone.vae, self.backbone.image_encoder):
            module.eval().requires_grad_(False)
        set_seed(config.seed)  # the control CNN's random init
        branch = build_control_branch(config, self.backbone)
        self.branch_config = {k: v for k, v in dict(branch.config).items() if not k.startswith("_")}
        self.residual_mode = branch.residual_mode
        place_backbone(self.backbone, acc.device, self.weight_dtype)
        if config.gradient_checkpointing:
            branch.enable_gradient_checkpointing()
            self.backbone.unet.enable_gradient_checkpointing()

        self.dataset = dataset if dataset is not None else build_dataset(config)
        self.sampler = EpochShuffleSampler(len(self.dataset), seed=config.seed)
        loader = DataLoader(self.dataset, batch_size=config.batch_size, sampler=self.sampler,
                            collate_fn=collate_samples, num_workers=config.num_workers,
                            pin_memory=acc.device.type == "cuda")
        optimizer = build_optimizer(config, [p for p in branch.parameters() if p.requires_grad])
        # accelerate steps a prepared scheduler once per process per optimizer step
        scheduler = get_scheduler(config.lr_scheduler, optimizer,
                                  num_warmup_steps=config.lr_warmup_steps * acc.num_processes,
                                  num_training_steps=config.max_steps * acc.num_processes)
        self.branch, self.optimizer, self.loader, self.scheduler = acc.prepare(branch, optimizer, loader, scheduler)

        self.ema = None
        if config.use_ema:
            self.ema = EMAModel(acc.unwrap_model(self.branch).parameters(), decay=config.ema_decay)
            self.ema.to(acc.device)
        # the loop counters and the EMA are NOT registered with accelerate: it would pickle them and unpickle them
        # with weights_only=False on resume. They are saved as JSON + safetensors (save_checkpoint, resume).
        self.state = TrainingState()
        self.settings = NoiseSettings.from_config(config)
        self.last_checkpoint: Path | None = None
        self.last_loss = float("nan")
        # (gathered losses on the device, micro-step, clip sources) of the current optimizer step's micro-batches
        self._pending: list[tuple[torch.Tensor, int, list]] = []

    # ------------------------------------------------------------------ helpers
    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def log(self, message: str) -> None:
        self.accelerator.print(f"[interdyn-train] {message}")

    def _provenance(self, ema: bool) -> dict:
        return {"kind": "InterDyn control branch, training checkpoint", "base_model": self.config.pretrained_model,
                "backbone_fingerprint": backbone_fingerprint(self.backbone.unet),
                "step": self.state.step, "ema": ema, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(),
                "config": self.config.to_dict()}

    # ------------------------------------------------------------------ checkpointing
    def _log_csv(self, step: int, loss: float, steps_per_s: float) -> None:
        """Append to ``output_dir/loss.csv``: the mean loss over the steps since the last log line."""
        path = self.output_dir / "loss.csv"
        new = not path.exists()
        with path.open("a") as f:
            if new:
                f.write("step,loss,lr,steps_per_s,seconds\n")
            f.write(f"{step},{loss:.6f},{self.scheduler.get_last_lr()[0]:.3g},{steps_per_s:.4f},"
                    f"{time.time() - self._start_time:.0f}\n")

    def save_checkpoint(self) -> Path:
        """Save everything into a hidden temporary folder (:func:`interdyn.support.safe_output.temporary_name`, the
        same name on every rank), move it into place as ``checkpoint-<step>`` (an earlier checkpoint of that step is
        replaced whole, or kept: :func:`interdyn.support.safe_output.move_into_place`) and rotate old ones."""
        acc, step = self.accelerator, self.state.step
        final = self.output_dir / f"{CHECKPOINT_PREFIX}{step}"
        tag = (self.run_tag or hashlib.sha256(str(self.output_dir.absolute()).encode()).hexdigest())[:8]
        tmp = temporary_name(final, tag=tag)
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
        acc.wait_for_everyone()
        try:
            acc.save_state(str(tmp))
            full_state = acc.get_state_dict(self.branch)  # gathers shards (FSDP / ZeRO-3) on every rank
            fingerprints = None
            if not self.sharded:
                mine = torch.tensor([params_fingerprint(acc.unwrap_model(self.branch))], device=acc.device)
                fingerprints = [int(v) for v in acc.gather(mine).cpu().tolist()]
            if self.is_main:
                model = branch_from_state(self.branch_config, full_state)
                save_control_branch(model, tmp / BRANCH_FILE, provenance=self._provenance(ema=False))
                if self.ema is not None:
                    names = [n for n, _ in acc.unwrap_model(self.branch).named_parameters()]
                    ema_state = dict(full_state)
                    ema_state.update({n: p.detach() for n, p in zip(names, self.ema.shadow_params)})
                    save_control_branch(branch_from_state(self.branch_config, ema_state), tmp / EMA_FILE,
                                        provenance=self._provenance(ema=True))
                    (tmp / EMA_STATE_FILE).write_text(json.dumps(
                        {k: v for k, v in self.ema.state_dict().items() if k != "shadow_params"}, indent=2))
                (tmp / UNET_CONFIG_FILE).write_text(json.dumps(
                    {k: v for k, v in dict(self.backbone.unet.config).items()}, indent=2,
                    default=lambda v: list(v) if isinstance(v, (tuple, set)) else str(v)))  # e.g. _name_or_path: Path
                (tmp / "config.yaml").write_text(self.config.to_yaml())
                (tmp / STATE_FILE).write_text(json.dumps({
                    **self.state.state_dict(), "loss": self.last_loss, "base_model": self.config.pretrained_model,
                    "num_processes": acc.num_processes, "replica_fingerprints": fingerprints,
                    "date": _dt.datetime.now(_dt.timezone.utc).isoformat()}, indent=2))
                readable_tree(tmp)  # accelerate writes its safetensors 0600 whatever the umask
                move_into_place([(tmp, final)])
        except BaseException:  # a full disk, Ctrl-C: no half-written checkpoint is left taking the space
            if self.is_main:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        keep = self.config.checkpoints_keep
        if self.is_main and keep > 0:
            for old in list_checkpoints(self.output_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        self.last_checkpoint = final
        return final

    def resume(self) -> None:
        path = resolve_resume(self.output_dir, self.config.resume)
        if path is None:
            if self.config.resume:
                self.log(f"--resume {self.config.resume}: no checkpoint in {self.output_dir} yet, starting fresh")
            return
        load_checkpoint(self.accelerator, path, self.state, self.ema,
                        [n for n, _ in self.accelerator.unwrap_model(self.branch).named_parameters()])
        self.last_checkpoint = path
        loss = (self.resume_state or {}).get("loss")
        if isinstance(loss, (int, float)) and not isinstance(loss, bool):
            self.last_loss = float(loss)  # the checkpoint's own, until a step of this run replaces it
        self.log(f"resumed from {path} at step {self.state.step} (epoch {self.state.epoch}, "
                 f"batch {self.state.batch_in_epoch})")

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> list[Path]:
        """Generate videos for the first clips; write ``input | control | generated | ground truth`` mp4s."""
        if self.sharded:
            self.log("validation skipped: sampling needs whole weights (FSDP / DeepSpeed ZeRO-3 run)")
            return []
        config, acc = self.config, self.accelerator
        # a plain module sharing the weights (the prepared one carries accelerate's autocast and fp32-output
        # wrappers), in the UNet's dtype as the sampler expects
        branch = branch_from_state(self.branch_config, acc.unwrap_model(self.branch).state_dict())
        branch = branch.to(device=acc.device, dtype=self.backbone.unet.dtype).eval()
        paths = []
        for i in range(min(config.validation_clips, len(self.dataset))):
            sample = self.dataset[i]
            frames, control = sample["frames"], sample["control"]
            fps = config.fps_conditioning or sample["meta"]["fps"] + 1
            video = generate_video(
                self.backbone, frames[:1].to(acc.device), control[None].to(acc.device), branch,
                num_frames=frames.shape[0], num_steps=config.validation_num_steps,
                min_guidance=config.validation_min_guidance, max_guidance=config.validation_max_guidance,
                fps=fps, motion_bucket_id=sample["meta"].get("motion_bucket_id", config.motion_bucket_id),
                noise_aug_strength=DEFAULTS["noise_aug_strength"], generator=config.seed + i)[0].cpu()
            side = torch.cat([frames[:1].expand_as(frames), control, video, frames], dim=-1).clamp(0, 1)
            path = self.output_dir / "validation" / f"step-{self.state.step:07d}" / f"clip-{i}.mp4"
            paths.append(write_video(path, side, sample["meta"]["fps"], layout="FCHW"))
        self.log(f"validation videos: {paths[0].parent if paths else 'none'}")
        return paths

    # ------------------------------------------------------------------ the loop
    def _stop_non_finite(self, what: str, value: float, micro_step: int, sources: list) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self._pending = []
        last = self.last_checkpoint or "none (no checkpoint was written)"
        raise NonFiniteLossError(
            f"{what} is {value} at step {self.state.step + 1} (micro-batch {micro_step}, clips "
            f"{sources}); stopped before updating the weights, nothing saved. Last good checkpoint: {last}. "
            "Lower the learning rate, use bf16 instead of fp16, or check the data of these clips.")

    def _finish_step_checks(self, norm) -> None:
        """Read back the step's losses and gradient norm once; stop before the update if any is not finite.

        The only host synchronisation of an optimizer step (a GPU keeps its queue of kernels between
        micro-batches); it also sets ``last_loss``, the mean loss of the step.
        """
        pending, self._pending = self._pending, []
        losses = torch.cat([losses.float().flatten() for losses, _, _ in pending])
        norm_t = norm.detach().float().reshape(1).to(losses.device) if torch.is_tensor(norm) else \
            losses.new_full((1,), 0.0 if norm is None else float(norm))
        finite, mean = torch.stack([torch.isfinite(torch.cat([losses, norm_t])).all().float(),
                                    losses.mean()]).tolist()
        self.last_loss = mean
        if finite:
            return
        for step_losses, micro_step, sources in pending:
            bad = step_losses[~torch.isfinite(step_losses)]
            if bad.numel():
                self._stop_non_finite("the loss", float(bad[0]), micro_step, sources)
        self._stop_non_finite("the gradient norm", float(norm_t[0]), pending[-1][1], pending[-1][2])

    def train_micro_batch(self, batch: dict) -> torch.Tensor:
        """Forward and backward of one micro-batch (optimizer step when accumulation is complete).

        Returns the micro-batch's mean loss (gathered over processes) as a device tensor: nothing is read
        back to the host until the optimizer step (:meth:`_finish_step_checks`).
        """
        config, acc = self.config, self.accelerator
        # the clip's position in the optimizer step's global batch (accumulation x processes x batch)
        slot = (self.state.micro_in_step * acc.num_processes + acc.process_index) * config.batch_size
        gens = clip_generators(config.seed, self.state.step, slot, len(batch["meta"]))
        with acc.accumulate(self.branch):
            inputs = prepare_inputs(self.backbone, batch, gens, self.settings, fps_conditioning=config.fps_conditioning,
                                    motion_bucket_id=config.motion_bucket_id, latent_mode=config.latent_mode,
                                    vae_chunk=config.vae_chunk)
            v = predict_v(self.backbone.unet, self.branch, inputs, self.residual_mode)
            loss = v_loss(v, inputs.target)
            losses = acc.gather(loss.detach()[None])
            self._pending.append((losses, self.state.micro_step, [m.get("source") for m in batch["meta"]]))
            acc.backward(loss)
            if acc.sync_gradients:
                norm = None
                if config.max_grad_norm is not None:
                    norm = acc.clip_grad_norm_(self.branch.parameters(), config.max_grad_norm)
                # fp16: the grad scaler skips steps with inf gradients itself
                self._finish_step_checks(None if acc.mixed_precision == "fp16" else norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        return losses.mean()

    def run(self) -> dict:
        """Train to ``max_steps`` holding ``output_dir``'s lock: a second run on the same folder is refused
        (it would delete this run's checkpoint in progress and interleave the logs)."""
        with distributed.OutputLock(self.output_dir, what="output_dir", claim=claim_run_folder) as lock:
            self.run_tag = lock.run_id[:8]
            return self._run()

    def _run(self) -> dict:
        self._start_time = time.time()
        config, acc, state = self.config, self.accelerator, self.state
        self._prepare_folder_and_resume()
        bar = tqdm(total=config.max_steps, initial=state.step, desc="training",
                   disable=not (self.is_main and config.progress_bar), dynamic_ncols=True)
        window = RateWindow()
        self.log(f"{acc.num_processes} process(es) on {acc.device}, {len(self.dataset)} clips, batch "
                 f"{config.batch_size} x {config.gradient_accumulation_steps} accumulation x {acc.num_processes}, "
                 f"{sum(p.numel() for p in acc.unwrap_model(self.branch).parameters()) / 1e6:.2f} M trainable "
                 f"parameters, steps {state.step} -> {config.max_steps}")
        interrupt = StopRequest(self.log)
        try:
            interrupt.install()
            while state.step < config.max_steps:
                # a prepared loader sets its sampler's epoch from its own counter when iterated: keep them equal
                self.loader.set_epoch(state.epoch)
                self.sampler.set_epoch(state.epoch)
                loader = self.loader if state.batch_in_epoch == 0 else \
                    acc.skip_first_batches(self.loader, state.batch_in_epoch)
                finished_epoch = True
                for batch in loader:
                    self.train_micro_batch(batch)
                    state.micro_step += 1
                    state.batch_in_epoch += 1
                    state.micro_in_step += 1
                    if not acc.sync_gradients:
                        continue
                    self._after_optimizer_step(bar, window, interrupt)
                    if state.step >= config.max_steps:
                        finished_epoch = False
                        break
                if finished_epoch:
                    state.epoch += 1
                    state.batch_in_epoch = 0
        finally:
            interrupt.uninstall()
            bar.close()
            acc.end_training()
        return {"step": state.step, "loss": self.last_loss, "checkpoint": self.last_checkpoint}

    def _prepare_folder_and_resume(self) -> None:
        """Rank 0 marks the output folder as ours, removes checkpoints a killed run left half-written and writes
        the config; every rank resumes; the loss log is cut back to the resumed step; trackers start."""
        config, acc, state = self.config, self.accelerator, self.state
        if self.is_main:
            mark_folder(self.output_dir, kind="training-run")
            # left by a run of an older version killed while saving (the lock removes the temporaries of this one's)
            for stale in self.output_dir.glob(f".tmp-{CHECKPOINT_PREFIX}*"):
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
                    self.log(f"removed the unfinished checkpoint {stale.name} of an interrupted run")
            write_text_atomic(self.output_dir / "config.yaml", config.to_yaml())
        acc.wait_for_everyone()
        self.resume()
        if self.is_main:
            truncate_loss_log(self.output_dir / "loss.csv", state.step)
        if acc.trackers == [] and config.report_to not in ("none", "", None):
            hparams = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in config.to_dict().items()}
            acc.init_trackers(config.tracker_project, config=hparams)

    def _after_optimizer_step(self, bar, window: "RateWindow", interrupt: "StopRequest") -> None:
        """Count the step, update the EMA, then log, checkpoint, validate and honour Ctrl-C as configured."""
        config, acc, state = self.config, self.accelerator, self.state
        state.step += 1
        state.micro_in_step = 0
        if self.ema is not None:
            self.ema.step(acc.unwrap_model(self.branch).parameters())
        window.add(self.last_loss)  # set by the step's one read-back
        bar.update(1)
        if state.step % config.log_every == 0 or state.step == config.max_steps:
            rate, mean_loss = window.take()
            bar.set_postfix(loss=f"{self.last_loss:.4f}", steps_per_s=f"{rate:.2f}")
            acc.log({"loss": self.last_loss, "lr": self.scheduler.get_last_lr()[0],
                     "steps_per_s": rate, "epoch": state.epoch}, step=state.step)
            if self.is_main:
                self._log_csv(state.step, mean_loss, rate)
        if state.step % config.checkpoint_every == 0 or state.step == config.max_steps:
            self.save_checkpoint()
        if config.validation_every and state.step % config.validation_every == 0:
            if self.is_main:
                self.validate()
            acc.wait_for_everyone()
        if self.on_step_end is not None:
            self.on_step_end(self)
        if interrupt.requested:  # Ctrl-C: stop at this step boundary with a checkpoint of it
            if state.step % config.checkpoint_every and state.step != config.max_steps:
                self.save_checkpoint()
            raise TrainingInterrupted(state.step, self.last_checkpoint)


def train(config: TrainConfig, dataset: Dataset | None = None,
          on_step_end: Callable[[Trainer], None] | None = None) -> dict:
    """Run a training described by ``config``; returns the final step, loss and checkpoint path.

    ``dataset`` replaces the one the config describes (samples in the format of
    :mod:`training.data.datasets`); ``on_step_end(trainer)`` runs after every optimizer step
    (after checkpointing), e.g. to stop early by raising.
    """
    return Trainer(config.validate(), dataset, on_step_end).run()


def main(argv: list[str] | None = None, prog: str = "python -m training.train") -> int:
    try:
        config = parse_args(argv, prog=prog)
    except (ValueError, FileNotFoundError) as err:  # a bad --key value or config file: one line, no traceback
        print(f"[interdyn-train] error: {err}", file=sys.stderr)
        return 2
    try:
        result = train(config)
    except NonFiniteLossError as err:
        print(f"[interdyn-train] stopped: {err}", file=sys.stderr)
        return 1
    except TrainingInterrupted as err:
        print(f"[interdyn-train] {err}", file=sys.stderr)
        return 130
    except (CheckpointError, OutputError, FileNotFoundError, DataError) as err:
        print(f"[interdyn-train] error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - a full or read-only disk: one line, the last checkpoint is intact
        print(f"[interdyn-train] error: {storage_message_or_raise(err, config.output_dir)}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"[interdyn-train] done: step {result['step']}, loss {result['loss']:.5f}, checkpoint {result['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
