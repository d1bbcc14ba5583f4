"""The nano family's diffusion-side networks, built from their shapes with random weights.

The nano recipes (:mod:`sharpdepth.training.nano.recipes`) train these; the speed harness
(``sharpdepth speed --size nano``) times them with random weights. The shipped weights
are in the bundled folders (:mod:`sharpdepth.assets`), which record their own shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

#: Tokens of the stored empty-prompt embedding and its width (the UNet's cross-attention).
PROMPT_TOKENS = 8
CROSS_ATTENTION_DIM = 64
#: The nano UNet's feature widths per level (the last two with cross-attention) and
#: residual blocks per level; the prior recipe passes its own (``PRIOR_CHANNELS``,
#: ``PRIOR_LAYERS``).
UNET_CHANNELS = (32, 64, 128)
UNET_LAYERS = 1
#: Channels of every level of the nano tiny autoencoder (TAESD uses 64 for SD's).
TINY_VAE_CHANNELS = 32
#: Side (pixels) of the images the family is trained on, recorded in the configs.
SAMPLE_SIZE = 256


def nano_vae(sample_size: int = SAMPLE_SIZE) -> Any:
    """The nano ``AutoencoderKL``: 4 levels (8x down-sampling), 4 latent channels."""
    from diffusers import AutoencoderKL

    vae: Any = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(16, 32, 64, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=sample_size,
        scaling_factor=1.0,
    )
    return vae


def nano_tiny_vae(channels: int = TINY_VAE_CHANNELS) -> Any:
    """A TAESD-style ``AutoencoderTiny`` with the nano autoencoder's 8x down-sampling.

    Its latents are the teacher's *scaled* latents (``scaling_factor`` 1), as TAESD's
    are SD's.
    """
    from diffusers import AutoencoderTiny

    tiny: Any = AutoencoderTiny(
        encoder_block_out_channels=(channels,) * 4,
        decoder_block_out_channels=(channels,) * 4,
        latent_channels=4,
    )
    return tiny


def nano_unet(
    channels: Sequence[int] = UNET_CHANNELS,
    layers: int = UNET_LAYERS,
    sample_size: int = SAMPLE_SIZE // 8,
) -> Any:
    """The nano ``UNet2DConditionModel`` in the Lotus-G shape (8 in, 4 out, class label).

    Args:
        channels: feature width per level; the first level has no attention.
        layers: residual blocks per level.
        sample_size: latent side recorded in the config (the images' side / 8).
    """
    from diffusers import UNet2DConditionModel

    n = len(channels)
    unet: Any = UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=8,
        out_channels=4,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        block_out_channels=tuple(channels),
        layers_per_block=layers,
        cross_attention_dim=CROSS_ATTENTION_DIM,
        attention_head_dim=16,
        norm_num_groups=16,
        class_embed_type="projection",
        projection_class_embeddings_input_dim=4,
    )
    return unet


def nano_scheduler() -> Any:
    """The SD-2 / Lotus-G noise schedule (1000 steps, scaled_linear 0.00085..0.012)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        prediction_type="sample",
    )


def empty_prompt_embedding(seed: int) -> torch.Tensor:
    """The stored "empty prompt" context ``[1, PROMPT_TOKENS, CROSS_ATTENTION_DIM]``.

    The nano family has no text encoder; a fixed seeded unit-variance embedding plays the
    role of the encoded empty prompt (cross-attention learns to use it as a constant).
    """
    gen = torch.Generator().manual_seed(seed + 7)
    return torch.randn((1, PROMPT_TOKENS, CROSS_ATTENTION_DIM), generator=gen)
