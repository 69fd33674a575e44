"""The folder layouts users hold: the original releases, tonic's downloads, spikingjelly's npz.

Each layout is detected by the files it must hold; ``layout="auto"`` takes the one layout a
root holds and refuses a root holding none or several. See docs/formats.md for how each relates
to the original release (orientation, polarity, time unit) and which split rule applies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import DatasetError, FormatError, check_choice
from ..events import Sensor, make_events
from ..io.aedat4 import read_aedat4
from ..io.arrays import check_in_sensor, check_sorted
from ..io.arrays import read_npz_events as read_spikingjelly_npz

if TYPE_CHECKING:
    from ..io.datasets import DatasetInfo

__all__ = [
    "LAYOUTS",
    "LAYOUT_READERS",
    "Layout",
    "find_cifar10dvs_layout",
    "find_gesture_layout",
    "list_gesture_files",
    "LayoutDataset",
    "read_checked",
    "read_spikingjelly_npz",
    "read_tonic_gesture_npy",
    "check_in_sensor",
    "class_files",
    "write_spikingjelly_npz",
    "write_tonic_gesture_npy",
]

LAYOUTS = ("auto", "original", "tonic", "spikingjelly")
_EVENT_SUFFIXES = (".aedat", ".aedat4", ".npz", ".npy", ".bin", ".h5")


class Layout(NamedTuple):
    """A detected layout: its name and the folder its class (or split) folders sit in."""

    name: str
    base: Path


# layout -> (folders below root that may hold it, what it looks like, for messages)
_CIFAR_LAYOUTS = {
    "original": ((".",), ".aedat", "<root>/<class>/*.aedat"),
    "tonic": ((".", "CIFAR10DVS"), ".aedat4", "<root>/[CIFAR10DVS/]<class>/*.aedat4"),
    "spikingjelly": ((".", "events_np"), ".npz", "<root>/[events_np/]<class>/*.npz"),
}
_GESTURE_LAYOUTS = {
    "original": (".", "DvsGesture"),
    "tonic": (".", "DVSGesture"),
    "spikingjelly": (".", "events_np"),
}
_GESTURE_LOOKS = {
    "original": "<root>/[DvsGesture/]trials_to_train.txt",
    "tonic": "<root>/[DVSGesture/]ibmGestureTrain|ibmGestureTest/userNN_<lighting>/<label>.npy",
    "spikingjelly": "<root>/[events_np/]train|test/<label>/*.npz",
}


def _has_suffix(folder: Path, suffix: str) -> bool:
    return folder.is_dir() and any(p.suffix == suffix for p in folder.iterdir())


def _cifar_matches(root: Path, classes: tuple[str, ...]) -> list[Layout]:
    matches = []
    for name, (belows, suffix, _) in _CIFAR_LAYOUTS.items():
        for below in belows:
            base = root / below if below != "." else root
            if any(_has_suffix(base / c, suffix) for c in classes):
                matches.append(Layout(name, base))
                break
    return matches


def _gesture_matches(root: Path) -> list[Layout]:
    signs: dict[str, Callable[[Path], bool]] = {
        "original": lambda b: any((b / f"trials_to_{s}.txt").is_file() for s in ("train", "test")),
        "tonic": lambda b: any((b / f"ibmGesture{s}").is_dir() for s in ("Train", "Test")),
        "spikingjelly": lambda b: any((b / s / "0").is_dir() for s in ("train", "test")),
    }
    matches = []
    for name, belows in _GESTURE_LAYOUTS.items():
        for below in belows:
            base = root / below if below != "." else root
            if signs[name](base):
                matches.append(Layout(name, base))
                break
    return matches


def _choose(root: Path, what: str, layout: str, matches: list[Layout], looks: dict) -> Layout:
    """The one match for ``layout`` (or the only one for ``auto``), else a one-line error."""
    check_choice("layout", layout, LAYOUTS)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder (expected a {what} folder)")
    if layout != "auto":
        matches = [m for m in matches if m.name == layout]
        if not matches:
            raise DatasetError(
                f"{root}: not a {what} folder in the {layout} layout: expected {looks[layout]}"
            )
    if len(matches) == 1:
        return matches[0]
    if not matches:
        looked = "; ".join(f"{name}: {pattern}" for name, pattern in looks.items())
        raise DatasetError(f"{root}: unrecognised {what} layout; looked for {looked}")
    found = ", ".join(f"{m.name} in {m.base}" for m in matches)
    raise DatasetError(f"{root}: mixed {what} layouts ({found}); pass layout= to pick one")


def find_cifar10dvs_layout(root: Path, layout: str, classes: tuple[str, ...]) -> Layout:
    """Which CIFAR10-DVS layout ``root`` holds (``layout="auto"``) or check the one named."""
    looks = {name: spec[2] for name, spec in _CIFAR_LAYOUTS.items()}
    return _choose(root, "CIFAR10-DVS", layout, _cifar_matches(root, classes), looks)


def find_gesture_layout(root: Path, layout: str) -> Layout:
    """Which DVS Gesture layout ``root`` holds (``layout="auto"``) or check the one named."""
    return _choose(root, "DVS Gesture", layout, _gesture_matches(root), _GESTURE_LOOKS)


def class_files(folder: Path, suffix: str, *, allow_empty: bool = False) -> list[Path]:
    """The ``suffix`` files of one class folder in name order; refuses mixed event formats.

    An empty folder is refused unless ``allow_empty`` (spikingjelly's DVS Gesture conversion
    makes all 11 label folders of each split, empty where a split lacks the class).
    """
    if not folder.is_dir():
        raise DatasetError(f"{folder}: class folder missing")
    kinds: dict[str, int] = {}
    for p in folder.iterdir():
        if p.suffix in _EVENT_SUFFIXES:
            kinds[p.suffix] = kinds.get(p.suffix, 0) + 1
    if len(kinds) > 1:
        held = ", ".join(f"{n} *{s}" for s, n in sorted(kinds.items()))
        raise DatasetError(f"{folder}: mixed formats in one folder ({held}); expected *{suffix}")
    files = sorted((p for p in folder.iterdir() if p.suffix == suffix), key=lambda p: p.name)
    if not files and not allow_empty:
        raise DatasetError(f"{folder}: no *{suffix} files in class folder")
    return files


def list_gesture_files(layout: Layout, split: str, n_classes: int) -> list[tuple[Path, int]]:
    """``(file, label)`` of every sample of a split in the tonic or spikingjelly layout."""
    if layout.name == "tonic":
        folder = layout.base / {"train": "ibmGestureTrain", "test": "ibmGestureTest"}[split]
        files = [f for user in _subfolders(folder) for f in sorted(user.glob("*.npy"))]
        labelled = [(f, _label(f, f.stem, n_classes)) for f in files]
    else:
        folder = layout.base / split
        labelled = []
        for sub in _subfolders(folder):
            label = _label(sub, sub.name, n_classes)
            labelled += [(f, label) for f in class_files(sub, ".npz", allow_empty=True)]
        labelled.sort(key=lambda item: item[1])  # natural label order, not string order
    if not labelled:
        raise DatasetError(f"{folder}: the {split} split has no samples")
    return labelled


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder")
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name)


def _label(path: Path, text: str, n_classes: int) -> int:
    if not text.isdecimal() or not 0 <= int(text) < n_classes:
        raise DatasetError(f"{path}: {text!r} is no label; expected 0..{n_classes - 1}")
    return int(text)


def read_tonic_gesture_npy(path: str | Path) -> np.ndarray:
    """Read one of tonic's DVS Gesture ``.npy`` files (columns x, y, p, t in ms) as tonic does."""
    path = Path(path)
    try:
        columns = np.load(path)
    except (OSError, ValueError, EOFError) as e:
        raise FormatError(f"{path}: not a readable npy file: {e}") from None
    if columns.ndim != 2 or columns.shape[1] != 4 or columns.dtype.names is not None:
        raise FormatError(
            f"{path}: expected an [N, 4] array (x, y, p, t in ms), got {columns.shape}"
        )
    t_us = (columns[:, 3] * 1000).astype(np.int64)  # tonic: ms -> us in the file's dtype, then cast
    x, y = columns[:, 0].astype(np.int16), columns[:, 1].astype(np.int16)
    if len(columns) and min(x.min(), y.min()) < 0:
        raise FormatError(f"{path}: negative x or y")
    events = make_events(t_us, x, y, columns[:, 2].astype(bool))
    return check_sorted(events, path)


