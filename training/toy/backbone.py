"""Stage 1 and 2 of the toy-physics recipe: the tiny SVD-structured backbone (the "pretrained prior").

The real InterDyn starts from Stable Video Diffusion; our toy model has no such prior, so we make
one on the synthetic collision world, with SVD's structure and training objective:

1. ``vae``: a temporal VAE (``AutoencoderKLTemporalDecoder``, 3 down blocks = 4x downsampling,
   64 channels wide so that GroupNorm(32) keeps colour: at 32 channels every group is one channel
   and the decoder's last norm erases each image's mean colour) trained to reconstruct clips (MSE
   with extra weight on object pixels + a small KL term), then ``scaling_factor`` = 1 / std of its
   latents, as for Stable Diffusion's VAE. Its reconstruction PSNR on held-out clips is logged;
   nothing is trained on a VAE below 35 dB;
2. ``unet``: a spatio-temporal UNet (``UNetSpatioTemporalConditionModel``, SVD's blocks) trained
   image-to-video with SVD's EDM v-objective (ln sigma ~ N(0.7, 1.6^2), noise-augmented first
   frame, CLIP embedding, 5% image dropout), no control, with an EMA of its weights (the EMA is what
   is saved). The clips' latents and CLIP embeddings are computed once (the VAE and CLIP are frozen).
   The CLIP image tower is a tiny random one, frozen (its features still describe the first frame).

The data is :data:`interdyn.data.synthetic.TRAINING_MIX` (random scenes, chains, hit/miss pairs), stored
as uint8 safetensors. The result is a diffusers SVD folder, loadable by
:func:`interdyn.core.loading.load_svd_backbone`. Every stage resumes from its last checkpoint.

    python -m training.toy.backbone data --out runs/toy/data.safetensors
    python -m training.toy.backbone vae  --data runs/toy/data.safetensors --out runs/toy/vae
    python -m training.toy.backbone unet --data runs/toy/data.safetensors --vae runs/toy/vae --out runs/toy/prior
"""
from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import math
import multiprocessing as mp
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from interdyn.data.synthetic import mixed_scene, random_scene
from interdyn.support.safe_output import atomic_file, atomic_files

# diffusers, transformers and what imports them (interdyn.core, interdyn.models, training.losses) are imported in the
# stages that use them: make_data's spawned workers import this module, and would each load them for nothing

TOY_SIZE = (64, 64)
TOY_FRAMES = 8
TOY_FPS = 6.0
TOY_LATENT_CHANNELS = 8
TOY_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
               block_out_channels=(64, 64, 64), layers_per_block=1, latent_channels=TOY_LATENT_CHANNELS,
               sample_size=64, scaling_factor=1.0, force_upcast=True)
TOY_UNET = dict(sample_size=16, in_channels=2 * TOY_LATENT_CHANNELS, out_channels=TOY_LATENT_CHANNELS,
                down_block_types=("CrossAttnDownBlockSpatioTemporal",) * 2 + ("DownBlockSpatioTemporal",),
                up_block_types=("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 2,
                block_out_channels=(32, 32, 64), addition_time_embed_dim=8,
                projection_class_embeddings_input_dim=24, layers_per_block=1, cross_attention_dim=32,
                transformer_layers_per_block=1, num_attention_heads=(1, 1, 2), num_frames=TOY_FRAMES)
TOY_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, patch_size=14,
                image_size=224, projection_dim=32)
TOY_WORLD = "toy"  # interdyn.data.synthetic.TOY_WORLD: one plain background, four colours, discs only
TRAIN_SEEDS = range(0, 1_000_000)  # probes use seeds >= 1_000_000, validation and demos >= 2_000_000
HELD_OUT_CLIPS = 32  # the data file's last clips: the VAE's PSNR is measured on them, never trained on


#: what a data file holds: ``training`` is :data:`interdyn.data.synthetic.TRAINING_MIX` (a driver enters every clip);
#: ``rest`` is random scenes of the same world with no driver at all (objects at rest or drifting), the mix a
#: prior can learn "nothing enters unless something drives it" from
DATA_MIXES = ("training", "rest")


