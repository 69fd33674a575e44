"""One writer per output: an exclusive kernel lock on ``<out>.lock``, held for the whole write.

The lock is ``fcntl.flock`` on a small file beside the output that holds the writer's PID. The
kernel releases it when the holder exits, however it exits (SIGKILL included), so a killed
writer never leaves a lock to clean up by hand; the file itself stays (removing it would let
a third writer lock a new file while the second still holds the old one). It is opened with
``O_NOFOLLOW`` and must be a regular file (``eventvision.files.hold_lock``): a planted link is
refused, never truncated. See docs/preprocess.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import CacheBusyError, CacheError
from ..files import hold_lock

__all__ = ["output_lock", "lock_path"]


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file of the output ``out``: ``<out>.lock`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".lock")


@contextmanager
def output_lock(out: str | os.PathLike, *, wait: bool = False) -> Iterator[Path]:
    """Hold the exclusive lock of ``out`` for the ``with`` block; yield the lock file's path.

    Missing parent folders of ``out`` are created first (the policy of every output).

    Raises:
        CacheBusyError: another process holds the lock and ``wait`` is False; the message names
            the output and the holder's PID.
        CacheError: ``out`` is a folder, or its folder cannot be created.
        PathError: the lock file cannot be created (e.g. the folder is not writable), or is a
            symbolic link or not a regular file.
    """
    out = Path(out)
    path = lock_path(out)
    if out.is_dir():
        raise CacheError(f"{out}: is a folder; give the path of the cache file to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CacheError(f"{out.parent}: cannot create the folder: {e.strerror}") from None

    def busy(pid: str) -> CacheBusyError:
        return CacheBusyError(
            f"{out} is being written by another process (PID {pid}); "
            "wait for it to finish or pass --wait"
        )

    with hold_lock(path, busy, wait=wait):
        yield path
