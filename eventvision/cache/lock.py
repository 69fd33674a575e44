"""One writer per output: an exclusive kernel lock on ``<out>.lock``, held for the whole write.

The lock is ``fcntl.flock`` on a small file beside the output that holds the writer's PID. The
kernel releases it when the holder exits, however it exits (SIGKILL included), so a killed
writer never leaves a lock to clean up by hand; the file itself stays (removing it would let
a third writer lock a new file while the second still holds the old one). See docs/preprocess.md.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import CacheBusyError, CacheError

__all__ = ["output_lock", "lock_path"]


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file of the output ``out``: ``<out>.lock`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".lock")


def _holder(fd: int) -> str:
    """The PID written in the lock file by its holder, or ``"unknown"``."""
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


@contextmanager
def output_lock(out: str | os.PathLike, *, wait: bool = False) -> Iterator[Path]:
    """Hold the exclusive lock of ``out`` for the ``with`` block; yield the lock file's path.

    Missing parent folders of ``out`` are created first (the policy of every output).

    Raises:
        CacheBusyError: another process holds the lock and ``wait`` is False; the message names
            the output and the holder's PID.
        CacheError: ``out`` is a folder, or the lock file cannot be created (e.g. the folder
            is not writable).
    """
    out = Path(out)
    path = lock_path(out)
    if out.is_dir():
        raise CacheError(f"{out}: is a folder; give the path of the cache file to write")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise CacheError(f"{out}: cannot create the lock file {path}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise CacheError(f"{out}: cannot lock {path}: {e.strerror}") from None
            raise CacheBusyError(
                f"{out} is being written by another process (PID {_holder(fd)}); "
                "wait for it to finish or pass --wait"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
