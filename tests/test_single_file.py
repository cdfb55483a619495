"""Single-file SVD checkpoints (svd*.safetensors, SGM layout) -> diffusers/transformers modules.

* key/shape manifest of the real files: every key maps, shapes agree, nothing left over;
* tiny file with the real layout: converted modules reproduce ComfyUI's reference outputs;
* dtype handling and the refusals (wrong model, missing parts, pickles, missing file).
"""
from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import pytest
import torch
from conftest import fixture_dir
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from interdyn.single_file import (
    SVDCheckpointError,
    derive_configs,
    inspect_checkpoint,
    is_svd_single_file,
    load_svd_single_file,
    plan_conversion,
    target_shape,
)

COMPONENTS = ("unet", "vae", "image_encoder")
UNUSED_GROUPS = {"open_clip_text_side_leftovers", "cond_frames_vae_copy"}
TINY_HEADS = dict(unet_head_dim=16, clip_head_dim=16)  # head widths are not stored in a checkpoint


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def manifest() -> tuple[dict, dict]:
    folder = fixture_dir("svd_checkpoint_keys")
    svd = json.loads((folder / "svd.json").read_text())
    diffusers_side = json.loads((folder / "diffusers_svd.json").read_text())
    return svd, diffusers_side


@pytest.fixture(scope="module")
def tiny_dir() -> Path:
    return fixture_dir("svd_single_file_tiny")


@pytest.fixture(scope="module")
def tiny_fp32(tiny_dir: Path) -> dict:
    from diffusers import UNetSpatioTemporalConditionModel

    return load_svd_single_file(tiny_dir / "tiny_svd.safetensors", dtype=torch.float32,
                                unet_cls=UNetSpatioTemporalConditionModel, **TINY_HEADS)


@pytest.fixture(scope="module")
def reference(tiny_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(tiny_dir / "reference.safetensors"))


def _listify(value):
    return list(value) if isinstance(value, (list, tuple)) else value


# ------------------------------------------------------------------ key mapping on the real manifest
def test_manifest_every_key_maps_with_equal_shape(manifest):
    svd, diffusers_side = manifest
    shapes = {k: v["shape"] for k, v in svd["tensors"].items()}
    plan = plan_conversion(shapes)
    assert not plan.unmapped, f"keys of the UNet/VAE/CLIP groups that map nowhere: {plan.unmapped[:10]}"
    assert not plan.foreign, f"keys outside every known group: {plan.foreign[:10]}"
    for component in COMPONENTS:
        expected = {k: tuple(v) for k, v in diffusers_side[component]["tensors"].items()}
        got = {r.target: target_shape(r, shapes.get(r.source)) for r in plan.rules[component]}
        assert len(got) == len(plan.rules[component]), f"{component}: two rules write the same target key"
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        assert not missing, f"{component}: diffusers keys nobody fills: {missing[:10]}"
        assert not extra, f"{component}: produced keys diffusers does not have: {extra[:10]}"
        bad = [(k, got[k], expected[k]) for k in expected if got[k] != expected[k]]
        assert not bad, f"{component}: shape differs after the transforms (key, got, expected): {bad[:10]}"


def test_manifest_leftovers_are_exactly_the_documented_unused_groups(manifest):
    svd, _ = manifest
    shapes = {k: v["shape"] for k, v in svd["tensors"].items()}
    plan = plan_conversion(shapes)
    documented = {k for k, v in svd["tensors"].items() if v["group"] in UNUSED_GROUPS}
    assert set(plan.unused) == documented, (
        f"skipped keys should be the text-side leftovers and embedders.3 copy only; "
        f"extra {sorted(set(plan.unused) - documented)[:5]}, not skipped {sorted(documented - set(plan.unused))[:5]}")
    used_sources = {r.source for rules in plan.rules.values() for r in rules if r.source}
    left = set(shapes) - used_sources - documented
    assert not left, f"real keys neither converted nor documented as unused: {sorted(left)[:10]}"
    generated = [r.target for rules in plan.rules.values() for r in rules if r.source is None]
    assert sorted(generated) == ["quant_conv.bias", "quant_conv.weight"], (
        f"only the VAE quant_conv (absent from the file) should be generated, got {generated}")


def test_manifest_configs_match_diffusers_svd(manifest):
    svd, diffusers_side = manifest
    shapes = {k: v["shape"] for k, v in svd["tensors"].items()}
    configs = derive_configs(shapes, num_frames=25)
    for component in COMPONENTS:
        expected = diffusers_side[component]["config"]
        for key, value in expected.items():
            if key == "sample_size":
                continue  # not structural (a default output size)
            assert _listify(configs[component][key]) == _listify(value), (
                f"{component}.{key} derived from shapes is {configs[component][key]!r}, SVD uses {value!r}")


