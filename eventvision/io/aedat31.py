"""AEDAT 3.1 (DVS128 Gesture): streaming reader and writer of polarity packets.

Format: https://gitlab.com/inivation/inivation-docs/-/blob/master/Software%20user%20guides/AEDAT_file_formats.md
A CRLF text header from ``#!AER-DAT3.1`` to ``#!END-HEADER``, then packets: a 28-byte
little-endian header (``int16 eventType, int16 eventSource, int32 eventSize, int32 eventTSOffset,
int32 eventTSOverflow, int32 eventCapacity, int32 eventNumber, int32 eventValid``) followed by
``eventCapacity * eventSize`` bytes. Only polarity packets (type 1, 8-byte events) carry DVS
events; every other packet is skipped by its declared size. A polarity event is ``uint32 data``
(bit 0 valid, bit 1 polarity, bits 2-16 y, bits 17-31 x) and ``int32 timestamp`` (low 31 bits);
the full time is ``eventTSOverflow << 31 | timestamp``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import FormatError
from ..events import EVENT_DTYPE
from . import _bits
from ._header import check_input_file, read_text_header
from ._kernels import _decode_aedat31, _decode_aedat31_fast

__all__ = ["read_aedat31", "iter_aedat31", "write_aedat31", "encode_packet", "AEDAT31_MAGIC"]

AEDAT31_MAGIC = b"#!AER-DAT3.1"
END_HEADER = b"#!END-HEADER"
PACKET_HEADER_DTYPE = np.dtype(
    [
        ("type", "<i2"),
        ("source", "<i2"),
        ("size", "<i4"),
        ("ts_offset", "<i4"),
        ("ts_overflow", "<i4"),
        ("capacity", "<i4"),
        ("number", "<i4"),
        ("valid", "<i4"),
    ]
)
PACKET_HEADER_SIZE = PACKET_HEADER_DTYPE.itemsize  # 28
POLARITY_EVENT = 1
SPECIAL_EVENT = 0
POLARITY_DTYPE = np.dtype([("data", "<u4"), ("timestamp", "<i4")])
VALID_MASK = _bits.AEDAT31_VALID_MASK
POLARITY_SHIFT = _bits.AEDAT31_POLARITY_SHIFT
Y_SHIFT, Y_MASK = _bits.AEDAT31_Y_SHIFT, _bits.AEDAT31_Y_MASK
X_SHIFT, X_MASK = _bits.AEDAT31_X_SHIFT, _bits.AEDAT31_X_MASK
TIMESTAMP_MASK = _bits.AEDAT31_TIMESTAMP_MASK
OVERFLOW_SHIFT = _bits.AEDAT31_OVERFLOW_SHIFT
_BLOCK_BYTES = 1 << 23

_DEFAULT_HEADER = (
    "#!AER-DAT3.1",
    "#Format: RAW",
    "#Source 1: DVS128",
    "#Start-Time: 2017-01-01 00:00:00 (TZ+0000)",
    "#!END-HEADER",
)


def iter_aedat31(
    path: str | os.PathLike, *, allow_truncated: bool = False, block_bytes: int = _BLOCK_BYTES
) -> Iterator[np.ndarray]:
    """Yield the polarity events of an AEDAT 3.1 file block by block, in bounded memory.

    Events whose valid bit is 0 are dropped. Each block holds whole packets of about
    ``block_bytes`` bytes (a single larger packet makes a larger block).

    Args:
        allow_truncated: keep the complete packets of a file whose last packet is cut short,
            with a warning, instead of raising FormatError.
    """
    for events, k0, k in _decode_blocks(Path(path), allow_truncated, block_bytes, None):
        if k > k0:
            yield events[k0:k]


def read_aedat31(path: str | os.PathLike, *, allow_truncated: bool = False) -> np.ndarray:
    """Read all valid polarity events of an AEDAT 3.1 file into one EVENT_DTYPE array."""
    path = check_input_file(path)
    bound = max(0, (path.stat().st_size - len(AEDAT31_MAGIC)) // POLARITY_DTYPE.itemsize)
    out = np.empty(bound, EVENT_DTYPE)  # every 8 bytes after the header hold at most one event
    decoded = 0
    for _, _, k in _decode_blocks(path, allow_truncated, _BLOCK_BYTES, out):
        decoded = k  # each block decodes into out, after the previous ones
    return out[:decoded]


def _decode_blocks(path: Path, allow_truncated: bool, block_bytes: int, out):
    """Decode the file block by block into ``out`` (or a fresh array per block).

    Yields ``(events, k0, k)``: this block's events are ``events[k0:k]``.
    """
    with open(path, "rb") as f:
        offset = read_text_header(f, path, AEDAT31_MAGIC, end_line=END_HEADER)
        size = os.fstat(f.fileno()).st_size
        last_t, k = -1, 0
        pending = np.empty(0, np.uint8)
        while True:
            block = np.fromfile(f, np.uint8, count=block_bytes)
            if len(pending):
                block = np.concatenate([pending, block])
            at_eof = offset + len(block) >= size
            if out is None:
                events, k = np.empty(len(block) // 8, EVENT_DTYPE), 0
            else:
                events = out
            k0 = k
            fields = [events[name] for name in ("t", "x", "y", "p")]
            words = block[: len(block) // 4 * 4].view(np.uint32)
            k, used, end_t, ok = _decode_aedat31_fast(words, *fields, k0, last_t)
            code, used = 0, 4 * used
            if ok:
                last_t = end_t
            else:
                k, used, last_t, code, where = _decode_aedat31(block, *fields, k0, last_t)
            if code:
                raise FormatError(_describe(block, where, offset, code, path))
            problem = _incomplete(block, used, offset, path) if at_eof else None
            if problem and not allow_truncated:
                raise FormatError(problem + " (allow_truncated=True keeps the complete packets)")
            yield events, k0, k
            if problem:
                warnings.warn(problem + "; keeping the complete packets", stacklevel=3)
            if at_eof:
                return
            pending = block[used:]
            offset += used


def _describe(block: np.ndarray, where: int, offset: int, code: int, path: Path) -> str:
    """The message for a kernel's error code at byte ``where`` of ``block``."""
    header = np.frombuffer(block, PACKET_HEADER_DTYPE, count=1, offset=where)[0]
    if code == 2:
        return f"{path}: timestamp goes backwards in the packet at byte offset {offset + where}"
    size, capacity = int(header["size"]), int(header["capacity"])
    number, valid = int(header["number"]), int(header["valid"])
    if header["type"] < 0:
        problem = f"negative eventType {int(header['type'])}"
    elif size <= 0:
        problem = f"eventSize {size} is not positive"
    elif capacity < 0 or not 0 <= number <= capacity or not 0 <= valid <= number:
        problem = (
            f"inconsistent counts: eventCapacity {capacity}, eventNumber {number}, "
            f"eventValid {valid} (need 0 <= valid <= number <= capacity)"
        )
    elif header["ts_overflow"] < 0:
        problem = f"negative eventTSOverflow {int(header['ts_overflow'])}"
    else:
        problem = (
            f"polarity packet with eventSize {size} and eventTSOffset "
            f"{int(header['ts_offset'])}, expected 8 and 4"
        )
    return f"{path}: bad packet header at byte offset {offset + where}: {problem}"


