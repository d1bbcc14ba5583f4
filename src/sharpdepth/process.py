"""Process-wide settings that only take effect when made before PyTorch allocates memory.

This module imports nothing heavy, so the command line can apply them before it
imports torch.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

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
