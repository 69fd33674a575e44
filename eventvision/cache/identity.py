"""Build identity: a unique id per complete build, recorded by readers and checked on reopen.

The one function that marks a file complete (the writer's ``_assemble``) stores
``build_id = "<options hash>-<random hex>"``. A reader records the id when it is created and
checks it whenever it opens the file again (DataLoader workers included), so frames and labels
never come from two builds (docs/preprocess.md, "Build identity").
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import CacheError

__all__ = ["new_build_id", "read_build_id", "check_build", "reopen_build", "CacheHandle"]

BUILD_ATTR = "build_id"


def new_build_id(options: Any) -> str:
    """A fresh id for one build of ``options``: its options hash and 128 random bits."""
    return f"{options.hash()}-{uuid.uuid4().hex}"


def read_build_id(attrs: Mapping[str, Any]) -> str | None:
    """The build id in the attributes of an open cache file, or None (files before build ids)."""
    value = attrs.get(BUILD_ATTR)
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def check_build(
    path: str | os.PathLike, expected: str | None, attrs: Mapping[str, Any] | None = None
) -> None:
    """Raise CacheError unless the file at ``path`` (or its open ``attrs``) is build ``expected``.

    Pass ``attrs`` of the handle about to be read so that the check and the read see one file.
    """
    path = Path(path)
    if attrs is None:
        try:
            with h5py.File(path, "r") as f:
                found = read_build_id(f.attrs)
        except OSError as e:
            raise CacheError(
                f"{path}: cannot reopen the cache ({e}); it was removed or replaced after the "
                "dataset was created"
            ) from None
    else:
        found = read_build_id(attrs)
    if found != expected:
        raise CacheError(
            f"{path} was rebuilt after the dataset (or reader) was created (build {expected} "
            f"then, {found} now): its rows and labels no longer match; create the dataset "
            "again (restart the run) to use the new build"
        )


def reopen_build(path: str | os.PathLike, expected: str | None) -> h5py.File:
    """Open the cache at ``path`` for reading, refusing (and closing) any build but ``expected``.

    What every per-process reader does when it (re)opens its file: the handle it gets and the
    build check see one and the same file.
    """
    try:
        h5 = h5py.File(path, "r")
    except OSError as e:
        raise CacheError(f"{path}: cannot reopen the cache ({e})") from None
    try:
        check_build(path, expected, h5.attrs)
    except CacheError:
        h5.close()
        raise
    return h5


class CacheHandle:
    """One process's read handle on one build of a cache, opened lazily.

    A handle inherited through fork is not safe to use: every new process (DataLoader workers,
    under fork or spawn) opens the file again, and `reopen_build` refuses a file rebuilt since
    ``build_id`` was read. Pickling drops the open file. `FrameDataset`, `EventDataset` and the
    event cache reader read through it.
    """

    def __init__(self, path: str | os.PathLike, build_id: str | None) -> None:
        self.path = Path(path)
        self.build_id = build_id
        self._h5: h5py.File | None = None
        self._datasets: dict[str, h5py.Dataset] = {}
        self._pid: int | None = None

    @property
    def is_open(self) -> bool:
        """True when this process holds the file open."""
        return self._h5 is not None and self._pid == os.getpid()

    def dataset(self, name: str) -> h5py.Dataset:
        """The HDF5 dataset ``name`` of this process's handle, opening the file if needed."""
        if not self.is_open:
            self._h5, self._datasets, self._pid = (
                reopen_build(self.path, self.build_id),
                {},
                os.getpid(),
            )
        if name not in self._datasets:
            self._datasets[name] = self._h5[name]
        return self._datasets[name]

    def close(self) -> None:
        """Close this process's file (it reopens on the next read)."""
        if self.is_open:
            self._h5.close()
        self._h5, self._datasets, self._pid = None, {}, None

    def __getstate__(self) -> dict:
        return {
            "path": self.path,
            "build_id": self.build_id,
            "_h5": None,
            "_datasets": {},
            "_pid": None,
        }
