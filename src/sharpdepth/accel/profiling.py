"""Per-stage wall-clock timing of the pipeline, for ``sharpdepth speed``.

The pipeline's stages are wrapped in :func:`stage`; they cost nothing unless a
:class:`StageTimer` is active (``with StageTimer() as timer: pipe(image)``), in which
case each stage's duration is recorded in call order. A stage that runs twice (the
two UNet passes, the two decodes) is recorded twice.
"""

from __future__ import annotations

import contextvars
import logging
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType

import torch

LOGGER = logging.getLogger(__name__)

_ACTIVE: contextvars.ContextVar[StageTimer | None] = contextvars.ContextVar(
    "sharpdepth_stage_timer", default=None
)


@dataclass
class StageTimer:
    """Records ``(stage name, seconds)`` of every :func:`stage` entered while active.

    Attributes:
        records: the stages in the order they finished.
        synchronize: wait for CUDA kernels before reading the clock (on by default
            when CUDA is available), so asynchronous GPU work is attributed correctly.
    """

    records: list[tuple[str, float]] = field(default_factory=list)
    synchronize: bool = field(default_factory=torch.cuda.is_available)
    _token: contextvars.Token[StageTimer | None] | None = field(
        default=None, init=False, repr=False
    )

    def __enter__(self) -> StageTimer:
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None

    def numbered(self) -> list[tuple[str, float]]:
        """The records with repeated names numbered by occurrence (``unet 1``, ``unet 2``)."""
        counts: dict[str, int] = {}
        for name, _ in self.records:
            counts[name] = counts.get(name, 0) + 1
        seen: dict[str, int] = {}
        out = []
        for name, seconds in self.records:
            if counts[name] > 1:
                seen[name] = seen.get(name, 0) + 1
                out.append((f"{name} {seen[name]}", seconds))
            else:
                out.append((name, seconds))
        return out

    def total(self) -> float:
        """Sum of the recorded stages in seconds (nested stages are not recorded twice)."""
        return sum(seconds for _, seconds in self.records)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the enclosed block as stage ``name`` if a :class:`StageTimer` is active.

    Stages do not nest: an inner stage inside an outer one is not recorded (the outer
    one holds its time), so the records always sum to at most the wall time.
    """
    timer = _ACTIVE.get()
    if timer is None:
        yield
        return
    if timer.synchronize:
        torch.cuda.synchronize()
    _ACTIVE.set(None)  # inner stages are part of this one
    start = time.perf_counter()
    try:
        yield
    finally:
        if timer.synchronize:
            torch.cuda.synchronize()
        timer.records.append((name, time.perf_counter() - start))
        _ACTIVE.set(timer)


def peak_rss_bytes() -> int:
    """The process's peak resident memory so far (high-water mark), in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
