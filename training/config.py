"""Training configuration: one flat dataclass, read from YAML, overridable on the command line.

Every field is a key of the YAML file and a ``--key value`` option; ``--help`` lists them
with their documentation, grouped by section. Precedence: dataclass default < YAML file <
command line. Values are converted to the field's type (YAML and the command line may give
``1e-5`` as a string; it becomes a float), lists are given as YAML lists or comma-separated
(``--control_cnn_channels 16,32,96,256``), ``none``/``null`` sets an optional field to None
and booleans accept true/false/yes/no/1/0.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


def _f(default, help: str, group: str, choices: tuple | None = None, **kwargs):
    """A config field with its documentation, ``--help`` group and allowed values."""
    meta = {"help": help, "group": group, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kwargs)
    return field(default=default, metadata=meta, **kwargs)


@dataclass
class TrainConfig:
    """Everything one training run needs. Defaults are the paper's (InterDyn sec. 4.1)."""

    # ------------------------------------------------------------------ run
    output_dir: str = _f("runs/interdyn", "folder for checkpoints (checkpoint-<step>/), validation videos, logs", "run")
    seed: int = _f(0, "seed of everything random: data order, start frames, noise levels, noise, dropout", "run")
    max_steps: int = _f(10000, "number of optimizer steps to train for", "run")
    cpu: bool = _f(False, "force the CPU even if a GPU is present (CPU multi-process runs use gloo)", "run")
    resume: str | None = _f(None, "continue a run: 'latest' (newest checkpoint in output_dir) or a checkpoint "
                                  "folder; the run continues exactly (weights, optimizer, LR schedule, EMA, data order)",
                            "run")

    # ------------------------------------------------------------------ model
    pretrained_model: str = _f("", "SVD backbone: a diffusers folder (stabilityai/stable-video-diffusion-img2vid "
                                   "layout) or a single-file checkpoint; 'tiny' builds tiny random models "
                                   "(interdyn.core.tiny) for tests and CPU demos", "model")
    tiny_seed: int = _f(0, "seed of the tiny random backbone when pretrained_model is 'tiny'", "model")
    control_cnn_channels: list[int] | None = _f(
        None, "widths of the control CNN stages; None = the paper's 16,32,96,256 (8,16,16,32 for the tiny model)",
        "model")
    init_control_branch: str | None = _f(None, "start from these control branch weights (our .safetensors or an "
                                               "official folder) instead of a copy of the UNet encoder", "model")
    residual_mode: str = _f("standard", "how residuals enter the UNet; 'standard' (once per skip) for new training",
                            "model", choices=("standard", "official"))
    gradient_checkpointing: bool = _f(False, "recompute activations in the backward pass (control branch and frozen "
                                             "UNet): less memory, about a third slower", "model")

    # ------------------------------------------------------------------ data
    dataset: str = _f("synthetic", "training data: 'synthetic' (collision world generated on the fly) or 'folder' "
                                   "(ROOT/<id>/video.mp4 + mask_hand.mp4 [+ mask_<object>.mp4])", "data",
                      choices=("synthetic", "folder"))
    data_root: str | None = _f(None, "root folder of the 'folder' dataset", "data")
    num_frames: int = _f(14, "frames per training clip", "data")
    height: int = _f(256, "clip height in pixels (multiple of 64)", "data")
    width: int = _f(384, "clip width in pixels (multiple of 64); the paper uses 256x384 and 256x256", "data")
    clip_fps: float = _f(6.0, "real frame rate the clips are resampled to (the official loader uses 6 fps)", "data")
    crop: str = _f("mask", "spatial crop of folder clips: 'mask' keeps the hand and object masks in view", "data",
                   choices=("mask", "center"))
    min_source_height: int = _f(0, "folder dataset: skip videos with fewer rows than this", "data")
    min_source_width: int = _f(0, "folder dataset: skip videos with fewer columns than this", "data")
    synthetic_num_scenes: int = _f(10000, "number of distinct synthetic scenes (scene i is made from seed and i)",
                                   "data")
    synthetic_cache: int = _f(64, "synthetic clips kept in memory per worker (about 0.1 MB per 64x64 frame pair); "
                                  "set it to synthetic_num_scenes to render each scene once", "data")
    synthetic_preset: str = _f("random", "synthetic scene generator ('mix' = interdyn.data.synthetic.TRAINING_MIX: "
                                         "random scenes, chains and hit/miss pairs)", "data",
                               choices=("random", "default", "force_propagation", "mix"))
    synthetic_world: str = _f("full", "synthetic world (interdyn.data.synthetic.WORLDS): 'full' (every background, colour "
                                      "and shape) or 'toy' (the built-in toy model's: one plain background, four "
                                      "colours, discs)", "data", choices=("full", "toy"))
    num_workers: int = _f(2, "DataLoader worker processes (0 = load in the training process)", "data")
    fps_conditioning: float | None = _f(
        None, "fps given to SVD's conditioning in diffusers' convention (time id = value - 1); None = the clip's "
              "real frame rate + 1, so the time id is the real frame rate as in the official pipeline (6 fps clips "
              "-> time id 6 -> sample with fps=7, the sampler's default)", "data")
    motion_bucket_id: float = _f(40.0, "motion bucket time id, unless a clip's metadata gives one", "data")

    # ------------------------------------------------------------------ method (EDM)
    p_mean: float = _f(0.7, "mean of ln(sigma) of the training noise levels (EDM P_mean)", "method")
    p_std: float = _f(1.6, "standard deviation of ln(sigma) (EDM P_std)", "method")
    noise_aug_dist: str = _f("lognormal", "distribution of the per-sample noise augmentation of the conditioning "
                                          "frame: 'lognormal' (ln s ~ N(noise_aug_log_mean, noise_aug_log_std^2), as "
                                          "SVD fine-tuning does) or 'uniform' in [noise_aug_min, noise_aug_max] "
                                          "(min = max gives a fixed value)", "method",
                             choices=("lognormal", "uniform"))
    noise_aug_log_mean: float = _f(-3.0, "mean of ln(noise_aug_strength) for 'lognormal'", "method")
    noise_aug_log_std: float = _f(0.5, "standard deviation of ln(noise_aug_strength) for 'lognormal'", "method")
    noise_aug_min: float = _f(0.0, "lower end of noise_aug_strength for 'uniform'", "method")
    noise_aug_max: float = _f(0.1, "upper end of noise_aug_strength for 'uniform'", "method")
    image_dropout: float = _f(0.05, "probability of dropping the input image (zero CLIP embedding and zero image "
                                    "latent together; the control is kept), for classifier-free guidance", "method")
    latent_mode: str = _f("mode", "VAE latent of the training frames: the posterior 'mode' (deterministic) or a "
                                  "'sample' from it", "method", choices=("mode", "sample"))
    vae_chunk: int = _f(16, "frames per VAE encoder call (memory)", "method")

    # ------------------------------------------------------------------ optimisation
    learning_rate: float = _f(1e-5, "learning rate (the paper: 1e-5)", "optim")
    batch_size: int = _f(4, "clips per device per micro-batch (the paper: 4 per GPU)", "optim")
    gradient_accumulation_steps: int = _f(1, "micro-batches per optimizer step", "optim")
    optimizer: str = _f("adamw", "'adamw' (torch.optim.AdamW, 8 bytes of state per parameter), 'adamw8bit' "
                                 "(bitsandbytes, if installed; 2 bytes) or 'adamw_bf16' (training.optimizers: AdamW "
                                 "with bfloat16 moments and stochastic rounding, 4 bytes, no extra package)", "optim",
                        choices=("adamw", "adamw8bit", "adamw_bf16"))
    optimizer_fallback: str | None = _f(None, "optimizer to use when `optimizer`'s package is not installed "
                                              "(adamw8bit without bitsandbytes), with a note; None = stop with an "
                                              "error", "optim", choices=(None, "adamw", "adamw_bf16"))
    adam_beta1: float = _f(0.9, "Adam beta1", "optim")
    adam_beta2: float = _f(0.999, "Adam beta2", "optim")
    adam_epsilon: float = _f(1e-8, "Adam epsilon", "optim")
    weight_decay: float = _f(0.0, "decoupled weight decay (0 = plain Adam)", "optim")
    max_grad_norm: float | None = _f(1.0, "clip the gradient norm to this (None = no clipping)", "optim")
    lr_scheduler: str = _f("constant", "learning-rate schedule (diffusers.optimization.get_scheduler)", "optim",
                           choices=("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts",
                                    "polynomial"))
    lr_warmup_steps: int = _f(0, "linear warm-up steps of the schedule", "optim")
    mixed_precision: str | None = _f(None, "'bf16'/'fp16' autocast with the frozen models in that dtype; 'no' = "
                                           "float32; None = what `accelerate launch` / `accelerate config` says",
                                     "optim", choices=(None, "no", "fp16", "bf16"))
    use_ema: bool = _f(False, "keep an exponential moving average of the control branch (saved with checkpoints, "
                              "exported with --ema)", "optim")
    ema_decay: float = _f(0.9999, "EMA decay (with the warm-up (1+n)/(10+n) of diffusers' EMAModel)", "optim")

    # ------------------------------------------------------------------ checkpoints
    checkpoint_every: int = _f(500, "save a checkpoint every this many steps (and at the end)", "checkpoints")
    checkpoints_keep: int = _f(3, "keep this many newest checkpoints (0 = all)", "checkpoints")

    # ------------------------------------------------------------------ validation
    validation_every: int = _f(0, "sample validation videos every this many steps (0 = never)", "validation")
    validation_clips: int = _f(2, "clips of the training data (the first ones) to generate from", "validation")
    validation_num_steps: int = _f(25, "Euler steps of validation sampling", "validation")
    validation_min_guidance: float = _f(1.0, "CFG at the first frame", "validation")
    validation_max_guidance: float = _f(3.0, "CFG at the last frame", "validation")

    # ------------------------------------------------------------------ logging
    report_to: str = _f("tensorboard", "experiment tracker: 'tensorboard', 'wandb', ... or 'none'", "logging")
    log_every: int = _f(10, "log loss and learning rate every this many steps", "logging")
    tracker_project: str = _f("interdyn", "project / run name for the tracker", "logging")
    progress_bar: bool = _f(True, "show a tqdm progress bar on the main process", "logging")

    # ------------------------------------------------------------------ helpers
    def validate(self) -> "TrainConfig":
        """Raise a ValueError naming the key for values that cannot work."""
        # here, not at the top: the library's checks import torch, and this module stays torch-free (the parser,
        # `interdyn configs` and `--help` import it)
        from interdyn.support.safe_output import check_output_path
        from interdyn.support.validation import (SEED_BITS_NUMPY, check_frame_size, check_input_path, check_seed,
                                                 check_video_size)

        for name in ("seed", "tiny_seed"):  # accelerate's set_seed hands the seed to numpy, which takes 32 bits
            check_seed(getattr(self, name), name, bits=SEED_BITS_NUMPY)
        for f in dataclasses.fields(self):  # every whole number fits the 64-bit integers torch and numpy take
            value = getattr(self, f.name)
            if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
                raise ValueError(f"{f.name} must be between -2**63 and 2**63 - 1, got {value}")
        if str(self.output_dir).strip():
            check_output_path(self.output_dir, "output_dir", folder=True)
        for name in ("pretrained_model", "init_control_branch", "data_root", "resume"):  # no FIFO, device, socket
            value = getattr(self, name)
            if value and value not in ("tiny", "latest"):
                check_input_path(value, name, contents=True)  # and every file inside a folder
        for name in ("max_steps", "num_frames", "batch_size", "gradient_accumulation_steps", "checkpoint_every",
                     "log_every", "vae_chunk", "synthetic_num_scenes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for f in dataclasses.fields(self):  # one rule for every float: finite (NaN and inf never reach torch)
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        for name, (low, high) in BOUNDS.items():
            value = getattr(self, name)
            if value is not None and ((low is not None and value < low) or value > high):
                raise ValueError(f"{name} must be {'at most' if low is None else f'between {low} and'} {high}, got "
                                 f"{value}")
        for name in ("checkpoints_keep", "lr_warmup_steps", "num_workers", "validation_every", "seed", "tiny_seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("ema_decay", "adam_beta1", "adam_beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not self.adam_epsilon > 0 or self.weight_decay < 0:
            raise ValueError(f"need adam_epsilon > 0 and weight_decay >= 0, got {self.adam_epsilon}, {self.weight_decay}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 (or None for no clipping), got {self.max_grad_norm}")

        check_frame_size(self.height, self.width)
        if not 0 <= self.image_dropout <= 1:
            raise ValueError(f"image_dropout is a probability, got {self.image_dropout}")
        if self.p_std < 0 or self.noise_aug_log_std < 0:
            raise ValueError("p_std and noise_aug_log_std must be >= 0")
        if not 0 <= self.noise_aug_min <= self.noise_aug_max:
            raise ValueError(f"need 0 <= noise_aug_min <= noise_aug_max, got {self.noise_aug_min}, {self.noise_aug_max}")
        if self.dataset == "folder" and not self.data_root:
            raise ValueError("dataset 'folder' needs data_root")
        if not self.pretrained_model:
            raise ValueError("pretrained_model is required: an SVD diffusers folder, a single-file checkpoint, or 'tiny'")
        for name in ("output_dir", "report_to"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"{name} is empty; give a folder" if name == "output_dir" else
                                 f"{name} is empty; give 'none' for no tracker")
        if self.control_cnn_channels is not None and (
                not self.control_cnn_channels or any(not 1 <= c <= 4096 for c in self.control_cnn_channels)):
            raise ValueError(f"control_cnn_channels must be whole numbers in 1..4096 (e.g. 16,32,96,256), got "
                             f"{self.control_cnn_channels}")
        if not self.clip_fps > 0 or (self.fps_conditioning is not None and not self.fps_conditioning > 0):
            raise ValueError(f"clip_fps and fps_conditioning must be > 0 frames per second, got {self.clip_fps}, "
                             f"{self.fps_conditioning}")
        for name in ("motion_bucket_id", "min_source_height", "min_source_width", "synthetic_cache",
                     "validation_clips"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.validation_num_steps < 1:
            raise ValueError(f"validation_num_steps must be >= 1, got {self.validation_num_steps}")
        if not 1 <= self.validation_min_guidance <= self.validation_max_guidance:
            raise ValueError("need 1 <= validation_min_guidance <= validation_max_guidance (1 = no guidance), got "
                             f"{self.validation_min_guidance}, {self.validation_max_guidance}")
        if self.num_workers > 256:
            raise ValueError(f"num_workers must be at most 256 DataLoader processes, got {self.num_workers}")

        check_video_size(self.batch_size * self.num_frames, self.height, self.width, what="one training batch",
                         label=f"batch_size {self.batch_size} x num_frames {self.num_frames} x height {self.height} "
                               f"x width {self.width}")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices:
                raise ValueError(f"{f.name} must be one of {choices}, got {getattr(self, f.name)!r}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


#: ranges of the keys where a larger finite value overflows (exp of a log-normal, half-precision time ids, the video
#: encoder's frame rate) or asks for an endless loop (None: that side is open or checked in validate); NaN and
#: infinity are refused for every float
BOUNDS = {"synthetic_num_scenes": (None, 10**9), "p_mean": (-20.0, 20.0), "p_std": (None, 20.0),
          "noise_aug_log_mean": (-20.0, 20.0), "noise_aug_log_std": (None, 20.0), "noise_aug_max": (None, 100.0),
          "motion_bucket_id": (None, 10_000.0), "fps_conditioning": (None, 1_000.0), "clip_fps": (None, 1_000.0),
          "validation_num_steps": (None, 10_000), "validation_max_guidance": (None, 100.0),
          "learning_rate": (None, 10.0), "max_grad_norm": (None, 1e6), "adam_epsilon": (None, 1.0),
          "weight_decay": (None, 100.0)}


# ---------------------------------------------------------------------------- conversion
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _field_types() -> dict[str, object]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def _convert(name: str, value, tp):
    """Convert ``value`` (from YAML or the command line) to type ``tp`` of field ``name``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        return _convert(name, value, args[0])
    if value is None:
        raise ValueError(f"{name} cannot be None")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            text = value.strip()
            parsed = yaml.safe_load(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
            value = parsed
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_convert(name, v, item) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if isinstance(value, int):  # exactly as written (float() would round 10**23)
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            if len(value.strip()) > 40:
                raise ValueError(f"{name} must be between -2**63 and 2**63 - 1, got a number of {len(value.strip())} "
                                 "digits")
            return int(value.strip())
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
        if not math.isfinite(number) or number != int(number):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return int(number)
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r:.80}") from None
        except OverflowError:  # an integer beyond any float
            raise ValueError(f"{name} must be a finite number, got an integer of {len(str(value))} digits") from None
    if tp is str:
        if isinstance(value, bool):  # YAML 1.1 reads an unquoted no/yes/off/on/false/true as a boolean
            word = "no" if value is False else "yes"
            raise ValueError(f"{name} got the boolean {str(value).lower()}: YAML reads an unquoted {word} (or "
                             f"{'off/false' if value is False else 'on/true'}) as a boolean; quote it, e.g. "
                             f"{name}: \"{word}\"")
        if isinstance(value, (list, dict)):
            raise ValueError(f"{name} must be text, got a {'list' if isinstance(value, list) else 'mapping'}")
        return str(value)
    raise TypeError(f"unsupported config type {tp} for {name}")


def config_from_dict(values: dict, base: TrainConfig | None = None) -> TrainConfig:
    """``base`` (or the defaults) updated with ``values``; unknown keys are an error naming them."""
    types_ = _field_types()
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ValueError(f"unknown config keys: {', '.join(unknown)} (see --help for the list)")
    config = dataclasses.replace(base) if base is not None else TrainConfig()
    for key, value in values.items():
        setattr(config, key, _convert(key, value, types_[key]))
    return config


CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def shipped_configs() -> dict[str, Path]:
    """The configs that ship with the package, by name: ``{"cpu_tiny": .../configs/cpu_tiny.yaml, ...,
    "accelerate/ddp_2gpus": .../configs/accelerate/ddp_2gpus.yaml}``."""
    return {path.relative_to(CONFIG_DIR).with_suffix("").as_posix(): path
            for path in sorted(CONFIG_DIR.rglob("*.yaml"))}


def resolve_config(name: str | Path) -> Path:
    """A config file: ``name`` itself when that file exists, else the shipped config of that name
    (``cpu_tiny`` or ``cpu_tiny.yaml``); an error listing the shipped names otherwise."""
    from interdyn.support.validation import check_input_path  # not at the top: it imports torch (see validate)

    path = check_input_path(name, "--config", what="a regular file (YAML)")
    if path.is_file():
        return path
    shipped = shipped_configs()
    key = path.as_posix()
    key = key[:-5] if key.endswith(".yaml") else key
    if key in shipped:
        return shipped[key]
    raise FileNotFoundError(f"--config {name}: no such file, and not the name of a shipped config "
                            f"({', '.join(shipped)})")


#: how deep lists and mappings may nest in a config file (the keys are flat; a list value is one level)
MAX_NESTING = 16


def check_nesting(text: str, where: str, limit: int = MAX_NESTING) -> None:
    """Refuse YAML whose lists and mappings nest deeper than ``limit``, from the parser's events (which need no
    recursion), before the composer recurses into them (10 000 levels end in a RecursionError)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > limit:
                mark = event.start_mark
                raise ValueError(f"{where} nests lists or mappings more than {limit} deep (line {mark.line + 1}, "
                                 f"column {mark.column + 1}); a config is one mapping of keys to plain values")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> TrainConfig:
    """Defaults, updated by the YAML file at ``path`` (a file, or a shipped config's name: see
    :func:`resolve_config`), then by ``overrides``; validated."""
    config = TrainConfig()
    if path is not None:
        path = resolve_config(path)
        try:
            text = path.read_text(encoding="utf-8")
            check_nesting(text, f"--config {path}")
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as err:  # syntax errors and refused tags (!!python/...): one line naming the file
            where = getattr(err, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise ValueError(f"--config {path} is not valid YAML{at}: {problem}") from None
        except UnicodeDecodeError:
            raise ValueError(f"--config {path} is not UTF-8 text (a YAML file)") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a mapping of config keys, got {type(data).__name__}")
        config = config_from_dict(data, config)
    if overrides:
        config = config_from_dict(overrides, config)
    return config.validate()


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _type_name(args[0]) + " or none"
    if origin is list:
        return "list of " + _type_name(typing.get_args(tp)[0])
    return getattr(tp, "__name__", str(tp))


def build_parser(prog: str = "python -m training.train", description: str | None = None) -> argparse.ArgumentParser:
    """``--config FILE`` plus one ``--key VALUE`` option per config field, documented, in groups."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description or __doc__.splitlines()[0],
        argument_default=argparse.SUPPRESS)
    parser.add_argument("--config", default=None,
                        help="YAML file with config keys (command-line options override it), or the name of a "
                             f"shipped one: {', '.join(n for n in shipped_configs() if '/' not in n)}")
    groups: dict[str, argparse._ArgumentGroup] = {}
    types_ = _field_types()
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        group = f.metadata.get("group", "other")
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        text = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        if choices:
            text += f"; one of {', '.join(map(str, choices))}"
        text += f" [{_type_name(types_[f.name])}, default: {getattr(defaults, f.name)}]"
        groups[group].add_argument(f"--{f.name}", dest=f.name, metavar="VALUE", help=text.replace("%", "%%"))
    return parser


def parse_args(argv: list[str] | None = None, prog: str = "python -m training.train") -> TrainConfig:
    """Command line -> validated config (``--config`` file, then the ``--key value`` overrides)."""
    args = vars(build_parser(prog).parse_args(argv))
    path = args.pop("config", None)
    return load_config(path, args)
