"""Many-image runs: splitting the inputs across processes, and overlapping I/O with compute.

* :func:`process_info`, :func:`shard`, :func:`process_device` and :func:`share_from_rank0`
  split one run over the processes started by ``torchrun`` or ``accelerate launch`` (read
  from the ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` environment variables, so accelerate
  need not be installed): every process takes a disjoint, deterministic slice of the same
  input list, so each image is processed and written by exactly one process.
* :class:`Prefetcher` produces the items of an iterable (e.g. decoded images) on a
  background thread, a bounded number ahead of the consumer.
* :class:`OrderedExecutor` runs tasks (e.g. writing outputs) on a thread pool with a bounded
  number pending and hands their outcomes back in submission order.

With ``depth=0`` / ``workers=0`` the last two run everything in the caller's thread, one
thing after another, so the same code measures the sequential baseline.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

LOGGER = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")

#: Seconds a process waits for the others when sharing the input list.
SHARE_TIMEOUT_S = 600.0


# --------------------------------------------------------------------------------------
# Sharding across processes
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in a multi-process run.

    Attributes:
        rank: global index of this process, ``0 <= rank < world_size``.
        world_size: number of processes.
        local_rank: index of this process on its machine (selects the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        """Whether the run is split over more than one process."""
        return self.world_size > 1

    @property
    def label(self) -> str:
        """``"process R/N"`` with a 1-based ``R``, for log messages."""
        return f"process {self.rank + 1}/{self.world_size}"


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    """Integer environment variable ``name`` (``default`` if unset or empty)."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None


def process_info(environ: Mapping[str, str] | None = None) -> ProcessInfo:
    """This process's rank from ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``.

    These are set by ``torchrun`` and ``accelerate launch`` (and can be set by hand to
    split a folder across machines). Unset variables mean a single process.

    Args:
        environ: the environment to read (default :data:`os.environ`).

    Raises:
        ValueError: a variable is not an integer, or ``RANK`` is outside
            ``[0, WORLD_SIZE)``.
    """
    env = os.environ if environ is None else environ
    world = _env_int(env, "WORLD_SIZE", 1)
    rank = _env_int(env, "RANK", 0)
    local = _env_int(env, "LOCAL_RANK", rank)
    if world < 1:
        raise ValueError(f"WORLD_SIZE must be at least 1, got {world}")
    if not 0 <= rank < world:
        raise ValueError(f"RANK must be in [0, WORLD_SIZE={world}), got {rank}")
    if local < 0:
        raise ValueError(f"LOCAL_RANK must be non-negative, got {local}")
    return ProcessInfo(rank=rank, world_size=world, local_rank=local)


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The items process ``rank`` of ``world_size`` takes: ``items[rank::world_size]``.

    Over all ranks the shards are disjoint and cover ``items``; interleaving (rather than
    contiguous blocks) balances the work when sizes correlate with the order.

    Raises:
        ValueError: ``world_size < 1`` or ``rank`` outside ``[0, world_size)``.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return list(items[rank::world_size])


