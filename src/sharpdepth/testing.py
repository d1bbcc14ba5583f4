"""Tiny random-weight components built from config, for tests and benchmarks.

Nothing here touches the network: every model is constructed from a config with
seeded random weights, in the same classes and folder layouts as the published
checkpoints, so the real loading code is exercised.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

LOGGER = logging.getLogger(__name__)

#: Layouts :func:`write_tiny_checkpoint` can write.
LAYOUTS = ("released", "lotus", "marigold", "sharpdepth")


def tiny_unet(
    latent_channels: int = 4,
    cross_attention_dim: int = 32,
    class_label: bool = True,
    seed: int = 0,
) -> Any:
    """A 2-level ``UNet2DConditionModel`` with ``2 * latent_channels`` inputs (Lotus-G shape)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet: Any = UNet2DConditionModel(
        sample_size=16,
        in_channels=2 * latent_channels,
        out_channels=latent_channels,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=16,
        class_embed_type="projection" if class_label else None,
        projection_class_embeddings_input_dim=4 if class_label else None,
    )
    return unet.eval()


def tiny_vae(
    downsampling_factor: int = 8,
    latent_channels: int = 4,
    scaling_factor: float = 0.18215,
    seed: int = 0,
) -> Any:
    """An ``AutoencoderKL`` with the given down-sampling factor (a power of two)."""
    from diffusers import AutoencoderKL

    levels = int(downsampling_factor).bit_length()
    if 2 ** (levels - 1) != downsampling_factor:
        raise ValueError(f"downsampling_factor must be a power of two, got {downsampling_factor}")
    torch.manual_seed(seed)
    vae: Any = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=(8,) * levels,
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=scaling_factor,
    )
    return vae.eval()


def tiny_scheduler() -> Any:
    """The SD-2 / Lotus-G noise schedule: 1000 steps, scaled_linear 0.00085..0.012."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        prediction_type="epsilon",
    )


def tiny_clip_tokenizer() -> Any:
    """A ``CLIPTokenizer`` with a 54-token character vocabulary (start 0, end 1)."""
    from transformers import CLIPTokenizer

    chars = list("abcdefghijklmnopqrstuvwxyz")
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def clip_text_encoder(
    hidden_size: int,
    layers: int,
    heads: int,
    intermediate_size: int,
    vocab_size: int = 54,
    seed: int = 0,
) -> Any:
    """A random-weight ``CLIPTextModel`` (start token 0, end token 1, 77 positions)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        hidden_act="gelu",
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    return CLIPTextModel(config).eval()


def tiny_text_encoder(hidden_size: int = 32, seed: int = 0) -> tuple[Any, Any]:
    """A 2-layer ``CLIPTextModel`` and a ``CLIPTokenizer`` with a 54-token vocabulary."""
    encoder = clip_text_encoder(hidden_size, layers=2, heads=4, intermediate_size=37, seed=seed)
    return encoder, tiny_clip_tokenizer()


def sd2_unet(seed: int = 0) -> Any:
    """A random-weight UNet of the SD-2 / Lotus-G / SharpDepth shape (865 M parameters).

    SD-2 blocks (320, 640, 1280, 1280), 2 layers per block, linear-projection
    transformers with 1024-wide cross-attention; 8 input channels and the 4-input class
    projection of Lotus-G.
    """
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet: Any = UNet2DConditionModel(
        sample_size=96,
        in_channels=8,
        out_channels=4,
        down_block_types=(
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "CrossAttnDownBlock2D",
            "DownBlock2D",
        ),
        up_block_types=(
            "UpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
            "CrossAttnUpBlock2D",
        ),
        block_out_channels=(320, 640, 1280, 1280),
        layers_per_block=2,
        attention_head_dim=(5, 10, 20, 20),
        cross_attention_dim=1024,
        use_linear_projection=True,
        class_embed_type="projection",
        projection_class_embeddings_input_dim=4,
    )
    return unet.eval()


def taesd_like(channels: int = 8, blocks: int = 1, latent_channels: int = 4, seed: int = 0) -> Any:
    """A random-weight TAESD-style ``AutoencoderTiny`` (8x down-sampling) with ``channels``
    per level and ``blocks`` blocks per inner level: test-sized by default, TAESD's own
    shapes (what ``madebyollin/taesd`` holds) with ``channels=64, blocks=3``."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    tiny: Any = AutoencoderTiny(
        encoder_block_out_channels=(channels,) * 4,
        decoder_block_out_channels=(channels,) * 4,
        num_encoder_blocks=(1, blocks, blocks, blocks),
        num_decoder_blocks=(blocks, blocks, blocks, 1),
        latent_channels=latent_channels,
    )
    return tiny.eval()


def sd2_vae(seed: int = 0) -> Any:
    """A random-weight ``AutoencoderKL`` of the SD-2 shape (84 M parameters, 8x, 4 channels)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae: Any = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=768,
        scaling_factor=0.18215,
    )
    return vae.eval()


def sd2_text_encoder(seed: int = 0) -> Any:
    """A random-weight OpenCLIP-H text encoder shape (SD-2: 1024 wide, 23 layers, 340 M)."""
    return clip_text_encoder(1024, layers=23, heads=16, intermediate_size=4096, seed=seed)


