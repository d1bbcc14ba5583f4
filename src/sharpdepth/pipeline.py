"""SharpDepthPipeline: sharp metric depth from one image (``docs/method.md``, inference)."""

from __future__ import annotations

import logging
import numbers
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from sharpdepth import method
from sharpdepth.accel import InferenceMode, ReleasedPrompt, plan_inference, resolve_mode, stage
from sharpdepth.errors import CheckpointError
from sharpdepth.geometry import scale_intrinsics
from sharpdepth.image_ops import (
    MAX_PROCESSING_RESOLUTION,
    ImageLike,
    as_output,
    images_to_batch,
    pad_to_multiple,
    postprocess,
    preprocess,
    truncate_to_8bit,
)
from sharpdepth.models.checkpoints import CONFIG_FILE as CHECKPOINT_CONFIG_FILE
from sharpdepth.models.checkpoints import (
    load_tiny_vae,
    read_checkpoint_config,
    resolve_checkpoint,
    weight_bytes,
)
from sharpdepth.models.diffusion import DiffusionDepthModel
from sharpdepth.models.metric import (
    MetricDepthModel,
    check_metric_depth,
    load_metric_model,
    spec_runs_code,
)
from sharpdepth.runtime import make_generator, randn, resolve_device

LOGGER = logging.getLogger(__name__)

DEFAULT_PROCESSING_RESOLUTION = 768
DEFAULT_CONFIDENCE_THRESHOLD = 0.5
OUTPUT_TYPES = ("np", "pt")
#: What the metric model sees (step 2): ``"released"``, the resized and padded image
#: truncated to 8 bits, as the authors' release feeds it; ``"resized"``, the unpadded
#: resized image in full precision (its depth is then padded like the image).
METRIC_INPUTS = ("released", "resized")


@dataclass
class SharpDepthOutput:
    """Result of :class:`SharpDepthPipeline` for a batch of ``B`` images of size ``H x W``.

    Arrays are numpy (``output_type="np"``) or torch tensors (``"pt"``).

    Attributes:
        depth: ``[B, H, W]`` float32, the sharp metric depth in metres.
        metric_depth: ``[B, H, W]`` float32, the metric model's depth in metres.
        gate: ``[B, H, W]`` float32 in ``[0, 1]``, the noise-aware gate ``e`` (high where the
            prior and the metric model disagree; ``1 - gate`` is a confidence map).
        sharpened_depth: ``[B, H, W]`` float32, the sharpener's un-aligned depth in the
            decoder's normalised units (about ``[-1, 1]``).
        prior_depth: ``[B, H, W]`` float32, the first (prior) pass's depth ``d_g`` in the
            same normalised units: the single-step diffusion model's affine-invariant
            prediction, e.g. Lotus-G's when the checkpoint is Lotus-G.
        scale: ``[B]`` float64, ``depth = scale * sharpened_depth + shift``.
        shift: ``[B]`` float64, metres.
        intrinsics: ``[B, 3, 3]`` float32 pinhole matrices in input pixels when known
            (given by the user or estimated by the metric model), else ``None``.
        intrinsics_source: ``"user"``, ``"metric_model"`` or ``None``.
        confidence_threshold: the gate threshold used for metric recovery.
    """

    depth: Any
    metric_depth: Any
    gate: Any
    sharpened_depth: Any
    prior_depth: Any
    scale: Any
    shift: Any
    intrinsics: Any | None = None
    intrinsics_source: str | None = None
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD


