"""Your own dataset: a tree of class folders holding event files in one supported format.

``ROOT/<class>/<file>`` (split drawn per class with a seed) or ``ROOT/train|test/<class>/<file>``
(split given by the folders); see docs/preprocess.md, "Your own folder".
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DatasetError, FormatError
from ..events import DVS128, Sensor, make_events
from ..io.aedat2 import AEDAT2_MAGIC, read_aedat2
from ..io.aedat4 import read_aedat4, read_aedat4_info
from ..io.aedat31 import AEDAT31_MAGIC, read_aedat31
from ..io.atis import read_atis_bin
from .layouts import _sorted_or_raise, read_spikingjelly_npz

__all__ = ["FOLDER_SUFFIXES", "FolderTree", "scan_folder", "read_event_file", "split_folder"]

FOLDER_SUFFIXES = (".aedat", ".aedat4", ".bin", ".npy", ".npz", ".h5")


class FolderTree(NamedTuple):
    """What a folder tree holds: class names, the one file suffix, and how it splits."""

    classes: tuple[str, ...]
    suffix: str
    split_folders: bool  # train/ and test/ subfolders give the split
    files: dict[str, list[tuple[Path, int]]]  # "train"/"test"/"all" -> [(file, label)]


def _read_aedat(path: Path) -> np.ndarray:
    """A jAER ``.aedat`` file, AEDAT 2.0 or 3.1 as its first line says."""
    with open(path, "rb") as f:
        head = f.read(len(AEDAT31_MAGIC))
    if head.startswith(AEDAT2_MAGIC):
        return read_aedat2(path)
    if head.startswith(AEDAT31_MAGIC):
        return read_aedat31(path)
    raise FormatError(
        f"{path}: first bytes {head!r}; expected {AEDAT2_MAGIC!r} or {AEDAT31_MAGIC!r}"
    )


def _events_from_columns(path: Path, t, x, y, p) -> np.ndarray:
    """Events from four columns, refusing what EVENT_DTYPE would silently wrap or round."""
    columns = {"t": np.asarray(t), "x": np.asarray(x), "y": np.asarray(y), "p": np.asarray(p)}
    for name, col in columns.items():
        if (
            col.dtype.kind == "f"
            and len(col)
            and not np.all(np.isfinite(col) & (col == np.rint(col)))
        ):
            raise FormatError(
                f"{path}: {name} holds non-integer values (t must be in microseconds)"
            )
    if any(len(c) and c.min() < 0 for c in (columns["x"], columns["y"])):
        raise FormatError(f"{path}: negative x or y")
    p = columns["p"]
    if len(p) and not np.isin(p, (0, 1)).all():
        raise FormatError(f"{path}: polarity values {np.unique(p)[:4].tolist()}; expected 0 and 1")
    return _sorted_or_raise(make_events(*columns.values()), path)


def _read_npy(path: Path) -> np.ndarray:
    """A structured ``.npy`` (fields t, x, y, p) or an ``[N, 4]`` array in tonic's x, y, p, t."""
    try:
        arr = np.load(path)
    except (OSError, ValueError, EOFError) as e:
        raise FormatError(f"{path}: not a readable npy file: {e}") from None
    if arr.dtype.names is not None:
        missing = {"t", "x", "y", "p"} - set(arr.dtype.names)
        if missing or arr.ndim != 1:
            raise FormatError(f"{path}: expected 1-D fields t, x, y, p; got {arr.dtype.names}")
        return _events_from_columns(path, *(arr[k] for k in "txyp"))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise FormatError(f"{path}: expected fields t, x, y, p or [N, 4] columns x, y, p, t")
    return _events_from_columns(path, arr[:, 3], arr[:, 0], arr[:, 1], arr[:, 2])


def _read_h5(path: Path) -> np.ndarray:
    """An HDF5 file with 1-D datasets t, x, y, p at the top or in an ``events`` group."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f["events"] if "events" in f and isinstance(f["events"], h5py.Group) else f
            missing = [k for k in "txyp" if k not in group]
            if missing:
                raise FormatError(f"{path}: no dataset(s) {missing}; expected t, x, y, p")
            columns = [group[k][:] for k in "txyp"]
    except OSError as e:
        raise FormatError(f"{path}: not a readable HDF5 file: {e}") from None
    if len({c.shape for c in columns}) != 1 or columns[0].ndim != 1:
        raise FormatError(f"{path}: t, x, y, p are not equally long 1-D arrays")
    return _events_from_columns(path, *columns)


_READERS: dict[str, Callable[[Path], np.ndarray]] = {
    ".aedat": _read_aedat,
    ".aedat4": read_aedat4,
    ".bin": read_atis_bin,
    ".npy": _read_npy,
    ".npz": read_spikingjelly_npz,
    ".h5": _read_h5,
}


def read_event_file(path: str | os.PathLike) -> np.ndarray:
    """Read one event file of any supported format, chosen by its suffix."""
    path = Path(path)
    if path.suffix not in _READERS:
        raise FormatError(f"{path}: unsupported suffix; supported: {list(FOLDER_SUFFIXES)}")
    return _READERS[path.suffix](path)


def file_sensor(path: Path) -> Sensor | None:
    """The sensor a file's format states (AEDAT: DVS128, AEDAT 4: its header), else None."""
    if path.suffix == ".aedat":
        return DVS128
    if path.suffix == ".aedat4":
        try:
            streams = read_aedat4_info(path).event_streams
        except FormatError:
            return None  # a bad file: the build reports it (or skips it with --skip-bad)
        sensors = set(streams.values())
        if len(sensors) == 1:
            return sensors.pop()
    return None


