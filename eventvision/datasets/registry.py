"""The registry of sources: what the frame cache needs to know of each dataset or format.

A source is a name mapped to a sample lister, a reader, its classes, its sensor and its
orientation fix (see docs/preprocess.md, "Sources"). The cache builder asks this registry and
names no dataset itself; adding a dataset or a format is one module plus one
:func:`register_source` call.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np

from ..errors import ConfigError, DatasetError
from ..io.datasets import CIFAR10_DVS, DVS_GESTURE, NCALTECH101, NMNIST, DatasetInfo
from .atis import NMNIST as NMNISTDataset
from .atis import NCaltech101
from .cifar10dvs import CIFAR10DVS, cifar10dvs_fix_orientation
from .dvsgesture import DVSGesture
from .folder import read_event_file, scan_folder, split_folder

__all__ = [
    "SPLIT_CODES",
    "SourceSample",
    "Listing",
    "ListingOptions",
    "Source",
    "register_source",
    "get_source",
    "list_sources",
]

# The one home of the split codes stored in caches.
SPLIT_CODES = {"train": 0, "test": 1}


class SourceSample(NamedTuple):
    """One sample a cache will hold, in cache order (train first, then test)."""

    split: int  # SPLIT_CODES value
    label: int
    source: str  # path relative to the raw root
    row: int  # csv row for gestures, -1 otherwise
    start_us: int
    end_us: int


class Listing(NamedTuple):
    """The samples of a source, how they group, and every file the content depends on."""

    samples: list[SourceSample]
    recordings: list[range] | None  # samples cut from one recording, read together; or None
    sources: list[str]  # relative to the raw root


class ListingOptions(Protocol):
    """The cache options a lister reads (``eventvision.cache.CacheOptions`` has them)."""

    protocol: str | None
    seed: int
    test_fraction: float | None
    classes: tuple[str, ...] | None
    follow_symlinks: bool | None


@dataclass(frozen=True)
class Source:
    """A named source of samples for the cache.

    Args:
        name: the registered name (``eventvision preprocess NAME``).
        list_samples: ``(root, options) -> Listing``.
        read: ``path -> events`` of one sample file or recording, as stored (no orientation fix).
        info: the fixed facts (classes, sensor); None where the files decide them (``folder``).
        orient_counts: ``oriented counts [T, P, H, W] -> view indexed by raw (p, y, x)``; raw
            events counted into the view give the frames of the oriented events. None: the
            stored orientation is the one used.
        orient_events: ``raw events -> oriented events``, the same fix on the events (what an
            event cache stores); None exactly when ``orient_counts`` is None.
    """

    name: str
    list_samples: Callable[[Path, ListingOptions], Listing]
    read: Callable[[Path], np.ndarray]
    info: DatasetInfo | None
    orient_counts: Callable[[np.ndarray], np.ndarray] | None = None
    orient_events: Callable[[np.ndarray], np.ndarray] | None = None


_SOURCES: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    """Add ``source`` to the registry under its name; a second source of that name is refused."""
    if source.name in _SOURCES:
        raise ConfigError(f"a source named {source.name!r} is already registered")
    _SOURCES[source.name] = source
    return source


def get_source(name: str) -> Source:
    """The registered source ``name``; ConfigError with close matches otherwise."""
    if name not in _SOURCES:
        names = sorted(_SOURCES)
        close = difflib.get_close_matches(name, names)
        hint = f"did you mean {close}? " if close else ""
        raise ConfigError(f"unknown dataset {name!r}; {hint}known: {names}")
    return _SOURCES[name]


def list_sources() -> list[str]:
    """The names of every registered source, sorted."""
    return sorted(_SOURCES)


def blocks_of(n: int, block_samples: int) -> list[range]:
    """Consecutive ranges of at most ``block_samples`` of ``range(n)``."""
    return [range(lo, min(lo + block_samples, n)) for lo in range(0, n, block_samples)]


def _file_listing(root: Path, per_split: dict[str, list[tuple[Path, int]]]) -> Listing:
    """A listing of one file per sample, from ``split -> [(path, label)]``."""
    samples = [
        SourceSample(SPLIT_CODES[split], label, path.relative_to(root).as_posix(), -1, 0, 0)
        for split, files in per_split.items()
        for path, label in files
    ]
    return Listing(samples, None, sorted({s.source for s in samples}))


def _list_cifar10dvs(root: Path, options: ListingOptions) -> Listing:
    per_split = {}
    for split in SPLIT_CODES:
        ds = CIFAR10DVS(
            root, split, options.protocol or "paper", seed=options.seed, layout="original"
        )
        per_split[split] = [(s.path, s.label) for s in ds.samples]
    return _file_listing(root, per_split)


def _list_dvsgesture(root: Path, options: ListingOptions) -> Listing:
    samples: list[SourceSample] = []
    recordings: list[range] = []
    sources: list[str] = []
    for split, code in SPLIT_CODES.items():
        ds = DVSGesture(root, split, layout="original")  # cache workers read the release
        base = ds.root.relative_to(root) if ds.root != root else Path()
        sources.append((base / f"trials_to_{split}.txt").as_posix())
        for recording, indices in ds.iter_recordings():
            lo = len(samples)
            rel = recording.relative_to(root).as_posix()
            sources += [rel, rel[: -len(".aedat")] + "_labels.csv"]
            for i in indices:
                s = ds.samples[i]
                samples.append(SourceSample(code, s.label, rel, s.row, s.start_us, s.end_us))
            recordings.append(range(lo, len(samples)))
    return Listing(samples, recordings, sorted(set(sources)))


def _list_nmnist(root: Path, options: ListingOptions) -> Listing:
    per_split = {
        split: [(s.path, s.label) for s in NMNISTDataset(root, split).samples]
        for split in SPLIT_CODES
    }
    return _file_listing(root, per_split)


def _list_ncaltech101(root: Path, options: ListingOptions) -> Listing:
    per_split = {
        split: [(s.path, s.label) for s in NCaltech101(root, split, seed=options.seed).samples]
        for split in SPLIT_CODES
    }
    return _file_listing(root, per_split)


def _list_folder(root: Path, options: ListingOptions) -> Listing:
    tree = scan_folder(root, follow_symlinks=bool(options.follow_symlinks))
    if options.classes is not None and tree.classes != tuple(options.classes):
        raise DatasetError(
            f"{root}: class folders {list(tree.classes)} differ from the cache options' "
            f"{list(options.classes)}; the tree changed since the options were made"
        )
    fraction = 0.1 if options.test_fraction is None else options.test_fraction
    return _file_listing(root, split_folder(tree, fraction, options.seed))


def _cifar10dvs_raw_view(oriented: np.ndarray) -> np.ndarray:
    """The view of oriented counts ``[T, P, H, W]`` indexed by the raw ``[T, p, y, x]``.

    The CIFAR10-DVS fix (``x = 127 - raw_y, y = 127 - raw_x, p = 1 - raw_p``, see
    :func:`eventvision.datasets.cifar10dvs_fix_orientation`) maps pixels one to one and leaves
    event order alone, so raw events counted into this view give the oriented frames without
    rewriting every event.
    """
    return oriented[:, ::-1].transpose(0, 1, 3, 2)[:, :, ::-1, ::-1]  # [T, raw p, raw y, raw x]


register_source(
    Source(
        "cifar10-dvs",
        _list_cifar10dvs,
        CIFAR10_DVS.reader,
        CIFAR10_DVS,
        orient_counts=_cifar10dvs_raw_view,
        orient_events=cifar10dvs_fix_orientation,
    )
)
register_source(Source("dvs-gesture", _list_dvsgesture, DVS_GESTURE.reader, DVS_GESTURE))
register_source(Source("nmnist", _list_nmnist, NMNIST.reader, NMNIST))
register_source(Source("ncaltech101", _list_ncaltech101, NCALTECH101.reader, NCALTECH101))
register_source(Source("folder", _list_folder, read_event_file, None))
