"""What a cache is built from: the frozen options, their hash, and the plan of samples."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import hdf5plugin  # registers the bitshuffle filter with h5py, for writing and reading

from ..datasets import SPLIT_PROTOCOLS
from ..datasets.folder import folder_sensor, scan_folder, split_folder
from ..datasets.layouts import LAYOUTS
from ..datasets.orientation import ORIENTATIONS
from ..datasets.registry import SPLIT_CODES, Source, SourceSample, blocks_of, get_source
from ..errors import ConfigError, check_choice
from ..events import EVENT_DTYPE, Sensor
from ..frames.binning import SPLIT_BY
from ..frames.resize import parse_size, size_hw
from ..io.datasets import DatasetInfo

__all__ = [
    "CacheOptions",
    "PlannedSample",
    "Plan",
    "plan_samples",
    "source_manifest",
    "parse_size",
    "folder_options",
    "source_options",
    "COMPRESSIONS",
    "SPLIT_CODES",
]

FORMAT_VERSION = 1
COMPRESSIONS = ("bitshuffle-lz4", "lzf", "gzip", "none")
STORES = ("frames", "events")
GZIP_LEVEL = 4
FRAME_DTYPE = "float32"  # resized values such as 3/64 or 9/49 need float32 to stay exact
_FRAME_ONLY = ("time_steps", "split_by", "size")  # options an event cache does not have
# Options only some sources use; absent from to_dict() when unset, so older hashes hold.
# The layout and orientation are stored only where they are not the default ("original",
# "raw"), so the caches built before these options keep their hashes.
_SOURCE_OPTIONS = (
    "sensor_size",
    "classes",
    "test_fraction",
    "follow_symlinks",
    "layout",
    "orientation",
)
# Which of the split options each source reads; the others are reset to their defaults.
_USES = {
    "cifar10-dvs": ("protocol", "seed", "layout"),
    "dvs-gesture": ("layout",),
    "ncaltech101": ("seed",),
    "folder": (
        "seed",
        "test_fraction",
        "sensor_size",
        "classes",
        "follow_symlinks",
        "orientation",
    ),
}
_RESET = {
    "protocol": None,
    "seed": 0,
    "test_fraction": None,
    "sensor_size": None,
    "classes": None,
    "follow_symlinks": None,
    "layout": None,
    "orientation": None,
}

PlannedSample = SourceSample


@dataclass(frozen=True)
class CacheOptions:
    """Every option that decides a cache's content; its hash names the build.

    Args:
        dataset: a registered source (see :func:`eventvision.datasets.registry.list_sources`).
        time_steps: frames per sample (T).
        split_by: ``number`` or ``time`` (see :func:`eventvision.frames.bin_bounds`).
        size: ``N`` (a square, the paper: 64, or 128 for transfer) or ``(height, width)``.
        compression: ``bitshuffle-lz4`` (the default: exact, decodes ~3x faster than lzf; an
            HDF5 filter from the ``hdf5plugin`` package, so plain h5py reads the file after
            ``import hdf5plugin``), ``lzf``, ``gzip`` (level 4) or ``none``.
        protocol: CIFAR10-DVS train/test protocol (stored as None for other sources).
        seed: seed of a random split (CIFAR10-DVS ``random``, N-Caltech101, ``folder``).
        sensor_size: ``(width, height)`` of a ``folder`` source.
        classes: class names of a ``folder`` source (its class folders, sorted).
        test_fraction: share of each class drawn for test in a ``folder`` without train/test.
        follow_symlinks: a ``folder`` source reads symlinks whose targets lie outside its
            root (True; None, the default: refused, see docs/preprocess.md).
        store: ``frames`` (binned and resized) or ``events`` (each sample's events as the
            datasets yield them; time_steps, split_by and size are then not part of the build,
            see docs/preprocess.md, "Event caches").
        layout: the layout of the raw files of CIFAR10-DVS or DVS Gesture: ``original`` (stored
            as None), ``tonic`` or ``spikingjelly``; ``auto`` is resolved by
            :func:`source_options`, which sees the files.
        orientation: ``folder``: the step turning raw sensor coordinates upright, one of
            :data:`eventvision.datasets.ORIENTATIONS` (``raw``, stored as None, keeps them).
    """

    dataset: str
    time_steps: int = 16
    split_by: str = "number"
    size: int | tuple[int, int] = 64
    compression: str = "bitshuffle-lz4"
    protocol: str | None = "paper"
    seed: int = 0
    sensor_size: tuple[int, int] | None = None
    classes: tuple[str, ...] | None = None
    test_fraction: float | None = None
    store: str = "frames"
    follow_symlinks: bool | None = None
    layout: str | None = None
    orientation: str | None = None

    def __post_init__(self) -> None:
        check_choice("store", self.store, STORES)
        source = get_source(self.dataset)
        if not isinstance(self.time_steps, int) or self.time_steps < 1:
            raise ConfigError(f"time_steps must be a positive int, got {self.time_steps!r}")
        check_choice("split_by", self.split_by, SPLIT_BY)
        object.__setattr__(self, "size", parse_size(self.size))
        check_choice("compression", self.compression, COMPRESSIONS)
        if not self.follow_symlinks:  # False is the default, None: the hashes stay as they were
            object.__setattr__(self, "follow_symlinks", None)
        uses = _USES.get(self.dataset, ())
        for key, default in _RESET.items():
            if key not in uses:
                object.__setattr__(self, key, default)
        self._check_layout_options()
        if "protocol" in uses:
            check_choice("CIFAR10-DVS protocol", self.protocol, sorted(SPLIT_PROTOCOLS))
        if source.info is None:
            self._check_folder_options()

    def _check_layout_options(self) -> None:
        """A concrete layout and orientation, the defaults stored as None (older hashes hold)."""
        layouts = [name for name in LAYOUTS if name != "auto"]
        if self.layout == "auto":
            raise ConfigError("layout 'auto' needs the raw root: use source_options(...)")
        if self.layout is not None and self.layout not in layouts:
            raise ConfigError(f"layout must be one of {layouts}, got {self.layout!r}")
        if self.orientation is not None:
            check_choice("orientation", self.orientation, ORIENTATIONS)
        if self.layout == "original":
            object.__setattr__(self, "layout", None)
        if self.orientation == "raw":
            object.__setattr__(self, "orientation", None)

    def _check_folder_options(self) -> None:
        """A source whose files decide classes and sensor needs them given (see folder_options)."""
        size = self.sensor_size
        if size is None or len(size) != 2 or min(size) < 1:
            raise ConfigError(f"{self.dataset}: sensor_size (width, height) is needed, got {size}")
        object.__setattr__(self, "sensor_size", (int(size[0]), int(size[1])))
        if not self.classes:
            raise ConfigError(f"{self.dataset}: classes are needed, got {self.classes!r}")
        object.__setattr__(self, "classes", tuple(self.classes))
        if self.test_fraction is not None and not 0 <= self.test_fraction < 1:
            raise ConfigError(f"test_fraction must be in [0, 1), got {self.test_fraction!r}")

    @classmethod
    def from_dict(cls, stored: dict) -> CacheOptions:
        """The options back from :meth:`to_dict` (fixed choices ignored, lists as tuples)."""
        fields = {k: stored[k] for k in cls.__dataclass_fields__ if k in stored}
        for key in ("size", "sensor_size", "classes"):
            if isinstance(fields.get(key), list):
                fields[key] = tuple(fields[key])
        return cls(**fields)

    @property
    def source(self) -> Source:
        """The registered source, reading this layout and applying this orientation."""
        return get_source(self.dataset).for_options(self.layout, self.orientation, self.sensor)

    @property
    def sensor(self) -> Sensor:
        """The sensor of the raw events: the dataset's, or ``sensor_size`` of a folder."""
        info = get_source(self.dataset).info
        if info is not None:
            return info.sensor
        assert self.sensor_size is not None  # __post_init__
        return Sensor(*self.sensor_size)

    @property
    def info(self) -> DatasetInfo:
        source = get_source(self.dataset)
        if source.info is not None:
            return source.info
        assert self.sensor_size is not None and self.classes is not None  # __post_init__
        return DatasetInfo(self.dataset, self.sensor, self.classes, source.read, "*")

    @property
    def size_hw(self) -> tuple[int, int]:
        """``(h, w)`` of the resized frames."""
        return size_hw(self.size)

    @property
    def frame_shape(self) -> tuple[int, int, int, int]:
        """``(T, P, h, w)`` of one cached sample."""
        return (self.time_steps, self.info.sensor.polarities, *self.size_hw)

    def to_dict(self) -> dict:
        """Every option plus the fixed choices (sensor, dtype, resize, format) as JSON-able data."""
        options = asdict(self)
        for key in _SOURCE_OPTIONS:
            if options[key] is None:
                del options[key]
            elif isinstance(options[key], tuple):
                options[key] = list(options[key])
        if isinstance(self.size, tuple):
            options["size"] = list(self.size)
        fixed = {
            "sensor": list(self.info.sensor),
            "compression_opts": GZIP_LEVEL if self.compression == "gzip" else None,
            "format_version": FORMAT_VERSION,
        }
        if self.store == "events":  # binning happens in the loader: not part of the build
            options = {k: v for k, v in options.items() if k not in _FRAME_ONLY}
            # The stored layout is part of the identity: a cache (or part) of the first layout,
            # one table of records, never passes for one of the columns (docs/preprocess.md).
            events = {"event_dtype": [list(d) for d in EVENT_DTYPE.descr], "event_layout": 2}
            return {**options, **fixed, **events}
        del options["store"]  # frame caches keep the hashes they had before event caches
        return {
            **options,
            **fixed,
            "frame_dtype": FRAME_DTYPE,
            "resize": "antialiased bilinear (torchvision Resize(size, antialias=True))",
        }

    def hash(self) -> str:
        """A 12-hex-digit hash of :meth:`to_dict`."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def h5_compression(self) -> dict:
        """Keyword arguments of ``h5py.create_dataset`` for the chosen compression."""
        if self.compression == "none":
            return {}
        if self.compression == "gzip":
            return {"compression": "gzip", "compression_opts": GZIP_LEVEL}
        if self.compression == "bitshuffle-lz4":
            return dict(hdf5plugin.Bitshuffle(cname="lz4"))
        return {"compression": "lzf"}


class Plan(NamedTuple):
    """The samples of a build, their blocks of work, and the source files they come from."""

    samples: list[PlannedSample]
    blocks: list[range]  # consecutive sample indices read together (a file group, a recording)
    sources: list[str]  # every file the content depends on, relative to the raw root


def plan_samples(options: CacheOptions, raw_root: str | os.PathLike, block_samples: int) -> Plan:
    """List the samples of ``options.dataset`` under ``raw_root`` and group them into blocks.

    Blocks of file-per-sample sources hold ``block_samples`` consecutive samples; a source
    whose samples are cut from recordings (DVS Gesture) gets one block per recording, so a
    recording is read once and held alone in memory.
    """
    listing = options.source.list_samples(Path(raw_root), options)
    blocks = listing.recordings
    if blocks is None:
        blocks = blocks_of(len(listing.samples), block_samples)
    return Plan(listing.samples, blocks, listing.sources)


def source_options(
    dataset: str,
    raw_root: str | os.PathLike,
    sensor_size: tuple[int, int] | None = None,
    test_fraction: float | None = None,
    follow_symlinks: bool = False,
    layout: str | None = None,
    orientation: str | None = None,
    **options,
) -> CacheOptions:
    """The options of a cache of ``dataset`` (any source); folder facts are read from the tree.

    ``layout`` (``auto``, the default where the source has layouts, or a layout name) is
    resolved to the layout ``raw_root`` holds. ``sensor_size``, ``test_fraction``,
    ``follow_symlinks`` and ``orientation`` are the folder source's, ``layout`` that of a
    source with layouts; given to another source they are refused rather than ignored.
    """
    source = get_source(dataset)
    given = {
        "sensor_size": sensor_size,
        "test_fraction": test_fraction,
        "orientation": orientation,
        "follow_symlinks": follow_symlinks or None,
        "layout": layout,
    }
    if source.info is None:
        foreign = ["layout"]
    elif source.find_layout is not None:
        foreign = ["sensor_size", "test_fraction", "orientation", "follow_symlinks"]
    else:
        foreign = list(given)
    wrong = [k for k in foreign if given[k] is not None and given[k] not in ("auto", "raw")]
    if wrong:
        raise ConfigError(f"{wrong} do not apply to {dataset}; see docs/preprocess.md, Sources")
    if source.info is None:
        fraction = 0.1 if test_fraction is None else test_fraction
        return folder_options(
            raw_root,
            sensor_size,
            test_fraction=fraction,
            follow_symlinks=follow_symlinks,
            orientation=orientation,
            **options,
        )
    if source.find_layout is not None:
        options["layout"] = source.find_layout(Path(raw_root), layout or "auto")
    return CacheOptions(dataset, **options)


def folder_options(
    raw_root: str | os.PathLike,
    sensor_size: tuple[int, int] | None = None,
    *,
    test_fraction: float = 0.1,
    follow_symlinks: bool = False,
    **options,
) -> CacheOptions:
    """The options of a ``folder`` cache of ``raw_root``: its classes and sensor read from the tree.

    Args:
        sensor_size: ``(width, height)``; needed where the files do not state it, and checked
            against the files where they do.
        test_fraction: share of each class drawn for test (seeded with ``seed``) when the tree
            has no ``train/`` and ``test/`` folders; one leaving a class without train or test
            samples is refused, naming one that works.
        follow_symlinks: read symlinks whose targets lie outside ``raw_root`` (recorded in
            the options; by default refused).
        options: the other :class:`CacheOptions` fields.
    """
    root = Path(raw_root)
    tree = scan_folder(root, follow_symlinks=follow_symlinks)
    given = None if sensor_size is None else Sensor(*sensor_size)
    sensor = folder_sensor(tree, given, root)
    split_folder(tree, test_fraction, options.get("seed", 0), root)  # refuse an empty split now
    return CacheOptions(
        "folder",
        sensor_size=(sensor.width, sensor.height),
        classes=tree.classes,
        test_fraction=None if tree.split_folders else test_fraction,
        follow_symlinks=follow_symlinks or None,
        **options,
    )


def source_manifest(raw_root: str | os.PathLike, sources: list[str]) -> list[list]:
    """``[relative path, size in bytes, mtime in ns]`` of each source file."""
    root = Path(raw_root)
    manifest = []
    for rel in sources:
        st = (root / rel).stat()
        manifest.append([rel, st.st_size, st.st_mtime_ns])
    return manifest


def manifest_changes(raw_root: str | os.PathLike, manifest: list[list]) -> list[str]:
    """What changed in the sources since ``manifest``: one ``"<path>: <what>"`` line per file."""
    root = Path(raw_root)
    changes = []
    for rel, size, mtime_ns in manifest:
        try:
            st = (root / rel).stat()
        except FileNotFoundError:
            changes.append(f"{rel}: missing")
            continue
        if st.st_size != size:
            changes.append(f"{rel}: size {size} -> {st.st_size} bytes")
        elif st.st_mtime_ns != mtime_ns:
            changes.append(f"{rel}: modified (mtime changed)")
    return changes