def process_device(device: str, info: ProcessInfo) -> str:
    """The device this process should use for ``--device device``.

    In a multi-process run with CUDA, ``auto`` and ``cuda`` become
    ``cuda:<LOCAL_RANK mod GPU count>`` so the processes on one machine use different
    GPUs; anything else (``cpu``, ``mps``, ``cuda:N``) is returned unchanged.
    """
    if not info.distributed or device.lower() not in ("auto", "cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    return f"cuda:{info.local_rank % torch.cuda.device_count()}"


def share_from_rank0(
    make: Callable[[], T], info: ProcessInfo, timeout_s: float = SHARE_TIMEOUT_S
) -> T:
    """``make()`` evaluated by process 0 and sent to every process.

    Used for the input list, so that all processes shard the same list even if the
    folders change meanwhile (e.g. another process already writing outputs into a
    folder that is also searched for inputs). Needs the ``MASTER_ADDR`` / ``MASTER_PORT``
    rendezvous that ``torchrun`` and ``accelerate launch`` set up; without it (or if
    connecting fails) each process evaluates ``make()`` itself. Single process: just
    ``make()``. The result must be picklable.
    """
    if not info.distributed:
        return make()
    if not (os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT")):
        LOGGER.debug("no MASTER_ADDR/MASTER_PORT: %s lists the inputs itself", info.label)
        return make()
    value = make() if info.rank == 0 else None
    try:
        shared = _broadcast_object(value, timeout_s)
    except (RuntimeError, ValueError, OSError, ImportError) as exc:
        LOGGER.warning(
            "%s: cannot reach the other processes (%s); listing the inputs locally",
            info.label,
            exc,
        )
        shared = value if info.rank == 0 else make()
    return cast(T, shared)


def _broadcast_object(value: Any, timeout_s: float) -> Any:
    """Broadcast ``value`` from rank 0 over a gloo process group (created if needed)."""
    import torch.distributed as dist

    if not dist.is_available():
        raise ImportError("torch.distributed is not available in this PyTorch build")
    timeout = timedelta(seconds=timeout_s)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="gloo", init_method="env://", timeout=timeout)
        group = None
    else:  # e.g. called from a script that already set up NCCL: objects go over gloo
        group = dist.new_group(backend="gloo", timeout=timeout)
    try:
        box = [value]
        dist.broadcast_object_list(box, src=0, group=group)
        return box[0]
    finally:
        if created:
            dist.destroy_process_group()


# --------------------------------------------------------------------------------------
# Background reading
# --------------------------------------------------------------------------------------

_END = object()


class _Raised:
    """An exception raised by the producer, carried to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetcher(Generic[T]):
    """Iterate over ``items`` produced on a background thread, up to ``depth`` ahead.

    Items arrive in order; an exception raised while producing them is re-raised in the
    consumer at its place in the sequence. Use as a context manager (or call
    :meth:`close`) so that the thread stops when the consumer stops early. ``depth=0``
    produces each item in the caller's thread when it is asked for.
    """

    def __init__(self, items: Iterable[T], depth: int) -> None:
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        self._items = items
        self._depth = depth
        self._stop = threading.Event()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(depth, 1))
        self._thread: threading.Thread | None = None

    def __iter__(self) -> Iterator[T]:
        if self._depth == 0:
            yield from self._items
            return
        if self._thread is not None:
            raise RuntimeError("a Prefetcher can be iterated only once")
        self._thread = threading.Thread(target=self._produce, name="sharpdepth-prefetch")
        self._thread.daemon = True  # never keeps the interpreter alive
        self._thread.start()
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item

    def _produce(self) -> None:
        """Thread body: put every item, then the end marker (or the exception)."""
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as exc:
            self._put(_Raised(exc))
            return
        self._put(_END)

    def _put(self, item: Any) -> bool:
        """Put ``item``, waiting for room; ``False`` if the consumer stopped meanwhile."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        """Stop the producer (it finishes the item in hand) and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------------------
# Background writing
# --------------------------------------------------------------------------------------


@dataclass
class TaskOutcome(Generic[K]):
    """How one task of an :class:`OrderedExecutor` ended.

    Attributes:
        key: what the task was submitted with (e.g. the input path).
        error: the exception it raised, or ``None`` if it succeeded.
    """

    key: K
    error: BaseException | None


class OrderedExecutor(Generic[K]):
    """Run tasks on ``workers`` threads; hand their outcomes back in submission order.

    :meth:`submit` blocks while ``max_pending`` tasks are unfinished, which bounds the
    memory held by queued work. Outcomes are returned by :meth:`submit` (those finished so
    far, oldest first, only a finished prefix so the order is kept) and :meth:`drain`
    (all). ``workers=0`` runs each task inside :meth:`submit`. Use as a context manager:
    leaving it cancels tasks not yet started and waits for the running ones; call
    :meth:`drain` first to finish (and see) everything.
    """

    def __init__(self, workers: int, max_pending: int) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self._max_pending = max(max_pending, 1)
        self._pool = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sharpdepth-write")
            if workers > 0
            else None
        )
        self._pending: deque[tuple[K, Future[Any]]] = deque()

    @property
    def pending(self) -> int:
        """Tasks submitted whose outcome has not been handed back yet."""
        return len(self._pending)

    def submit(self, key: K, task: Callable[[], object]) -> list[TaskOutcome[K]]:
        """Queue ``task``; returns the outcomes of earlier tasks that have finished."""
        if self._pool is None:
            try:
                task()
            except Exception as exc:
                return [TaskOutcome(key, exc)]
            return [TaskOutcome(key, None)]
        done: list[TaskOutcome[K]] = []
        while len(self._pending) >= self._max_pending:
            done.append(self._pop())
        self._pending.append((key, self._pool.submit(task)))
        while self._pending and self._pending[0][1].done():
            done.append(self._pop())
        return done

    def drain(self) -> list[TaskOutcome[K]]:
        """Wait for every submitted task; their outcomes, in submission order."""
        return [self._pop() for _ in range(len(self._pending))]

    def _pop(self) -> TaskOutcome[K]:
        """Outcome of the oldest pending task, waiting for it to finish."""
        key, future = self._pending[0]
        error = future.exception()
        self._pending.popleft()
        return TaskOutcome(key, error)

    def close(self) -> None:
        """Cancel tasks not started yet, wait for the running ones, stop the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def __enter__(self) -> OrderedExecutor[K]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
