"""The latent diffusion depth network: f_G (the prior) or G_theta (the sharpener).

:class:`DiffusionDepthModel` bundles what both roles share: the x0-predicting UNet,
the frozen autoencoder (E, D), the noise schedule, the conditioning timestep
``t = T - 1``, the cached empty-prompt embedding and the depth task label. It owns
the one implementation of "encode", "decode to depth" and "predict x0" used by
inference, training and evaluation (``docs/method.md``). Checkpoints are read and
written by :mod:`sharpdepth.models.checkpoints`; speed settings are applied from outside
by :func:`sharpdepth.accel.prepare`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from sharpdepth import method
from sharpdepth.accel import has_int8_layers, reusing_heap, stage
from sharpdepth.errors import CheckpointError
from sharpdepth.method import depth_task_label
from sharpdepth.models.checkpoints import (
    is_tiny_vae,
    load_components,
    write_checkpoint,
)
from sharpdepth.weights import loading_errors

LOGGER = logging.getLogger(__name__)

PredictionType = Literal["sample", "epsilon", "v_prediction"]
PREDICTION_TYPES: tuple[str, ...] = ("sample", "epsilon", "v_prediction")


@dataclass
class GatedPass:
    """The prior pass and its gate (inference steps 5-7 of ``docs/method.md``), all ``[B, ...]``.

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
        #: set by :func:`sharpdepth.accel.prepare` when the weights are stored in a narrower
        #: dtype than the layers compute in
        self.compute_dtype: torch.dtype | None = None
        #: set by :func:`sharpdepth.accel.prepare`: run UNet passes in
        #: :func:`~sharpdepth.accel.memory.reusing_heap`
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
        are stored in a narrower dtype and cast per layer (see :func:`sharpdepth.accel.prepare`)."""
        if self.compute_dtype is not None:
            return self.compute_dtype
        return next(self.unet.parameters()).dtype

    def _vae_dtype(self) -> torch.dtype:
        """Compute dtype of the autoencoder."""
        if self.compute_dtype is not None:
            return self.compute_dtype
        return next(self.vae.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """Device of the UNet's parameters."""
        return next(self.unet.parameters()).device

    # ------------------------------------------------------------------ steps
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``E(x).mean`` in scaled latent units (inference step 4).

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
        """``z_i`` and ``z_d`` (inference step 4), by default encoded in one batch.

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
        gate_normalization: str = "image",
    ) -> GatedPass:
        """Prior pass, noise-aware gate and gated latent (inference steps 5-7).

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
            gate_normalization: ``"image"`` or ``"batch"``, see
                :func:`sharpdepth.method.noise_aware_gate`.
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
        e = method.noise_aware_gate(d_g, depth_norm, gate_normalization)
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
        """Load from ``"nano"``, a diffusers-layout folder or a Hub id; the arguments are
        those of :func:`~sharpdepth.models.checkpoints.load_components`.

        Raises:
            CheckpointError: missing folder, missing component, incompatible shapes.
        """
        parts = load_components(name_or_path, torch_dtype, prediction_type, revision, vae)
        with loading_errors(f"checkpoint {str(parts.root)!r}"):
            model = cls(
                parts.unet,
                parts.vae,
                parts.scheduler,
                parts.prompt_embeds,
                prediction_type=parts.prediction_type,
            )
        return model.eval()

    def save_pretrained(
        self, path: str | os.PathLike[str], extra_config: Mapping[str, Any] | None = None
    ) -> None:
        """Write our diffusers-style layout atomically
        (:func:`~sharpdepth.models.checkpoints.write_checkpoint`); ``sharpdepth_config.json``
        holds the prediction type plus ``extra_config``."""
        if is_tiny_vae(self.vae):
            raise ValueError(
                "this model decodes with a tiny autoencoder (inference only); save the one "
                "loaded with the checkpoint's own autoencoder"
            )
        if has_int8_layers(self.unet):
            raise ValueError(
                "this model's UNet has int8 layers (inference only); save one loaded without int8"
            )
        config = {"prediction_type": self.prediction_type, **dict(extra_config or {})}
        write_checkpoint(path, self.unet, self.vae, self.scheduler, self.prompt_embeds, config)
