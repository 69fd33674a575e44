"""The event cache: each sample's events, ragged in columns of one HDF5 group.

Layout (``store = "events"``, see docs/preprocess.md, "Event caches"): the group ``events``
holds one column per field, the samples one after another in cache order: ``t_step [E]``
int32 (each event's time minus the previous event's of the same sample, 0 for a sample's
first), ``x [E]`` and ``y [E]`` (uint8 for sensors up to 256 px, else uint16), ``p [E]``
uint8, and ``t_first [N]`` int64 (each sample's first timestamp, 0 when it has none);
``offsets [N + 1]`` int64, sample i being rows ``offsets[i]:offsets[i + 1]``; then the
per-sample datasets of every cache (labels, split, source, row, n_events). Small steps and
separate columns compress better and decode far faster than the 13-byte records, which the
first layout stored and which are refused now with a "rebuild" message. The writer's plan,
blocks, parts, resume, shards, lock, build id and atomic rename are the frame cache's; the
reader of one row at a time, `EventCacheReader`, is in ``reader.py`` with the other readers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import h5py
import numpy as np

from ..errors import CacheError
from ..events import EVENT_DTYPE, Sensor
from ..frames.kernels import _decode_events_kernel

__all__ = [
    "EVENT_CHUNK",
    "EVENT_COLUMNS",
    "column_dtypes",
    "create_event_layout",
    "encode_event_columns",
    "decode_event_columns",
    "write_event_samples",
    "copy_event_rows",
    "check_event_layout",
    "read_event_rows",
]

EVENT_CHUNK = 1 << 16  # events per HDF5 chunk: ~320 KiB of columns before compression
EVENT_COLUMNS = {
    "t_step": np.dtype(np.int32),
    "x": np.dtype(np.uint16),  # uint8 where the sensor is at most 256 pixels wide and high
    "y": np.dtype(np.uint16),
    "p": np.dtype(np.uint8),
}
_COORD_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
_STEP_MAX = np.iinfo(np.int32).max
_REBUILD = "rebuild it with `eventvision preprocess ... --store events --overwrite`"


def column_dtypes(sensor: Sensor) -> dict[str, np.dtype]:
    """The stored dtype of each event column: x and y in one byte when the sensor allows."""
    coord = np.dtype(np.uint8 if max(sensor.width, sensor.height) <= 256 else np.uint16)
    return {**EVENT_COLUMNS, "x": coord, "y": coord}


def create_event_layout(
    f: h5py.File, compression: dict, n_samples: int, n_events: int, sensor: Sensor
) -> None:
    """Create the ``events`` columns and ``offsets [n_samples + 1]`` (the per-sample rest apart)."""
    group = f.create_group("events")
    for name, dtype in column_dtypes(sensor).items():
        group.create_dataset(
            name,
            shape=(n_events,),
            maxshape=(None,),
            dtype=dtype,
            chunks=(EVENT_CHUNK,),
            **compression,
        )
    group.create_dataset("t_first", shape=(n_samples,), dtype=np.int64)
    f.create_dataset("offsets", shape=(n_samples + 1,), dtype=np.int64)


def encode_event_columns(events: np.ndarray, name: str = "sample") -> dict[str, np.ndarray]:
    """One sample's columns: ``t_first`` (int64 scalar), ``t_step``, ``x``, ``y``, ``p``.

    Raises CacheError naming ``name`` when two consecutive timestamps lie 2**31 us (36 min)
    or more apart, which an int32 step cannot hold.
    """
    t = events["t"].astype(np.int64, copy=False)
    steps = np.diff(t, prepend=t[:1])
    if len(steps) and int(np.abs(steps).max()) > _STEP_MAX:
        i = int(np.argmax(np.abs(steps) > _STEP_MAX))
        raise CacheError(
            f"{name}: events {i - 1} and {i} lie {int(steps[i])} us apart, more than an event "
            f"cache's int32 time step holds ({_STEP_MAX} us)"
        )
    for field in ("x", "y"):
        if len(events) and int(events[field].max()) > 0xFFFF:
            raise CacheError(f"{name}: {field} = {int(events[field].max())} exceeds uint16")
    return {
        "t_first": np.int64(t[0] if len(t) else 0),
        "t_step": steps.astype(np.int32),
        "x": events["x"].astype(np.uint16),
        "y": events["y"].astype(np.uint16),
        "p": events["p"].astype(np.uint8),
    }


def decode_event_columns(
    t_first: int, t_step: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray
) -> np.ndarray:
    """The ``EVENT_DTYPE`` records of one sample's columns (`encode_event_columns` undone)."""
    out = np.empty(len(t_step), dtype=EVENT_DTYPE)
    _decode_events_kernel(np.int64(t_first), t_step, x, y, p, out)
    return out


