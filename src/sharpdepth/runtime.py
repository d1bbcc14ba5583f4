"""Device, dtype and random-generator handling: the one place where they are resolved.

Every other module asks this one for a :class:`torch.device`, a :class:`torch.dtype`
or a :class:`torch.Generator`, so that ``--device auto`` or ``seed=0`` means the same
thing in inference, training and evaluation.
"""

from __future__ import annotations

import logging

import torch

LOGGER = logging.getLogger(__name__)

_DTYPE_NAMES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a user's device choice into a :class:`torch.device`.

    ``"auto"`` (or ``None``) picks CUDA, then Apple MPS, then the CPU. An explicit
    device that is not available raises ``ValueError`` instead of silently falling
    back.
    """
    if device is None or (isinstance(device, str) and device.lower() == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine")
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"device {device!r} requested but MPS is not available on this machine"
            )
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """Turn a user's dtype choice into a :class:`torch.dtype` for the diffusion networks.

    ``"auto"`` (or ``None``) gives float32 on the CPU and MPS and float16 on CUDA.
    Metric arithmetic (normalisation, gate, alignment) always runs in float32/float64
    regardless of this choice.
    """
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    elif dtype is None or dtype == "auto":
        resolved = torch.float16 if device.type == "cuda" else torch.float32
    else:
        key = str(dtype).lower().removeprefix("torch.")
        if key not in _DTYPE_NAMES:
            raise ValueError(f"unknown dtype {dtype!r}: use auto, float32, float16 or bfloat16")
        resolved = _DTYPE_NAMES[key]
    if resolved not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"unsupported dtype {resolved}: use float32, float16 or bfloat16")
    if resolved == torch.float16 and device.type == "cpu":
        LOGGER.warning("float16 on the CPU is slow and imprecise; consider bfloat16 or float32")
    return resolved


def make_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A :class:`torch.Generator` on ``device``; seeded with ``seed`` or, if ``None``, randomly.

    An unseeded generator is seeded from the operating system, so runs differ but the
    seed actually used can be read back with ``generator.initial_seed()``.
    """
    gen = torch.Generator(device=torch.device(device))
    if seed is None:
        gen.seed()
    else:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        gen.manual_seed(seed)
    return gen


def randn(
    shape: tuple[int, ...],
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Standard normal noise of ``shape`` from ``generator``, on ``device`` in ``dtype``.

    The draw happens on the generator's own device in float32, so the same seed gives
    the same numbers whatever the target device and dtype.
    """
    noise = torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)
    return noise.to(device=device, dtype=dtype)