class SharpDepthPipeline:
    """Sharp metric depth: a metric model's metres with a diffusion prior's edges.

    Args:
        sharpener: the sharpener ``G_theta`` with its autoencoder, schedule and
            conditioning (a :class:`DiffusionDepthModel`); at inference it also plays
            the prior ``f_G`` of the first pass.
        metric_model: the metric depth model ``f_D`` (anything
            :func:`sharpdepth.models.metric.load_metric_model` accepts).
        processing_resolution: default longer side at which the networks run.
        gate_variant: ``"released"`` (default) or ``"paper"``, see ``docs/method.md``
            (inference, step 7).
        confidence_threshold: pixels with gate ``e`` below it are used for metric
            recovery (step 9).
        mode: ``"exact"`` (default), ``"fast"``, ``"fastest"`` or ``"released"`` (see
            :data:`sharpdepth.accel.INFERENCE_MODES`), or an
            :class:`~sharpdepth.accel.InferenceMode`.
        metric_input: what the metric model sees, see :data:`METRIC_INPUTS` (default
            ``"released"``).
    """

    def __init__(
        self,
        sharpener: DiffusionDepthModel,
        metric_model: Any,
        processing_resolution: int = DEFAULT_PROCESSING_RESOLUTION,
        gate_variant: str = "released",
        confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
        mode: str | InferenceMode = "exact",
        metric_input: str = "released",
    ) -> None:
        self.sharpener = sharpener
        self.mode = resolve_mode(mode)
        #: called with the sharpener before each call's encoding; released mode adds the
        #: release's per-call text encoding here (:class:`~sharpdepth.accel.ReleasedPrompt`)
        self.before_encode: list[Any] = []
        self.metric_model: MetricDepthModel = load_metric_model(metric_model)
        self.metric_model.to(sharpener.device)
        _check_options(processing_resolution, gate_variant, confidence_threshold)
        if metric_input not in METRIC_INPUTS:
            raise ValueError(f"metric_input must be one of {METRIC_INPUTS}, got {metric_input!r}")
        self.metric_input = metric_input
        self.processing_resolution = processing_resolution
        self.gate_variant = gate_variant
        self.confidence_threshold = confidence_threshold

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        checkpoint: str | os.PathLike[str] = "nano",
        metric_model: Any = None,
        device: str | torch.device | None = "auto",
        dtype: str | torch.dtype | None = "auto",
        prediction_type: str | None = None,
        revision: str | None = None,
        mode: str | InferenceMode = "exact",
        channels_last: bool | None = None,
        tiny_vae: str | os.PathLike[str] | None = None,
        winograd: bool | None = None,
        int8: bool | None = None,
        trust_remote_code: bool = False,
        **options: Any,
    ) -> SharpDepthPipeline:
        """Load the sharpener from a folder or Hub id and attach a metric model.

        Args:
            checkpoint: ``"nano"`` (default: the bundled nano family, offline), the
                authors' released SharpDepth checkpoint, a Lotus-G depth checkpoint, or a
                folder written by :meth:`save_pretrained` (folder or Hub id).
            metric_model: registry name, Hub id/folder (see
                :func:`~sharpdepth.models.metric.load_metric_model`), model or callable.
                Default: the one recorded in the checkpoint's ``sharpdepth_config.json``.
            device: ``"auto"`` (cuda, then mps, then cpu), or a torch device.
            dtype: ``"auto"`` or a dtype name. Exact mode: float16 on CUDA, else
                float32. Fast modes: :func:`~sharpdepth.accel.modes.fast_precision`
                (bfloat16 or float16 where the device computes it natively; on other CPUs
                float32 arithmetic with bfloat16-stored weights).
            prediction_type: override the UNet parametrisation.
            revision: Hub revision.
            mode: ``"exact"``, ``"fast"``, ``"fastest"`` or ``"released"`` (see
                :data:`sharpdepth.accel.INFERENCE_MODES`), or an
                :class:`~sharpdepth.accel.InferenceMode`; released needs a checkpoint with
                ``text_encoder/`` and ``tokenizer/``.
            channels_last: NHWC layout for the autoencoder (default: on the CPU, where it
                is faster, except in released mode; the same result to float rounding).
            tiny_vae: a TAESD-style tiny autoencoder (folder or Hub id, see
                :func:`~sharpdepth.models.checkpoints.load_tiny_vae`; ``"nano"``: the bundled nano
                family's) to encode and decode with instead of the checkpoint's own, which
                is then not loaded: much faster, not the exact result (any mode but
                released).
            winograd: faster convolution algorithms: Winograd's (or one matrix product)
                for the wide float32 3x3 convolutions where it is faster (see
                :mod:`sharpdepth.accel.winograd`) and the up-sampling stages in sub-pixel form
                (:mod:`sharpdepth.accel.upsampling`); the same result to float rounding.
                Default: on the CPU, except in released mode.
            int8: int8 linear layers and convolutions in the UNet, and int8
                convolutions in a tiny autoencoder (see :mod:`sharpdepth.accel.int8`; x86 CPUs
                only; not the exact result). Default: in
                the fast modes with ``dtype="auto"`` on a CPU that computes them in float32
                (no native bfloat16), where they are the fastest arithmetic available.
            trust_remote_code: let the checkpoint's ``sharpdepth_config.json`` name its
                metric model as ``module:attribute`` or ``file.py:attribute``, which
                imports and runs that code. Off by default: a checkpoint that asks for it
                raises :class:`~sharpdepth.errors.CheckpointError` (a ``metric_model``
                passed here is the caller's own choice and always allowed).
            **options: ``processing_resolution``, ``gate_variant``, ``confidence_threshold``,
                ``metric_input``.
        """
        dev = resolve_device(device)
        # the speed settings of the mode on this device (sharpdepth.accel, docs/speed.md)
        plan = plan_inference(
            mode,
            dev,
            dtype,
            channels_last=channels_last,
            winograd=winograd,
            int8=int8,
            tiny_vae=tiny_vae is not None,
        )
        root = resolve_checkpoint(checkpoint, revision=revision)
        plan.before_loading(weight_bytes(root / "unet"))
        config = read_checkpoint_config(root)
        recorded = _recorded_settings(config, root / CHECKPOINT_CONFIG_FILE)
        if metric_model is None:
            metric_model = _recorded_metric_model(
                config, root / CHECKPOINT_CONFIG_FILE, trust_remote_code
            )
        vae = load_tiny_vae(tiny_vae, plan.compute_dtype) if tiny_vae is not None else None
        released_prompt = ReleasedPrompt(root, dev) if plan.mode.released_costs else None
        sharpener = DiffusionDepthModel.from_pretrained(
            root, torch_dtype=plan.load_dtype, prediction_type=prediction_type, vae=vae
        ).to(dev)
        plan.prepare(sharpener)
        defaults = {**recorded, **options}
        if not isinstance(metric_model, MetricDepthModel) and isinstance(metric_model, str):
            metric_model = load_metric_model(metric_model, device=dev)
        pipe = cls(sharpener, metric_model, mode=plan.mode, **defaults)
        if released_prompt is not None:
            pipe.before_encode.append(released_prompt)
        return pipe

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Save the sharpener and the default options (the metric model by name, if it has one)."""
        extra: dict[str, Any] = {
            "processing_resolution": self.processing_resolution,
            "gate_variant": self.gate_variant,
            "confidence_threshold": self.confidence_threshold,
        }
        spec = getattr(self.metric_model, "spec", None)
        if isinstance(spec, str):
            extra["metric_model"] = spec
        self.sharpener.save_pretrained(path, extra_config=extra)

    def to(self, device: str | torch.device) -> SharpDepthPipeline:
        """Move the networks and the metric model to ``device``."""
        dev = resolve_device(device)
        self.sharpener.to(dev)
        self.metric_model.to(dev)
        return self

    @property
    def device(self) -> torch.device:
        """Device of the sharpener."""
        return self.sharpener.device

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def __call__(
        self,
        images: ImageLike | Sequence[ImageLike],
        intrinsics: torch.Tensor | np.ndarray | None = None,
        processing_resolution: int | None = None,
        gate_variant: str | None = None,
        confidence_threshold: float | None = None,
        seed: int | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        output_type: str = "np",
        allow_constant_metric_depth: bool = True,
    ) -> SharpDepthOutput:
        """Sharp metric depth for one image or a batch of same-sized images.

        Args:
            images: a path, PIL image, numpy array, ``[3, H, W]`` tensor, a list of
                these, or a ``[B, 3, H, W]`` tensor in ``[0, 1]``.
            intrinsics: known ``[3, 3]`` or ``[B, 3, 3]`` pinhole matrices in input pixels;
                passed (rescaled) to metric models that accept them.
            processing_resolution: longer side for the networks (default: the
                pipeline's, 768; 0 = native size).
            gate_variant: ``"released"`` or ``"paper"``.
            confidence_threshold: gate threshold for metric recovery (default 0.5).
            seed: every image gets its own generator seeded with ``seed``, so an image's
                result does not depend on the rest of the batch.
            generator: alternatively one generator (draws for image 0, then 1, ...:
                a batch equals consecutive single calls) or one per image.
            output_type: ``"np"`` (numpy) or ``"pt"`` (torch, on the pipeline's device).
            allow_constant_metric_depth: if ``False``, a constant metric map raises
                :class:`~sharpdepth.errors.InvalidMetricDepthError`; if ``True`` it is
                logged and processed (the result stays finite).

        Returns:
            :class:`SharpDepthOutput`.

        Raises:
            ValueError: bad arguments; InvalidMetricDepthError: the metric model
            returned NaN / inf / non-positive (or constant) depth.
        """
        res = self.processing_resolution if processing_resolution is None else processing_resolution
        variant = cast(method.GateVariant, gate_variant or self.gate_variant)
        threshold = (
            self.confidence_threshold if confidence_threshold is None else confidence_threshold
        )
        _check_options(res, variant, threshold)
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        model = self.sharpener
        device = model.device

        # 1. Resize (anti-aliased) and pad to the autoencoder's multiple.
        with stage("preprocess"):
            rgb = images_to_batch(images).to(device)  # [B, 3, H, W] in [0, 1]
            b = rgb.shape[0]
            _check_native_size(res, rgb.shape[-2], rgb.shape[-1])
            user_k = _check_intrinsics(intrinsics, b, device)
            rgb_res, rgb_pad, geometry = preprocess(rgb, res, model.downsampling_factor)
        sy = geometry.resized_size[0] / geometry.input_size[0]
        sx = geometry.resized_size[1] / geometry.input_size[1]
        generators = _generators(seed, generator, b)

        # 2. Metric depth at processing resolution (metres), at the padded size.
        k_res = scale_intrinsics(user_k, sx, sy) if user_k is not None else None
        # released: what the release feeds its metric model; resized: its depth is padded
        released_input = self.metric_input == "released"
        metric_rgb = truncate_to_8bit(rgb_pad) if released_input else rgb_res  # [B, 3, ., .]
        with stage("metric model"):
            metric = self.metric_model(metric_rgb, k_res)
            d_metric = metric.depth.to(device)
        check_metric_depth(d_metric, allow_constant=allow_constant_metric_depth)
        d = pad_to_multiple(d_metric, model.downsampling_factor)  # [B, 1, h', w']

        # 3. Normalise to [-1, 1].
        d_n = method.normalize_depth(d)

        # 4. Encode image and normalised depth (fast modes: the depth at lower resolution).
        for hook in self.before_encode:
            hook(model)
        z_i, z_d = model.encode_image_and_depth(
            rgb_pad,
            d_n,
            depth_factor=self.mode.depth_encode_factor,
            batched=self.mode.batched_encode(device),
        )  # [B, C, h'/f, w'/f] each

        # Noise, per image in the documented order: eps (prior pass), then eps' (gate).
        eps, eps_gate = _draw_noise(generators, z_i.shape, z_d.shape, device, model.dtype)

        # 5-7. Prior pass (the sharpener plays f_G), noise-aware gate, gated latent.
        gated = model.prior_and_gate(
            z_i,
            z_d,
            d_n,
            eps,
            eps_gate,
            variant,
            decode_factor=self.mode.gate_decode_factor,
            prior_factor=self.mode.prior_factor,
        )
        d_g, e, z_gated = gated.prior_depth, gated.gate, gated.gated_latent  # [B, 1, h', w']

        # 8. Sharpener pass.
        z_hat = model.predict_x0(z_i, z_gated)
        d_hat = model.decode_depth(z_hat)  # [B, 1, h', w']

        # 9. Back to the input size, then metric recovery on confident pixels.
        with stage("align"):
            d_hat_in = postprocess(d_hat, geometry)
            d_in = postprocess(d, geometry)
            e_in = postprocess(e, geometry).clamp(0.0, 1.0)
            scale, shift = method.fit_scale_shift(d_hat_in, d_in, e_in < threshold)
            depth = method.apply_scale_shift(d_hat_in, scale, shift)

        k_out, k_source = _output_intrinsics(user_k, metric.intrinsics, sx, sy)
        with stage("output"):
            return SharpDepthOutput(
                depth=as_output(depth, output_type),
                metric_depth=as_output(d_in, output_type),
                gate=as_output(e_in, output_type),
                sharpened_depth=as_output(d_hat_in, output_type),
                prior_depth=as_output(postprocess(d_g, geometry), output_type),
                scale=scale.cpu().numpy() if output_type == "np" else scale,
                shift=shift.cpu().numpy() if output_type == "np" else shift,
                intrinsics=None
                if k_out is None
                else (k_out.cpu().numpy() if output_type == "np" else k_out),
                intrinsics_source=k_source,
                confidence_threshold=threshold,
            )


#: Pipeline options a checkpoint's ``sharpdepth_config.json`` may record.
RECORDED_OPTIONS = ("processing_resolution", "gate_variant", "confidence_threshold")


def _recorded_settings(config: dict[str, Any], config_path: os.PathLike[str]) -> dict[str, Any]:
    """The pipeline options a checkpoint records, checked like the caller's own.

    Raises:
        CheckpointError: a recorded value is invalid (the message names the file).
    """
    recorded = {key: config[key] for key in RECORDED_OPTIONS if key in config}
    try:
        _check_options(
            recorded.get("processing_resolution", DEFAULT_PROCESSING_RESOLUTION),
            recorded.get("gate_variant", "released"),
            recorded.get("confidence_threshold", DEFAULT_CONFIDENCE_THRESHOLD),
        )
    except ValueError as exc:
        raise CheckpointError(f"{os.fspath(config_path)}: {exc}") from exc
    return recorded


def _recorded_metric_model(
    config: dict[str, Any], config_path: os.PathLike[str], trust_remote_code: bool
) -> str:
    """The metric model a checkpoint records, refused if loading it would run code.

    Raises:
        ValueError: the checkpoint records none.
        CheckpointError: not a name, or a ``module:attribute`` / ``file.py:attribute``
            spec without ``trust_remote_code``.
    """
    spec = config.get("metric_model")
    if spec is None:
        raise ValueError(
            "no metric model given and the checkpoint records none; pass metric_model="
        )
    where = os.fspath(config_path)
    if not isinstance(spec, str) or not spec.strip():
        raise CheckpointError(f"{where}: metric_model must be a model name, got {spec!r}")
    if spec_runs_code(spec) and not trust_remote_code:
        raise CheckpointError(
            f"{where} names the metric model {spec!r}, which would import and run code; a "
            "checkpoint may not run code: choose the metric model yourself (--metric-model, "
            "metric_model=) or, if you trust this checkpoint, pass --trust-remote-code "
            "(trust_remote_code=True)"
        )
    return spec


def _check_options(processing_resolution: int, gate_variant: str, threshold: float) -> None:
    """Validate the pipeline options, raising ``ValueError`` with a clear message."""
    if (
        not isinstance(processing_resolution, int)
        or isinstance(processing_resolution, bool)
        or not 0 <= processing_resolution <= MAX_PROCESSING_RESOLUTION
    ):
        raise ValueError(
            f"processing_resolution must be an int from 0 (native) to "
            f"{MAX_PROCESSING_RESOLUTION}, got {processing_resolution!r}"
        )
    if not isinstance(gate_variant, str) or gate_variant not in method.GATE_VARIANTS:
        raise ValueError(
            f"gate_variant must be one of {method.GATE_VARIANTS}, got {gate_variant!r}"
        )
    if (
        not isinstance(threshold, numbers.Real)
        or isinstance(threshold, bool)
        or not 0.0 < float(threshold) <= 1.0
    ):
        raise ValueError(f"confidence_threshold must be in (0, 1], got {threshold!r}")


def _check_native_size(processing_resolution: int, height: int, width: int) -> None:
    """Native-size processing (resolution 0) is bounded like any other resolution."""
    if processing_resolution == 0 and max(height, width) > MAX_PROCESSING_RESOLUTION:
        raise ValueError(
            f"the image is {width}x{height}; native-size processing (processing_resolution=0) "
            f"is limited to {MAX_PROCESSING_RESOLUTION} pixels on the longer side: pass a "
            "processing_resolution"
        )


def _check_intrinsics(
    intrinsics: torch.Tensor | np.ndarray | None, batch: int, device: torch.device
) -> torch.Tensor | None:
    """Validate user intrinsics and return them as ``[B, 3, 3]`` float32, or ``None``."""
    if intrinsics is None:
        return None
    k = torch.as_tensor(
        np.asarray(intrinsics) if not isinstance(intrinsics, torch.Tensor) else intrinsics
    )
    k = k.to(device=device, dtype=torch.float32)
    if k.shape == (3, 3):
        k = k.unsqueeze(0).expand(batch, 3, 3)
    if k.shape != (batch, 3, 3):
        raise ValueError(f"intrinsics must be [3, 3] or [{batch}, 3, 3], got {tuple(k.shape)}")
    if not torch.isfinite(k).all() or (k[:, 0, 0] <= 0).any() or (k[:, 1, 1] <= 0).any():
        raise ValueError("intrinsics must be finite with positive focal lengths fx, fy")
    return k.contiguous()


def _generators(
    seed: int | None,
    generator: torch.Generator | Sequence[torch.Generator] | None,
    batch: int,
) -> list[torch.Generator]:
    """One generator per image (possibly the same object repeated); see ``__call__``."""
    if seed is not None and generator is not None:
        raise ValueError("pass either seed or generator, not both")
    if generator is None:
        if seed is None:
            shared = make_generator(None)
            return [shared] * batch
        return [make_generator(seed) for _ in range(batch)]
    if isinstance(generator, torch.Generator):
        return [generator] * batch
    gens = list(generator)
    if len(gens) != batch:
        raise ValueError(f"got {len(gens)} generators for {batch} images")
    return gens


def _draw_noise(
    generators: list[torch.Generator],
    prior_shape: torch.Size,
    gate_shape: torch.Size,
    device: torch.device,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``eps`` then ``eps'`` for each image in turn from its generator."""
    eps, eps_gate = [], []
    for gen in generators:
        eps.append(randn((1, *prior_shape[1:]), gen, device, dtype))
        eps_gate.append(randn((1, *gate_shape[1:]), gen, device, dtype))
    return torch.cat(eps), torch.cat(eps_gate)


def _output_intrinsics(
    user_k: torch.Tensor | None, model_k: torch.Tensor | None, sx: float, sy: float
) -> tuple[torch.Tensor | None, str | None]:
    """Intrinsics for the input resolution and where they came from."""
    if user_k is not None:
        return user_k, "user"
    if model_k is not None:
        return scale_intrinsics(model_k.to(torch.float32), 1.0 / sx, 1.0 / sy), "metric_model"
    return None, None
