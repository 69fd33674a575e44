"""Event files that are plain arrays: ``.npy``, ``.npz`` (spikingjelly's) and ``.h5`` columns.

Every reader refuses what ``EVENT_DTYPE`` would silently wrap or round, and time that goes
backwards, naming the file. Memory is bounded by the file: before reading, the bytes the
arrays claim are checked against the bytes that store them (exactly for raw ``.npy``, at most
``MAX_EXPANSION`` times the file's size for compressed ``.npz`` entries and HDF5 filters), so
a file of a few kilobytes that claims gigabytes is a FormatError, not an allocation. HDF5
data must lie in the file itself: external storage, soft and external links and virtual
datasets are refused (docs/formats.md, "Hostile files").
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..events import Sensor, make_events

MAX_EXPANSION = 256  # most bytes a compressed array file may decode to, per byte of the file
_INT64_MAX = np.iinfo(np.int64).max
_UINT16_MAX = np.iinfo(np.uint16).max

__all__ = [
    "MAX_EXPANSION",
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
    outside = np.flatnonzero((events["x"] >= sensor.width) | (events["y"] >= sensor.height))
    if len(outside):
        i = int(outside[0])
        raise FormatError(
            f"{path}: event {i} at x={int(events['x'][i])}, y={int(events['y'][i])} lies "
            f"outside the {sensor.height}x{sensor.width} (HxW) sensor"
        )
    return events


def events_from_columns(path: Path, t, x, y, p) -> np.ndarray:
    """Events from four columns, refusing what EVENT_DTYPE would silently wrap or round."""
    columns = {"t": np.asarray(t), "x": np.asarray(x), "y": np.asarray(y), "p": np.asarray(p)}
    for name, col in columns.items():
        if col.dtype.kind not in "biuf":
            raise FormatError(f"{path}: {name} holds {col.dtype} values; expected numbers")
        if (
            col.dtype.kind == "f"
            and len(col)
            and not np.all(np.isfinite(col) & (col == np.rint(col)))
        ):
            raise FormatError(
                f"{path}: {name} holds non-integer values (t must be in microseconds)"
            )
    t = columns["t"]
    if len(t) and t.dtype.kind in "uf" and t.max() > _INT64_MAX:
        raise FormatError(f"{path}: t holds {t.max()}, beyond int64 microseconds")
    if len(t) and t.dtype.kind == "f" and t.min() < -_INT64_MAX:
        raise FormatError(f"{path}: t holds {t.min()}, beyond int64 microseconds")
    for name in ("x", "y"):
        col = columns[name]
        if len(col) and col.min() < 0:
            raise FormatError(f"{path}: negative {name} ({col.min()})")
        if len(col) and col.max() > _UINT16_MAX:
            raise FormatError(f"{path}: {name} = {col.max()} does not fit 16 bits (at most 65535)")
    p = columns["p"]
    if len(p) and not np.isin(p, (0, 1)).all():
        raise FormatError(f"{path}: polarity values {np.unique(p)[:4].tolist()}; expected 0 and 1")
    return check_sorted(make_events(*columns.values()), path)


def _check_claim(path: Path, claimed: int, stored: int, what: str) -> None:
    """FormatError unless ``claimed`` bytes decode from at most MAX_EXPANSION x ``stored``."""
    if claimed > MAX_EXPANSION * stored:
        raise FormatError(
            f"{path}: {what} claim {claimed} bytes, more than {MAX_EXPANSION} times the "
            f"{stored} bytes of the file (eventvision.io.arrays.MAX_EXPANSION); refused unread"
        )


def _npy_header(fp, path: Path) -> tuple[tuple, np.dtype, int]:
    """``(shape, dtype, nbytes)`` from an npy header at ``fp``, the data left unread."""
    try:
        version = np.lib.format.read_magic(fp)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = read(fp)
    except (ValueError, OSError, EOFError, TypeError, SyntaxError) as e:
        raise FormatError(f"{path}: not a readable npy file (header): {e}") from None
    return shape, dtype, int(np.prod(shape, dtype=object)) * dtype.itemsize


def read_npy_events(path: str | os.PathLike) -> np.ndarray:
    """A structured ``.npy`` (fields t, x, y, p) or an ``[N, 4]`` array in tonic's x, y, p, t."""
    path = Path(path)
    try:
        with open(path, "rb") as f:  # the claim checked and the array read on one open file
            _, _, nbytes = _npy_header(f, path)
            stored = os.fstat(f.fileno()).st_size - f.tell()
            if nbytes > stored:
                raise FormatError(
                    f"{path}: the npy header claims {nbytes} bytes of data, the file holds {stored}"
                )
            f.seek(0)
            arr = np.load(f)
    except (OSError, ValueError, EOFError) as e:
        if isinstance(e, FormatError):
            raise
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
    """Read one of spikingjelly's ``events_np`` files (arrays t, x, y, p), checked as ``.npy``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:  # the claims checked and the arrays read on one open file
            with zipfile.ZipFile(f) as archive:
                _check_npz_entries(archive, path, os.fstat(f.fileno()).st_size)
            f.seek(0)
            with np.load(f) as npz:
                arrays = {key: npz[key] for key in ("t", "x", "y", "p") if key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"{path}: not a readable npz file: {e}") from None
    if len(arrays) != 4 or len({a.shape for a in arrays.values()}) != 1:
        shapes = {key: a.shape for key, a in arrays.items()}
        raise FormatError(f"{path}: expected equally long 1-D arrays t, x, y, p; found {shapes}")
    if arrays["t"].ndim != 1:
        raise FormatError(f"{path}: expected 1-D arrays t, x, y, p; found {arrays['t'].shape}")
    return events_from_columns(path, *(arrays[k] for k in "txyp"))


def _check_npz_entries(archive: zipfile.ZipFile, path: Path, size: int) -> None:
    """FormatError unless the entries t, x, y, p claim bytes the archive can hold, unread."""
    entries = [i for i in archive.infolist() if i.filename in ("t.npy", "x.npy", "y.npy", "p.npy")]
    _check_claim(path, sum(i.file_size for i in entries), size, "the entries t, x, y, p")
    for info in entries:
        with archive.open(info) as fp:
            _, _, nbytes = _npy_header(fp, path)
            if nbytes > info.file_size:
                raise FormatError(
                    f"{path}: entry {info.filename} claims {nbytes} bytes of data in "
                    f"{info.file_size}"
                )


def read_h5_events(path: str | os.PathLike) -> np.ndarray:
    """An HDF5 file with 1-D datasets t, x, y, p at the top or in an ``events`` group.

    Only data stored in the file itself are read: external storage, soft and external links
    and virtual datasets are refused, as are columns that claim more than the file can hold.
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            group = _h5_events_group(f, path)
            datasets = [_h5_column(group, k, path) for k in "txyp"]
            if len({d.shape for d in datasets}) != 1 or datasets[0].ndim != 1:
                shapes = {k: d.shape for k, d in zip("txyp", datasets, strict=True)}
                raise FormatError(f"{path}: t, x, y, p are not equally long 1-D arrays: {shapes}")
            claimed = sum(d.size * d.dtype.itemsize for d in datasets)
            _check_claim(path, claimed, os.stat(path).st_size, "the datasets t, x, y, p")
            columns = [d[:] for d in datasets]
    except FormatError:
        raise
    except (OSError, KeyError, RuntimeError, ValueError, TypeError) as e:
        raise FormatError(f"{path}: not a readable HDF5 event file: {e}") from None
    return events_from_columns(path, *columns)


