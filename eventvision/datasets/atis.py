"""N-MNIST and N-Caltech101 from their releases: class folders of ATIS ``.bin`` files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DatasetError, FormatError, check_choice
from ..io.datasets import NCALTECH101_INFO, NMNIST_INFO, DatasetInfo
from .cifar10dvs import _split_indices

__all__ = ["NMNIST", "NCaltech101"]

_SPLITS = ("train", "test", "all")


class AtisSample(NamedTuple):
    path: Path
    label: int


def _class_files(folder: Path, info: DatasetInfo, ignore: tuple[str, ...] = ()) -> list[list[str]]:
    """Per class of ``info``, the sorted ``.bin`` names of its folder; refuses unknown folders."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder (expected the {info.name} release)")
    found = {p.name for p in folder.iterdir() if p.is_dir()} - set(ignore)
    unknown, missing = (
        sorted(found - set(info.classes)),
        [c for c in info.classes if c not in found],
    )
    if unknown or missing:
        raise DatasetError(
            f"{folder}: not a {info.name} folder: "
            + (f"unknown class folders {unknown}; " if unknown else "")
            + (
                f"missing class folders {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                if missing
                else ""
            )
            + f"expected <class>/*.bin for the {len(info.classes)} classes"
        )
    files = []
    for name in info.classes:
        names = sorted(p.name for p in (folder / name).glob("*.bin"))
        if not names:
            raise DatasetError(f"{folder / name}: no .bin files in class folder")
        files.append(names)
    return files


class _AtisDataset:
    """Shared item access: read a sample's ``.bin``, check it fits the sensor."""

    info: DatasetInfo
    samples: list[AtisSample]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        sample = self.samples[index]
        events = self.info.reader(sample.path)
        width, height = self.info.sensor.width, self.info.sensor.height
        if len(events) and (events["x"].max() >= width or events["y"].max() >= height):
            raise FormatError(
                f"{sample.path}: event at x={int(events['x'].max())}, y={int(events['y'].max())} "
                f"outside the {height}x{width} (HxW) {self.info.name} sensor"
            )
        return events, sample.label

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
            f"samples={len(self)})"
        )


class NMNIST(_AtisDataset):
    """N-MNIST from ``<root>/Train|Test/<digit>/*.bin`` (34x34); items ``(events, label)``.

    ``root`` holds ``Train`` and ``Test`` (or ``NMNIST/`` holding them, tonic's download).
    Labels are the digits; events are the files' own (see docs/formats.md).
    """

    info = NMNIST_INFO

    def __init__(self, root: str | os.PathLike, split: str = "train") -> None:
        check_choice("split", split, ("train", "test"))
        root = Path(root)
        if not (root / "Train").is_dir() and (root / "NMNIST").is_dir():
            root = root / "NMNIST"
        self.root, self.split = root, split
        self.classes = self.info.classes
        folder = root / {"train": "Train", "test": "Test"}[split]
        self.samples = [
            AtisSample(folder / self.classes[label] / name, label)
            for label, names in enumerate(_class_files(folder, self.info))
            for name in names
        ]


class NCaltech101(_AtisDataset):
    """N-Caltech101 from ``<root>/<class>/image_*.bin`` (<= 240x180); items ``(events, label)``.

    ``root`` is the release's ``Caltech101`` folder, its parent, or tonic's ``save_to``. The
    release has no split: per class, files in name order, a random 9:1 train:test split drawn
    with ``seed`` (CIFAR10-DVS's ``random`` protocol). Labels follow the 101 sorted folder
    names, the background class included (see docs/formats.md).
    """

    info = NCALTECH101_INFO

    def __init__(self, root: str | os.PathLike, split: str = "train", *, seed: int = 0) -> None:
        check_choice("split", split, _SPLITS)
        root = Path(root)
        for below in ("Caltech101", "NCALTECH101/Caltech101"):  # the release, tonic's download
            if (root / below).is_dir():
                root = root / below
                break
        self.root, self.split, self.seed = root, split, seed
        self.classes = self.info.classes
        rng = np.random.default_rng(seed)
        self.samples = []
        for label, names in enumerate(_class_files(root, self.info)):
            for i in _split_indices(len(names), split, "random", rng):
                self.samples.append(AtisSample(root / self.classes[label] / names[i], label))
