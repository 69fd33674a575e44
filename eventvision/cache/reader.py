"""Opening a cache: validation, metadata, rows of a split, one sample, staleness, statistics.

The only code that opens, validates and decodes a cache file (h5py only); `FrameDataset` and
`EventDataset` build on it and keep only per-process handles (`CacheHandle`), indexing and
transforms.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from ..datasets.registry import SPLIT_CODES
from ..errors import CacheError, CacheMismatchError, check_choice
from ..events import Sensor
from .events import check_event_layout, read_event_rows
from .identity import CacheHandle, check_build, reopen_build
from .options import CacheOptions, manifest_changes, parse_size, size_hw

__all__ = [
    "CacheMeta",
    "CacheSample",
    "open_cache",
    "split_rows",
    "read_sample",
    "read_header",
    "whole_files",
    "cache_stats",
    "CacheStats",
    "check_sources",
    "EventCacheReader",
]

logger = logging.getLogger(__name__)

_REQUIRED = ("frames", "labels", "split", "source", "row", "n_events")


def read_header(path: str | os.PathLike) -> dict:
    """The attributes of a cache or shard file, JSON decoded, plus ``finished``."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            a = dict(f.attrs)
    except OSError as e:
        raise CacheError(f"{path}: not a readable HDF5 file ({e})") from None
    if "options_hash" not in a:
        raise CacheError(f"{path}: not an eventvision cache (no options_hash attribute)")
    header = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in a.items()}
    for key in ("classes", "sensor", "options", "manifest", "skipped"):
        if key in header:
            header[key] = json.loads(header[key])
    header["shard"] = header.get("shard") or None
    header["finished"] = bool(header.get("complete")) or bool(header.get("shard_complete"))
    return header


def whole_files(path: str | os.PathLike) -> bool:
    """True when every sample of the cache is a whole file (none cut from a recording)."""
    with h5py.File(path, "r") as f:
        return "row" not in f or bool((f["row"][:] < 0).all())


def describe_options_difference(old: dict, new: dict) -> str:
    """``"size: 64 (existing) vs 128 (requested), ..."`` for the options that differ."""
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if not keys:
        return "same options, other hash (another eventvision version?)"
    return ", ".join(f"{k}: {old.get(k)!r} (existing) vs {new.get(k)!r} (requested)" for k in keys)


@dataclass(frozen=True)
class CacheMeta:
    """A validated, complete cache: its options and shape, and whether its sources changed.

    ``stale`` lists the source files changed since the build (empty when fresh), or is None
    when the raw root is not at hand to check.
    """

    path: Path
    dataset: str
    classes: tuple[str, ...]
    time_steps: int
    split_by: str
    size: int | tuple[int, int]  # a square's side, or (height, width)
    sensor: Sensor
    compression: str
    options: dict
    options_hash: str
    eventvision_version: str
    n_samples: int
    n_train: int
    n_test: int
    raw_root: str
    manifest: list = field(repr=False)
    skipped: list = field(repr=False)
    stale: list[str] | None = None
    build_id: str | None = None
    store: str = "frames"  # or "events": then time_steps, size are 0 and split_by is ""

    @property
    def frame_shape(self) -> tuple[int, int, int, int]:
        """``(T, P, h, w)`` of one sample."""
        return (self.time_steps, self.sensor.polarities, *size_hw(self.size))


