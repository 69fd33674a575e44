"""Plain-numpy twins of the reader kernels, written for clarity rather than speed.

They decode the body of a valid file (the bytes after the header); the tests compare them with
the numba readers event for event.
"""

from __future__ import annotations

import numpy as np

from ..events import make_events
from . import aedat2, aedat31


def decode_aedat2_body(body: bytes) -> np.ndarray:
    """Decode AEDAT 2.0 records, unwrapping 32-bit timestamp wraps and dropping special events."""
    records = np.frombuffer(body, aedat2.RECORD_DTYPE)
    raw = records["timestamp"].astype(np.int64)
    wraps = np.concatenate([[0], np.cumsum(np.diff(raw) < -(aedat2.TIMESTAMP_WRAP // 2))])
    t = raw + wraps * aedat2.TIMESTAMP_WRAP
    address = records["address"]
    keep = address < aedat2.SPECIAL_EVENT_BIT
    address = address[keep]
    return make_events(
        t[keep],
        (address >> aedat2.X_SHIFT) & aedat2.X_MASK,
        (address >> aedat2.Y_SHIFT) & aedat2.Y_MASK,
        address & aedat2.POLARITY_MASK,
    )


def decode_aedat31_body(body: bytes) -> np.ndarray:
    """Walk the packets, keep the valid events of polarity packets, and decode them."""
    parts = []
    pos = 0
    while pos < len(body):
        header = np.frombuffer(body, aedat31.PACKET_HEADER_DTYPE, count=1, offset=pos)[0]
        start = pos + aedat31.PACKET_HEADER_SIZE
        if header["type"] == aedat31.POLARITY_EVENT:
            records = np.frombuffer(
                body, aedat31.POLARITY_DTYPE, count=int(header["number"]), offset=start
            )
            t = (np.int64(header["ts_overflow"]) << aedat31.OVERFLOW_SHIFT) | (
                records["timestamp"] & aedat31.TIMESTAMP_MASK
            )
            parts.append((t, records["data"]))
        pos = start + int(header["capacity"]) * int(header["size"])
    t = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
    data = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.uint32)
    keep = (data & aedat31.VALID_MASK).astype(bool)
    data = data[keep]
    return make_events(
        t[keep],
        (data >> aedat31.X_SHIFT) & aedat31.X_MASK,
        (data >> aedat31.Y_SHIFT) & aedat31.Y_MASK,
        (data >> aedat31.POLARITY_SHIFT) & 1,
    )


def decode_aedat4_records(records: bytes) -> np.ndarray:
    """Decode the 16-byte dv::Event records of one event packet (after its FlatBuffer head)."""
    from .aedat4 import EVENT_STRUCT

    fields = np.frombuffer(records, EVENT_STRUCT)
    return make_events(fields["t"], fields["x"], fields["y"], fields["p"])


def decode_atis_bin(content: bytes) -> np.ndarray:
    """Decode ATIS records: overflow records (y == 240) add 2**13 us from their position on."""
    from .atis import OVERFLOW_STEP_US, OVERFLOW_Y

    records = np.frombuffer(content, np.uint8).reshape(-1, 5).astype(np.int64)  # [event, byte]
    overflow = records[:, 1] == OVERFLOW_Y
    t = (records[:, 2] & 0x7F) << 16 | records[:, 3] << 8 | records[:, 4]
    t = t + np.cumsum(overflow) * OVERFLOW_STEP_US
    keep = ~overflow
    return make_events(t[keep], records[keep, 0], records[keep, 1], records[keep, 2] >> 7)
