"""Event files that are plain arrays: ``.npy``, ``.npz`` (spikingjelly's) and ``.h5`` columns.

Every reader refuses what ``EVENT_DTYPE`` would silently wrap or round, and time that goes
backwards, naming the file.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..events import Sensor, make_events

__all__ = [
    "read_npy_events",
    "read_npz_events",
    "read_h5_events",
    "events_from_columns",
    "check_sorted",
    "check_in_sensor",
]


def check_sorted(events: np.ndarray, path: Path) -> np.ndarray:
    """``events`` unchanged when their t never decreases, else FormatError naming ``path``."""
    t = events["t"]
    bad = np.flatnonzero(t[1:] < t[:-1])
    if len(bad):
        i = int(bad[0])
        raise FormatError(f"{path}: event {i + 1} at t={t[i + 1]} us comes after t={t[i]} us")
    return events


def check_in_sensor(events: np.ndarray, sensor: Sensor, path: Path) -> np.ndarray:
    """``events`` unchanged when every x, y lies on ``sensor``, else FormatError naming ``path``."""
    if len(events) and (events["x"].max() >= sensor.width or events["y"].max() >= sensor.height):
        raise FormatError(
            f"{path}: event at x={int(events['x'].max())}, y={int(events['y'].max())} outside "
            f"the {sensor.width}x{sensor.height} sensor"
        )
    return events


def events_from_columns(path: Path, t, x, y, p) -> np.ndarray:
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
    return check_sorted(make_events(*columns.values()), path)


def read_npy_events(path: str | os.PathLike) -> np.ndarray:
    """A structured ``.npy`` (fields t, x, y, p) or an ``[N, 4]`` array in tonic's x, y, p, t."""
    path = Path(path)
    try:
        arr = np.load(path)
    except (OSError, ValueError, EOFError) as e:
        raise FormatError(f"{path}: not a readable npy file: {e}") from None
    if arr.dtype.names is not None:
        missing = {"t", "x", "y", "p"} - set(arr.dtype.names)
        if missing or arr.ndim != 1:
            raise FormatError(f"{path}: expected 1-D fields t, x, y, p; got {arr.dtype.names}")
        return events_from_columns(path, *(arr[k] for k in "txyp"))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise FormatError(f"{path}: expected fields t, x, y, p or [N, 4] columns x, y, p, t")
    return events_from_columns(path, arr[:, 3], arr[:, 0], arr[:, 1], arr[:, 2])


def read_npz_events(path: str | os.PathLike) -> np.ndarray:
    """Read one of spikingjelly's ``events_np`` files (arrays t, x, y, p) as spikingjelly does."""
    path = Path(path)
    try:
        with np.load(path) as npz:
            arrays = {key: npz[key] for key in ("t", "x", "y", "p") if key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise FormatError(f"{path}: not a readable npz file: {e}") from None
    if len(arrays) != 4 or len({a.shape for a in arrays.values()}) != 1:
        shapes = {key: a.shape for key, a in arrays.items()}
        raise FormatError(f"{path}: expected equally long 1-D arrays t, x, y, p; found {shapes}")
    return check_sorted(make_events(*(arrays[k] for k in "txyp")), path)


def read_h5_events(path: str | os.PathLike) -> np.ndarray:
    """An HDF5 file with 1-D datasets t, x, y, p at the top or in an ``events`` group."""
    import h5py

    path = Path(path)
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
    return events_from_columns(path, *columns)
