"""DVS128 Gesture side files: the per-recording labels csv and the trials lists."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import FormatError

__all__ = ["LABEL_DTYPE", "read_labels_csv", "write_labels_csv", "read_trials", "write_trials"]

LABELS_HEADER = "class,startTime_usec,endTime_usec"
LABEL_DTYPE = np.dtype([("label", "<i8"), ("start", "<i8"), ("end", "<i8")])


def read_labels_csv(path: str | os.PathLike) -> np.ndarray:
    """Read a ``*_labels.csv`` into rows of (class 1..11, start us, end us), in file order.

    LF and CRLF line ends are accepted, as are a single row and rows in any class order.
    """
    path = Path(path)
    try:
        lines = path.read_bytes().decode("ascii").splitlines()
    except UnicodeDecodeError as e:
        raise FormatError(f"{path}: not an ASCII csv (byte offset {e.start})") from None
    lines = [line.strip() for line in lines]
    if not lines or lines[0].replace(" ", "") != LABELS_HEADER:
        found = lines[0][:60] if lines else "an empty file"
        raise FormatError(f"{path}: line 1 is {found!r}, expected the header {LABELS_HEADER!r}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = line.split(",")
        try:
            label, start, end = (int(field) for field in fields)
        except ValueError:
            raise FormatError(
                f"{path}: line {number} is {line!r}, expected three integers "
                "'class,startTime_usec,endTime_usec'"
            ) from None
        if end <= start or start < 0:
            raise FormatError(f"{path}: line {number} has start {start} us, end {end} us")
        rows.append((label, start, end))
    if not rows:
        raise FormatError(f"{path}: no label rows after the header")
    return np.array(rows, dtype=LABEL_DTYPE)


def write_labels_csv(path: str | os.PathLike, rows, *, line_end: str = "\n") -> None:
    """Write (class, start us, end us) rows under the IBM header."""
    lines = [LABELS_HEADER] + [f"{int(c)},{int(s)},{int(e)}" for c, s, e in rows]
    Path(path).write_bytes("".join(line + line_end for line in lines).encode("ascii"))


def read_trials(path: str | os.PathLike) -> list[str]:
    """Read ``trials_to_train.txt`` / ``trials_to_test.txt``: one aedat file name a line."""
    path = Path(path)
    names = [line.strip() for line in path.read_text("ascii", errors="replace").splitlines()]
    names = [name for name in names if name]
    bad = [name for name in names if not name.endswith(".aedat") or "/" in name]
    if bad:
        raise FormatError(f"{path}: {bad[0]!r} is not an .aedat file name")
    return names


def write_trials(path: str | os.PathLike, names, *, line_end: str = "\n") -> None:
    """Write a trials list, one aedat file name a line."""
    Path(path).write_bytes("".join(name + line_end for name in names).encode("ascii"))
