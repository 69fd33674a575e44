"""The event cache: each sample's events, ragged in one HDF5 dataset, and its per-worker reader.

Layout (``store = "events"``, see docs/preprocess.md, "Event caches"): ``events [E]``
``EVENT_DTYPE`` (t, x, y, p) chunked and compressed, the samples one after another in cache
order; ``offsets [N + 1]`` int64, sample i being ``events[offsets[i]:offsets[i + 1]]``; then
the per-sample datasets of every cache (labels, split, source, row, n_events). The writer's
plan, blocks, parts, resume, shards, lock, build id and atomic rename are the frame cache's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import h5py
import numpy as np

from ..errors import CacheError
from ..events import EVENT_DTYPE
from .identity import CacheHandle

if TYPE_CHECKING:
    from .reader import CacheMeta

__all__ = [
    "EVENT_CHUNK",
    "create_event_layout",
    "write_event_samples",
    "copy_event_rows",
    "check_event_layout",
    "EventCacheReader",
]

EVENT_CHUNK = 1 << 15  # events per HDF5 chunk: ~420 KiB before compression


def create_event_layout(f: h5py.File, compression: dict, n_samples: int, n_events: int) -> None:
    """Create ``events [n_events]`` and ``offsets [n_samples + 1]`` (the per-sample rest apart)."""
    f.create_dataset(
        "events",
        shape=(n_events,),
        maxshape=(None,),
        dtype=EVENT_DTYPE,
        chunks=(EVENT_CHUNK,),
        **compression,
    )
    f.create_dataset("offsets", shape=(n_samples + 1,), dtype=np.int64)


def write_event_samples(f: h5py.File, samples: Sequence[np.ndarray]) -> None:
    """Store ``samples`` (one events array each) into a layout made for exactly them."""
    offsets = np.zeros(len(samples) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in samples], out=offsets[1:])
    if f["events"].shape[0] != offsets[-1]:
        f["events"].resize((int(offsets[-1]),))
    if offsets[-1]:
        f["events"][...] = np.concatenate([s.astype(EVENT_DTYPE, copy=False) for s in samples])
    f["offsets"][...] = offsets


def copy_event_rows(
    dst: h5py.File, rows: Sequence[tuple[int, int]], source: Callable[[int], h5py.File]
) -> None:
    """Fill ``dst``'s event layout with row ``r`` of input ``source(k)`` for each ``(k, r)``."""
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    spans = []
    for n, (k, r) in enumerate(rows):
        lo, hi = (int(v) for v in source(k)["offsets"][r : r + 2])
        spans.append((k, lo, hi))
        offsets[n + 1] = offsets[n] + hi - lo
    dst["events"].resize((int(offsets[-1]),))
    for n, (k, lo, hi) in enumerate(spans):
        if hi > lo:
            dst["events"][offsets[n] : offsets[n + 1]] = source(k)["events"][lo:hi]
    dst["offsets"][...] = offsets


def check_event_layout(path: str | os.PathLike, f: h5py.File, n_samples: int) -> None:
    """Raise CacheError unless ``f`` holds a consistent event layout of ``n_samples`` samples."""
    for name in ("events", "offsets"):
        if name not in f:
            raise CacheError(f"{path}: event cache without the {name!r} dataset")
    if f["events"].dtype != EVENT_DTYPE:
        raise CacheError(f"{path}: events have dtype {f['events'].dtype}, expected {EVENT_DTYPE}")
    offsets = f["offsets"][:]
    if offsets.shape != (n_samples + 1,):
        raise CacheError(f"{path}: offsets {offsets.shape}, expected ({n_samples + 1},)")
    ends_ok = offsets[0] == 0 and offsets[-1] == f["events"].shape[0]
    if not ends_ok or np.any(np.diff(offsets) < 0):
        raise CacheError(
            f"{path}: offsets are not a non-decreasing run from 0 to the "
            f"{f['events'].shape[0]} events stored"
        )
    if "n_events" in f and not np.array_equal(np.diff(offsets), f["n_events"][:]):
        raise CacheError(f"{path}: offsets disagree with n_events")


class EventCacheReader:
    """Reads the events of one row of an event cache, through a per-process `CacheHandle`.

    ``cache`` is the file or its `CacheMeta` (`open_cache`, which validates the layout); the
    build id is read then and checked on every (re)open, as `FrameDataset` does, so events and
    labels never come from two builds.
    """

    def __init__(self, cache: str | os.PathLike | CacheMeta) -> None:
        from .reader import open_cache  # reader.py builds on this module

        meta = (
            cache
            if not isinstance(cache, (str, os.PathLike))
            else open_cache(cache, check_sources=False)
        )
        self.path = meta.path
        if meta.store != "events":
            raise CacheError(
                f"{self.path}: a frame cache, not an event cache "
                "(build one with `eventvision preprocess ... --store events`)"
            )
        self._handle = CacheHandle(self.path, meta.build_id)
        self.offsets = self._handle.dataset("offsets")[:]
        self._handle.close()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def read(self, row: int) -> np.ndarray:
        """The events of sample ``row`` (cache order), a fresh ``EVENT_DTYPE`` array."""
        lo, hi = int(self.offsets[row]), int(self.offsets[row + 1])
        if hi == lo:
            return np.empty(0, dtype=EVENT_DTYPE)
        return self._handle.dataset("events")[lo:hi]

    def close(self) -> None:
        """Close this process's handle (it reopens on the next read)."""
        self._handle.close()
