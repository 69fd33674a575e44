"""DVS128 Gesture from its original release: AEDAT 3.1 recordings cut by their labels csv."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DatasetError, FormatError, check_choice
from ..io.datasets import DVS_GESTURE_INFO
from ..io.labels import read_labels_csv, read_trials
from .layouts import Layout, LayoutDataset, find_gesture_layout, list_gesture_files

__all__ = ["DVSGesture", "GestureSample", "cut_recording"]

logger = logging.getLogger(__name__)


class GestureSample(NamedTuple):
    """One labelled gesture: a row of a recording's labels csv."""

    recording: Path
    row: int  # 0-based data row of the labels csv
    label: int  # csv class - 1
    start_us: int
    end_us: int


def cut_recording(events: np.ndarray, start_us: int, end_us: int) -> np.ndarray:
    """The events with ``start_us <= t < end_us`` (events sorted by time), as spikingjelly cuts."""
    lo, hi = np.searchsorted(events["t"], [start_us, end_us], side="left")
    return events[lo:hi]


class DVSGesture(LayoutDataset):
    """DVS128 Gesture from the ``DvsGesture`` folder; items ``(events, label)``.

    ``root`` is the ``DvsGesture`` folder or its parent. The recordings of a split are those
    named in ``trials_to_<split>.txt``; each row of a recording's ``*_labels.csv`` is a sample,
    label = csv class - 1 (spikingjelly's labels are a permutation of these, as it sorts class
    folder names as strings).

    ``layout`` is ``"auto"`` (detect), ``"original"``, ``"tonic"`` (``ibmGestureTrain|Test/
    userNN_<lighting>/<label>.npy``, time scaled ms -> us as tonic does) or ``"spikingjelly"``
    (``events_np/train|test/<label>/*.npz``): one file per sample, labels the natural 0..10 of
    the folder or file names, the split that of the folders (see docs/formats.md).

    Args:
        on_missing: ``"error"`` (default) or ``"skip"``: what to do with a recording named in the
            trials list whose ``.aedat`` or labels csv is absent. Skips are logged and listed in
            ``self.skipped`` as ``(file name, reason)``.
    """

    info = DVS_GESTURE_INFO

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        *,
        on_missing: str = "error",
        allow_truncated: bool = False,
        layout: str = "auto",
    ) -> None:
        check_choice("split", split, ("train", "test"))
        check_choice("on_missing", on_missing, ("error", "skip"))
        self.layout = find_gesture_layout(Path(root), layout)
        self.split = split
        self.allow_truncated = allow_truncated
        self.classes = self.info.classes
        self.skipped: list[tuple[str, str]] = []
        self._loaded: tuple[Path, np.ndarray] | None = None
        if self.layout.name == "original":
            self.root = _find_root(Path(root))
            self.samples = self._find_samples(on_missing)
        else:
            self.root = self.layout.base
            self.samples = _file_samples(self.layout, split, len(self.classes))

    def _find_samples(self, on_missing: str) -> list[GestureSample]:
        trials = self.root / f"trials_to_{self.split}.txt"
        if not trials.is_file():
            raise DatasetError(f"{self.root}: no {trials.name} (the DVS Gesture trials list)")
        samples = []
        for name in read_trials(trials):
            recording = self.root / name
            labels = recording.with_name(recording.stem + "_labels.csv")
            absent = [p.name for p in (recording, labels) if not p.is_file()]
            if absent:
                reason = f"{trials.name} names {name}, but {' and '.join(absent)} is absent"
                if on_missing == "error":
                    raise DatasetError(f"{self.root}: {reason}")
                logger.warning("skipping %s: %s", name, reason)
                self.skipped.append((name, reason))
                continue
            rows = read_labels_csv(labels)
            bad = (rows["label"] < 1) | (rows["label"] > len(self.classes))
            if bad.any():
                row = int(np.argmax(bad))
                raise FormatError(
                    f"{labels}: line {row + 2} has class {int(rows['label'][row])}, "
                    f"expected 1..{len(self.classes)}"
                )
            for row, (label, start, end) in enumerate(rows):
                samples.append(GestureSample(recording, row, int(label) - 1, int(start), int(end)))
        if not samples:
            raise DatasetError(f"{self.root}: the {self.split} split has no samples")
        return samples

    def recording_events(self, recording: Path) -> np.ndarray:
        """All events of one recording; the last one read is kept, so rows in order read it once."""
        if self._loaded is None or self._loaded[0] != recording:
            self._loaded = None  # free the previous recording first: one in memory at a time
            events = self.info.reader(recording, allow_truncated=self.allow_truncated)
            self._loaded = (recording, events)
        return self._loaded[1]

    def iter_recordings(self) -> Iterator[tuple[Path, list[int]]]:
        """Yield each recording with the indices of its samples, in dataset order."""
        groups: dict[Path, list[int]] = {}
        for index, sample in enumerate(self.samples):
            groups.setdefault(sample.recording, []).append(index)
        yield from groups.items()

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        sample = self.samples[index]
        if self.layout.name != "original":
            return self.layout_events(sample.recording), sample.label
        events = self.recording_events(sample.recording)
        cut = cut_recording(events, sample.start_us, sample.end_us)
        if len(cut) == 0:
            logger.warning(
                "%s row %d (%d..%d us) holds no events; the recording spans %s",
                sample.recording.name,
                sample.row,
                sample.start_us,
                sample.end_us,
                f"{events['t'][0]}..{events['t'][-1]} us" if len(events) else "nothing",
            )
        return cut.copy(), sample.label

    def __repr__(self) -> str:
        return (
            f"DVSGesture(root={str(self.root)!r}, split={self.split!r}, "
            f"layout={self.layout.name!r}, samples={len(self)})"
        )


def _file_samples(layout: Layout, split: str, n_classes: int) -> list[GestureSample]:
    """One sample per file of the tonic or spikingjelly layout: the whole file, no cutting."""
    return [
        GestureSample(path, -1, label, 0, 0)
        for path, label in list_gesture_files(layout, split, n_classes)
    ]


def _find_root(root: Path) -> Path:
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder (expected the DvsGesture release)")
    for candidate in (root, root / "DvsGesture"):
        if (candidate / "trials_to_train.txt").is_file() or (
            candidate / "trials_to_test.txt"
        ).is_file():
            return candidate
    raise DatasetError(
        f"{root}: not a DVS Gesture folder: no trials_to_train.txt / trials_to_test.txt "
        "in it or in DvsGesture/ below it"
    )