def test_tiny_configs_match_fixture(tiny_dir):
    expected = json.loads((tiny_dir / "configs.json").read_text())
    with safe_open(str(tiny_dir / "tiny_svd.safetensors"), framework="pt") as f:
        shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
    configs = derive_configs(shapes, num_frames=3, **TINY_HEADS)
    pairs = (("unet", expected["diffusers"]["UNetSpatioTemporalConditionModel"]),
             ("vae", expected["diffusers"]["AutoencoderKLTemporalDecoder"]),
             ("image_encoder", expected["transformers"]["CLIPVisionConfig"]))
    for component, cfg in pairs:
        for key, value in cfg.items():
            if key == "sample_size":
                continue
            assert _listify(configs[component][key]) == _listify(value), (
                f"tiny {component}.{key}: derived {configs[component][key]!r}, fixture says {value!r}")


# ------------------------------------------------------------------ numerics against ComfyUI
def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != reference {tuple(b.shape)}"
    return (a.float() - b.float()).abs().max().item()


def test_tiny_unet_matches_reference(tiny_fp32, reference):
    unet = tiny_fp32["unet"]
    frames = int(reference["unet.num_video_frames"].item())
    x = reference["unet.x"]
    with torch.no_grad():
        out = unet(sample=x.reshape(1, frames, *x.shape[1:]), timestep=reference["unet.timesteps"][:1],
                   encoder_hidden_states=reference["unet.encoder_hidden_states"],
                   added_time_ids=reference["unet.added_time_ids"]).sample
    diff = _max_diff(out.reshape(reference["unet.out"].shape), reference["unet.out"])
    assert diff < 1e-4, f"UNet output differs from ComfyUI's by {diff:.2e} (tolerance 1e-4)"


def test_tiny_vae_encode_matches_reference(tiny_fp32, reference):
    with torch.no_grad():
        mean = tiny_fp32["vae"].encode(reference["vae.encode.image"]).latent_dist.mean
    diff = _max_diff(mean, reference["vae.encode.mean"])
    assert diff < 1e-5, f"VAE latent mean differs from ComfyUI's by {diff:.2e} (tolerance 1e-5; quant_conv identity?)"


def test_tiny_vae_decode_matches_reference(tiny_fp32, reference):
    frames = int(reference["vae.decode.num_frames"].item())
    with torch.no_grad():
        image = tiny_fp32["vae"].decode(reference["vae.decode.latent"], num_frames=frames).sample
    diff = _max_diff(image, reference["vae.decode.image"])
    assert diff < 1e-5, f"temporal VAE decode differs from ComfyUI's by {diff:.2e} (tolerance 1e-5)"


def test_tiny_clip_matches_reference(tiny_fp32, reference):
    with torch.no_grad():
        out = tiny_fp32["image_encoder"](reference["clip.pixel_values"], output_hidden_states=True)
    embeds = _max_diff(out.image_embeds, reference["clip.image_embeds"])
    penultimate = _max_diff(out.hidden_states[-2], reference["clip.penultimate_hidden_states"])
    assert embeds < 1e-5, f"CLIP image_embeds differ from ComfyUI's by {embeds:.2e} (tolerance 1e-5)"
    assert penultimate < 1e-5, f"CLIP penultimate hidden states differ by {penultimate:.2e} (tolerance 1e-5)"
    assert tiny_fp32["clip_size"] == 32, f"clip_size should come from the file (32 here), got {tiny_fp32['clip_size']}"


def test_tiny_state_dicts_are_exactly_the_converted_keys(tiny_dir, tiny_fp32):
    with safe_open(str(tiny_dir / "tiny_svd.safetensors"), framework="pt") as f:
        plan = plan_conversion({k: f.get_slice(k).get_shape() for k in f.keys()})
    for component in COMPONENTS:
        module_keys = set(tiny_fp32[component].state_dict())
        planned = {r.target for r in plan.rules[component]}
        assert module_keys == planned, (
            f"{component}: strict loading must fill every key; module-only {sorted(module_keys - planned)[:5]}, "
            f"plan-only {sorted(planned - module_keys)[:5]}")


