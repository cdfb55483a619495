"""The single-file SGM layout: key prefixes, SVD's fixed numbers, the error for a file that is not SVD."""
from __future__ import annotations

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
OPEN_CLIP_PREFIX = "conditioner.embedders.0.open_clip."
CLIP_VISUAL_PREFIX = "conditioner.embedders.0.open_clip.model.visual."

#: Key prefixes that are present in the SVD files but are not needed: the open_clip text-side
#: leftovers (everything of ``open_clip.model.`` except ``visual.``) and the legacy VAE copy that
#: embedder #3 holds for the conditioning frames.
UNUSED_PREFIXES: tuple[str, ...] = ("conditioner.embedders.3.encoder.",)
UNUSED_TEXT_SIDE_PREFIX = "conditioner.embedders.0.open_clip.model."

DEFAULT_UNET_HEAD_DIM = 64  # svd.yaml num_head_channels
DEFAULT_CLIP_HEAD_DIM = 80  # open_clip ViT-H-14 head_width (1280 wide, 16 heads)
VAE_SCALING_FACTOR = 0.18215  # SD latent scale; SVD reuses the SD VAE encoder
NUM_ADDED_TIME_IDS = 3  # fps_id, motion_bucket_id, cond_aug

PICKLE_SUFFIXES = frozenset({".ckpt", ".pt", ".pth", ".bin", ".pkl"})


class SVDCheckpointError(ValueError):
    """The file is not a usable single-file SVD checkpoint (the message says why and what to do)."""