def render_scene(seed: int, world: str = TOY_WORLD, mix: str = "training"):
    """Scene ``seed`` of ``mix`` (:data:`DATA_MIXES`) at the recipe's size, frame count and fps."""
    if mix == "rest":
        return random_scene(seed, size=TOY_SIZE, num_frames=TOY_FRAMES, fps=TOY_FPS, world=world,
                            num_driven=(0, 0), require_contact=False)
    return mixed_scene(seed, seed, size=TOY_SIZE, num_frames=TOY_FRAMES, fps=TOY_FPS, world=world)


def _render(args: tuple[int, int, str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    first, count, world, mix = args
    frames, control = [], []
    for seed in range(first, first + count):
        s = render_scene(seed, world, mix)
        frames.append((s.frames * 255).round().to(torch.uint8))
        control.append((s.control * 255).round().to(torch.uint8))
    return torch.stack(frames), torch.stack(control)


def make_data(num: int, out: Path, first_seed: int = 0, workers: int = 1, world: str = TOY_WORLD,
              mix: str = "training") -> None:
    """Render ``num`` scenes of ``mix`` (scene ``i`` = :func:`render_scene` ``(first_seed + i)``) into one
    safetensors file of uint8 ``frames`` and ``control`` ``[N, F, 3, H, W]``."""
    t0 = time.time()
    chunk = max(1, math.ceil(num / max(1, workers) / 4))
    jobs = [(first_seed + i, min(chunk, num - i), world, mix) for i in range(0, num, chunk)]
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_render, jobs)
    else:
        parts = [_render(j) for j in jobs]
    frames = torch.cat([p[0] for p in parts])
    control = torch.cat([p[1] for p in parts])
    meta = {"first_seed": first_seed, "num": num, "fps": TOY_FPS, "size": list(TOY_SIZE), "mix": "TRAINING_MIX" if mix == "training" else mix,
            "world": world}
    with atomic_file(out) as tmp:
        save_file({"frames": frames.contiguous(), "control": control.contiguous()}, str(tmp),
                  metadata={"recipe": json.dumps(meta)})
    print(f"{num} scenes in {time.time() - t0:.0f}s -> {out} {tuple(frames.shape)}")


def load_data(path: Path) -> dict:
    """The tensors :func:`make_data` wrote (``frames``, ``control``: uint8 ``[N, F, 3, H, W]``)."""
    return load_file(str(path))


def _log(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)


def _lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup)))))


def _optimizer_step(opt: torch.optim.Optimizer, model: torch.nn.Module, loss: torch.Tensor, lr: float) -> None:
    """One AdamW step at learning rate ``lr`` with the gradient norm clipped to 1."""
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def foreground_weights(x: torch.Tensor, weight: float, threshold: float = 0.1) -> torch.Tensor:
    """``1 + weight`` on object pixels, 1 on the background, for ``[N, 3, H, W]`` frames in [-1, 1].

    The background is each frame's median colour; objects cover a few percent of a frame, so a plain
    MSE learns the background first and leaves objects with wrong colours for a long time."""
    background = x.flatten(2).median(dim=2).values[..., None, None]
    foreground = ((x - background).abs().amax(dim=1, keepdim=True) > 2 * threshold).float()
    return 1.0 + weight * foreground


