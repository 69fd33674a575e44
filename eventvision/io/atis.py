"""ATIS binary (N-MNIST, N-Caltech101): reader and writer of the 5-byte event records.

Format: https://www.garrickorchard.com/datasets/n-mnist (the release's ReadMe).
Each event is 40 bits: byte 0 x, byte 1 y, byte 2 bit 7 polarity (1 = ON) and bits 6-0 the
timestamp's bits 22-16, bytes 3-4 its bits 15-0, in microseconds. A record with ``y == 240``
is a timestamp-overflow event, not a pixel: it adds 2**13 us to its own and every later
timestamp (the release's MATLAB reader does exactly this, and tonic copies it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..events import EVENT_DTYPE
from . import _bits
from ._kernels import _decode_atis

__all__ = ["read_atis_bin", "write_atis_bin", "ATIS_RECORD_BYTES"]

ATIS_RECORD_BYTES = 5
POLARITY_BIT = _bits.ATIS_POLARITY_BIT
TIMESTAMP_HIGH_MASK = _bits.ATIS_TIMESTAMP_HIGH_MASK
OVERFLOW_Y = _bits.ATIS_OVERFLOW_Y
OVERFLOW_STEP_US = _bits.ATIS_OVERFLOW_STEP_US
TIMESTAMP_LIMIT = 1 << 23


def read_atis_bin(path: str | os.PathLike) -> np.ndarray:
    """Read an ATIS ``.bin`` file (N-MNIST, N-Caltech101) into an EVENT_DTYPE array.

    Overflow records (``y == 240``) are dropped after adding 2**13 us to the timestamps from
    their own position on. Time going backwards is corrupt input and raises FormatError.
    """
    path = Path(path)
    raw = np.fromfile(path, np.uint8)
    n, tail = divmod(len(raw), ATIS_RECORD_BYTES)
    if tail:
        raise FormatError(
            f"{path}: truncated record at byte offset {ATIS_RECORD_BYTES * n}: "
            f"{tail} of {ATIS_RECORD_BYTES} bytes"
        )
    events = np.empty(n, EVENT_DTYPE)
    k, bad = _decode_atis(raw, *(events[name] for name in ("t", "x", "y", "p")))
    if bad >= 0:
        raise FormatError(
            f"{path}: timestamp goes backwards at byte offset {ATIS_RECORD_BYTES * bad}: "
            f"{_record_time(raw, bad)} us after {int(events['t'][k - 1])} us"
        )
    return events[:k]


def _record_time(raw: np.ndarray, index: int) -> int:
    """The full time of record ``index``: its 23 bits plus 2**13 us per overflow up to it."""
    j = ATIS_RECORD_BYTES * index
    overflows = int(np.count_nonzero(raw[1 : j + 1 : ATIS_RECORD_BYTES] == OVERFLOW_Y))
    stamp = (int(raw[j + 2]) & TIMESTAMP_HIGH_MASK) << 16 | int(raw[j + 3]) << 8 | int(raw[j + 4])
    return stamp + overflows * OVERFLOW_STEP_US


def write_atis_bin(
    path: str | os.PathLike, events: np.ndarray, *, timestamp_limit: int = TIMESTAMP_LIMIT
) -> None:
    """Write events as ATIS ``.bin`` records, inserting overflow records where time needs them.

    Before each event, overflow records are added until its time minus 2**13 us per overflow
    so far fits below ``timestamp_limit`` (2**13 to 2**23); tests lower the limit to force them.
    """
    if events.dtype != EVENT_DTYPE:
        events = events.astype(EVENT_DTYPE)
    if not OVERFLOW_STEP_US <= timestamp_limit <= TIMESTAMP_LIMIT:
        raise ValueError(
            f"timestamp_limit must be in {OVERFLOW_STEP_US}..{TIMESTAMP_LIMIT}, "
            f"got {timestamp_limit}"
        )
    if len(events) and (events["x"].max() > 255 or events["y"].max() >= OVERFLOW_Y):
        raise ValueError(f"ATIS records hold x < 256 and y < {OVERFLOW_Y}")
    t = events["t"].astype(np.int64)
    if len(t) and (t[0] < 0 or (np.diff(t) < 0).any()):
        raise ValueError("ATIS events need non-negative, time-sorted timestamps")
    # overflows before each event: the fewest that bring t below the limit, never decreasing
    need = np.maximum(0, -((timestamp_limit - 1 - t) // OVERFLOW_STEP_US))
    total = len(events) + int(need[-1] if len(need) else 0)
    out = np.zeros((total, ATIS_RECORD_BYTES), np.uint8)  # [record, byte]
    rows = np.arange(len(events)) + need  # each event after all overflows before it
    out[:, 1] = OVERFLOW_Y
    raw = t - need * OVERFLOW_STEP_US
    out[rows, 0] = events["x"]
    out[rows, 1] = events["y"]
    out[rows, 2] = (events["p"].astype(np.int64) << 7 | raw >> 16 & TIMESTAMP_HIGH_MASK).astype(
        np.uint8
    )
    out[rows, 3] = (raw >> 8 & 0xFF).astype(np.uint8)
    out[rows, 4] = (raw & 0xFF).astype(np.uint8)
    out.tofile(path)