def _h5_events_group(f, path: Path):
    """The ``events`` group, or the file's root; a link to elsewhere is refused."""
    import h5py

    link = f.get("events", getlink=True)
    if link is None:
        return f
    _check_h5_link(link, "events", path)
    return f["events"] if isinstance(f["events"], h5py.Group) else f


def _check_h5_link(link, name: str, path: Path) -> None:
    import h5py

    if not isinstance(link, h5py.HardLink):
        kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
        raise FormatError(f"{path}: {name} is {kind}; only data stored in the file itself are read")


def _h5_column(group, name: str, path: Path):
    """The dataset ``name`` of ``group``, checked to hold numbers stored in this file."""
    import h5py

    link = group.get(name, getlink=True)
    if link is None:
        missing = [k for k in "txyp" if group.get(k, getlink=True) is None]
        raise FormatError(f"{path}: no dataset(s) {missing}; expected t, x, y, p")
    _check_h5_link(link, name, path)
    data = group[name]
    if not isinstance(data, h5py.Dataset):
        raise FormatError(f"{path}: {name} is a group, expected a 1-D dataset")
    if data.is_virtual:
        raise FormatError(f"{path}: {name} is a virtual dataset; only data stored in the file")
    if data.external:
        raise FormatError(
            f"{path}: {name} keeps its data in external file(s); only data stored in the file "
            "itself are read"
        )
    if data.dtype.kind not in "biuf":
        raise FormatError(f"{path}: {name} holds {data.dtype} values; expected numbers")
    return data