def _class_dirs(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name)


def _event_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in FOLDER_SUFFIXES)


def scan_folder(root: str | os.PathLike) -> FolderTree:
    """Classes, format and split of a folder tree; DatasetError on mixed formats or no files."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    split_folders = (root / "train").is_dir() and (root / "test").is_dir()
    parts = {"train": root / "train", "test": root / "test"} if split_folders else {"all": root}
    by_part = {part: {d.name: _event_files(d) for d in _class_dirs(f)} for part, f in parts.items()}
    classes = tuple(sorted({c for per_class in by_part.values() for c in per_class}))
    suffixes: dict[str, int] = {}
    for per_class in by_part.values():
        for files in per_class.values():
            for p in files:
                suffixes[p.suffix] = suffixes.get(p.suffix, 0) + 1
    if len(suffixes) > 1:
        held = ", ".join(f"{n} *{s}" for s, n in sorted(suffixes.items()))
        raise DatasetError(f"{root}: mixed formats in one folder tree ({held}); use one format")
    if not suffixes:
        raise DatasetError(
            f"{root}: no event files; expected <class>/<file> or train|test/<class>/<file> "
            f"with suffix {'|'.join(FOLDER_SUFFIXES)}"
        )
    label = {name: i for i, name in enumerate(classes)}
    files = {
        part: [(p, label[c]) for c in sorted(per_class) for p in per_class[c]]
        for part, per_class in by_part.items()
    }
    return FolderTree(classes, suffixes.popitem()[0], split_folders, files)


def split_folder(
    tree: FolderTree, test_fraction: float, seed: int, root: str | os.PathLike | None = None
) -> dict[str, list[tuple[Path, int]]]:
    """``{"train": ..., "test": ...}``: the split folders, or per class a seeded random draw.

    Per class the files (in name order) are permuted with ``numpy.random.default_rng(seed)``
    and the first ``round(n * test_fraction)`` go to test. A draw that leaves a class without
    a train or a test sample is refused (DatasetError naming a fraction that works), as is a
    ``train/``/``test/`` tree with an empty split.
    """
    where = f"{root}: " if root is not None else ""
    if tree.split_folders:
        empty = [part for part in ("train", "test") if not tree.files[part]]
        if empty:
            raise DatasetError(f"{where}{'/ and '.join(empty)}/ holds no event files")
        return {"train": tree.files["train"], "test": tree.files["test"]}
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}
    for label in range(len(tree.classes)):
        files = [f for f in tree.files["all"] if f[1] == label]
        order = rng.permutation(len(files))
        n_test = int(round(len(files) * test_fraction))
        if not 0 < n_test < len(files):
            raise DatasetError(where + _split_advice(tree, label, len(files), test_fraction))
        test = set(order[:n_test].tolist())
        out["train"] += [f for i, f in enumerate(files) if i not in test]
        out["test"] += [f for i, f in enumerate(files) if i in test]
    return out


def _split_advice(tree: FolderTree, label: int, n: int, test_fraction: float) -> str:
    """Why a test fraction empties a class's train or test part, and the fraction that works."""
    sizes = [sum(1 for _, lab in tree.files["all"] if lab == c) for c in range(len(tree.classes))]
    which = "test" if round(n * test_fraction) == 0 else "train"
    head = (
        f"test fraction {test_fraction:g} leaves class {tree.classes[label]!r} ({n} file"
        f"{'s' if n != 1 else ''}) "
        f"with no {which} sample"
    )
    smallest = min(sizes)
    if smallest < 2:
        small = tree.classes[sizes.index(smallest)]
        return (
            f"{head}; class {small!r} has {smallest} file: a drawn split needs 2 per class "
            "or give train/ and test/ folders"
        )
    works = math.ceil(100 / smallest) / 100  # one file of the smallest class: round(n*f) >= 1
    more = " or more, up to 0.5," if works < 0.5 else ""
    return (
        f"{head}; use --test-fraction {works:g} (1 of {smallest} files of the smallest class)"
        f"{more} or give train/ and test/ folders"
    )


def folder_sensor(tree: FolderTree, given: Sensor | None, root: Path) -> Sensor:
    """The sensor: ``given`` or the one the files state; DatasetError if neither or they differ."""
    stated = set()
    for files in tree.files.values():
        for path, _ in files:
            sensor = file_sensor(path)
            if sensor is None:
                break
            stated.add(sensor)
    if len(stated) > 1:
        raise DatasetError(f"{root}: the files state different sensor sizes {sorted(stated)}")
    if given is None:
        if not stated:
            raise DatasetError(
                f"{root}: *{tree.suffix} files do not state the sensor size; "
                "give it with --sensor-size HxW (e.g. 180x240: 180 rows of 240 pixels)"
            )
        return stated.pop()
    if stated and stated != {given}:
        (own,) = stated
        raise DatasetError(
            f"{root}: --sensor-size {given.height}x{given.width} (HxW) disagrees with the "
            f"{own.height}x{own.width} the files state"
        )
    return given