def open_cache(
    path: str | os.PathLike,
    *,
    expected: CacheOptions | None = None,
    raw_root: str | os.PathLike | None = None,
    check_sources: bool = True,
) -> CacheMeta:
    """Validate a complete cache and return its metadata; the file is closed again.

    Args:
        expected: raise CacheMismatchError naming both option sets unless the cache has them.
        raw_root: where to check the sources for staleness (default: the root it was built from).
        check_sources: compare the sources' sizes and mtimes with the manifest.

    Raises:
        CacheError: missing, unreadable, unfinished, a shard, or inconsistent datasets.
    """
    path = Path(path)
    if path.is_dir():
        raise CacheError(f"{path}: is a folder, expected an HDF5 cache file")
    if not path.exists():
        raise CacheError(f"{path}: no such cache file; build it with `eventvision preprocess`")
    h = read_header(path)
    if h["shard"]:
        raise CacheError(
            f"{path} is shard {h['shard']} of a cache, not a cache: join the shards with "
            "`eventvision cache merge OUT.h5 SHARD...`"
        )
    if not h.get("complete"):
        raise CacheError(f"{path}: the cache is incomplete; rerun the same preprocess to finish it")
    if expected is not None and h["options_hash"] != expected.hash():
        raise CacheMismatchError(
            f"{path} was built with other options: "
            f"{describe_options_difference(h['options'], expected.to_dict())}"
        )
    store = h.get("store", "frames")
    sensor = Sensor(*h["sensor"])
    with h5py.File(path, "r") as f:
        check_build(path, h.get("build_id"), f.attrs)  # the header and the data of one build
        required = _REQUIRED if store == "frames" else _REQUIRED[1:]
        missing = [name for name in required if name not in f]
        if missing:
            raise CacheError(f"{path}: missing dataset(s) {missing}")
        n = f[required[0]].shape[0]
        bad = [name for name in required if f[name].shape[0] != n]
        if bad:
            raise CacheError(f"{path}: datasets {bad} do not have the {n} rows of {required[0]}")
        size = parse_size(np.asarray(h["size"]).tolist()) if store == "frames" else 0
        if store == "events":
            check_event_layout(path, f, n)
        else:
            shape = (h["time_steps"], sensor.polarities, *size_hw(size))
            if f["frames"].shape[1:] != shape:
                raise CacheError(f"{path}: frames are {f['frames'].shape[1:]}, attrs say {shape}")
            if f["frames"].dtype != np.float32:
                raise CacheError(f"{path}: frames are {f['frames'].dtype}, expected float32")
        split = f["split"][:]
        _check_labels(path, f["labels"][:], split, len(h["classes"]))
    stale = None
    root = Path(raw_root) if raw_root is not None else Path(h.get("raw_root", ""))
    if check_sources and root.is_dir():
        stale = manifest_changes(root, h["manifest"])
    return CacheMeta(
        path=path,
        dataset=h["dataset"],
        classes=tuple(h["classes"]),
        time_steps=int(h.get("time_steps", 0)),
        split_by=h.get("split_by", ""),
        size=size,
        sensor=sensor,
        compression=h["compression"],
        options=h["options"],
        options_hash=h["options_hash"],
        eventvision_version=h["eventvision_version"],
        n_samples=n,
        n_train=int((split == SPLIT_CODES["train"]).sum()),
        n_test=int((split == SPLIT_CODES["test"]).sum()),
        raw_root=h.get("raw_root", ""),
        manifest=h["manifest"],
        skipped=h["skipped"],
        stale=stale,
        build_id=h.get("build_id"),
        store=store,
    )


def _check_labels(path: Path, labels: np.ndarray, split: np.ndarray, n_classes: int) -> None:
    """Raise CacheError unless every label names a class and every split code is known."""
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise CacheError(
            f"{path}: labels span {labels.min()}..{labels.max()}, outside 0..{n_classes - 1} "
            "for the classes attribute"
        )
    unknown = np.setdiff1d(split, list(SPLIT_CODES.values()))
    if len(unknown):
        raise CacheError(
            f"{path}: split codes {unknown[:4].tolist()}; expected {SPLIT_CODES} (see the layout)"
        )