def latent_object_weights(frames_u8: torch.Tensor, weight: float, factor: int = 4) -> torch.Tensor:
    """Loss weights on the latent grid for clips ``[B, F, 3, H, W]`` (uint8): ``1 + weight`` on every latent cell that
    holds an object in this frame *or* held one in the first frame, 1 elsewhere; shape ``[B, F, 1, H/f, W/f]``.

    The first frame's object cells are weighted in every frame because that is where the prior's invented copies
    appear: a disc that moves leaves background behind, and a prior that hedges between "stays" and "moves" paints
    it in both places. ``factor`` is the VAE's downsampling (4 for the toy VAE)."""
    b, f = frames_u8.shape[:2]
    x = frames_u8.flatten(0, 1).float().div(127.5).sub(1.0)
    objects = (foreground_weights(x, 1.0) - 1.0).view(b, f, 1, *x.shape[-2:])
    objects = torch.maximum(objects, objects[:, :1])
    cells = F.max_pool2d(objects.flatten(0, 1), factor).view(b, f, 1, x.shape[-2] // factor, x.shape[-1] // factor)
    return 1.0 + weight * cells


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two videos in [0, 1]."""
    mse = float(F.mse_loss(a.float().clamp(0, 1), b.float().clamp(0, 1)))
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def vae_psnr(vae, clips: torch.Tensor) -> float:
    """Reconstruction PSNR (dB) of uint8 clips ``[N, F, 3, H, W]`` through ``vae`` (posterior mode)."""
    vae.eval()
    values = []
    for clip in clips:
        x = clip.float().div(255).to(vae.device) * 2 - 1
        rec = vae.decode(vae.encode(x).latent_dist.mode(), num_frames=x.shape[0]).sample
        values.append(psnr((rec + 1) / 2, (x + 1) / 2))
    return sum(values) / len(values)


STAGE_FILE = "stage.json"


def mark_finished(out: Path, stage: str, steps: int) -> None:
    """``out/stage.json``: the stage ran all its steps (``run_recipe.sh`` skips a finished stage; stages
    committed under ``training/toy/stages/`` while a recipe runs let a new machine continue from there)."""
    info = {"stage": stage, "steps": int(steps), "finished": True}
    (Path(out) / STAGE_FILE).write_text(json.dumps(info) + "\n")


def _save_state(path: Path, tensors: dict[str, torch.Tensor], info: dict) -> None:
    """Training state as safetensors (weights, optimizer moments) + JSON (step): no pickles."""
    with atomic_file(path) as tmp:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp), metadata={"info": json.dumps(info)})


def _load_state(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), "pt") as f:
        info = json.loads(f.metadata()["info"])
    return load_file(str(path)), info


def _optimizer_tensors(opt: torch.optim.Optimizer, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    state = opt.state
    for name, p in model.named_parameters():
        if p in state:
            for key in ("exp_avg", "exp_avg_sq"):
                out[f"opt.{key}.{name}"] = state[p][key]
            out[f"opt.step.{name}"] = torch.as_tensor(state[p]["step"], dtype=torch.float32).reshape(1)
    return out


def _optimizer_to(opt: torch.optim.Optimizer, device) -> None:
    for state in opt.state.values():
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key] = state[key].to(device)


def _restore_optimizer(opt: torch.optim.Optimizer, model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    for name, p in model.named_parameters():
        if f"opt.exp_avg.{name}" in tensors:
            opt.state[p] = {"exp_avg": tensors[f"opt.exp_avg.{name}"].clone(),
                            "exp_avg_sq": tensors[f"opt.exp_avg_sq.{name}"].clone(),
                            "step": tensors[f"opt.step.{name}"].reshape(())}


def train_vae(data_path: Path, out: Path, steps: int, batch: int, lr: float, kl_weight: float, seed: int,
              init: Path | None = None, fg_weight: float = 4.0, crop: int = 32, device: str = "cpu",
              max_minutes: float | None = None) -> float:
    """Train the temporal VAE; returns its reconstruction PSNR on the held-out clips.

    Each step sees ``batch`` clips of 8 frames, cropped to ``crop`` x ``crop`` (the same window in every
    frame of a clip; 0 = whole frames): convolutions are translation-equivariant, so crops cost a
    quarter of whole frames per clip and show more layouts per second."""
    from diffusers import AutoencoderKLTemporalDecoder  # on use (see the top)

    torch.manual_seed(seed)
    data = load_data(data_path)["frames"]
    train_clips, held_out = data[:-HELD_OUT_CLIPS] if len(data) > HELD_OUT_CLIPS else data, data[-HELD_OUT_CLIPS:]
    state_path = out / "training_state.safetensors"
    start = 0
    if init is not None:
        vae = AutoencoderKLTemporalDecoder.from_pretrained(init, local_files_only=True).train()
    else:
        vae = AutoencoderKLTemporalDecoder(**TOY_VAE).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    if state_path.exists():
        tensors, info = _load_state(state_path)
        vae.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        _restore_optimizer(opt, vae, tensors)
        start = info["step"] + 1
        print(f"resumed at step {start}")
    vae.to(device)
    _optimizer_to(opt, device)
    g = torch.Generator().manual_seed(seed + start)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    size = TOY_SIZE[0]
    for step in range(start, steps):
        idx = torch.randint(len(train_clips), (batch,), generator=g)
        clips = train_clips[idx].float().div(255) * 2 - 1                    # [B, F, 3, H, W]
        if 0 < crop < size:
            ys = torch.randint(size - crop + 1, (batch,), generator=g).tolist()
            xs = torch.randint(size - crop + 1, (batch,), generator=g).tolist()
            clips = torch.stack([c[..., y:y + crop, x:x + crop] for c, y, x in zip(clips, ys, xs)])
        x = clips.flatten(0, 1).to(device)
        dist = vae.encode(x).latent_dist
        z = dist.sample(generator=None)
        rec = vae.decode(z, num_frames=TOY_FRAMES).sample
        mse = F.mse_loss(rec, x)
        kl = dist.kl().mean() / z[0].numel()
        w = foreground_weights(x, fg_weight) if fg_weight > 0 else torch.ones_like(x[:, :1])
        loss = (w * (rec - x) ** 2).mean() / w.mean() + kl_weight * kl
        _optimizer_step(opt, vae, loss, _lr(step, steps, lr, warmup=50))
        if step % 25 == 0 or step == steps - 1:
            _log(out / "loss.csv", {"step": step, "mse": f"{mse.item():.5f}", "kl": f"{kl.item():.4f}",
                                    "seconds": f"{time.time() - t0:.0f}"})
            print(f"vae step {step} mse {mse.item():.5f} kl {kl.item():.3f} {time.time() - t0:.0f}s", flush=True)
        out_of_time = max_minutes is not None and time.time() - t0 > 60 * max_minutes
        if (step + 1) % 100 == 0 or step == steps - 1 or out_of_time:
            value = _save_vae(vae, train_clips, held_out, out)
            _save_state(state_path, {**{f"model.{k}": v for k, v in vae.state_dict().items()},
                                     **_optimizer_tensors(opt, vae)}, {"step": step})
            _log(out / "psnr.csv", {"step": step, "held_out_psnr_db": f"{value:.2f}"})
            print(f"vae step {step}: held-out reconstruction PSNR {value:.2f} dB", flush=True)
        if out_of_time:
            print(f"stopping at step {step}: --max-minutes {max_minutes} reached (resume with the same command)")
            break
    else:
        mark_finished(out, "vae", steps)
    return vae_psnr(AutoencoderKLTemporalDecoder.from_pretrained(out, local_files_only=True).to(device), held_out[:8])


@torch.no_grad()
def _save_vae(vae, train_clips: torch.Tensor, held_out: torch.Tensor, out: Path) -> float:
    vae.eval()
    x = train_clips[:64].float().div(255).flatten(0, 1).to(vae.device) * 2 - 1
    std = torch.cat([vae.encode(c).latent_dist.mode() for c in x.split(64)]).std().item()
    vae.register_to_config(scaling_factor=1.0 / std)
    value = vae_psnr(vae, held_out[:8])
    with atomic_files([out / "config.json", out / "diffusion_pytorch_model.safetensors"]) as staged:
        for tmp in staged:  # the config (with the new scaling factor) and the weights are replaced together
            vae.save_pretrained(tmp.parent)
    vae.train()
    return value


def build_clip(seed: int = 0):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection  # on use (see the top)

    torch.manual_seed(seed)
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**TOY_CLIP)).eval().requires_grad_(False)


@torch.no_grad()
def encode_clips(backbone, frames_u8: torch.Tensor, chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled VAE latents (posterior mode) ``[N, F, C, h, w]`` and CLIP embeddings ``[N, 1, D]`` of uint8 clips.

    The VAE and CLIP are frozen while the prior trains, so these are computed once."""
    from interdyn.core.sampling import clip_image_embeddings  # on use (see the top)
    from ..losses import encode_video_latents

    latents, embeddings = [], []
    for start in range(0, len(frames_u8), chunk):
        frames = frames_u8[start:start + chunk].float().div(255).to(backbone.device)
        latents.append(encode_video_latents(backbone, frames).half().cpu())
        embeddings.append(clip_image_embeddings(backbone, frames[:, 0]).float().cpu())
    return torch.cat(latents), torch.cat(embeddings)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_encodings(backbone, frames_u8: torch.Tensor, data_path: Path, vae_path: Path, out: Path,
                     clip_seed: int, search: list[Path] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`encode_clips` of one data file, kept in ``out/encodings-<data digest>.safetensors`` for resumed runs
    (minutes on a CPU). A file there, or in one of the ``search`` folders (another run's output on the same data),
    is used only when it records the same data file, VAE weights (SHA-256), CLIP seed and clip count; else the
    clips are encoded again. The file holds tensors only (safetensors), never code."""
    data_digest = _file_digest(Path(data_path))
    key = {"data": data_digest, "vae": _file_digest(Path(vae_path) / "diffusion_pytorch_model.safetensors"),
           "clip_seed": int(clip_seed), "clips": int(len(frames_u8))}
    name = f"encodings-{data_digest[:16]}.safetensors"
    path = Path(out) / name
    for candidate in [path, *(Path(d) / name for d in search)]:
        if candidate.is_file():
            with safe_open(str(candidate), "pt") as f:
                if json.loads((f.metadata() or {}).get("key", "{}")) == key:
                    cached = load_file(str(candidate))
                    if candidate != path:  # this run keeps its own copy (resumes do not depend on the other run)
                        with atomic_file(path) as tmp:
                            save_file(cached, str(tmp), metadata={"key": json.dumps(key)})
                    return cached["latents"], cached["embeddings"]
    latents, embeddings = encode_clips(backbone, frames_u8)
    with atomic_file(path) as tmp:
        save_file({"latents": latents.contiguous(), "embeddings": embeddings.contiguous()}, str(tmp),
                  metadata={"key": json.dumps(key)})
    return latents, embeddings


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1.0 - decay)


def prior_loss(unet, backbone, x0: torch.Tensor, first: torch.Tensor, embeddings: torch.Tensor,
               gens: list[torch.Generator], settings, weights: torch.Tensor | None = None) -> torch.Tensor:
    """SVD's image-to-video loss (no control) of one batch: clean latents ``x0`` ``[B, F, C, h, w]``, first frames
    ``first`` ``[B, 3, H, W]`` in [0, 1], their CLIP embeddings ``[B, 1, D]``, one generator per clip (draw order
    as :func:`training.losses.prepare_inputs`: ln sigma, noise augmentation, dropout, pixel noise, latent noise).
    ``weights`` (``[B, F, 1, h, w]``, :func:`latent_object_weights`): a weighted mean instead of the plain one."""
    from interdyn.core.sampling import edm_noise_level, edm_scale_input, encode_conditioning  # on use (see the top)
    from ..losses import draw_clip_scalars, v_target

    device = x0.device
    draws = draw_clip_scalars(gens, settings)
    with torch.no_grad():  # one VAE call for the batch; CLIP embeddings were computed once
        cond = encode_conditioning(backbone, first, fps=TOY_FPS + 1.0, noise_aug_strength=draws.noise_aug_strength,
                                   generator=gens, image_embeddings=embeddings)
    keep = draws.keep_image.float().to(device)
    image_latents = cond.image_latents * keep[:, None, None, None]
    noise = torch.stack([torch.randn(x0.shape[1:], generator=gen) for gen in gens]).to(device)
    sigma = draws.log_sigma.exp().to(device)[:, None, None, None, None]
    x = x0 + sigma * noise
    unet_input = torch.cat([edm_scale_input(x, sigma),
                            image_latents[:, None].expand(-1, x.shape[1], -1, -1, -1)], dim=2)
    pred = unet(unet_input, edm_noise_level(draws.log_sigma).to(device), cond.image_embeddings * keep[:, None, None],
                cond.added_time_ids).sample
    if weights is None:
        return F.mse_loss(pred.float(), v_target(x0, noise, sigma))
    weights = weights.to(device).expand_as(x0)
    return (weights * (pred.float() - v_target(x0, noise, sigma)) ** 2).mean() / weights.mean()


def train_unet(data_path: Path, vae_path: Path, out: Path, steps: int, batch: int, lr: float, seed: int,
               resume: bool = True, ema_decay: float = 0.999, save_every: int = 250, device: str = "cpu",
               max_minutes: float | None = None, init: Path | None = None, fg_weight: float = 0.0,
               widths: tuple[int, ...] | None = None, encodings_from: tuple[Path, ...] = ()) -> None:
    """SVD's image-to-video objective on the synthetic clips (no control); the EMA weights are saved.

    ``data_path``: one data file or a list of them (their clips concatenated). ``widths``: the UNet's
    ``block_out_channels`` instead of :data:`TOY_UNET`'s (SVD's blocks normalise with GroupNorm(32): a level 32
    channels wide has one channel per group, which removes each channel's mean and cancels the noise-level
    embedding added before the norm; 64 gives two per group). ``encodings_from``: folders of other runs whose
    cached clip encodings (:func:`cached_encodings`) may be reused.

    ``fg_weight`` > 0 weights the loss on latent cells with objects (:func:`latent_object_weights`); 0 is SVD's
    plain objective.

    ``init``: an SVD folder (e.g. a committed, unfinished prior stage) whose UNet weights start the model and its
    EMA, with a fresh optimizer and schedule; ignored when the run resumes from its own training state."""
    from diffusers import AutoencoderKLTemporalDecoder  # on use (see the top)

    from interdyn.models import InterDynUNet  # on use (see the top)
    from interdyn.models.backbone import SVDBackbone
    from interdyn.core.loading import save_svd_folder
    from ..losses import NoiseSettings, clip_generators

    torch.manual_seed(seed)
    data_paths = list(data_path) if isinstance(data_path, (list, tuple)) else [data_path]
    frames_per_file = [load_data(d)["frames"] for d in data_paths]
    frames_all = torch.cat(frames_per_file)
    vae = AutoencoderKLTemporalDecoder.from_pretrained(vae_path, local_files_only=True).eval().requires_grad_(False)
    config = dict(TOY_UNET, in_channels=2 * vae.config.latent_channels, out_channels=vae.config.latent_channels)
    if widths is not None:
        config["block_out_channels"] = tuple(int(w) for w in widths)
    unet = InterDynUNet(**config)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=0.0)
    state_path = out / "training_state.safetensors"
    start = 0
    if resume and state_path.exists():
        tensors, info = _load_state(state_path)
        unet.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        _restore_optimizer(opt, unet, tensors)
        start = info["step"] + 1
        print(f"resumed at step {start}")
    elif init is not None:
        weights = {k: v.float() for k, v in load_file(str(Path(init) / "unet" / "diffusion_pytorch_model.safetensors")).items()}
        unet.load_state_dict(weights)
        ema.load_state_dict(weights)
        print(f"started from the UNet of {init}")
    unet.to(device), ema.to(device), vae.to(device)
    _optimizer_to(opt, device)
    backbone = SVDBackbone(unet, vae, build_clip(seed).to(device))
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    encoded = [cached_encodings(backbone, frames, d, vae_path, out, seed, search=list(encodings_from))
               for frames, d in zip(frames_per_file, data_paths)]
    latents_all, embeddings_all = torch.cat([e[0] for e in encoded]), torch.cat([e[1] for e in encoded])
    print(f"encoded {len(frames_all)} clips in {time.time() - t0:.0f}s", flush=True)
    unet.train()
    settings = NoiseSettings()
    g = torch.Generator().manual_seed(seed + start)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for step in range(start, steps):
        idx = torch.randint(len(frames_all), (batch,), generator=g)
        gens = clip_generators(seed, step, 0, batch)
        loss = prior_loss(unet, backbone, latents_all[idx].float().to(device),
                          frames_all[idx, 0].float().div(255).to(device), embeddings_all[idx], gens, settings,
                          latent_object_weights(frames_all[idx], fg_weight) if fg_weight > 0 else None)
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss at step {step}")
        _optimizer_step(opt, unet, loss, _lr(step, steps, lr))
        _ema_update(ema, unet, min(ema_decay, (1 + step) / (10 + step)))
        if step % 25 == 0 or step == steps - 1:
            _log(out / "loss.csv", {"step": step, "loss": f"{loss.item():.5f}", "seconds": f"{time.time() - t0:.0f}"})
            print(f"unet step {step} loss {loss.item():.4f} {time.time() - t0:.0f}s", flush=True)
        out_of_time = max_minutes is not None and time.time() - t0 > 60 * max_minutes
        if (step + 1) % save_every == 0 or step == steps - 1 or out_of_time:
            _save_state(state_path, {**{f"model.{k}": v for k, v in unet.state_dict().items()},
                                     **{f"ema.{k}": v for k, v in ema.state_dict().items()},
                                     **_optimizer_tensors(opt, unet)}, {"step": step})
            save_svd_folder(SVDBackbone(copy.deepcopy(ema).cpu(), copy.deepcopy(vae).cpu(),
                                        copy.deepcopy(backbone.image_encoder).cpu()), out / "svd")
        if out_of_time:
            print(f"stopping at step {step}: --max-minutes {max_minutes} reached (resume with the same command)")
            break
    else:
        mark_finished(out, "prior", steps)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.toy.backbone", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="render scenes of the training mix")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--num", type=int, default=6000)
    d.add_argument("--workers", type=int, default=2, help="rendering processes")
    d.add_argument("--world", default=TOY_WORLD, help="interdyn.data.synthetic world: toy (default) or full")
    d.add_argument("--first-seed", type=int, default=0, help="scene seeds first_seed .. first_seed + num - 1")
    d.add_argument("--mix", choices=DATA_MIXES, default="training",
                   help="training: the training mix (a driver enters every clip); rest: no driver at all")
    v = sub.add_parser("vae", help="train the temporal VAE")
    v.add_argument("--data", type=Path, required=True)
    v.add_argument("--out", type=Path, required=True)
    v.add_argument("--steps", type=int, default=3000, help="recipe v3: 3000 (36 dB held out, 27 min on 2 cores)")
    v.add_argument("--batch", type=int, default=4)
    v.add_argument("--lr", type=float, default=1e-3)
    v.add_argument("--kl-weight", type=float, default=1e-5)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--crop", type=int, default=32, help="train on crops of this size (0 = whole frames)")
    v.add_argument("--init", type=Path, help="continue from this VAE folder (a previous run's output)")
    v.add_argument("--fg-weight", type=float, default=4.0,
                   help="extra loss weight on object pixels (see foreground_weights); 0 = plain MSE")
    v.add_argument("--device", default="cpu", help="torch device (cuda on a GPU machine)")
    v.add_argument("--max-minutes", type=float, help="stop (after saving) once this much time has passed")
    u = sub.add_parser("unet", help="train the image-to-video UNet prior")
    u.add_argument("--data", type=Path, required=True, nargs="+", help="data files (their clips concatenated)")
    u.add_argument("--vae", type=Path, required=True)
    u.add_argument("--widths", type=lambda t: tuple(int(v) for v in t.split(",")),
                   help="the UNet's block_out_channels, e.g. 64,64,64 (default: TOY_UNET's 32,32,64)")
    u.add_argument("--encodings-from", type=Path, nargs="+", default=(),
                   help="other runs' folders whose cached clip encodings of the same data and VAE may be reused")
    u.add_argument("--out", type=Path, required=True)
    u.add_argument("--steps", type=int, default=8000)
    u.add_argument("--batch", type=int, default=8, help="clips per step (batch 8 moves 1.16x the clips/s of 4 on a "
                                                        "2-core CPU: bench/toy_prior_step.py)")
    u.add_argument("--lr", type=float, default=8e-4)
    u.add_argument("--seed", type=int, default=0)
    u.add_argument("--ema-decay", type=float, default=0.999)
    u.add_argument("--save-every", type=int, default=250, help="checkpoint (and SVD folder) every this many steps")
    u.add_argument("--device", default="cpu", help="torch device (cuda on a GPU machine)")
    u.add_argument("--max-minutes", type=float, help="stop (after saving) once this much time has passed")
    u.add_argument("--init", type=Path, help="start from this SVD folder's UNet (e.g. interdyn/assets/toy_physics/svd, "
                                             "the shipped prior), with a fresh optimizer and schedule")
    u.add_argument("--fg-weight", type=float, default=0.0,
                   help="extra loss weight on latent cells with objects now or in the first frame "
                        "(latent_object_weights); 0 = SVD's plain objective")
    a = p.parse_args(argv)
    if a.cmd == "data":
        make_data(a.num, a.out, a.first_seed, workers=a.workers, world=a.world, mix=a.mix)
    elif a.cmd == "vae":
        value = train_vae(a.data, a.out, a.steps, a.batch, a.lr, a.kl_weight, a.seed, a.init, a.fg_weight, a.crop,
                          a.device, a.max_minutes)
        print(f"held-out reconstruction PSNR {value:.2f} dB" + ("" if value >= 35 else " (below the 35 dB bar)"))
    else:
        train_unet(a.data, a.vae, a.out, a.steps, a.batch, a.lr, a.seed, ema_decay=a.ema_decay,
                   save_every=a.save_every, device=a.device, max_minutes=a.max_minutes, init=a.init,
                   fg_weight=a.fg_weight, widths=a.widths,
                   encodings_from=tuple(a.encodings_from))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
