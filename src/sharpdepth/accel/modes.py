"""Inference modes and the plan that turns a mode and a device into speed settings.

A mode says how much of the exact computation (``docs/method.md``) the pipeline trades
for speed; :func:`plan_inference` decides, from the mode, the device and the caller's
explicit choices, the precision, the layer swaps and the memory handling that
:func:`sharpdepth.accel.prepare` then applies. Measurements behind the choices are in
``docs/speed.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from sharpdepth.accel.memory import use_lean_heap
from sharpdepth.runtime import resolve_dtype

#: The lean heap pays for large models only: at SD-2 size (865 M UNet parameters, 768 px)
#: it cut the fast mode's peak memory from 3.91 to 3.40 GB for a few percent of time; at
#: the nano size (4 M) the page faults of the freshly mapped buffers doubled a call's time.
#: Decided from the size of the UNet's weight files (bytes), before anything is loaded.
LEAN_HEAP_MIN_UNET_BYTES = 256 * 2**20


@dataclass(frozen=True)
class InferenceMode:
    """How much of the exact computation the pipeline trades for speed.

    Attributes:
        name: ``"exact"``, ``"fast"``, ``"fastest"`` or ``"released"``.
        depth_encode_factor: ``d_n`` is encoded at ``1 / k`` resolution and its latent
            up-sampled (1 = exact), see
            :meth:`~sharpdepth.models.diffusion.DiffusionDepthModel.encode_image_and_depth`.
        gate_decode_factor: the prior's depth for the gate is decoded at ``1 / k``
            resolution (1 = exact), see
            :meth:`~sharpdepth.models.diffusion.DiffusionDepthModel.prior_and_gate`.
        prior_factor: the prior pass runs at ``1 / k`` latent resolution (1 = exact), see
            :meth:`~sharpdepth.models.diffusion.DiffusionDepthModel.prior_and_gate`.
        attention_pool: the self-attention at the UNet's first attention level takes its
            keys and values from the tokens average-pooled ``k x k`` (1 = exact), see
            :mod:`sharpdepth.accel.attention`.
        attention_pool_levels: how many attention levels, from the first, are pooled.
        reduced_precision: with ``dtype="auto"``, compute in the device's fast precision
            (:func:`fast_precision`) instead of float32.
        lean_heap: on the CPU, for UNet weight files of at least
            :data:`LEAN_HEAP_MIN_UNET_BYTES`, return large freed buffers to the OS
            at once (:func:`~sharpdepth.accel.memory.use_lean_heap`, process-wide), which
            lowers peak resident memory.
        released_costs: reproduce the released implementation's costs (float32, the text
            encoder run on every call, image and depth encoded separately, none of the
            CPU speed-ups): the reference ``sharpdepth speed`` measures against.
    """

    name: str
    depth_encode_factor: int = 1
    gate_decode_factor: int = 1
    prior_factor: int = 1
    attention_pool: int = 1
    attention_pool_levels: int = 1
    reduced_precision: bool = False
    lean_heap: bool = False
    released_costs: bool = False

    def batched_encode(self, device: torch.device) -> bool:
        """Whether image and depth are encoded in one call: on GPUs (faster); on CPUs two
        calls are as fast with half the peak memory, and the release makes two."""
        return device.type != "cpu" and not self.released_costs


_FAST = InferenceMode(
    "fast",
    depth_encode_factor=2,
    gate_decode_factor=2,
    attention_pool=2,  # one level: see docs/speed.md's quality table for two
    reduced_precision=True,
    lean_heap=True,
)

#: ``exact``: ``docs/method.md`` to float rounding. ``fast``: depth encode and gate decode
#: at half resolution, first-level self-attention with keys and values pooled 2 x 2, plus
#: lower precision where the device computes it natively, or int8 layers on other x86 CPUs
#: (see :func:`plan_inference`). ``fastest``: ``fast`` with the prior pass at half
#: resolution too (faster UNet pass, larger departure from exact). ``released``: the exact
#: result with the cost structure of the authors' release (float32, text encoder kept and
#: run on every call, image and depth encoded separately), the reference
#: ``sharpdepth speed`` measures speed-ups against.
INFERENCE_MODES: dict[str, InferenceMode] = {
    "exact": InferenceMode("exact"),
    "fast": _FAST,
    "fastest": replace(_FAST, name="fastest", prior_factor=2),
    "released": InferenceMode("released", released_costs=True),
}


def resolve_mode(mode: str | InferenceMode) -> InferenceMode:
    """An :class:`InferenceMode` from its name (``ValueError`` for an unknown one)."""
    if isinstance(mode, InferenceMode):
        return mode
    if mode not in INFERENCE_MODES:
        raise ValueError(f"mode must be one of {tuple(INFERENCE_MODES)}, got {mode!r}")
    return INFERENCE_MODES[mode]


def cpu_has_fast_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512-BF16 / AMX); else it is emulated
    and much slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def fast_precision(device: torch.device) -> tuple[torch.dtype, torch.dtype]:
    """``(compute dtype, weight storage dtype)`` of fast mode on ``device``.

    CUDA and MPS: float16 for both. A CPU with native bfloat16: bfloat16 for both. Any
    other CPU: float32 arithmetic (bfloat16 would be emulated, several times slower) with
    the weights stored in bfloat16, which halves their memory.
    """
    if device.type in ("cuda", "mps"):
        return torch.float16, torch.float16
    if cpu_has_fast_bfloat16():
        return torch.bfloat16, torch.bfloat16
    return torch.float32, torch.bfloat16


@dataclass(frozen=True)
class InferencePlan:
    """What :func:`plan_inference` decided for one pipeline.

    Attributes:
        mode: the inference mode.
        device: where the networks run.
        compute_dtype: the dtype the layers compute in.
        storage_dtype: a narrower dtype the weights are kept in (cast per layer), or
            ``None``.
        channels_last: NHWC layout for the autoencoder.
        winograd: Winograd / matrix-product convolutions and sub-pixel up-sampling.
        int8: int8 layers in the UNet (and a tiny autoencoder).
        tiny_vae: a tiny autoencoder replaces the checkpoint's.
    """

    mode: InferenceMode
    device: torch.device
    compute_dtype: torch.dtype
    storage_dtype: torch.dtype | None
    channels_last: bool
    winograd: bool
    int8: bool
    tiny_vae: bool

    @property
    def load_dtype(self) -> torch.dtype:
        """The dtype to load the weights in (the storage dtype, when there is one)."""
        return self.storage_dtype or self.compute_dtype

    def before_loading(self, unet_bytes: int) -> None:
        """Process-wide settings to make before the weights are loaded: the lean heap
        (:data:`LEAN_HEAP_MIN_UNET_BYTES`), or the loading's heap would stay resident."""
        lean = self.mode.lean_heap and self.device.type == "cpu"
        if lean and unet_bytes >= LEAN_HEAP_MIN_UNET_BYTES:
            use_lean_heap()

    def prepare(self, model: Any) -> Any:
        """Apply the plan to a loaded :class:`~sharpdepth.models.diffusion.DiffusionDepthModel`
        with :func:`sharpdepth.accel.prepare`; returns it."""
        from sharpdepth.accel.preparation import prepare

        # A tiny autoencoder leaves the UNet passes as nearly all of the time and no large
        # decode whose peak the reused heap would add to (see prepare).
        return prepare(
            model,
            self.compute_dtype,
            self.storage_dtype,
            channels_last=self.channels_last,
            reuse_heap_in_unet=self.tiny_vae,
            winograd=self.winograd,
            int8=self.int8,
            attention_pool=self.mode.attention_pool,
            attention_pool_levels=self.mode.attention_pool_levels,
            in_place=not self.mode.released_costs,
        )