def split_rows(meta: CacheMeta, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, labels)``: the rows of ``split`` in cache order and their int64 labels.

    Read from the build ``meta`` describes (CacheError if the file was rebuilt since).
    """
    check_choice("split", split, SPLIT_CODES)
    with reopen_build(meta.path, meta.build_id) as f:
        labels, codes = f["labels"][:].astype(np.int64), f["split"][:]
    rows = np.flatnonzero(codes == SPLIT_CODES[split])
    return rows, labels[rows]


class CacheSample(NamedTuple):
    """One stored sample: ``data`` is its frames ``[T, 2, h, w]``, or its events."""

    data: np.ndarray
    label: str
    source: str
    split: str


def read_sample(meta: CacheMeta, row: int) -> CacheSample:
    """Sample ``row`` (cache order) of the build ``meta`` describes, as stored."""
    if not 0 <= row < meta.n_samples:
        n = meta.n_samples
        raise IndexError(f"{meta.path}: row {row}, but the cache holds {n} samples, 0..{n - 1}")
    with reopen_build(meta.path, meta.build_id) as f:
        if meta.store == "events":
            lo, hi = (int(v) for v in f["offsets"][row : row + 2])
            data = read_event_rows(f.__getitem__, lo, hi, int(f["events/t_first"][row]))
        else:
            data = f["frames"][row]
        label, code = int(f["labels"][row]), int(f["split"][row])
        source = f["source"].asstr()[row]
    split = next(name for name, c in SPLIT_CODES.items() if c == code)
    return CacheSample(data, meta.classes[label], source, split)


@dataclass(frozen=True)
class CacheStats:
    """Counts per split and class, and event statistics, of a cache."""

    meta: CacheMeta
    per_class: dict[str, dict[str, int]]  # split -> class -> samples
    events: dict[str, float]  # total, min, mean, median, max events per sample
    size_bytes: int


def cache_stats(path: str | os.PathLike) -> CacheStats:
    """What ``eventvision info`` prints: options, counts per split and class, event statistics."""
    meta = open_cache(path)
    with h5py.File(path, "r") as f:
        check_build(path, meta.build_id, f.attrs)
        labels, split, n_events = f["labels"][:], f["split"][:], f["n_events"][:]
    per_class = {}
    for name, code in SPLIT_CODES.items():
        counts = np.bincount(labels[split == code], minlength=len(meta.classes))
        per_class[name] = {c: int(k) for c, k in zip(meta.classes, counts, strict=True)}
    events = {"total": 0, "min": 0, "mean": 0.0, "median": 0.0, "max": 0}
    if len(n_events):
        events = {
            "total": int(n_events.sum()),
            "min": int(n_events.min()),
            "mean": float(n_events.mean()),
            "median": float(np.median(n_events)),
            "max": int(n_events.max()),
        }
    return CacheStats(meta, per_class, events, Path(path).stat().st_size)


def _source_changes(manifest: list, raw_root: Path, current: list | None) -> list[str]:
    """``"<path>: <what>"`` per changed source: against ``current`` when given, else the disk."""
    if current is None:
        return manifest_changes(raw_root, manifest)
    old = {m[0]: m for m in manifest}
    new = {m[0]: m for m in current}
    lines = []
    for rel in sorted(old.keys() | new.keys()):
        if rel not in new:
            lines.append(f"{rel}: missing")
        elif rel not in old:
            lines.append(f"{rel}: new source")
        elif old[rel] != new[rel]:
            lines.append(f"{rel}: size or mtime changed")
    return lines


def check_sources(
    path: str | os.PathLike,
    manifest: list | str | None,
    raw_root: str | os.PathLike | None,
    *,
    current: list | None = None,
    allow_stale: bool = False,
    hint: str = "rebuild it with `eventvision preprocess ... --overwrite`, or pass --allow-stale",
) -> list[str] | None:
    """The sources of cache ``path`` changed since its build; raise unless ``allow_stale``.

    ``manifest`` is the cache's (a list or its JSON attribute); ``current`` a manifest just
    taken (``preprocess``), otherwise the files under ``raw_root`` are checked. When the raw
    root is not reachable (or the cache records none) a warning says so and None is returned.
    See docs/preprocess.md, "Stale sources".

    Raises:
        CacheMismatchError: sources changed and not ``allow_stale``; names a few of them.
    """
    if isinstance(manifest, str):
        manifest = json.loads(manifest)
    root = Path(raw_root) if raw_root else None
    if manifest is None:
        logger.warning("%s: records no source manifest; sources not checked for changes", path)
        return None
    if root is None or (current is None and not root.is_dir()):
        logger.warning(
            "%s: raw root %s not reachable; sources not checked for changes", path, raw_root
        )
        return None
    changed = _source_changes(manifest, root, current)
    if changed and not allow_stale:
        more = f"; ... ({len(changed) - 3} more)" if len(changed) > 3 else ""
        raise CacheMismatchError(
            f"{path} is stale: {len(changed)} source file(s) changed since it was built "
            f"({'; '.join(changed[:3])}{more}); {hint}"
        )
    return changed


class EventCacheReader:
    """Reads the events of one row of an event cache, through a per-process `CacheHandle`.

    ``cache`` is the file or its `CacheMeta` (`open_cache`, which validates the layout); the
    build id is read then and checked on every (re)open, as `FrameDataset` does, so events and
    labels never come from two builds.
    """

    def __init__(self, cache: str | os.PathLike | CacheMeta) -> None:
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
        self.t_first = self._handle.dataset("events/t_first")[:]
        self._handle.close()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def read(self, row: int) -> np.ndarray:
        """The events of sample ``row`` (cache order), a fresh ``EVENT_DTYPE`` array."""
        lo, hi = int(self.offsets[row]), int(self.offsets[row + 1])
        return read_event_rows(self._handle.dataset, lo, hi, int(self.t_first[row]))

    def close(self) -> None:
        """Close this process's handle (it reopens on the next read)."""
        self._handle.close()
