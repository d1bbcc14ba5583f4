"""Memory handling of the CPU speed work: huge pages and glibc's heap, process-wide.

:func:`use_huge_pages` only takes effect when made before PyTorch allocates memory;
this module imports nothing heavy, so the command line can apply it before it imports
torch. :func:`use_lean_heap` and :func:`reusing_heap` tune glibc's allocator for the
fast modes (see ``docs/speed.md``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
import threading
from collections.abc import Iterator, MutableMapping

LOGGER = logging.getLogger(__name__)

#: Read by PyTorch's CPU allocator once, at its first allocation: with ``1``, every
#: buffer of 2 MiB or more is advised for transparent huge pages (Linux, where
#: ``/sys/kernel/mm/transparent_hugepage/enabled`` is ``always`` or ``madvise``), so a
#: fresh activation faults in up to 512 times fewer pages. On a 2-core AVX2 CPU,
#: allocating and filling a new 100 MB buffer took 34 ms without it and 7 ms with it; an
#: SD-2 fast call with a tiny autoencoder (768 px) 17.2 s and 16.2 s, at the same peak
#: memory.
HUGE_PAGES_VARIABLE = "THP_MEM_ALLOC_ENABLE"


def use_huge_pages(environ: MutableMapping[str, str] | None = None) -> bool:
    """Ask for transparent huge pages for large tensors (:data:`HUGE_PAGES_VARIABLE`)
    unless the environment already decides (``0`` turns them off).

    Effective only in a process where PyTorch has not allocated yet (the command line
    calls it before importing torch; a library user sets the variable before starting
    Python), or in the child processes started with ``environ``.

    Args:
        environ: the environment to change (default: this process's ``os.environ``).

    Returns:
        whether huge pages are now requested in ``environ``.
    """
    env = os.environ if environ is None else environ
    env.setdefault(HUGE_PAGES_VARIABLE, "1")
    return env[HUGE_PAGES_VARIABLE] == "1"


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