def _incomplete(block: np.ndarray, used: int, offset: int, path: Path) -> str | None:
    """At end of file: the message for bytes after the last complete packet, else None."""
    left = len(block) - used
    if left == 0:
        return None
    if left < PACKET_HEADER_SIZE:
        return (
            f"{path}: truncated packet header at byte offset {offset + used}: "
            f"{left} of {PACKET_HEADER_SIZE} bytes"
        )
    header = np.frombuffer(block, PACKET_HEADER_DTYPE, count=1, offset=used)[0]
    declared = int(header["capacity"]) * int(header["size"])
    return (
        f"{path}: packet at byte offset {offset + used} declares {declared} bytes of events, "
        f"only {left - PACKET_HEADER_SIZE} remain"
    )


def encode_packet(
    event_type: int,
    body: bytes,
    *,
    event_size: int,
    ts_overflow: int = 0,
    number: int | None = None,
    valid: int | None = None,
    source: int = 1,
) -> bytes:
    """One AEDAT 3.1 packet: the 28-byte header followed by ``body``."""
    capacity = len(body) // event_size
    number = capacity if number is None else number
    header = np.zeros(1, PACKET_HEADER_DTYPE)
    header[0] = (
        event_type,
        source,
        event_size,
        4,
        ts_overflow,
        capacity,
        number,
        number if valid is None else valid,
    )
    return header.tobytes() + body


def write_aedat31(
    path: str | os.PathLike,
    events: np.ndarray,
    *,
    packet_events: int = 4096,
    header: tuple[str, ...] = _DEFAULT_HEADER,
) -> None:
    """Write events as AEDAT 3.1 polarity packets, byte for byte as cAER lays them out.

    A packet holds at most ``packet_events`` events and never spans two values of the
    timestamp overflow counter. Every event is written valid.
    """
    if events.dtype != EVENT_DTYPE:
        events = events.astype(EVENT_DTYPE)
    if header[0].encode() != AEDAT31_MAGIC or header[-1].encode() != END_HEADER:
        raise ValueError(f"the header must run from {AEDAT31_MAGIC!r} to {END_HEADER!r}")
    t = events["t"]
    records = np.empty(len(events), POLARITY_DTYPE)
    records["data"] = (
        (events["x"].astype(np.uint32) << X_SHIFT)
        | (events["y"].astype(np.uint32) << Y_SHIFT)
        | (events["p"].astype(np.uint32) << POLARITY_SHIFT)
        | VALID_MASK
    )
    records["timestamp"] = (t & TIMESTAMP_MASK).astype(np.int32)
    overflow = t >> OVERFLOW_SHIFT
    cuts = np.flatnonzero(np.diff(overflow)) + 1
    with open(path, "wb") as f:
        f.write("".join(line + "\r\n" for line in header).encode("ascii"))
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(events)], strict=True):
            for start in range(lo, hi, packet_events):
                part = records[start : min(start + packet_events, hi)]
                f.write(
                    encode_packet(
                        POLARITY_EVENT,
                        part.tobytes(),
                        event_size=POLARITY_DTYPE.itemsize,
                        ts_overflow=int(overflow[start]),
                    )
                )
