"""CIFAR10-DVS from its original release: class folders of jAER AEDAT 2.0 files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DatasetError, check_choice
from ..events import make_events
from ..io.datasets import CIFAR10_DVS_INFO
from .layouts import Layout, LayoutDataset, class_files, find_cifar10dvs_layout

__all__ = ["CIFAR10DVS", "CifarSample", "SPLIT_PROTOCOLS", "cifar10dvs_fix_orientation"]

SPLIT_PROTOCOLS = {
    "paper": "per class, files in lexicographic order: first 90% train, last 10% test "
    "(the SpikingResformer code; test taken last file first)",
    "first-test": "per class, files in lexicographic order: first 10% test, the rest train",
    "random": "per class, a random 9:1 split drawn with `seed`",
}


class CifarSample(NamedTuple):
    path: Path
    label: int


def cifar10dvs_fix_orientation(events: np.ndarray, sensor_size: int = 128) -> np.ndarray:
    """Turn raw DVS128 coordinates into the orientation of spikingjelly, hence of the paper.

    The CIFAR10-DVS recordings were made with the sensor turned relative to the monitor:
    spikingjelly reads ``x = 127 - raw_y``, ``y = 127 - raw_x``, ``p = 1 - raw_p``, which shows
    the images upright. Models trained by the paper's pipeline expect exactly this view.
    """
    top = sensor_size - 1
    return make_events(
        events["t"],
        top - events["y"].astype(np.int32),
        top - events["x"].astype(np.int32),
        1 - events["p"],
    )


def _split_indices(n: int, split: str, protocol: str, rng: np.random.Generator) -> list[int]:
    n_test = n - n * 9 // 10
    if protocol == "paper":
        train, test = list(range(n - n_test)), list(range(n - 1, n - n_test - 1, -1))
    elif protocol == "first-test":
        train, test = list(range(n_test, n)), list(range(n_test))
    else:
        order = rng.permutation(n).tolist()
        train, test = sorted(order[n_test:]), sorted(order[:n_test])
    return {"train": train, "test": test, "all": list(range(n))}[split]


class CIFAR10DVS(LayoutDataset):
    """CIFAR10-DVS from ``<root>/<class>/cifar10_<class>_<i>.aedat``; items ``(events, label)``.

    Labels 0..9 follow the alphabetical class names. Events are in the paper's orientation
    (see :func:`cifar10dvs_fix_orientation`). The release has no official split; ``protocol``
    names one of SPLIT_PROTOCOLS, default the paper's.

    ``layout`` is ``"auto"`` (detect), ``"original"``, ``"tonic"`` (``<class>/*.aedat4``,
    events as tonic gives them) or ``"spikingjelly"`` (``events_np/<class>/*.npz``, already in
    the paper's orientation); every layout takes the same split rules (see docs/formats.md).

    Example:
        >>> ds = CIFAR10DVS("raw/", split="test")  # doctest: +SKIP
    """

    info = CIFAR10_DVS_INFO

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        protocol: str = "paper",
        *,
        seed: int = 0,
        allow_truncated: bool = False,
        layout: str = "auto",
    ) -> None:
        check_choice("split", split, ("train", "test", "all"))
        check_choice("protocol", protocol, sorted(SPLIT_PROTOCOLS))
        self.root = Path(root)
        self.split, self.protocol, self.seed = split, protocol, seed
        self.allow_truncated = allow_truncated
        self.classes = self.info.classes
        self.layout = find_cifar10dvs_layout(self.root, layout, self.classes)
        if self.layout.name == "original":
            self.samples = self._find_samples()
        else:
            self.samples = self._find_layout_samples(self.layout)

    def _find_layout_samples(self, layout: Layout) -> list[CifarSample]:
        suffix = {"tonic": ".aedat4", "spikingjelly": ".npz"}[layout.name]
        rng = np.random.default_rng(self.seed)
        samples = []
        for label, name in enumerate(self.classes):
            files = class_files(layout.base / name, suffix)
            for i in _split_indices(len(files), self.split, self.protocol, rng):
                samples.append(CifarSample(files[i], label))
        return samples

    def _find_samples(self) -> list[CifarSample]:
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: no such folder (expected the CIFAR10-DVS release)")
        missing = [c for c in self.classes if not (self.root / c).is_dir()]
        if missing:
            raise DatasetError(
                f"{self.root}: not a CIFAR10-DVS folder: missing class folders {missing}; expected "
                f"<root>/<class>/cifar10_<class>_<i>.aedat for classes {list(self.classes)}"
            )
        rng = np.random.default_rng(self.seed)
        samples = []
        for label, name in enumerate(self.classes):
            # Plain string order (_0, _1, _10, _100, ...), as the paper's code sees the files.
            files = sorted(p.name for p in (self.root / name).glob("*.aedat"))
            if not files:
                raise DatasetError(f"{self.root / name}: no .aedat files in class folder")
            for i in _split_indices(len(files), self.split, self.protocol, rng):
                samples.append(CifarSample(self.root / name / files[i], label))
        return samples

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        sample = self.samples[index]
        if self.layout.name != "original":
            return self.layout_events(sample.path), sample.label
        raw = self.info.reader(sample.path, allow_truncated=self.allow_truncated)
        return cifar10dvs_fix_orientation(raw, self.info.sensor.width), sample.label

    def __repr__(self) -> str:
        return (
            f"CIFAR10DVS(root={str(self.root)!r}, split={self.split!r}, "
            f"protocol={self.protocol!r}, layout={self.layout.name!r}, samples={len(self)})"
        )
