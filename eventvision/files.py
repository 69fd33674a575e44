"""Files written safely: exclusive locks, fresh temporaries, atomic replacement.

Every output of eventvision (cache files, run folders) is written through these:

- a lock file is opened with ``O_NOFOLLOW`` and must be a regular file with one link, so a
  planted symbolic or hard link (``OUT.lock -> victim.txt``) is refused, never truncated;
- a temporary file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: a fresh regular file, or a
  refusal when a link sits in its place (a stale regular temporary of a killed write is removed
  first; the caller holds the output's lock, so it is nobody else's);
- a file is replaced atomically: temporary in the same folder, ``fsync``, ``os.replace``, then
  ``fsync`` of the folder, so a crash at any moment leaves the old file or the complete new one.

An ``OSError`` while writing (disk full, file too large) becomes a ``PathError`` naming the file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from .errors import EventVisionError, PathError

__all__ = [
    "hold_lock",
    "lock_holder",
    "create_fresh",
    "open_fresh",
    "write_atomic",
    "copy_atomic",
    "fsync_folder",
    "write_error",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def write_error(path: str | os.PathLike, error: OSError, what: str = "cannot write") -> PathError:
    """A one-line ``PathError`` for an ``OSError`` met while writing ``path``."""
    reason = error.strerror or str(error) or type(error).__name__
    return PathError(f"{path}: {what}: {reason}")


def _refuse_link(path: Path, kind: str) -> PathError:
    return PathError(
        f"{path}: the {kind} is a symbolic link or not a regular file; refusing to open it "
        "(remove it if it is yours)"
    )


def _check_regular(fd: int, path: Path, kind: str) -> None:
    """Refuse ``fd`` unless it is a regular file with exactly one name (no planted hard link)."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise _refuse_link(path, kind)
    if st.st_nlink != 1:
        raise PathError(
            f"{path}: the {kind} has {st.st_nlink} hard links; refusing to write through it "
            "(remove it if it is yours)"
        )


def lock_holder(fd: int) -> str:
    """The PID written in a lock file by its holder, or ``"unknown"``."""
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


@contextmanager
def hold_lock(
    path: str | os.PathLike,
    busy: Callable[[str], EventVisionError],
    *,
    wait: bool = False,
) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on the lock file ``path`` for the ``with`` block.

    The file is created if missing, opened with ``O_NOFOLLOW``, must be a regular file with one
    link, and gets the holder's PID. The kernel releases the lock however the holder exits.

    Raises:
        EventVisionError: ``busy(pid)`` when another process holds it and ``wait`` is False.
        PathError: the file cannot be created, is a link or not a regular file.
    """
    path = Path(path)
    flags = os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _refuse_link(path, "lock file") from None
        raise write_error(path, e, "cannot create the lock file") from None
    try:
        _check_regular(fd, path, "lock file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise write_error(path, e, "cannot lock") from None
            raise busy(lock_holder(fd)) from None
        try:
            here = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            here = None
        mine = os.fstat(fd)
        if here is None or (here.st_dev, here.st_ino) != (mine.st_dev, mine.st_ino):
            # removed or replaced between our open and our lock: whoever did it is a writer
            raise busy(lock_holder(fd))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def create_fresh(path: str | os.PathLike) -> int:
    """Create ``path`` as a new, empty regular file (``O_EXCL | O_NOFOLLOW``); its descriptor.

    A regular file already there (the temporary of a killed write) is removed first; a symbolic
    link, a folder or anything else is refused, and what it points to is left untouched.
    """
    path = Path(path)
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    for _ in range(2):
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                raise _refuse_link(path, "temporary file") from None
            path.unlink()
            continue
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _refuse_link(path, "temporary file") from None
            raise write_error(path, e, "cannot create") from None
        return fd
    raise PathError(f"{path}: another process keeps creating this temporary file")


def fsync_folder(folder: str | os.PathLike) -> None:
    """``fsync`` a folder, so that a rename inside it survives a crash (best effort)."""
    try:
        fd = os.open(folder, os.O_RDONLY | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not sync folders
    finally:
        os.close(fd)


@contextmanager
def open_fresh(path: str | os.PathLike) -> Iterator[tuple[Path, BinaryIO]]:
    """Write ``path`` atomically: yield ``(temporary path, binary file)``, then fsync and replace.

    The temporary ``.NAME.tmp`` lies in the same folder; on an error it is removed and ``path``
    keeps its old content. An ``OSError`` becomes a ``PathError`` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = create_fresh(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            yield tmp, f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, PathError):
            raise
        raise write_error(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8) atomically; return ``path``."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    with open_fresh(path) as (_, f):
        f.write(payload)
    return Path(path)


def copy_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Replace ``dst`` with a copy of the file ``src`` atomically; return ``dst``."""
    with open(src, "rb") as source, open_fresh(dst) as (_, f):
        while chunk := source.read(1 << 20):
            f.write(chunk)
    return Path(dst)
