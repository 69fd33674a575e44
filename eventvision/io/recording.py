"""One way to read any recording: the format found from the file itself, then its reader.

The first bytes decide (every format but ATIS ``.bin`` starts with a magic); a file whose start
matches no magic is read by the format its suffix names, so its reader reports what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..errors import ConfigError, FormatError
from ..events import DVS128, Sensor
from .aedat2 import AEDAT2_MAGIC, read_aedat2
from .aedat4 import AEDAT4_MAGIC, iter_aedat4, read_aedat4, read_aedat4_info
from .aedat31 import AEDAT31_MAGIC, iter_aedat31, read_aedat31
from .arrays import read_h5_events, read_npy_events, read_npz_events
from .atis import read_atis_bin

__all__ = ["FORMATS", "EventStream", "detect_format", "read_events", "iter_events", "file_sensor"]

_MAGICS = (
    (AEDAT4_MAGIC, "aedat4"),
    (AEDAT31_MAGIC, "aedat31"),
    (AEDAT2_MAGIC, "aedat2"),
    (b"\x93NUMPY", "npy"),
    (b"PK\x03\x04", "npz"),
    (b"PK\x05\x06", "npz"),  # an empty zip archive
    (b"\x89HDF\r\n\x1a\n", "h5"),
)
_SUFFIXES = {
    ".aedat4": "aedat4",
    ".bin": "atis",
    ".npy": "npy",
    ".npz": "npz",
    ".h5": "h5",
    ".hdf5": "h5",
}
_READERS: dict[str, Callable[..., np.ndarray]] = {
    "aedat2": read_aedat2,
    "aedat31": read_aedat31,
    "aedat4": read_aedat4,
    "atis": read_atis_bin,
    "npy": read_npy_events,
    "npz": read_npz_events,
    "h5": read_h5_events,
}
_STREAMS: dict[str, Callable[..., Iterator[np.ndarray]]] = {
    "aedat31": iter_aedat31,
    "aedat4": iter_aedat4,
}
FORMATS = tuple(_READERS)
_CHUNK_EVENTS = 1 << 20  # events per chunk of a format read whole, then handed out in chunks


def detect_format(path: str | os.PathLike) -> str:
    """The format of an event file, one of :data:`FORMATS`, from its first bytes or suffix."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise FormatError(f"{path}: cannot read: {e.strerror or e}") from None
    for magic, name in _MAGICS:
        if head.startswith(magic):
            return name
    if path.suffix.lower() in _SUFFIXES:
        return _SUFFIXES[path.suffix.lower()]
    raise FormatError(
        f"{path}: unknown event file format (first bytes {head[:12]!r}); expected AEDAT 2.0, "
        f"3.1 or 4, ATIS .bin, or .npy, .npz, .h5 event arrays"
    )


def file_sensor(path: str | os.PathLike) -> Sensor | None:
    """The sensor a file states: DVS128 for jAER AEDAT 2.0 / 3.1, an AEDAT 4 header's, else None.

    An AEDAT 4 file with several event streams of different sizes states none.
    """
    path = Path(path)
    return _header(path, detect_format(path))[0]


def _header(path: Path, fmt: str) -> tuple[Sensor | None, dict]:
    """The sensor a file states, and the reader options that hand on the header read for it.

    An AEDAT 4 header is read once: its reader takes it as ``info`` instead of reading it again.
    """
    if fmt in ("aedat2", "aedat31"):
        return DVS128, {}
    if fmt == "aedat4":
        info = read_aedat4_info(path)
        sensors = set(info.event_streams.values())
        return (sensors.pop() if len(sensors) == 1 else None), {"info": info}
    return None, {}


def read_events(path: str | os.PathLike, **opts) -> tuple[np.ndarray, Sensor | None]:
    """Read every event of a recording in any supported format: ``(events, sensor or None)``.

    Args:
        opts: passed to the format's reader, e.g. ``threads`` or ``stream_id`` for AEDAT 4,
            ``allow_truncated`` for AEDAT 2.0 and 3.1.
    """
    path = Path(path)
    fmt = detect_format(path)
    sensor, header = _header(path, fmt)
    return _read(path, fmt, {**opts, **header}), sensor


class EventStream:
    """The events of one recording in time-ordered chunks, with its format and sensor.

    AEDAT 4 and 3.1 files are decoded packet by packet, so memory does not grow with the file;
    the other formats are read whole and handed out in chunks of ``chunk_events``.
    """

    def __init__(self, path: str | os.PathLike, *, chunk_events: int = _CHUNK_EVENTS, **opts):
        if chunk_events < 1:
            raise ValueError(f"chunk_events must be positive, got {chunk_events}")
        self.path = Path(path)
        self.format = detect_format(self.path)
        self.sensor, header = _header(self.path, self.format)
        self._chunk_events, self._opts = chunk_events, {**opts, **header}

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.format in _STREAMS:
            yield from _STREAMS[self.format](self.path, **self._opts)
            return
        events = _read(self.path, self.format, self._opts)
        for start in range(0, len(events), self._chunk_events):
            yield events[start : start + self._chunk_events]

    def __repr__(self) -> str:
        return f"EventStream({str(self.path)!r}, format={self.format!r}, sensor={self.sensor})"


def iter_events(path: str | os.PathLike, **opts) -> EventStream:
    """Stream a recording in any supported format; see :class:`EventStream`."""
    return EventStream(path, **opts)


def _read(path: Path, fmt: str, opts: dict) -> np.ndarray:
    try:
        return _READERS[fmt](path, **opts)
    except TypeError as e:
        if "unexpected keyword" not in str(e):
            raise
        raise ConfigError(f"{path}: the {fmt} reader takes no such option: {e}") from None
