"""The HDF5 layout of a cache file, shared by the writer, the merger and the reader."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..errors import PathError
from ..files import create_fresh
from .events import create_event_layout
from .options import CacheOptions

__all__ = ["SAMPLE_DATASETS", "create_h5", "create_layout", "write_attrs"]

# Per-sample datasets besides ``frames``, with their stored dtypes.
SAMPLE_DATASETS = {
    "labels": np.dtype(np.int64),
    "split": np.dtype(np.uint8),
    "source": h5py.string_dtype("utf-8"),
    "row": np.dtype(np.int64),
    "n_events": np.dtype(np.int64),
}


@contextmanager
def create_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Write a new HDF5 temporary file in the ``with`` block; it is created fresh first.

    h5py's ``"w"`` mode would truncate whatever ``path`` points to; the file is created here
    as a new regular file (``O_EXCL | O_NOFOLLOW``: a planted link is refused,
    ``eventvision.files.create_fresh``), and the handle h5py opens is checked to be that very
    file. Any error in the block removes the file; a failed write (disk full, file too large)
    raises PathError naming ``path``.
    """
    fd = create_fresh(path)
    try:
        mine = os.fstat(fd)
        # No chunk cache: a failed write raises in the write call, not later in a dataset's
        # close during garbage collection, where h5py can only print it (chunks are written
        # whole or once per call here, so the cache saved nothing; measured the same speed).
        f = h5py.File(path, "w", rdcc_nbytes=0)
        handle = f.id.get_vfd_handle()
        theirs = os.fstat(handle)
        if (theirs.st_dev, theirs.st_ino) != (mine.st_dev, mine.st_ino):
            f.close()
            raise PathError(f"{path}: replaced while it was being opened; refusing to write")
    finally:
        os.close(fd)
    try:
        try:
            yield f
        except (OSError, RuntimeError) as e:
            if _is_write_error(e):
                _discard_writes(handle)
            raise
        finally:
            _close(f, handle)
    except BaseException as e:
        Path(path).unlink(missing_ok=True)  # ours (checked above), and never finished
        if isinstance(e, (OSError, RuntimeError)) and not isinstance(e, PathError):
            if _is_write_error(e):
                raise PathError(f"{path}: cannot write: {_h5_reason(e)}") from None
        raise


def _close(f: h5py.File, handle: int) -> None:
    """Close ``f``; a close whose flush fails is finished with its writes discarded."""
    try:
        f.close()
    except (OSError, RuntimeError) as e:
        if not _is_write_error(e):
            raise
        _discard_writes(handle)
        f.close()
        raise


def _discard_writes(handle: int) -> None:
    """Point HDF5's file descriptor at a file in memory once a write failed (disk full).

    HDF5 keeps a file whose flush failed open, and closing it later crashes the process
    (SIGSEGV). The file is abandoned anyway: its remaining writes go to an empty in-memory
    file (sparse, so only what is still written takes memory) and it closes cleanly.
    """
    spare = os.memfd_create("discarded-h5") if hasattr(os, "memfd_create") else None
    if spare is None:
        spare = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(spare, handle)
    finally:
        os.close(spare)


def _is_write_error(error: Exception) -> bool:
    """Whether HDF5 reports a failed write or resize (as OSError or RuntimeError, per call)."""
    return "write failed" in str(error) or "unable to extend file" in str(error)


def _h5_reason(error: Exception) -> str:
    """The OS's words inside an HDF5 error (``error message = 'File too large'``), or its text."""
    found = re.search(r"error message = '([^']*)'", str(error))
    if found:
        return found.group(1)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error).splitlines()[0]


def create_layout(f: h5py.File, options: CacheOptions, n: int, *, with_index: bool) -> None:
    """Create the datasets of an ``n``-sample cache (frames chunked one sample per chunk).

    An event cache gets ``events`` (empty, resized when written) and ``offsets`` instead of
    ``frames`` (`eventvision.cache.events`).
    """
    if options.store == "events":
        create_event_layout(f, options.h5_compression(), n, 0, options.info.sensor)
    else:
        shape = options.frame_shape
        f.create_dataset(
            "frames",
            shape=(n, *shape),
            maxshape=(None, *shape),
            dtype=np.float32,
            chunks=(1, *shape),
            **options.h5_compression(),
        )
    for name, dtype in SAMPLE_DATASETS.items():
        f.create_dataset(name, shape=(n,), dtype=dtype)
    if with_index:
        f.create_dataset("index", shape=(n,), dtype=np.int64)


def write_attrs(
    f: h5py.File,
    options: CacheOptions,
    manifest: list[list],
    raw_root: str | Path,
    n_planned: int,
    skipped: list[list],
) -> None:
    """The attributes that let h5py alone make sense of the file (``complete`` is set apart)."""
    info = options.info
    a = f.attrs
    a["dataset"] = options.dataset
    a["classes"] = json.dumps(list(info.classes))
    a["store"] = options.store
    if options.store == "frames":
        a["time_steps"] = options.time_steps
        a["split_by"] = options.split_by
        a["size"] = options.size if isinstance(options.size, int) else list(options.size)  # [h, w]
    a["sensor"] = json.dumps(list(info.sensor))
    a["compression"] = options.compression
    a["eventvision_version"] = __version__
    a["options_hash"] = options.hash()
    a["options"] = json.dumps(options.to_dict(), sort_keys=True)
    a["manifest"] = json.dumps(manifest)
    a["raw_root"] = str(raw_root)
    a["n_planned"] = n_planned
    a["skipped"] = json.dumps(skipped)
    a["layout"] = _EVENT_LAYOUT if options.store == "events" else _FRAME_LAYOUT


_EVENT_LAYOUT = (
    "events/ columns, the samples one after another as the datasets yield them: t_step [E] "
    "int32 (us since the sample's previous event, 0 for its first), x [E], y [E] uint8 (sensors "
    "up to 256 px) or uint16, "
    "p [E] uint8, t_first [N] int64 (each sample's first t in us, 0 if empty); offsets [N+1] "
    "int64, sample i = rows offsets[i]:offsets[i+1]; "
    "labels [N] int64 (index into classes); split [N] uint8 (0 train, 1 test); "
    "source [N] path relative to the raw root; row [N] labels csv row (-1: none); "
    "n_events [N] events stored"
)
_FRAME_LAYOUT = (
    "frames [N, T, 2, h, w] float32 (channel 0 OFF, 1 ON; counts binned then resized); "
    "labels [N] int64 (index into classes); split [N] uint8 (0 train, 1 test); "
    "source [N] path relative to the raw root; row [N] labels csv row (-1: none); "
    "n_events [N] events binned"
)