def plan_inference(
    mode: str | InferenceMode,
    device: torch.device,
    dtype: str | torch.dtype | None = "auto",
    channels_last: bool | None = None,
    winograd: bool | None = None,
    int8: bool | None = None,
    tiny_vae: bool = False,
) -> InferencePlan:
    """Decide precision, layout, layer swaps and memory handling for a pipeline.

    Args:
        mode: the inference mode (name or :class:`InferenceMode`).
        device: the resolved device.
        dtype: ``"auto"`` or a dtype name. Exact mode: float16 on CUDA, else float32.
            Fast modes: :func:`fast_precision`. Released mode: float32 only.
        channels_last: default: on the CPU, except in released mode.
        winograd: default: on the CPU, except in released mode.
        int8: default: in the fast modes with ``dtype="auto"`` on a CPU that computes
            them in float32 (no native bfloat16) where the int8 operators exist.
        tiny_vae: whether a tiny autoencoder is used (not in released mode).

    Raises:
        ValueError: an unknown mode, a dtype other than float32 in released mode, int8 off
            the CPU or in released mode, a tiny autoencoder in released mode.
    """
    inference_mode = resolve_mode(mode)
    storage_dtype: torch.dtype | None = None
    auto_fast = inference_mode.reduced_precision and (dtype is None or dtype == "auto")
    if auto_fast:
        compute_dtype, storage_dtype = fast_precision(device)
    elif inference_mode.released_costs:
        if dtype not in (None, "auto") and resolve_dtype(dtype, device) != torch.float32:
            raise ValueError("released mode reproduces the release's float32 costs: dtype")
        compute_dtype = torch.float32
    else:
        compute_dtype = resolve_dtype(dtype, device)
    # CPU-only speed-ups, off in released mode (it measures the release's costs)
    cpu_speedups = device.type == "cpu" and not inference_mode.released_costs
    if channels_last is None:
        channels_last = cpu_speedups
    if winograd is None:
        winograd = cpu_speedups
    if int8 is None:
        from sharpdepth.accel.int8 import int8_available

        int8 = auto_fast and cpu_speedups and compute_dtype == torch.float32 and int8_available()
    elif int8 and not cpu_speedups:
        raise ValueError("int8 layers run on the CPU and not in released mode: int8")
    if tiny_vae and inference_mode.released_costs:
        raise ValueError("released mode measures the checkpoint's own autoencoder: tiny_vae")
    return InferencePlan(
        mode=inference_mode,
        device=device,
        compute_dtype=compute_dtype,
        storage_dtype=storage_dtype,
        channels_last=bool(channels_last),
        winograd=bool(winograd),
        int8=bool(int8),
        tiny_vae=tiny_vae,
    )
