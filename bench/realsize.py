"""SVD's real-size models (UNet, temporal VAE, CLIP ViT-H/14, control branch) with random weights, fast.

Shared by bench/gpu.py, bench/static_memory.py and bench/train_step.py (not a test, no downloads). The
configs are those of stabilityai/stable-video-diffusion-img2vid: diffusers' defaults of
``UNetSpatioTemporalConditionModel`` are SVD's UNet; the VAE and CLIP values are written out below.
Modules are built without memory (accelerate's ``init_empty_weights``), cast on the meta device, then
allocated once on the target device in the target dtype (``to_empty``) and filled with cheap random
values there: a real-size UNet is ready in a second on a GPU, nothing passes through the CPU.
"""
from __future__ import annotations

import torch
from torch import nn

SVD_VAE = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
               block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=768,
               scaling_factor=0.18215, force_upcast=True)
SVD_CLIP = dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16, patch_size=14,
                image_size=224, projection_dim=1024, hidden_act="gelu", layer_norm_eps=1e-5)
PAPER_CONTROL_CNN = (16, 32, 96, 256)


def configs(tiny: bool = False) -> dict:
    """``unet``, ``vae``, ``clip`` keyword arguments and the control CNN's widths (tiny: interdyn.core.tiny's)."""
    if tiny:
        from interdyn.core.tiny import TINY_CLIP, TINY_CONTROL_CNN, TINY_UNET, TINY_VAE

        return dict(unet=dict(TINY_UNET), vae=dict(TINY_VAE), clip=dict(TINY_CLIP), cnn=TINY_CONTROL_CNN)
    return dict(unet=dict(num_frames=14), vae=dict(SVD_VAE), clip=dict(SVD_CLIP), cnn=PAPER_CONTROL_CNN)


def empty_models(tiny: bool = False, branch: bool = True):
    """``(unet, vae, clip, branch or None)`` with parameters on the meta device (buffers real, on the CPU)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLTemporalDecoder
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from interdyn.models.controlnet import InterDynControlNet
    from interdyn.models.unet import InterDynUNet

    c = configs(tiny)
    with init_empty_weights(include_buffers=False):
        unet = InterDynUNet(**c["unet"])
        vae = AutoencoderKLTemporalDecoder(**c["vae"])
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**c["clip"]))
        control = InterDynControlNet.from_unet(unet, conditioning_embedding_out_channels=c["cnn"],
                                               load_weights_from_unet=False) if branch else None
    return unet, vae, clip, control


@torch.no_grad()
def materialize(module: nn.Module, device, dtype: torch.dtype, seed: int = 0) -> nn.Module:
    """Allocate ``module``'s meta parameters on ``device`` in ``dtype`` and fill them with random values.

    Weights ~ N(0, 1/fan_in) (activations keep their scale through the real depth, so fp16 runs do not
    overflow), biases 0, norm scales 1; buffers (CLIP's position ids) keep their values.
    """
    buffers = {name: b.clone() for name, b in module.named_buffers() if b.device.type != "meta"}
    missing = [name for name, b in module.named_buffers() if b.device.type == "meta"]
    if missing:
        raise ValueError(f"buffers {missing} were built on the meta device and have no values to restore")
    for p in module.parameters():
        if p.device.type != "meta":
            raise ValueError("materialize expects a module built with empty_models (parameters on the meta device)")
    module.to(dtype=dtype)  # on the meta device: free
    module.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(seed)
    for sub in module.modules():
        for name, p in sub.named_parameters(recurse=False):
            if isinstance(sub, (nn.GroupNorm, nn.LayerNorm)):
                p.fill_(1.0 if name == "weight" else 0.0)
            elif p.ndim >= 2:
                p.normal_(0.0, p[0].numel() ** -0.5, generator=gen)
            elif name == "bias":
                p.zero_()
            else:  # e.g. CLIP's class embedding
                p.normal_(0.0, 0.02, generator=gen)
    for name, value in buffers.items():
        module.get_buffer(name).copy_(value)
    return module.eval().requires_grad_(False)


def build(device, dtype: torch.dtype, tiny: bool = False, branch: bool = True, seed: int = 0):
    """``(SVDBackbone, control branch or None)``: random real-size (or tiny) models on ``device`` in ``dtype``."""
    from interdyn.models.backbone import SVDBackbone

    unet, vae, clip, control = empty_models(tiny, branch)
    for i, m in enumerate((unet, vae, clip, control)):
        if m is not None:
            materialize(m, device, dtype, seed + i)
    return SVDBackbone(unet, vae, clip, source="random real-size" if not tiny else "random tiny"), control


def storage_bytes(tensors) -> int:
    """Bytes of the distinct storages behind ``tensors`` (shared storages counted once)."""
    seen = {}
    for t in tensors:
        if torch.is_tensor(t) and t.device.type != "meta":
            s = t.untyped_storage()
            seen[s.data_ptr(), s.device.type] = s.nbytes()
    return sum(seen.values())
