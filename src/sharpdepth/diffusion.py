"""The latent diffusion depth network: f_G (the prior) or G_theta (the sharpener).

:class:`DiffusionDepthModel` bundles what both roles share: the x0-predicting UNet,
the frozen autoencoder (E, D), the noise schedule, the conditioning timestep
``t = T - 1``, the cached empty-prompt embedding and the depth task label. It owns
the one implementation of "encode", "decode to depth" and "predict x0" used by
inference, training and evaluation, and loads / saves diffusers-layout folders:

* the authors' released SharpDepth checkpoint and Lotus-G depth checkpoints
  (``model_index.json`` + ``unet/ vae/ scheduler/ text_encoder/ tokenizer/``),
* Marigold-style checkpoints (v- or epsilon-prediction UNets, no class label),
* our own layout, which ships ``prompt_embeds.safetensors`` instead of the text
  encoder and a ``sharpdepth_config.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file

from sharpdepth import int8 as int8_layers
from sharpdepth import method
from sharpdepth.attention import use_pooled_attention
from sharpdepth.errors import CheckpointError
from sharpdepth.inplace import (
    use_in_place_geglu,
    use_in_place_relu,
    use_in_place_resnets,
    use_in_place_tiny_blocks,
)
from sharpdepth.int8 import has_int8_layers, quantize_int8
from sharpdepth.io import atomic_write_folder
from sharpdepth.method import depth_task_label
from sharpdepth.profiling import stage
from sharpdepth.runtime import reusing_heap
from sharpdepth.upsampling import use_plain_upsampling, use_subpixel_upsampling
from sharpdepth.weights import check_safetensors, loading_errors, read_json_object
from sharpdepth.winograd import use_direct_convolution, use_winograd

LOGGER = logging.getLogger(__name__)

PredictionType = Literal["sample", "epsilon", "v_prediction"]
PREDICTION_TYPES: tuple[str, ...] = ("sample", "epsilon", "v_prediction")

PROMPT_EMBEDS_FILE = "prompt_embeds.safetensors"
PROMPT_EMBEDS_KEY = "empty_prompt_embeds"
CONFIG_FILE = "sharpdepth_config.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_PATTERNS = [
    "model_index.json",
    CONFIG_FILE,
    PROMPT_EMBEDS_FILE,
    "unet/*.json",
    "unet/*.safetensors",
    "vae/*.json",
    "vae/*.safetensors",
    "scheduler/*",
    "text_encoder/*.json",
    "text_encoder/*.safetensors",
    "tokenizer/*",
]
_HUB_IGNORE = ["*.fp16.*", "*non_ema*", "*.ckpt"]


def resolve_checkpoint(name_or_path: str | os.PathLike[str], revision: str | None = None) -> Path:
    """A local folder for a checkpoint given as a folder path or a Hugging Face Hub id.

    Hub ids are fetched (or taken from the local cache, e.g. with
    ``HF_HUB_OFFLINE=1``) with :func:`huggingface_hub.snapshot_download`, safetensors
    weights only.

    The name ``"nano"`` is the bundled nano SharpDepth checkpoint (package data).

    Raises:
        CheckpointError: the folder does not exist and the id cannot be fetched.
    """
    local, fetched = _local_folder(
        name_or_path, revision, "sharpdepth", _HUB_PATTERNS, "checkpoint", "unet/ and vae/"
    )
    for sub in ("unet", "vae", "text_encoder") if fetched else ():
        folder = local / sub
        if folder.is_dir() and not any(folder.glob("*.safetensors")):
            local = _snapshot(str(name_or_path), revision, [f"{sub}/*.bin"])  # pickles only
    return local


def _local_folder(
    name_or_path: str | os.PathLike[str],
    revision: str | None,
    bundled: str,
    patterns: list[str],
    what: str,
    expected: str,
) -> tuple[Path, bool]:
    """The folder of a model named by ``"nano"``, a local path or a Hub id.

    Args:
        name_or_path: ``"nano"`` (the bundled nano model ``bundled``), a folder, or a
            Hugging Face Hub id (files matching ``patterns`` are fetched).
        revision: Hub revision.
        bundled: the bundled nano model's name (see :func:`sharpdepth.nano.bundled_dir`).
        patterns: what to fetch from the Hub.
        what: the model's description in error messages.
        expected: what the folder should hold, for the error on a file.

    Returns:
        The folder, and whether it was fetched from the Hub (or its cache).

    Raises:
        CheckpointError: bundled model missing, a file, or not found anywhere.
    """
    from sharpdepth.nano import NANO_CHECKPOINT, bundled_available, bundled_dir

    if str(name_or_path) == NANO_CHECKPOINT:
        if not bundled_available(bundled):
            raise CheckpointError(
                f"the bundled nano {what} is missing from {bundled_dir(bundled)} "
                "(was the package installed without its data files?)"
            )
        return bundled_dir(bundled), False
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(
                f"{what} {str(name_or_path)!r} is a file; expected a folder with {expected}"
            )
        return path, False
    return _snapshot(str(name_or_path), revision, patterns), True


def _snapshot(name: str, revision: str | None, patterns: list[str]) -> Path:
    """A Hub repository's files matching ``patterns``, fetched or from the local cache.

    Raises:
        CheckpointError: ``name`` is not a Hub id, or fetching failed.
    """
    if not _HUB_ID.match(name) or name.startswith((".", "/", "~")):
        raise CheckpointError(f"checkpoint {name!r} not found (no such folder)")
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                name, revision=revision, allow_patterns=patterns, ignore_patterns=_HUB_IGNORE
            )
        )
    except Exception as exc:  # network, auth, missing repo: all mean "cannot get it"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {name!r}: no such local folder, and fetching it from the Hugging Face "
            f"Hub failed ({type(exc).__name__}: {reason})"
        ) from exc


def is_tiny_vae(vae: Any) -> bool:
    """Whether ``vae`` is a TAESD-style ``diffusers.AutoencoderTiny``."""
    from diffusers import AutoencoderTiny

    return isinstance(vae, AutoencoderTiny)


def load_tiny_vae(
    name_or_path: str | os.PathLike[str],
    torch_dtype: torch.dtype = torch.float32,
    revision: str | None = None,
) -> Any:
    """A TAESD-style tiny autoencoder (``diffusers.AutoencoderTiny``) for fast inference.

    It replaces the checkpoint's autoencoder in every encode and decode: its latents are
    the big autoencoder's *scaled* latents, so it must have been trained (distilled) for
    the same latent space, e.g. ``madebyollin/taesd`` for SD-2-based checkpoints (Lotus-G,
    SharpDepth) or the nano family's own (``sharpdepth nano train tiny-vae``). At 768 px
    on a 2-core CPU it encodes in about 1.5 s and decodes in 1.7 s, against 12 s and 26 s
    for SD-2's autoencoder; what it does to the depth is measured in the README.

    Args:
        name_or_path: a folder with ``config.json`` and the weights (or with them in
            ``vae/``), a Hugging Face Hub id, or ``"nano"`` (the bundled nano family's).
        torch_dtype: dtype of the weights.
        revision: Hub revision.

    Raises:
        CheckpointError: not found, or not an ``AutoencoderTiny``.
    """
    from diffusers import AutoencoderTiny

    patterns = ["config.json", "*.safetensors", "vae/config.json", "vae/*.safetensors"]
    root, _ = _local_folder(
        name_or_path, revision, "tiny-vae", patterns, "tiny autoencoder", "config.json"
    )
    sub = "" if (root / "config.json").is_file() else "vae"
    config_file = root / sub / "config.json"
    if not config_file.is_file():
        raise CheckpointError(
            f"tiny autoencoder {str(root)!r}: no config.json (or vae/config.json)"
        )
    class_name = _read_json(config_file).get("_class_name")
    if class_name != AutoencoderTiny.__name__:
        raise CheckpointError(
            f"{config_file} describes a {class_name}, not an AutoencoderTiny (TAESD) autoencoder"
        )
    with loading_errors(f"tiny autoencoder {str(root)!r}"):
        return _load_component(AutoencoderTiny, root, sub, torch_dtype)


def _read_json(path: Path) -> dict[str, Any]:
    """Read a JSON object, turning any problem into a :class:`CheckpointError` naming it."""
    return read_json_object(path)


def compute_empty_prompt_embedding(text_encoder: Any, tokenizer: Any) -> torch.Tensor:
    """Encode the empty prompt once, as the released pipelines do (no padding).

    Args:
        text_encoder: a transformers text encoder (e.g. ``CLIPTextModel``).
        tokenizer: its tokenizer.

    Returns:
        ``[1, L, D]`` float32 embedding (L = 2 for CLIP: start and end tokens).
    """
    tokens = tokenizer(
        "",
        padding="do_not_pad",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    device = next(text_encoder.parameters()).device
    with torch.no_grad():
        out = text_encoder(tokens.input_ids.to(device))[0]
    return out.float().cpu()


def _load_text_embedding(root: Path) -> torch.Tensor:
    """The empty-prompt embedding from ``prompt_embeds.safetensors`` or text encoder + tokenizer."""
    stored = root / PROMPT_EMBEDS_FILE
    if stored.is_file():
        check_safetensors(stored)
        with loading_errors(str(stored)):
            tensors = load_file(str(stored))
        if PROMPT_EMBEDS_KEY not in tensors:
            raise CheckpointError(f"{stored}: no tensor named {PROMPT_EMBEDS_KEY!r}")
        return tensors[PROMPT_EMBEDS_KEY].float()
    LOGGER.info("computing the empty-prompt embedding from %s/text_encoder", root)
    text_encoder, tokenizer = load_text_encoder(root)
    embedding = compute_empty_prompt_embedding(text_encoder, tokenizer)
    del text_encoder  # only the cached embedding is kept
    return embedding


def load_text_encoder(root: Path) -> tuple[Any, Any]:
    """``(text_encoder, tokenizer)`` of a released-layout checkpoint folder (float32).

    Raises:
        CheckpointError: the folder has no ``text_encoder/`` and ``tokenizer/``.
    """
    if not ((root / "text_encoder").is_dir() and (root / "tokenizer").is_dir()):
        raise CheckpointError(
            f"{root}: needs either {PROMPT_EMBEDS_FILE} or text_encoder/ and tokenizer/ "
            "to build the empty-prompt embedding"
        )
    from transformers import AutoModel, AutoTokenizer

    for path in (root / "text_encoder").glob("*.safetensors"):
        check_safetensors(path)
    with loading_errors(f"text encoder of checkpoint {str(root)!r}"):
        tokenizer = AutoTokenizer.from_pretrained(root / "tokenizer")
        text_encoder = AutoModel.from_pretrained(root / "text_encoder").eval()
    return text_encoder, tokenizer


def _default_prediction_type(root: Path, model_index: Mapping[str, Any]) -> str:
    """Which parametrisation the UNet's output has, from the checkpoint's metadata.

    Our own config wins; Marigold checkpoints use their scheduler's
    ``prediction_type``; Lotus-G and SharpDepth checkpoints predict x0 ("sample")
    whatever their scheduler config says (the released code uses the output as x0).
    """
    cfg_file = root / CONFIG_FILE
    if cfg_file.is_file():
        value = _read_json(cfg_file).get("prediction_type")
        if value:
            return str(value)
    class_name = str(model_index.get("_class_name", ""))
    if "marigold" in class_name.lower():
        sched = root / "scheduler" / "scheduler_config.json"
        if sched.is_file():
            return str(_read_json(sched).get("prediction_type", "epsilon"))
        return "epsilon"
    return "sample"


@dataclass
class GatedPass:
    """The prior pass and its gate (METHOD.md inference steps 5-7), all ``[B, ...]``.

    Attributes:
        prior_latent: ``z_g``, the prior's x0 latent ``[B, C, h, w]``.
        prior_depth: ``d_g``, its decoded depth ``[B, 1, H, W]`` (normalised units).
        gate: ``e`` in ``[0, 1]``, ``[B, 1, H, W]``.
        gated_latent: ``z'``, the sharpener's depth input ``[B, C, h, w]``.
    """

    prior_latent: torch.Tensor
    prior_depth: torch.Tensor
    gate: torch.Tensor
    gated_latent: torch.Tensor


class DiffusionDepthModel(torch.nn.Module):
    """UNet + autoencoder + schedule + conditioning of a single-step depth diffusion model.

    Args:
        unet: ``diffusers.UNet2DConditionModel`` with ``2 * C`` input channels
            (``[image latent, depth latent]``) and ``C`` output channels.
        vae: ``diffusers.AutoencoderKL`` with ``C`` latent channels; its
            ``scaling_factor`` (and ``shift_factor``, if any) and down-sampling
            factor are read from its config. For inference it may instead be a
            TAESD-style ``diffusers.AutoencoderTiny`` trained for the same latent space
            (see :func:`load_tiny_vae`), whose latents are already scaled.
        scheduler: any diffusers scheduler with ``alphas_cumprod`` and
            ``config.num_train_timesteps`` (only the noise schedule is used).
        prompt_embeds: ``[1, L, D]`` empty-prompt embedding (D = the UNet's
            ``cross_attention_dim``).
        prediction_type: what the UNet outputs: ``"sample"`` (x0, Lotus-G and
            SharpDepth), ``"epsilon"`` or ``"v_prediction"`` (Marigold-style).
    """

    prompt_embeds: torch.Tensor

    def __init__(
        self,
        unet: Any,
        vae: Any,
        scheduler: Any,
        prompt_embeds: torch.Tensor,
        prediction_type: str = "sample",
    ) -> None:
        super().__init__()
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"unknown prediction_type {prediction_type!r}; choose from {PREDICTION_TYPES}"
            )
        self.unet = unet
        self.vae = vae
        self.scheduler = scheduler
        self.prediction_type = prediction_type
        latent_channels = int(vae.config.latent_channels)
        if int(unet.config.in_channels) != 2 * latent_channels:
            raise CheckpointError(
                f"UNet has {unet.config.in_channels} input channels; SharpDepth needs "
                f"2 x {latent_channels} (image latent + depth latent)"
            )
        if int(unet.config.out_channels) != latent_channels:
            raise CheckpointError(
                f"UNet has {unet.config.out_channels} output channels; the autoencoder "
                f"has {latent_channels} latent channels"
            )
        if prompt_embeds.ndim == 2:
            prompt_embeds = prompt_embeds.unsqueeze(0)
        cross_dim = unet.config.cross_attention_dim
        if isinstance(cross_dim, int) and prompt_embeds.shape[-1] != cross_dim:
            raise CheckpointError(
                f"prompt embedding has width {prompt_embeds.shape[-1]}, the UNet expects "
                f"{cross_dim}"
            )
        self.register_buffer("prompt_embeds", prompt_embeds[:1].clone(), persistent=False)
        self.num_train_timesteps = int(scheduler.config.num_train_timesteps)
        self.timestep = self.num_train_timesteps - 1
        self.alpha_bar = float(scheduler.alphas_cumprod[self.timestep])
        self.uses_class_label = unet.config.class_embed_type is not None
        self.compute_dtype: torch.dtype | None = None
        #: run UNet passes in :func:`~sharpdepth.runtime.reusing_heap` (see
        #: :meth:`prepare_inference`)
        self.reuse_heap_in_unet = False

    def alpha_bar_at(self, timestep: int) -> float:
        """``abar_t`` of the noise schedule at ``timestep``."""
        return float(self.scheduler.alphas_cumprod[int(timestep)])

    # ------------------------------------------------------------------ properties
    @property
    def latent_scaling(self) -> float:
        """The autoencoder's latent scaling factor ``s`` (0.18215 for SD-2)."""
        return float(self.vae.config.scaling_factor)

    @property
    def latent_shift(self) -> float:
        """The autoencoder's latent shift factor (0 for SD-2 style autoencoders)."""
        return float(getattr(self.vae.config, "shift_factor", None) or 0.0)

    @property
    def downsampling_factor(self) -> int:
        """Pixels per latent cell along each side: ``2 ** (number of VAE blocks - 1)``."""
        config = self.vae.config
        blocks = getattr(config, "block_out_channels", None) or config.encoder_block_out_channels
        return int(2 ** (len(blocks) - 1))

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the networks: the UNet's parameter dtype, unless the weights
        are stored in a narrower dtype and cast per layer (see :meth:`prepare_inference`)."""
        if self.compute_dtype is not None:
            return self.compute_dtype
        return next(self.unet.parameters()).dtype

    def _vae_dtype(self) -> torch.dtype:
        """Compute dtype of the autoencoder."""
        if self.compute_dtype is not None:
            return self.compute_dtype
        return next(self.vae.parameters()).dtype

    def prepare_inference(
        self,
        compute_dtype: torch.dtype | None = None,
        storage_dtype: torch.dtype | None = None,
        channels_last: bool = False,
        reuse_heap_in_unet: bool = False,
        winograd: bool = False,
        int8: bool = False,
        attention_pool: int = 1,
        attention_pool_levels: int = 1,
        in_place: bool = False,
    ) -> DiffusionDepthModel:
        """Set the networks' precision, memory layout and allocator use for inference.

        Args:
            compute_dtype: dtype the layers compute in (``None``: keep the current one).
            storage_dtype: keep the weights in this narrower dtype and cast each layer to
                ``compute_dtype`` just before it runs (halves weight memory, e.g. bfloat16
                storage with float32 compute on CPUs without bfloat16 arithmetic).
                ``None``: weights are stored in ``compute_dtype``.
            channels_last: NHWC memory layout for the autoencoder's convolutions (1.17x
                faster encodes and decodes on a 2-core AVX2 CPU at 768 px; the UNet is not
                converted: it was slightly slower in that layout there).
            reuse_heap_in_unet: under the lean heap (:func:`~sharpdepth.runtime.use_lean_heap`),
                let each UNet pass reuse freed heap memory instead of faulting in fresh
                mappings (:func:`~sharpdepth.runtime.reusing_heap`). Faster passes, but
                about 0.1-0.25 GB more stays resident afterwards, which adds to a
                full-resolution ``AutoencoderKL`` decode's peak (SD-2 shapes on a 2-core
                CPU: 3.42 -> 3.67 GB in fastest mode); with a tiny autoencoder the peak
                moved 2.43 -> 2.56 GB while a call went from 20-25 s to 16-21 s.
            winograd: faster convolution algorithms: the wide 3x3 convolutions of the UNet
                and the autoencoder by Winograd's algorithm or as one matrix product
                where that is faster (float32 on the CPU; see :mod:`sharpdepth.winograd`),
                and every up-sampling stage (nearest 2x, then a 3x3 convolution) in
                sub-pixel form (:mod:`sharpdepth.upsampling`): the same result up to float
                rounding. ``False`` restores the direct convolution and plain
                up-sampling (except in int8 layers).
            int8: replace the UNet's wide linear layers and convolutions, and a tiny
                autoencoder's convolutions, by int8 ones with dynamically quantised
                inputs (:func:`~sharpdepth.int8.quantize_int8`; x86 CPUs): faster, not
                the exact result, and cannot be undone or saved.
            attention_pool: ``k > 1``: the UNet's first-level self-attention takes its keys
                and values from the tokens pooled ``k x k``
                (:func:`~sharpdepth.attention.use_pooled_attention`; not the exact
                result); ``1`` restores full attention.
            attention_pool_levels: how many attention levels, from the first, are pooled.
            in_place: activations and sums that overwrite tensors nothing else reads
                (:mod:`sharpdepth.inplace`: the UNet's GEGLUs, both networks' residual
                blocks, a tiny autoencoder's ReLUs): the same values to float rounding,
                fewer new buffers. Not undone by ``False``.

        Returns:
            ``self``.
        """
        for net in (self.unet, self.vae):  # before int8: made in sub-pixel form too
            if winograd:
                use_subpixel_upsampling(net)
            else:
                use_plain_upsampling(net)
        if int8:  # first: the float weights of the replaced layers are then not narrowed
            quantize_int8(self.unet)
            if is_tiny_vae(self.vae):
                quantize_int8(self.vae, min_channels=int8_layers.MIN_TINY_AUTOENCODER_CHANNELS)
        if channels_last:  # first: the narrow weight store keeps the layout it is given
            self.vae.to(memory_format=torch.channels_last)
        if compute_dtype is not None and storage_dtype not in (None, compute_dtype):
            for net in (self.unet, self.vae):
                _store_weights_narrow(net, storage_dtype, compute_dtype)
            self.compute_dtype = compute_dtype
        elif compute_dtype is not None:
            for net in (self.unet, self.vae):
                if next(net.parameters()).dtype != compute_dtype:
                    net.to(compute_dtype)
            self.compute_dtype = None
        if in_place:
            if is_tiny_vae(self.vae):
                use_in_place_relu(self.vae)
                use_in_place_tiny_blocks(self.vae)
            use_in_place_geglu(self.unet)
            for net in (self.unet, self.vae):
                use_in_place_resnets(net)
        use_pooled_attention(self.unet, attention_pool, attention_pool_levels)
        for net in (self.unet, self.vae):
            if winograd:
                use_winograd(net)
            else:
                use_direct_convolution(net)
        self.prompt_embeds = self.prompt_embeds.to(self.dtype)
        self.reuse_heap_in_unet = reuse_heap_in_unet
        return self

    @property
    def device(self) -> torch.device:
        """Device of the UNet's parameters."""
        return next(self.unet.parameters()).device

    # ------------------------------------------------------------------ steps
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``E(x).mean`` in scaled latent units (METHOD.md step 4).

        Args:
            x: ``[B, 3, H, W]`` in ``[-1, 1]``, H and W multiples of
                :attr:`downsampling_factor`.

        Returns:
            ``[B, C, H / f, W / f]`` latents in the UNet's dtype.
        """
        with stage("encode"):
            encoded = self.vae.encode(x.to(self._vae_dtype()))
            # AutoencoderKL: a distribution; AutoencoderTiny: latents (scaling factor 1)
            mean = encoded.latents if is_tiny_vae(self.vae) else encoded.latent_dist.mean
            return ((mean - self.latent_shift) * self.latent_scaling).to(self.dtype)

    def encode_image_and_depth(
        self,
        image: torch.Tensor,
        depth_norm: torch.Tensor,
        depth_factor: int = 1,
        batched: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``z_i`` and ``z_d`` (METHOD.md step 4), by default encoded in one batch.

        Args:
            image: ``[B, 3, H, W]`` in ``[0, 1]``.
            depth_norm: ``[B, 1, H, W]`` normalised metric depth ``d_n`` in ``[-1, 1]``.
            depth_factor: 1 (exact). ``k > 1`` (fast mode): encode ``d_n`` down-sampled
                ``k`` times (area) and up-sample its latent bilinearly: the metric model's
                depth is smooth, and the encoder costs ``k^2`` times less.
            batched: one encoder call for both (faster on GPUs); ``False``: two calls, the
                same result with half the peak activation memory (as fast on CPUs).

        Returns:
            Two ``[B, C, H / f, W / f]`` latents.
        """
        b = image.shape[0]
        f = self.downsampling_factor
        h, w = depth_norm.shape[-2:]
        exact_depth = depth_factor == 1 or bool(h % (f * depth_factor) or w % (f * depth_factor))
        if exact_depth and batched:
            latents = self.encode(torch.cat([image * 2.0 - 1.0, depth_norm.repeat(1, 3, 1, 1)]))
            return latents[:b], latents[b:]
        z_i = self.encode(image * 2.0 - 1.0)
        if exact_depth:
            return z_i, self.encode(depth_norm.repeat(1, 3, 1, 1))
        small = torch.nn.functional.avg_pool2d(depth_norm, depth_factor)
        z_small = self.encode(small.repeat(1, 3, 1, 1))
        z_d = torch.nn.functional.interpolate(
            z_small.float(), size=z_i.shape[-2:], mode="bilinear", align_corners=False
        )
        return z_i, z_d.to(z_i.dtype)

    def prior_and_gate(
        self,
        image_latent: torch.Tensor,
        depth_latent: torch.Tensor,
        depth_norm: torch.Tensor,
        noise: torch.Tensor,
        gate_noise: torch.Tensor,
        variant: method.GateVariant,
        unet: Any | None = None,
        decode_factor: int = 1,
        prior_factor: int = 1,
    ) -> GatedPass:
        """Prior pass, noise-aware gate and gated latent (METHOD.md steps 5-7).

        Args:
            image_latent: ``z_i``.
            depth_latent: ``z_d``.
            depth_norm: ``d_n``, ``[B, 1, H, W]``.
            noise: ``eps`` for the prior pass (shape of ``z_i``).
            gate_noise: ``eps'`` for the gated latent (shape of ``z_d``).
            variant: ``"released"`` or ``"paper"``.
            unet: the UNet playing the prior (default: this model's own).
            decode_factor: 1 (exact). ``k > 1`` (fast mode): ``d_g`` is decoded at ``1 / k``
                resolution (``z_g`` average-pooled) and up-sampled bilinearly; the gate
                only needs coarse depth, and the decoder costs ``k^2`` times less.
            prior_factor: 1 (exact). ``k > 1`` (fastest mode): the prior pass itself runs at
                ``1 / k`` latent resolution, on ``z_i`` and ``eps`` average-pooled ``k``
                times (``eps`` multiplied by ``k`` to keep unit variance), and ``z_g`` is
                up-sampled bilinearly for the gated latent; the UNet costs about ``k^2``
                times less. At ``t = T - 1`` the gated latent keeps only
                ``sqrt(abar_t) ~ 0.07`` of ``z_g``, so its detail hardly matters there.
                Ignored when the latent size is not a multiple of ``k``.
        """
        h, w = image_latent.shape[-2:]
        k = prior_factor if prior_factor > 1 and h % prior_factor == 0 == w % prior_factor else 1
        pool = torch.nn.functional.avg_pool2d
        if k == 1:
            z_g = latent = self.predict_x0(image_latent, noise, unet=unet)
        else:
            latent = self.predict_x0(pool(image_latent, k), pool(noise, k) * k, unet=unet)
            z_g = torch.nn.functional.interpolate(
                latent, size=(h, w), mode="bilinear", align_corners=False
            )
        # Decode at 1 / decode_factor resolution (when that divides): pool what is left.
        rest = max(1, decode_factor // k)
        if rest > 1 and latent.shape[-2] % rest == 0 == latent.shape[-1] % rest:
            latent = pool(latent, rest)
        if latent.shape[-2:] == (h, w):
            d_g = self.decode_depth(latent)
        else:
            d_g = torch.nn.functional.interpolate(
                self.decode_depth(latent),
                size=depth_norm.shape[-2:],
                mode="bilinear",
                align_corners=False,
            )
        e = method.noise_aware_gate(d_g, depth_norm)
        m = method.gate_to_latent(e, (int(depth_latent.shape[-2]), int(depth_latent.shape[-1])))
        z_gated = method.gated_latent(z_g, depth_latent, m, gate_noise, self.alpha_bar, variant)
        return GatedPass(prior_latent=z_g, prior_depth=d_g, gate=e, gated_latent=z_gated)

    def decode_depth(self, z: torch.Tensor) -> torch.Tensor:
        """Channel mean of ``D(z / s)``: a latent back to a depth map in normalised units.

        Args:
            z: ``[B, C, h, w]`` scaled latents.

        Returns:
            ``[B, 1, h * f, w * f]`` float32, about ``[-1, 1]``.
        """
        with stage("decode"):
            z = z.to(self._vae_dtype()) / self.latent_scaling + self.latent_shift
            image = self.vae.decode(z).sample
            return image.float().mean(dim=1, keepdim=True)

    def predict_x0(
        self,
        image_latent: torch.Tensor,
        depth_input: torch.Tensor,
        unet: Any | None = None,
        timestep: int | None = None,
    ) -> torch.Tensor:
        """One UNet pass, returned as an x0 (clean depth latent) estimate.

        Args:
            image_latent: ``[B, C, h, w]`` ``z_i``.
            depth_input: ``[B, C, h, w]`` the depth channel input (noise, or the
                gated latent ``z'``); treated as ``x_t`` when converting epsilon- or
                v-predictions to x0.
            unet: another UNet of the same architecture to run instead of this model's
                own (training: the student, its EMA copy); default: ``self.unet``.
            timestep: conditioning timestep (default ``T - 1``, as at inference).

        Returns:
            ``[B, C, h, w]`` in the UNet's dtype.
        """
        unet = self.unet if unet is None else unet
        t_cond = self.timestep if timestep is None else int(timestep)
        b = image_latent.shape[0]
        dtype = self.dtype
        unet_in = torch.cat([image_latent.to(dtype), depth_input.to(dtype)], dim=1)
        timesteps = torch.full((b,), t_cond, device=unet_in.device, dtype=torch.long)
        context = self.prompt_embeds.to(device=unet_in.device, dtype=dtype).expand(b, -1, -1)
        labels = depth_task_label(b, unet_in.device, dtype) if self.uses_class_label else None
        heap = reusing_heap() if self.reuse_heap_in_unet else contextlib.nullcontext()
        with stage("unet"), heap:
            out = unet(
                unet_in, timesteps, encoder_hidden_states=context, class_labels=labels
            ).sample
        if self.prediction_type == "sample":
            return out
        alpha_bar = self.alpha_bar_at(t_cond)
        a, s = math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)
        x_t = depth_input.to(dtype)
        if self.prediction_type == "epsilon":
            return (x_t - s * out) / a
        return a * x_t - s * out  # v_prediction

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike[str],
        torch_dtype: torch.dtype = torch.float32,
        prediction_type: str | None = None,
        revision: str | None = None,
        vae: Any | None = None,
    ) -> DiffusionDepthModel:
        """Load from a diffusers-layout folder or Hub id (see the module docstring).

        Args:
            name_or_path: local folder or Hugging Face Hub id.
            torch_dtype: dtype of the UNet and autoencoder weights.
            prediction_type: override the UNet parametrisation (default: from the
                checkpoint's metadata, x0 for Lotus-G / SharpDepth).
            revision: Hub revision.
            vae: use this autoencoder instead of the checkpoint's ``vae/``.

        Raises:
            CheckpointError: missing folder, missing component, incompatible shapes.
        """
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

        root = resolve_checkpoint(name_or_path, revision=revision)
        model_index = (
            _read_json(root / "model_index.json") if (root / "model_index.json").is_file() else {}
        )
        needed = ["unet", "scheduler"] + ([] if vae is not None else ["vae"])
        missing = [name for name in needed if not (root / name).is_dir()]
        if missing:
            raise CheckpointError(
                f"checkpoint {str(root)!r} lacks {', '.join(m + '/' for m in missing)}; expected a "
                "diffusers layout with unet/, vae/, scheduler/ and text_encoder/ + tokenizer/ "
                f"(or {PROMPT_EMBEDS_FILE})"
            )
        # the text encoder (if any) runs and is freed before the UNet is loaded: lower peak
        embeds = _load_text_embedding(root)
        with loading_errors(f"checkpoint {str(root)!r}"):
            unet = _load_component(UNet2DConditionModel, root, "unet", torch_dtype)
            if vae is None:
                vae = _load_component(AutoencoderKL, root, "vae", torch_dtype)
            sched_cfg = DDPMScheduler.load_config(root, subfolder="scheduler")
            scheduler = DDPMScheduler.from_config(sched_cfg)
        ptype = prediction_type or _default_prediction_type(root, model_index)
        LOGGER.info(
            "loaded %s (%s layout, prediction type %s)",
            root,
            model_index.get("_class_name", "unknown"),
            ptype,
        )
        with loading_errors(f"checkpoint {str(root)!r}"):
            model = cls(unet, vae, scheduler, embeds.to(torch_dtype), prediction_type=ptype)
        return model.eval()

    def save_pretrained(
        self, path: str | os.PathLike[str], extra_config: Mapping[str, Any] | None = None
    ) -> None:
        """Write our diffusers-style layout atomically (folder swapped in when complete).

        The folder holds ``unet/``, ``vae/``, ``scheduler/``, ``prompt_embeds.safetensors``,
        ``model_index.json`` and ``sharpdepth_config.json`` (prediction type plus
        ``extra_config``); no text encoder is needed to load it.
        """
        import diffusers

        from sharpdepth import __version__

        if is_tiny_vae(self.vae):
            raise ValueError(
                "this model decodes with a tiny autoencoder (inference only); save the one "
                "loaded with the checkpoint's own autoencoder"
            )
        if has_int8_layers(self.unet):
            raise ValueError(
                "this model's UNet has int8 layers (inference only); save one loaded without int8"
            )

        def write(tmp: Path) -> None:
            self.unet.save_pretrained(tmp / "unet")
            self.vae.save_pretrained(tmp / "vae")
            self.scheduler.save_pretrained(tmp / "scheduler")
            save_file(
                {PROMPT_EMBEDS_KEY: self.prompt_embeds.detach().float().cpu().contiguous()},
                str(tmp / PROMPT_EMBEDS_FILE),
            )
            index = {
                "_class_name": "SharpDepthPipeline",
                "_diffusers_version": diffusers.__version__,
                "_sharpdepth_version": __version__,
                "unet": ["diffusers", type(self.unet).__name__],
                "vae": ["diffusers", type(self.vae).__name__],
                "scheduler": ["diffusers", type(self.scheduler).__name__],
            }
            (tmp / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
            config = {"prediction_type": self.prediction_type, **dict(extra_config or {})}
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")

        atomic_write_folder(path, write)


_ARENA_ALIGN = 16  # elements: each widened tensor starts on a 64-byte boundary (float32)


def _dense(t: torch.Tensor) -> bool:
    """Whether ``t`` covers its elements without gaps (contiguous or channels-last)."""
    return t.is_contiguous() or (t.ndim == 4 and t.is_contiguous(memory_format=torch.channels_last))


def _arena_size(params: list[torch.Tensor]) -> int:
    """Elements of the arena holding one layer's widened parameters (aligned offsets)."""
    return sum(-(-p.numel() // _ARENA_ALIGN) * _ARENA_ALIGN for p in params)


def _store_weights_narrow(
    net: torch.nn.Module, storage_dtype: torch.dtype, compute_dtype: torch.dtype
) -> None:
    """Keep convolution and linear weights in ``storage_dtype``, computing in ``compute_dtype``.

    Each convolution / linear layer's weights are widened into one ``compute_dtype``
    buffer (the size of the largest layer's) just before it runs and swapped back right
    after, so one layer's weights are held in the wide dtype at a time and the widening
    does not allocate per layer (no page faults; SD-2's UNet pass on a 2-core CPU, two
    runs each: 14.0-15.4 s with a fresh allocation per layer, 11.8-14.5 s with the
    buffer). The buffer is allocated at the first layer and released when ``net``'s
    ``forward`` returns (the UNet's 118 MB are not kept during the decodes; the
    autoencoder, run through ``encode`` / ``decode``, keeps its small one). The small
    remaining layers (norms, embeddings) are kept in ``compute_dtype``. Works whatever
    dtype the network was loaded in (load it in ``storage_dtype`` to keep the peak low).
    The network then runs one forward pass at a time (the pipeline, the CLI and the demo
    call it so).
    """
    heavy = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    size = max((_arena_size(list(m.parameters(recurse=False))) for m in heavy), default=0)
    device = next(net.parameters()).device
    arena: list[torch.Tensor] = []  # the buffer while ``net`` runs
    heavy_ids = {id(m) for m in heavy}
    held: dict[int, list[torch.Tensor]] = {}  # narrow weights of the layer running now

    def widen(module: torch.nn.Module, args: Any) -> None:
        params = list(module.parameters(recurse=False))
        held[id(module)] = [param.data for param in params]
        if not arena:
            arena.append(torch.empty(size, dtype=compute_dtype, device=device))
        offset = 0
        for param in params:
            narrow = param.data
            if not _dense(narrow):
                param.data = narrow.to(compute_dtype)
                continue
            wide = arena[0][offset : offset + narrow.numel()].as_strided(
                narrow.shape, narrow.stride()
            )
            param.data = wide.copy_(narrow)
            offset += _arena_size([narrow])

    def narrow_again(module: torch.nn.Module, args: Any, output: Any) -> None:
        narrow = held.pop(id(module))
        for param, data in zip(module.parameters(recurse=False), narrow, strict=True):
            param.data = data

    def release(module: torch.nn.Module, args: Any, output: Any) -> None:
        arena.clear()

    net.register_forward_hook(release)
    for module in net.modules():
        params = list(module.parameters(recurse=False))
        if id(module) in heavy_ids:
            for param in params:
                param.data = param.data.to(storage_dtype)
            module.register_forward_pre_hook(widen)
            module.register_forward_hook(narrow_again)
        else:
            for param in params:
                param.data = param.data.to(compute_dtype)
            for name, buf in module.named_buffers(recurse=False):
                if buf.is_floating_point():
                    module.register_buffer(name, buf.to(compute_dtype))


_SAFETENSORS_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _weight_files(folder: Path) -> list[Path] | None:
    """The safetensors files of a diffusers model folder (one, or the shards of an index)."""
    single = folder / "diffusion_pytorch_model.safetensors"
    if single.is_file():
        return [single]
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    if index.is_file():
        weight_map = _read_json(index).get("weight_map", {})
        names = weight_map.values() if isinstance(weight_map, dict) else [None]
        if not all(isinstance(n, str) and n and Path(n).name == n for n in names):
            raise CheckpointError(f"{index}: weight_map must name files in {folder}")
        return [folder / name for name in sorted(set(names))] or None
    return None


def weight_bytes(folder: Path) -> int:
    """Size (bytes) of the safetensors weights of a diffusers model folder (0 if none)."""
    total = 0
    for path in _weight_files(Path(folder)) or []:
        try:
            total += path.stat().st_size
        except OSError:  # reported when the weights are loaded
            continue
    return total


def read_safetensors_as(path: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Read a safetensors file tensor by tensor, casting floating tensors to ``dtype``.

    Plain reads instead of a memory map: the file's pages never count towards this
    process's resident memory, so the peak is the converted weights plus one tensor in
    the stored dtype (memory-mapping a float32 file to cast it to bfloat16 holds both).
    """
    out: dict[str, torch.Tensor] = {}
    header = check_safetensors(path)
    with open(path, "rb") as f:
        start = 8 + int.from_bytes(f.read(8), "little")
        for name, info in header.items():
            if name == "__metadata__":
                continue
            stored = _SAFETENSORS_DTYPES.get(info["dtype"])
            if stored is None:
                raise CheckpointError(
                    f"{path}: tensor {name} has unsupported dtype {info['dtype']}"
                )
            begin, end = info["data_offsets"]
            buffer = bytearray(end - begin)
            f.seek(start + begin)
            if f.readinto(buffer) != len(buffer):
                raise CheckpointError(f"{path}: truncated file (tensor {name})")
            tensor = (
                torch.frombuffer(buffer, dtype=stored) if buffer else torch.empty(0, dtype=stored)
            )
            tensor = tensor.reshape(info["shape"])
            if tensor.is_floating_point() and stored != dtype:
                tensor = tensor.to(dtype)
            else:
                tensor = tensor.clone()
            out[name] = tensor
    return out


def _load_component(model_cls: Any, root: Path, subfolder: str, dtype: torch.dtype) -> Any:
    """A diffusers model from ``root/subfolder`` in ``dtype``.

    When the weights must be cast (e.g. a float32 checkpoint loaded in bfloat16), they
    are streamed with :func:`read_safetensors_as` into a model built on the meta device,
    so loading never holds both copies; otherwise diffusers' own loader is used.
    """
    folder = root / subfolder
    files = _weight_files(folder)
    stored_dtypes: set[str] = set()
    for path in files or []:
        header = check_safetensors(path)
        stored_dtypes |= {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    wanted = next(k for k, v in _SAFETENSORS_DTYPES.items() if v == dtype)
    if not files or stored_dtypes <= {wanted}:
        with loading_errors(str(folder)):
            return model_cls.from_pretrained(root, subfolder=subfolder, torch_dtype=dtype)
    from accelerate import init_empty_weights

    with loading_errors(str(folder)):
        with init_empty_weights():
            model = model_cls.from_config(model_cls.load_config(folder))
        state: dict[str, torch.Tensor] = {}
        for path in files:
            state.update(read_safetensors_as(path, dtype))
        model.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise CheckpointError(f"{folder}: some weights are missing from the checkpoint")
    return model.eval()


def read_checkpoint_config(root: Path) -> dict[str, Any]:
    """``sharpdepth_config.json`` of a resolved checkpoint folder, or ``{}``."""
    cfg = root / CONFIG_FILE
    return _read_json(cfg) if cfg.is_file() else {}