# ------------------------------------------------------------------ dtype, flags, returned settings
def test_file_dtype_is_kept_unless_asked(tiny_dir, tiny_fp32):
    kept = load_svd_single_file(tiny_dir / "tiny_svd.safetensors", **TINY_HEADS)
    for component in COMPONENTS:
        dtypes = {p.dtype for p in kept[component].parameters()}
        assert dtypes == {torch.float16}, f"{component} of an fp16 file should stay fp16 by default, got {dtypes}"
        dtypes = {p.dtype for p in tiny_fp32[component].parameters()}
        assert dtypes == {torch.float32}, f"{component} with dtype=float32 should be fp32, got {dtypes}"
        module = kept[component]
        assert not module.training, f"{component} should be returned in eval mode"
        grads = [n for n, p in module.named_parameters() if p.requires_grad]
        assert not grads, f"{component} parameters should have requires_grad False: {grads[:3]}"
        meta = [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
        assert not meta, f"{component} still has meta tensors after loading: {meta[:3]}"
    assert kept["source"] == str(tiny_dir / "tiny_svd.safetensors"), "source should be the checkpoint path"


def test_default_unet_class_and_override(tiny_dir):
    from diffusers import UNetSpatioTemporalConditionModel

    class MarkedUNet(UNetSpatioTemporalConditionModel):
        pass

    default = load_svd_single_file(tiny_dir / "tiny_svd.safetensors", **TINY_HEADS)["unet"]
    assert isinstance(default, UNetSpatioTemporalConditionModel), (
        f"default UNet must be InterDynUNet or diffusers' class, got {type(default).__name__}")
    custom = load_svd_single_file(tiny_dir / "tiny_svd.safetensors", unet_cls=MarkedUNet, **TINY_HEADS)["unet"]
    assert type(custom) is MarkedUNet, f"unet_cls should be the class instantiated, got {type(custom).__name__}"


def test_clip_and_scheduler_settings(tiny_fp32):
    from diffusers import EulerDiscreteScheduler

    assert tuple(tiny_fp32["clip_mean"]) == pytest.approx((0.48145466, 0.4578275, 0.40821073)), "CLIP mean"
    assert tuple(tiny_fp32["clip_std"]) == pytest.approx((0.26862954, 0.26130258, 0.27577711)), "CLIP std"
    scheduler = EulerDiscreteScheduler.from_config(tiny_fp32["scheduler_config"])
    scheduler.set_timesteps(25)
    sigmas = scheduler.sigmas
    assert sigmas[0].item() == pytest.approx(700.0, rel=1e-4), f"first sigma should be 700, got {sigmas[0]}"
    assert sigmas[-2].item() == pytest.approx(0.002, rel=1e-3), f"last sigma should be 0.002, got {sigmas[-2]}"
    c_noise = torch.tensor([0.25 * math.log(s) for s in sigmas[:-1].tolist()])
    assert torch.allclose(scheduler.timesteps.float(), c_noise, atol=1e-4), (
        "SVD timesteps should be continuous c_noise = 0.25 ln(sigma)")
    assert scheduler.config.prediction_type == "v_prediction", "SVD predicts v"


# ------------------------------------------------------------------ detection and refusals
def _write(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    save_file({k: torch.zeros(s, dtype=torch.float16) for k, s in shapes.items()}, str(path))
    return path


def _tiny_without(tiny_dir: Path, tmp_path: Path, prefix: str) -> Path:
    with safe_open(str(tiny_dir / "tiny_svd.safetensors"), framework="pt") as f:
        kept = {k: f.get_tensor(k) for k in f.keys() if not k.startswith(prefix)}
    out = tmp_path / "svd_partial.safetensors"
    save_file(kept, str(out))
    return out


def test_tiny_is_detected(tiny_dir):
    info = inspect_checkpoint(tiny_dir / "tiny_svd.safetensors")
    assert info.is_svd and info.kind == "svd", f"tiny SVD file not recognised: {info}"
    assert info.dtypes == {"F16": 1828}, f"header dtypes should be read without loading: {info.dtypes}"
    assert is_svd_single_file(tiny_dir / "tiny_svd.safetensors"), "is_svd_single_file should accept the tiny file"


def test_refuses_sd15(tmp_path):
    path = _write(tmp_path / "v1-5-pruned-emaonly.safetensors", {
        "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
        "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
        "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
        "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (8, 768),
    })
    assert not is_svd_single_file(path), "an SD1.5 file must not pass as SVD"
    with pytest.raises(SVDCheckpointError) as err:
        load_svd_single_file(path)
    msg = str(err.value)
    assert "Stable Diffusion 1.x" in msg and str(path) in msg and "svd_xt" in msg, (
        f"the error should name the file, say it is SD 1.x and what to pick instead: {msg}")


def test_refuses_sdxl(tmp_path):
    path = _write(tmp_path / "sd_xl_base_1.0.safetensors", {
        "model.diffusion_model.label_emb.0.0.weight": (1280, 2816),
        "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (8, 768),
        "conditioner.embedders.1.model.token_embedding.weight": (8, 1280),
        "first_stage_model.decoder.conv_in.weight": (512, 4, 3, 3),
    })
    with pytest.raises(SVDCheckpointError, match="Stable Diffusion XL") as err:
        load_svd_single_file(path)
    assert str(path) in str(err.value), f"the error should name the file: {err.value}"


def test_refuses_missing_vae(tiny_dir, tmp_path):
    path = _tiny_without(tiny_dir, tmp_path, "first_stage_model.")
    assert not is_svd_single_file(path), "an SVD file without VAE must not pass"
    with pytest.raises(SVDCheckpointError) as err:
        load_svd_single_file(path, **TINY_HEADS)
    msg = str(err.value)
    assert "has no VAE" in msg and "first_stage_model." in msg and str(path) in msg, (
        f"the error should say the VAE (first_stage_model.*) is missing from which file: {msg}")
    assert "has no CLIP" not in msg and "found UNet, CLIP image encoder" in msg, (
        f"only the missing part should be reported missing, and what was found listed: {msg}")


def test_refuses_missing_image_encoder(tiny_dir, tmp_path):
    path = _tiny_without(tiny_dir, tmp_path, "conditioner.embedders.0.")
    with pytest.raises(SVDCheckpointError) as err:
        load_svd_single_file(path, **TINY_HEADS)
    msg = str(err.value)
    assert "has no CLIP image encoder" in msg and "conditioner.embedders.0.open_clip" in msg, (
        f"the error should say the CLIP image encoder is missing: {msg}")
    assert "has no VAE" not in msg and "found UNet, VAE" in msg, (
        f"only the missing part should be reported missing, and what was found listed: {msg}")


def test_refuses_missing_path(tmp_path):
    path = tmp_path / "svd_xt.safetensors"
    assert not is_svd_single_file(path), "a missing file is not an SVD checkpoint"
    with pytest.raises(FileNotFoundError, match="not found") as err:
        load_svd_single_file(path)
    assert str(path) in str(err.value), f"the error should name the missing path: {err.value}"


class _Tripwire:
    """Unpickling this creates a file: proof that a checkpoint was (wrongly) unpickled."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


@pytest.mark.parametrize("name", ["svd_xt.ckpt", "svd_xt.safetensors"])
def test_refuses_pickles_without_unpickling(tmp_path, name):
    tripwire = tmp_path / "unpickled.txt"
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"state_dict": _Tripwire(tripwire)}, protocol=4))
    assert not is_svd_single_file(path), "a pickle is not an SVD safetensors checkpoint"
    with pytest.raises(SVDCheckpointError) as err:
        load_svd_single_file(path)
    msg = str(err.value)
    assert "pickle" in msg and ".safetensors" in msg and str(path) in msg, (
        f"the error should say it is a pickle and to use/convert to .safetensors: {msg}")
    assert not tripwire.exists(), "the file was unpickled: untrusted code could have run"


def test_refuses_torch_zip_checkpoint(tmp_path):
    path = tmp_path / "model.safetensors"  # wrong suffix on purpose: detection must read the bytes
    torch.save({"w": torch.zeros(2)}, str(path))
    with pytest.raises(SVDCheckpointError, match="pickle"):
        load_svd_single_file(path)


def test_refuses_garbage(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(SVDCheckpointError, match="not a readable .safetensors") as err:
        load_svd_single_file(path)
    assert str(path) in str(err.value), f"the error should name the file: {err.value}"


def test_zero_copy_and_cast_paths_give_the_same_weights(tiny_dir, tiny_fp32):
    kept = load_svd_single_file(tiny_dir / "tiny_svd.safetensors", **TINY_HEADS)  # fp16 kept: mapped file
    for component in COMPONENTS:  # tiny_fp32 was read tensor by tensor and cast
        cast = tiny_fp32[component].state_dict()
        bad = [k for k, v in kept[component].state_dict().items() if not torch.equal(v.float(), cast[k])]
        assert not bad, f"{component}: fp16 (mapped) and fp32 (read + cast) loads disagree on {bad[:5]}"
