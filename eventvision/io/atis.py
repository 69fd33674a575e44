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

__all__ = ["read_atis_bin", "write_atis_bin", "ATIS_RECORD_BYTES"]

ATIS_RECORD_BYTES = 5
POLARITY_BIT = 0x80
TIMESTAMP_HIGH_MASK = 0x7F
OVERFLOW_Y = 240
OVERFLOW_STEP_US = 1 << 13
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
    records = raw.reshape(n, ATIS_RECORD_BYTES)  # [event, byte]
    x, y, b2 = records[:, 0], records[:, 1], records[:, 2]
    overflow = y == OVERFLOW_Y
    t = (
        (b2.astype(np.int64) & TIMESTAMP_HIGH_MASK) << 16
        | records[:, 3].astype(np.int64) << 8
        | records[:, 4].astype(np.int64)
    )
    t += np.cumsum(overflow, dtype=np.int64) * OVERFLOW_STEP_US
    keep = ~overflow
    events = np.empty(int(keep.sum()), EVENT_DTYPE)
    events["t"], events["x"], events["y"] = t[keep], x[keep], y[keep]
    events["p"] = b2[keep] >> 7
    backwards = np.flatnonzero(np.diff(events["t"]) < 0)
    if len(backwards):
        record = int(np.flatnonzero(keep)[backwards[0] + 1])
        raise FormatError(
            f"{path}: timestamp goes backwards at byte offset {ATIS_RECORD_BYTES * record}: "
            f"{int(t[record])} us after {int(events['t'][backwards[0]])} us"
        )
    return events


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