def write_released_layout(
    path: str | Path,
    unet: Any,
    vae: Any,
    scheduler: Any,
    text_encoder: Any,
    tokenizer: Any,
    class_name: str = "SharpDepthPipeline",
) -> Path:
    """Write components in the authors' released layout (``model_index.json`` + folders)."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(root / "unet")
    vae.save_pretrained(root / "vae")
    scheduler.save_pretrained(root / "scheduler")
    text_encoder.save_pretrained(root / "text_encoder")
    tokenizer.save_pretrained(root / "tokenizer")
    index = {
        "_class_name": class_name,
        "_diffusers_version": "0.30.0",
        "scheduler": ["diffusers", type(scheduler).__name__],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (root / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    return root


def write_tiny_checkpoint(
    path: str | Path,
    layout: str = "released",
    downsampling_factor: int = 8,
    seed: int = 0,
) -> Path:
    """Write a tiny random-weight checkpoint folder in one of the published layouts.

    Args:
        path: folder to create.
        layout: ``"released"`` (the authors' SharpDepth checkpoint: model_index.json +
            unet/vae/scheduler/text_encoder/tokenizer), ``"lotus"`` (Lotus-G depth, same
            components), ``"marigold"`` (no class label, v-prediction scheduler) or
            ``"sharpdepth"`` (ours: stored embedding, no text encoder).
        downsampling_factor: of the autoencoder.
        seed: weight seed.

    Returns:
        The folder.
    """
    from sharpdepth.models.checkpoints import compute_empty_prompt_embedding
    from sharpdepth.models.diffusion import DiffusionDepthModel

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    root = Path(path)
    unet = tiny_unet(class_label=layout != "marigold", seed=seed)
    vae = tiny_vae(downsampling_factor=downsampling_factor, seed=seed + 1)
    scheduler = tiny_scheduler()
    text_encoder, tokenizer = tiny_text_encoder(seed=seed + 2)
    if layout == "sharpdepth":
        embeds = compute_empty_prompt_embedding(text_encoder, tokenizer)
        DiffusionDepthModel(unet, vae, scheduler, embeds).save_pretrained(root)
        return root
    if layout == "marigold":
        scheduler = scheduler.__class__.from_config(
            scheduler.config, prediction_type="v_prediction"
        )
    class_name = {
        "released": "SharpDepthPipeline",
        "lotus": "LotusGPipeline",
        "marigold": "MarigoldDepthPipeline",
    }[layout]
    return write_released_layout(
        root, unet, vae, scheduler, text_encoder, tokenizer, class_name=class_name
    )


class SmoothMetricModel(torch.nn.Module):
    """A deterministic stand-in metric depth model: depth = 1 + 4 * (1 - luminance) metres.

    Blurred by average pooling, like a real metric model at edges. Accepts
    ``(image, intrinsics)`` and ignores the intrinsics.
    """

    def __init__(self, blur: int = 5) -> None:
        super().__init__()
        self.blur = blur

    def forward(self, image: torch.Tensor, intrinsics: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, 3, H, W]`` in ``[0, 1]`` -> ``[B, 1, H, W]`` metres in ``[1, 5]``."""
        lum = image.mean(dim=1, keepdim=True)
        pad = self.blur // 2
        lum = torch.nn.functional.avg_pool2d(
            torch.nn.functional.pad(lum, (pad, pad, pad, pad), mode="replicate"),
            self.blur,
            stride=1,
        )
        return 1.0 + 4.0 * (1.0 - lum)


def perturb_weights(model: torch.nn.Module, std: float = 0.1, seed: int = 0) -> None:
    """Add seeded Gaussian noise to every weight, so random-init heads are not constant."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * std)


def tiny_dinov2_config(**overrides: Any) -> Any:
    """A 2-layer, 16-wide ``Dinov2Config`` for tiny depth-estimation backbones."""
    from transformers import Dinov2Config

    base: dict[str, Any] = {
        "num_hidden_layers": 2,
        "hidden_size": 16,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "reshape_hidden_states": False,
    }
    base.update(overrides)
    return Dinov2Config(**base)


def tiny_depth_anything(kind: str = "metric", seed: int = 0) -> Any:
    """A tiny ``DepthAnythingForDepthEstimation`` (``kind``: ``"metric"`` or ``"relative"``)."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    config = DepthAnythingConfig(
        backbone_config=tiny_dinov2_config(image_size=28, patch_size=14, out_indices=[1, 2]),
        reassemble_hidden_size=16,
        neck_hidden_sizes=[8, 16],
        reassemble_factors=[2, 1],
        fusion_hidden_size=8,
        head_hidden_size=4,
        depth_estimation_type=kind,
        max_depth=20,
    )
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(config)
    perturb_weights(model, seed=seed)
    return model.eval()


def tiny_dpt_processor() -> Any:
    """The Depth Anything image processor at a tiny 28 px input size."""
    from transformers import DPTImageProcessor

    return DPTImageProcessor(
        size={"height": 28, "width": 28}, keep_aspect_ratio=True, ensure_multiple_of=14
    )


def write_tiny_depth_anything(path: str | Path, kind: str = "metric", seed: int = 0) -> Path:
    """Save a tiny Depth Anything V2 model + processor in the Hub layout; returns ``path``."""
    root = Path(path)
    tiny_depth_anything(kind, seed).save_pretrained(root)
    tiny_dpt_processor().save_pretrained(root)
    return root