# dataset -> layout -> reader of its sample files (the original layouts: the datasets' own)
LAYOUT_READERS = {
    "cifar10-dvs": {"tonic": read_aedat4, "spikingjelly": read_spikingjelly_npz},
    "dvs-gesture": {"tonic": read_tonic_gesture_npy, "spikingjelly": read_spikingjelly_npz},
}


def read_checked(path: Path, reader: Callable[[Path], np.ndarray], sensor: Sensor) -> np.ndarray:
    """``reader(path)``, refusing events outside ``sensor`` (the layouts hold no sensor size)."""
    return check_in_sensor(reader(path), sensor, path)


class LayoutDataset:
    """What the CIFAR10-DVS and DVS Gesture datasets share: their length, and reading a sample
    kept in the tonic or spikingjelly layout (one file a sample, read by ``LAYOUT_READERS``)."""

    info: DatasetInfo
    layout: Layout
    samples: list

    def __len__(self) -> int:
        return len(self.samples)

    def layout_events(self, path: Path) -> np.ndarray:
        """The events of a sample file of a tonic or spikingjelly layout."""
        reader = LAYOUT_READERS[self.info.name][self.layout.name]
        return read_checked(path, reader, self.info.sensor)


def write_spikingjelly_npz(
    path: str | Path, events: np.ndarray, *, big_endian_t: bool = False
) -> None:
    """Write events as spikingjelly's ``events_np`` do: arrays t, x, y, p in one ``.npz``.

    ``big_endian_t`` stores t as ``>u4``, as spikingjelly's CIFAR10-DVS conversion leaves it.
    """
    t = events["t"].astype(">u4") if big_endian_t else events["t"]
    np.savez(path, t=t, x=events["x"], y=events["y"], p=events["p"])


def write_tonic_gesture_npy(path: str | Path, events: np.ndarray) -> None:
    """Write events as tonic's DVS Gesture download holds them: float columns x, y, p, t in ms."""
    columns = np.stack([events["x"], events["y"], events["p"], events["t"] / 1000], axis=1).astype(
        np.float64
    )  # [N, 4]
    np.save(path, columns)
