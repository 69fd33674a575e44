"""Your own dataset: a tree of class folders holding event files in one supported format.

``ROOT/<class>/<file>`` (split drawn per class with a seed) or ``ROOT/train|test/<class>/<file>``
(split given by the folders); see docs/preprocess.md, "Your own folder".

Nothing outside ROOT is read unless asked: a symlinked file or folder whose target lies
outside ROOT is refused unless ``follow_symlinks``; a file or class name that is not UTF-8
(the cache stores names as UTF-8 text) is refused, naming its bytes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DatasetError, FormatError
from ..events import Sensor
from ..io import recording
from ..io.recording import read_events

__all__ = [
    "FOLDER_SUFFIXES",
    "FolderTree",
    "scan_folder",
    "read_event_file",
    "split_folder",
    "check_utf8_name",
]

FOLDER_SUFFIXES = (".aedat", ".aedat4", ".bin", ".npy", ".npz", ".h5")


class FolderTree(NamedTuple):
    """What a folder tree holds: class names, the one file suffix, and how it splits."""

    classes: tuple[str, ...]
    suffix: str
    split_folders: bool  # train/ and test/ subfolders give the split
    files: dict[str, list[tuple[Path, int]]]  # "train"/"test"/"all" -> [(file, label)]


def read_event_file(path: str | os.PathLike) -> np.ndarray:
    """Read one event file of a supported suffix (its format found from the file itself)."""
    path = Path(path)
    if path.suffix not in FOLDER_SUFFIXES:
        raise FormatError(f"{path}: unsupported suffix; supported: {list(FOLDER_SUFFIXES)}")
    return read_events(path)[0]


def file_sensor(path: Path) -> Sensor | None:
    """The sensor a file's format states (AEDAT: DVS128, AEDAT 4: its header), else None."""
    try:
        return recording.file_sensor(path)
    except FormatError:
        return None  # a bad file: the build reports it (or skips it with --skip-bad)


def check_utf8_name(path: str | os.PathLike) -> None:
    """DatasetError, showing the bytes, unless ``path`` is UTF-8 (as a cache stores names)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise DatasetError(
            f"{shown}: the name is not UTF-8 and cannot be stored in a cache; rename it"
        ) from None


class _Scan(NamedTuple):
    """How a scan checks each entry: the resolved root, and whether links may leave it."""

    root: Path
    follow_symlinks: bool

    def check(self, path: Path) -> Path:
        """``path``, after refusing a name that is not UTF-8 or a link out of the root."""
        check_utf8_name(path)
        if path.is_symlink() and not self.follow_symlinks:
            target = path.resolve()
            if not target.is_relative_to(self.root):
                raise DatasetError(
                    f"{path}: a symlink to {target}, outside {self.root}; pass "
                    "--follow-symlinks (follow_symlinks=True) to read it"
                )
        return path


def _class_dirs(folder: Path, scan: _Scan) -> list[Path]:
    dirs = (scan.check(p) for p in folder.iterdir() if p.is_dir())
    return sorted(dirs, key=lambda p: p.name)


def _event_files(folder: Path, scan: _Scan) -> list[Path]:
    return sorted(
        scan.check(p) for p in folder.iterdir() if p.is_file() and p.suffix in FOLDER_SUFFIXES
    )


def scan_folder(root: str | os.PathLike, *, follow_symlinks: bool = False) -> FolderTree:
    """Classes, format and split of a folder tree; DatasetError on mixed formats or no files.

    Args:
        follow_symlinks: read symlinked files and folders whose targets lie outside ``root``
            (by default refused, naming the link).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    scan = _Scan(root.resolve(), follow_symlinks)
    split_folders = (root / "train").is_dir() and (root / "test").is_dir()
    parts = {"train": root / "train", "test": root / "test"} if split_folders else {"all": root}
    by_part = {
        part: {d.name: _event_files(d, scan) for d in _class_dirs(scan.check(f), scan)}
        for part, f in parts.items()
    }
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
