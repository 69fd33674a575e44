"""What a cache is built from: the frozen options, their hash, and the plan of samples."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

from ..datasets import CIFAR10DVS, SPLIT_PROTOCOLS, DVSGesture
from ..errors import ConfigError
from ..events import EVENT_DTYPE
from ..frames.binning import SPLIT_BY
from ..io.datasets import DATASETS, DatasetInfo

__all__ = [
    "CacheOptions",
    "PlannedSample",
    "Plan",
    "plan_samples",
    "source_manifest",
    "COMPRESSIONS",
]

FORMAT_VERSION = 1
COMPRESSIONS = ("lzf", "gzip", "none")
STORES = ("frames", "events")
GZIP_LEVEL = 4
FRAME_DTYPE = "float32"  # resized values such as 3/64 or 9/49 need float32 to stay exact
SPLIT_CODES = {"train": 0, "test": 1}
_FRAME_ONLY = ("time_steps", "split_by", "size")  # options an event cache does not have


@dataclass(frozen=True)
class CacheOptions:
    """Every option that decides a cache's content; its hash names the build.

    Args:
        dataset: ``cifar10-dvs`` or ``dvs-gesture``.
        time_steps: frames per sample (T).
        split_by: ``number`` or ``time`` (see :func:`eventvision.frames.bin_bounds`).
        size: side of the square resized frames (the paper: 64, or 128 for transfer).
        compression: ``lzf``, ``gzip`` (level 4) or ``none``.
        protocol: CIFAR10-DVS train/test protocol (ignored, stored as None, for gestures).
        seed: seed of the ``random`` protocol.
        store: ``frames`` (binned and resized) or ``events`` (each sample's events as the
            datasets yield them; time_steps, split_by and size are then not part of the build,
            see docs/preprocess.md, "Event caches").
    """

    dataset: str
    time_steps: int = 16
    split_by: str = "number"
    size: int = 64
    compression: str = "lzf"
    protocol: str | None = "paper"
    seed: int = 0
    store: str = "frames"

    def __post_init__(self) -> None:
        if self.store not in STORES:
            raise ConfigError(f"store must be one of {STORES}, got {self.store!r}")
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; known: {sorted(DATASETS)}")
        if not isinstance(self.time_steps, int) or self.time_steps < 1:
            raise ConfigError(f"time_steps must be a positive int, got {self.time_steps!r}")
        if self.split_by not in SPLIT_BY:
            raise ConfigError(f"split_by must be one of {SPLIT_BY}, got {self.split_by!r}")
        if not isinstance(self.size, int) or self.size < 1:
            raise ConfigError(f"size must be a positive int, got {self.size!r}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(
                f"compression must be one of {COMPRESSIONS}, got {self.compression!r}"
            )
        if self.dataset == "dvs-gesture":
            object.__setattr__(self, "protocol", None)
            object.__setattr__(self, "seed", 0)
        elif self.protocol not in SPLIT_PROTOCOLS:
            raise ConfigError(
                f"unknown CIFAR10-DVS protocol {self.protocol!r}; known: {sorted(SPLIT_PROTOCOLS)}"
            )

    @property
    def info(self) -> DatasetInfo:
        return DATASETS[self.dataset]

    @property
    def frame_shape(self) -> tuple[int, int, int, int]:
        """``(T, P, h, w)`` of one cached sample."""
        return (self.time_steps, self.info.sensor.polarities, self.size, self.size)

    def to_dict(self) -> dict:
        """Every option plus the fixed choices (sensor, dtype, resize, format) as JSON-able data."""
        fixed = {
            "sensor": list(self.info.sensor),
            "compression_opts": GZIP_LEVEL if self.compression == "gzip" else None,
            "format_version": FORMAT_VERSION,
        }
        if self.store == "events":  # binning happens in the loader: not part of the build
            options = {k: v for k, v in asdict(self).items() if k not in _FRAME_ONLY}
            return {**options, **fixed, "event_dtype": [list(d) for d in EVENT_DTYPE.descr]}
        options = {k: v for k, v in asdict(self).items() if k != "store"}  # hashes unchanged
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
        return {"compression": "lzf"}


class PlannedSample(NamedTuple):
    """One sample the cache will hold, in cache order (train first, then test)."""

    split: int  # 0 train, 1 test
    label: int
    source: str  # path relative to the raw root
    row: int  # csv row for gestures, -1 otherwise
    start_us: int
    end_us: int


class Plan(NamedTuple):
    """The samples of a build, their blocks of work, and the source files they come from."""

    samples: list[PlannedSample]
    blocks: list[range]  # consecutive sample indices read together (a file group, a recording)
    sources: list[str]  # every file the content depends on, relative to the raw root


def plan_samples(options: CacheOptions, raw_root: str | os.PathLike, block_samples: int) -> Plan:
    """List the samples of ``options.dataset`` under ``raw_root`` and group them into blocks.

    CIFAR10-DVS blocks hold ``block_samples`` consecutive samples; DVS Gesture blocks hold the
    rows of one recording, so one recording is read once and held alone in memory.
    """
    root = Path(raw_root)
    samples: list[PlannedSample] = []
    blocks: list[range] = []
    sources: list[str] = []
    if options.dataset == "cifar10-dvs":
        for split, code in SPLIT_CODES.items():
            ds = CIFAR10DVS(
                root, split, options.protocol or "paper", seed=options.seed, layout="original"
            )
            for s in ds.samples:
                rel = s.path.relative_to(root).as_posix()
                samples.append(PlannedSample(code, s.label, rel, -1, 0, 0))
        sources = sorted({s.source for s in samples})
        for lo in range(0, len(samples), block_samples):
            blocks.append(range(lo, min(lo + block_samples, len(samples))))
    else:
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
                    samples.append(PlannedSample(code, s.label, rel, s.row, s.start_us, s.end_us))
                blocks.append(range(lo, len(samples)))
        sources = sorted(set(sources))
    return Plan(samples, blocks, sources)


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