def write_event_samples(
    f: h5py.File, samples: Sequence[np.ndarray], names: Sequence[str] | None = None
) -> None:
    """Store ``samples`` (one events array each) into a layout made for exactly them."""
    names = names if names is not None else [f"sample {i}" for i in range(len(samples))]
    encoded = [encode_event_columns(s, n) for s, n in zip(samples, names, strict=True)]
    offsets = np.zeros(len(samples) + 1, dtype=np.int64)
    np.cumsum([len(s) for s in samples], out=offsets[1:])
    group = f["events"]
    for e, name in zip(encoded, names, strict=True):
        _check_fits(e, group, name)
    for column in EVENT_COLUMNS:
        if group[column].shape[0] != offsets[-1]:
            group[column].resize((int(offsets[-1]),))
        if offsets[-1]:
            values = np.concatenate([e[column] for e in encoded])
            group[column][...] = values.astype(group[column].dtype, copy=False)
    group["t_first"][...] = [e["t_first"] for e in encoded]
    f["offsets"][...] = offsets


def _check_fits(encoded: dict, dtypes: h5py.Group, name: str) -> None:
    """Raise CacheError naming ``name`` when a coordinate exceeds its stored column's dtype."""
    for column in ("x", "y"):
        limit = np.iinfo(dtypes[column].dtype).max
        if len(encoded[column]) and int(encoded[column].max()) > limit:
            raise CacheError(
                f"{name}: {column} = {int(encoded[column].max())} does not fit the cache's "
                f"{dtypes[column].dtype} column (made for the dataset's sensor)"
            )


def copy_event_rows(
    dst: h5py.File, rows: Sequence[tuple[int, int]], source: Callable[[int], h5py.File]
) -> None:
    """Fill ``dst``'s event layout with row ``r`` of input ``source(k)`` for each ``(k, r)``."""
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    spans, t_first, checked = [], np.zeros(len(rows), dtype=np.int64), set()
    for n, (k, r) in enumerate(rows):
        src = source(k)
        if k not in checked:
            _check_columns(src.filename, src)
            checked.add(k)
        lo, hi = (int(v) for v in src["offsets"][r : r + 2])
        spans.append((k, lo, hi))
        t_first[n] = src["events/t_first"][r]
        offsets[n + 1] = offsets[n] + hi - lo
    group = dst["events"]
    for column in EVENT_COLUMNS:
        group[column].resize((int(offsets[-1]),))
    for n, (k, lo, hi) in enumerate(spans):
        if hi > lo:
            src = source(k)["events"]
            for column in EVENT_COLUMNS:
                group[column][offsets[n] : offsets[n + 1]] = src[column][lo:hi]
    group["t_first"][...] = t_first
    dst["offsets"][...] = offsets


def _check_columns(path: str | os.PathLike, f: h5py.File) -> None:
    """Raise CacheError unless ``f`` holds this layout's event columns (the old one is named)."""
    if "events" in f and isinstance(f["events"], h5py.Dataset):
        raise CacheError(
            f"{path}: an event cache in the first layout (one table of 13-byte records), which "
            f"this version no longer reads; {_REBUILD}"
        )
    if "offsets" not in f or "events" not in f:
        missing = [name for name in ("events", "offsets") if name not in f]
        raise CacheError(f"{path}: event cache without {missing}; {_REBUILD}")
    group = f["events"]
    for name, dtype in {**EVENT_COLUMNS, "t_first": np.dtype(np.int64)}.items():
        allowed = _COORD_DTYPES if name in ("x", "y") else (dtype,)
        if name not in group or group[name].dtype not in allowed or group[name].ndim != 1:
            found = f"{group[name].dtype} {group[name].shape}" if name in group else "nothing"
            raise CacheError(
                f"{path}: events/{name} is {found}, expected 1-D {' or '.join(map(str, allowed))}"
                f"; {_REBUILD}"
            )


def check_event_layout(path: str | os.PathLike, f: h5py.File, n_samples: int) -> None:
    """Raise CacheError unless ``f`` holds a consistent event layout of ``n_samples`` samples."""
    _check_columns(path, f)
    group = f["events"]
    n_events = group["t_step"].shape[0]
    lengths = {name: group[name].shape[0] for name in EVENT_COLUMNS}
    if len(set(lengths.values())) != 1:
        raise CacheError(f"{path}: the event columns differ in length: {lengths}")
    if group["t_first"].shape != (n_samples,):
        shape = group["t_first"].shape
        raise CacheError(f"{path}: events/t_first {shape}, expected ({n_samples},)")
    offsets = f["offsets"][:]
    if offsets.shape != (n_samples + 1,):
        raise CacheError(f"{path}: offsets {offsets.shape}, expected ({n_samples + 1},)")
    ends_ok = offsets[0] == 0 and offsets[-1] == n_events
    if not ends_ok or np.any(np.diff(offsets) < 0):
        raise CacheError(
            f"{path}: offsets are not a non-decreasing run from 0 to the {n_events} events stored"
        )
    if "n_events" in f and not np.array_equal(np.diff(offsets), f["n_events"][:]):
        raise CacheError(f"{path}: offsets disagree with n_events")


def read_event_rows(
    get: Callable[[str], h5py.Dataset], lo: int, hi: int, t_first: int
) -> np.ndarray:
    """The ``EVENT_DTYPE`` records of rows ``lo:hi`` (one sample's), a fresh array.

    ``get`` looks a dataset up by name: an open file's ``__getitem__`` or a handle's
    ``dataset``.
    """
    if hi == lo:
        return np.empty(0, dtype=EVENT_DTYPE)
    columns = (get(f"events/{name}")[lo:hi] for name in EVENT_COLUMNS)
    return decode_event_columns(t_first, *columns)
