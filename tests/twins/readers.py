"""Plain-numpy twins of the reader kernels, written for clarity rather than speed.

They decode the body of a valid file (the bytes after the header), or walk AEDAT 4 packets and
locate their records; the tests compare them with the numba readers event for event.
"""

from __future__ import annotations

import struct

import numpy as np

from eventvision.events import make_events
from eventvision.io import aedat2, aedat31
from eventvision.io.aedat4 import EVENT_STRUCT
from eventvision.io.atis import OVERFLOW_STEP_US, OVERFLOW_Y


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
    fields = np.frombuffer(records, EVENT_STRUCT)
    return make_events(fields["t"], fields["x"], fields["y"], fields["p"])


def walk_aedat4_packets(content: bytes, pos: int, end: int, target: int) -> list[tuple[int, int]]:
    """``(offset, payload size)`` of each packet of stream ``target`` in ``content[pos:end]``.

    Raises ValueError at a truncated or bad packet header.
    """
    packets = []
    while pos < end:
        if end - pos < 8:
            raise ValueError(f"truncated packet header at {pos}")
        stream, size = struct.unpack_from("<ii", content, pos)
        if stream < 0 or size < 0 or pos + 8 + size > end:
            raise ValueError(f"bad packet header at {pos}")
        if stream == target:
            packets.append((pos, size))
        pos += 8 + size
    return packets


def locate_aedat4_records(payload: bytes) -> tuple[int, int]:
    """``(byte position, count)`` of the records of a size-prefixed EventPacket FlatBuffer.

    Follows the FlatBuffers layout step by step with ``struct``; raises ValueError (or
    struct.error) where an offset leaves the packet.
    """
    if len(payload) < 12 or struct.unpack_from("<I", payload)[0] != len(payload) - 4:
        raise ValueError("size prefix does not match the packet")
    buf = payload[4:]
    if buf[4:8] != b"EVTS":
        raise ValueError(f"file identifier {buf[4:8]!r}")
    table = struct.unpack_from("<I", buf, 0)[0]
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    if not 0 <= vtable <= len(buf) - 4:
        raise ValueError("vtable outside the packet")
    vtable_size = struct.unpack_from("<H", buf, vtable)[0]
    field = struct.unpack_from("<H", buf, vtable + 4)[0] if vtable_size >= 6 else 0
    if field == 0:
        return 4, 0
    vector = table + field + struct.unpack_from("<I", buf, table + field)[0]
    count = struct.unpack_from("<I", buf, vector)[0]
    if vector + 4 + 16 * count > len(buf):
        raise ValueError("records run past the packet")
    return 4 + vector + 4, count


def decode_atis_bin(content: bytes) -> np.ndarray:
    """Decode ATIS records: overflow records (y == 240) add 2**13 us from their position on."""
    records = np.frombuffer(content, np.uint8).reshape(-1, 5).astype(np.int64)  # [event, byte]
    overflow = records[:, 1] == OVERFLOW_Y
    t = (records[:, 2] & 0x7F) << 16 | records[:, 3] << 8 | records[:, 4]
    t = t + np.cumsum(overflow) * OVERFLOW_STEP_US
    keep = ~overflow
    return make_events(t[keep], records[keep, 0], records[keep, 1], records[keep, 2] >> 7)
