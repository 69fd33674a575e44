"""The thread pool that decompresses AEDAT 4 packets for :func:`eventvision.io.read_aedat4`.

Packets go to the pool in runs of about ``TASK_BYTES`` compressed bytes, in file order, a
bounded number of runs ahead of the one being decoded, and come back in file order, so the
first bad packet of a file raises first on any number of threads. What the runs ahead hold
decompressed is bounded too, by ``AHEAD_BYTES`` in all, whatever the packets claim: a run
stops where its share would overflow, and the decoding thread decompresses the rest itself,
one packet at a time.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import NamedTuple

from ..errors import FormatError

__all__ = [
    "default_aedat4_threads",
    "thread_count",
    "thread_pool",
    "pooled_packets",
    "PacketTooLarge",
]

MAX_DEFAULT_THREADS = 4  # Zstd decompression of DV packets scales to about this many
TASK_BYTES = 1 << 17  # compressed bytes a pool thread decompresses per task (one handoff)
AHEAD_PER_THREAD = 4  # tasks decompressed ahead of decoding, per thread: bounds memory
AHEAD_BYTES = 1 << 26  # decompressed bytes all runs ahead of decoding hold, at most (64 MiB)

Decompress = Callable[..., bytes]  # (blob, offset, path[, most]) -> bytes


class PacketTooLarge(Exception):
    """A packet declares (``args[0]``, or None) or decompresses to more than a limit allows."""


def default_aedat4_threads() -> int:
    """The threads :func:`read_aedat4` decompresses on by default: min(4, usable cores).

    1 inside a worker process (the cache build's pool, DataLoader workers): there the
    processes already share the cores.
    """
    if multiprocessing.parent_process() is not None:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_DEFAULT_THREADS, cores or 1))


def thread_count(threads: int | None) -> int:
    """``threads`` checked, or the default for ``None``."""
    if threads is None:
        return default_aedat4_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int or None, got {threads!r}")
    return threads


@contextmanager
def thread_pool(threads: int) -> Iterator[ThreadPoolExecutor]:
    """A pool of ``threads`` threads, its queued work cancelled and its threads joined on exit."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix="eventvision-aedat4")
    try:
        yield pool
    finally:  # after an error, nothing keeps decompressing packets no one will decode
        pool.shutdown(wait=True, cancel_futures=True)


def pooled_packets(
    pool: ThreadPoolExecutor,
    threads: int,
    blobs: list,
    offsets: list[int],
    decompress: Decompress,
    path: Path,
) -> Iterator[tuple[int, bytes]]:
    """``(offset, data)`` of each compressed packet ``blobs[j]``, decompressed by ``pool``.

    Runs of packets of about ``TASK_BYTES`` go to the pool in file order, at most
    ``AHEAD_PER_THREAD * threads`` runs ahead of the one yielded, each holding at most its
    share of ``AHEAD_BYTES`` decompressed, and come back in file order: the first bad packet
    in the file raises first, as on one thread.
    """
    ahead = AHEAD_PER_THREAD * threads
    share = max(TASK_BYTES, AHEAD_BYTES // ahead)
    pending: deque[Run] = deque()
    for first, stop in runs([len(b) for b in blobs], TASK_BYTES):
        task = partial(
            _decompress_run, decompress, blobs[first:stop], offsets[first:stop], path, share
        )
        pending.append(Run(task, pool.submit(task)))
        if len(pending) >= ahead:
            yield from _checked(next_run(pending), decompress, path)
    while pending:
        yield from _checked(next_run(pending), decompress, path)


class Run:
    """A run of packets to decompress: queued on the pool, or taken back by the decoding thread."""

    __slots__ = ("task", "future", "result")

    def __init__(self, task, future: Future) -> None:
        self.task, self.future, self.result = task, future, None

    def take(self) -> bool:
        """Decompress on this thread if no pool thread has started; False if one has."""
        if self.result is None and self.future.cancel():
            self.result = self.task()
        return self.result is not None


def next_run(pending: deque[Run]) -> list:
    """The decompressed packets of the oldest run, popped from ``pending``.

    While a pool thread decompresses it, this thread takes the newest runs no thread has
    started, so that it decompresses too rather than sleep.
    """
    run = pending.popleft()
    if run.take():
        return run.result
    for newer in reversed(pending):
        if run.future.done():
            break
        newer.take()
    return run.future.result()


def runs(sizes: list[int], run_bytes: int) -> Iterator[tuple[int, int]]:
    """``(first, stop)`` of consecutive packets of about ``run_bytes`` (or one larger packet)."""
    first, total = 0, 0
    for j, size in enumerate(sizes):
        total += size
        if total >= run_bytes:
            yield first, j + 1
            first, total = j + 1, 0
    if first < len(sizes):
        yield first, len(sizes)


class _Later(NamedTuple):
    """A packet a run left compressed: over its share, the decoding thread decompresses it."""

    blob: memoryview


def _decompress_run(
    decompress: Decompress, blobs: list, offsets: list[int], path: Path, share: int
) -> list:
    """``(offset, data)`` of a run's packets, at most ``share`` bytes decompressed in all.

    A bad packet's data is its FormatError, and last; the packets from the first that would
    overflow ``share`` on are left as :class:`_Later`.
    """
    out, held = [], 0
    for j, (blob, offset) in enumerate(zip(blobs, offsets, strict=True)):
        try:
            data = decompress(blob, offset, path, share - held)
        except FormatError as e:
            out.append((offset, e))
            break
        except PacketTooLarge:
            out += [(o, _Later(b)) for b, o in zip(blobs[j:], offsets[j:], strict=True)]
            break
        held += len(data)
        out.append((offset, data))
    return out


def _checked(decompressed: list, decompress: Decompress, path: Path) -> Iterator[tuple[int, bytes]]:
    """The packets of one run, raising its bad packet's FormatError in its turn."""
    for offset, data in decompressed:
        if isinstance(data, FormatError):
            raise data
        if isinstance(data, _Later):  # one at a time, under the file's packet limit
            data = decompress(data.blob, offset, path)
        yield offset, data
