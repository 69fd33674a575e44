"""The registry of sources: what the frame cache needs to know of each dataset or format.

A source is a name mapped to a sample lister, a reader, its classes, its sensor and its
orientation fix (see docs/preprocess.md, "Sources"). The cache builder asks this registry and
names no dataset itself; adding a dataset or a format is one module plus one
:func:`register_source` call.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..errors import ConfigError, DatasetError
from ..events import DVS128, Sensor
from ..io.datasets import (
    CIFAR10_DVS_INFO,
    DVS_GESTURE_INFO,
    NCALTECH101_INFO,
    NMNIST_INFO,
    DatasetInfo,
)
from .atis import NMNIST, NCaltech101
from .cifar10dvs import CIFAR10DVS, cifar10dvs_fix_orientation
from .dvsgesture import DVSGesture
from .folder import read_event_file, scan_folder, split_folder
from .layouts import (
    LAYOUT_READERS,
    find_cifar10dvs_layout,
    find_gesture_layout,
    read_checked,
)
from .orientation import orient_events, raw_view

__all__ = [
    "SPLIT_CODES",
    "SourceSample",
    "Listing",
    "ListingOptions",
    "Source",
    "register_source",
    "get_source",
    "list_sources",
    "open_dataset",
    "Reading",
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
    layout: str | None  # None: the original release


class Reading(NamedTuple):
    """How a source's files are read and turned into the stored orientation (see Source)."""

    read: Callable[[Path], np.ndarray]
    orient_counts: Callable[[np.ndarray], np.ndarray] | None = None
    orient_events: Callable[[np.ndarray], np.ndarray] | None = None


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
        dataset: the dataset class of the raw files (``open_dataset``); None for ``folder``.
        layouts: the reading of each other layout the dataset class reads (tonic's,
            spikingjelly's), by layout name; the fields above read the original release.
        find_layout: ``(root, "auto" or a layout name) -> the layout name root holds``.
        orientable: the cache options choose the orientation (``folder``: see
            :mod:`eventvision.datasets.orientation`).
    """

    name: str
    list_samples: Callable[[Path, ListingOptions], Listing]
    read: Callable[[Path], np.ndarray]
    info: DatasetInfo | None
    orient_counts: Callable[[np.ndarray], np.ndarray] | None = None
    orient_events: Callable[[np.ndarray], np.ndarray] | None = None
    dataset: Callable[..., Any] | None = None
    layouts: Mapping[str, Reading] = field(default_factory=dict)
    find_layout: Callable[[Path, str], str] | None = None
    orientable: bool = False

    def for_options(self, layout: str | None, orientation: str | None, sensor: Sensor) -> Source:
        """This source reading ``layout`` (None: the original) and applying ``orientation``."""
        if layout not in (None, "original"):
            if layout not in self.layouts:
                known = ["original", *sorted(self.layouts)]
                raise ConfigError(f"{self.name} has no layout {layout!r}; known: {known}")
            return replace(self, **self.layouts[layout]._asdict())
        if orientation not in (None, "raw"):
            if not self.orientable:
                raise ConfigError(f"{self.name} has a fixed orientation; no orientation option")
            return replace(
                self,
                orient_counts=partial(raw_view, orientation=orientation),
                orient_events=partial(orient_events, orientation=orientation, sensor=sensor),
            )
        return self


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


def open_dataset(name: str, root: str | Path, split: str = "train", **kwargs: Any) -> Any:
    """Open the raw dataset of the registered source ``name`` (e.g. ``cifar10-dvs``)."""
    source = get_source(name)
    if source.dataset is None:
        with_class = sorted(n for n, s in _SOURCES.items() if s.dataset is not None)
        raise ConfigError(f"{name!r} has no dataset class; sources with one: {with_class}")
    return source.dataset(root, split, **kwargs)


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
            root, split, options.protocol or "paper", seed=options.seed, layout=_layout(options)
        )
        per_split[split] = [(s.path, s.label) for s in ds.samples]
    return _file_listing(root, per_split)


def _layout(options: ListingOptions) -> str:
    return options.layout or "original"


def _list_dvsgesture(root: Path, options: ListingOptions) -> Listing:
    if _layout(options) != "original":  # one file per sample: tonic's npy, spikingjelly's npz
        per_split = {
            split: [
                (s.recording, s.label)
                for s in DVSGesture(root, split, layout=_layout(options)).samples
            ]
            for split in SPLIT_CODES
        }
        return _file_listing(root, per_split)
    samples: list[SourceSample] = []
    recordings: list[range] = []
    sources: list[str] = []
    for split, code in SPLIT_CODES.items():
        ds = DVSGesture(root, split, layout="original")
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
        split: [(s.path, s.label) for s in NMNIST(root, split).samples] for split in SPLIT_CODES
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
    return _file_listing(root, split_folder(tree, fraction, options.seed, root))


def _cifar10dvs_raw_view(oriented: np.ndarray) -> np.ndarray:
    """The view of oriented counts ``[T, P, H, W]`` indexed by the raw ``[T, p, y, x]``.

    The CIFAR10-DVS fix (``x = 127 - raw_y, y = 127 - raw_x, p = 1 - raw_p``, see
    :func:`eventvision.datasets.cifar10dvs_fix_orientation`) maps pixels one to one and leaves
    event order alone, so raw events counted into this view give the oriented frames without
    rewriting every event.
    """
    return oriented[:, ::-1].transpose(0, 1, 3, 2)[:, :, ::-1, ::-1]  # [T, raw p, raw y, raw x]


def _find_cifar10dvs_layout(root: Path, layout: str) -> str:
    return find_cifar10dvs_layout(root, layout, CIFAR10_DVS_INFO.classes).name


def _find_gesture_layout(root: Path, layout: str) -> str:
    return find_gesture_layout(root, layout).name


def _layout_reader(dataset: str, layout: str) -> Callable[[Path], np.ndarray]:
    """A tonic or spikingjelly layout's sample reader, refusing events outside the sensor."""
    return partial(read_checked, reader=LAYOUT_READERS[dataset][layout], sensor=DVS128)


register_source(
    Source(
        "cifar10-dvs",
        _list_cifar10dvs,
        CIFAR10_DVS_INFO.reader,
        CIFAR10_DVS_INFO,
        orient_counts=_cifar10dvs_raw_view,
        orient_events=cifar10dvs_fix_orientation,
        dataset=CIFAR10DVS,
        layouts={
            # tonic's AEDAT 4 files hold the raw addresses: the release's orientation step
            # turns them into the paper's view (docs/preprocess.md, "Layouts").
            "tonic": Reading(
                _layout_reader("cifar10-dvs", "tonic"),
                _cifar10dvs_raw_view,
                cifar10dvs_fix_orientation,
            ),
            # spikingjelly's conversion is already in the paper's orientation
            "spikingjelly": Reading(_layout_reader("cifar10-dvs", "spikingjelly")),
        },
        find_layout=_find_cifar10dvs_layout,
    )
)
register_source(
    Source(
        "dvs-gesture",
        _list_dvsgesture,
        DVS_GESTURE_INFO.reader,
        DVS_GESTURE_INFO,
        dataset=DVSGesture,
        layouts={
            name: Reading(_layout_reader("dvs-gesture", name))
            for name in LAYOUT_READERS["dvs-gesture"]
        },
        find_layout=_find_gesture_layout,
    )
)
register_source(Source("nmnist", _list_nmnist, NMNIST_INFO.reader, NMNIST_INFO, dataset=NMNIST))
register_source(
    Source(
        "ncaltech101",
        _list_ncaltech101,
        NCALTECH101_INFO.reader,
        NCALTECH101_INFO,
        dataset=NCaltech101,
    )
)
register_source(Source("folder", _list_folder, read_event_file, None, orientable=True))
