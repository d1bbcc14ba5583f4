"""Device, dtype and random-generator handling: the one place where they are resolved.

Every other module asks this one for a :class:`torch.device`, a :class:`torch.dtype`
or a :class:`torch.Generator`, so that ``--device auto`` or ``seed=0`` means the same
thing in inference, training and evaluation.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
import threading
from collections.abc import Iterator

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


#: ``mallopt`` parameter numbers of glibc's trim and mmap thresholds.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Allocations at least this large get their own mapping, returned to the OS when freed.
LEAN_HEAP_MMAP_THRESHOLD = 128 * 1024
#: glibc's default trim threshold (free memory above this at the heap's top is returned).
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
#: The largest mmap threshold glibc accepts on 64-bit systems (half its 64 MiB heap size).
_REUSE_MMAP_THRESHOLD = 32 * 1024 * 1024
#: Trim threshold while the heap is reused (the largest ``mallopt`` takes, a C ``int``):
#: keep freed memory for the next allocation.
_REUSE_TRIM_THRESHOLD = 2**31 - 1


class _LeanHeap:
    """Process-wide state of :func:`use_lean_heap` and :func:`reusing_heap`."""

    def __init__(self) -> None:
        #: glibc and the fixed mmap threshold, once :func:`use_lean_heap` applied it
        self.applied: tuple[ctypes.CDLL, int] | None = None
        self.depth = 0  # nesting depth of reusing_heap
        self.lock = threading.Lock()


_HEAP = _LeanHeap()


def use_lean_heap(threshold: int = LEAN_HEAP_MMAP_THRESHOLD) -> bool:
    """Make glibc return large freed buffers to the OS at once (process-wide).

    By default glibc raises its mmap threshold each time a large block is freed, so
    later activations come from the heap and their memory stays resident after they
    are freed: the peak resident memory of a run grows with every stage's largest
    tensors instead of following the tensors alive at the same time. A fixed
    threshold of ``threshold`` bytes keeps every large tensor in its own mapping.
    :func:`reusing_heap` lifts it for stretches that allocate the same sizes over and
    over (a UNet pass).

    Does nothing (returns ``False``) off glibc, or when the user already chose the
    allocator's behaviour through ``GLIBC_TUNABLES`` or ``MALLOC_MMAP_THRESHOLD_``.

    Returns:
        whether the setting was applied.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if "GLIBC_TUNABLES" in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        LOGGER.debug("allocator left as configured by the environment")
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return False
    LOGGER.debug("glibc mmap threshold fixed at %d bytes: %s", threshold, applied)
    if applied:
        with _HEAP.lock:
            _HEAP.applied = (libc, int(threshold))
    return applied


def lean_heap_active() -> bool:
    """Whether :func:`use_lean_heap` has been applied in this process."""
    return _HEAP.applied is not None


@contextlib.contextmanager
def reusing_heap() -> Iterator[None]:
    """Within the block, let glibc reuse freed memory; give it back to the OS on exit.

    Under the lean heap every large tensor is a fresh mapping whose pages fault in on
    first touch. A UNet pass allocates and frees activations of the same sizes dozens
    of times, so there the page faults cost time: on a 2-core AVX2 CPU an SD-2 UNet
    pass at 768 x 512 px (bfloat16-stored weights) took 13.5-14.2 s with the lean heap
    and 10.1-12.7 s with this block around it, for 0.55-0.59 GB of extra resident
    memory during the pass instead of 0.36 GB. On exit the lean thresholds are
    restored and the heap's free memory is returned (``malloc_trim``); what
    fragmentation keeps (about 0.1-0.25 GB over a few calls there) stays resident.

    Does nothing unless :func:`use_lean_heap` was applied. Nested blocks act as one;
    process-wide, like the setting itself.
    """
    with _HEAP.lock:
        applied = _HEAP.applied
        if applied is not None and _HEAP.depth == 0:
            libc, threshold = applied
            libc.mallopt(_M_TRIM_THRESHOLD, _REUSE_TRIM_THRESHOLD)
            libc.mallopt(_M_MMAP_THRESHOLD, max(threshold, _REUSE_MMAP_THRESHOLD))
        _HEAP.depth += 1
    try:
        yield
    finally:
        with _HEAP.lock:
            _HEAP.depth -= 1
            if applied is not None and _HEAP.depth == 0:
                libc, threshold = applied
                libc.mallopt(_M_MMAP_THRESHOLD, threshold)
                libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
