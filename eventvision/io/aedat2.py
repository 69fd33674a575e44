"""jAER AEDAT 2.0 (CIFAR10-DVS and any DVS128 recording): reader and writer.

Format: https://gitlab.com/inivation/inivation-docs/-/blob/master/Software%20user%20guides/AEDAT_file_formats.md
A text header of lines starting with ``#`` (CRLF line ends, first line ``#!AER-DAT2.0``),
then big-endian records of ``uint32 address, uint32 timestamp`` with a 1 us tick.
Events come back in raw sensor coordinates; dataset orientation is applied by the datasets.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import FormatError
from ..events import EVENT_DTYPE
from . import _bits
from ._header import check_input_file, read_text_header
from ._kernels import _bswap32, _decode_aedat2, _decode_aedat2_fast

__all__ = ["read_aedat2", "write_aedat2", "AEDAT2_MAGIC"]

AEDAT2_MAGIC = b"#!AER-DAT2.0"
RECORD_DTYPE = np.dtype([("address", ">u4"), ("timestamp", ">u4")])
POLARITY_MASK = _bits.AEDAT2_POLARITY_MASK
X_SHIFT, X_MASK = _bits.AEDAT2_X_SHIFT, _bits.AEDAT2_X_MASK
Y_SHIFT, Y_MASK = _bits.AEDAT2_Y_SHIFT, _bits.AEDAT2_Y_MASK
SPECIAL_EVENT_BIT = _bits.AEDAT2_SPECIAL_EVENT_BIT  # bit 15 up: external/special, not pixels
TIMESTAMP_WRAP = _bits.TIMESTAMP_WRAP
_CHUNK_RECORDS = 1 << 20

_DEFAULT_HEADER = (
    "#!AER-DAT2.0",
    "# This is a raw AE data file - do not edit",
    "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event",
    "# Timestamps tick is 1 us",
    "# created by eventvision",
)


def read_aedat2(path: str | os.PathLike, *, allow_truncated: bool = False) -> np.ndarray:
    """Read a jAER AEDAT 2.0 DVS128 file into an EVENT_DTYPE array in raw sensor coordinates.

    Special (external) events, those with address bit 15 or above set, are dropped. A 32-bit
    timestamp wrap (a drop of more than 2**31 us) is unwrapped; any other backwards step in
    time is corrupt input.

    Args:
        path: the ``.aedat`` file.
        allow_truncated: keep the complete records of a file whose last record is cut short,
            with a warning, instead of raising FormatError.

    Returns:
        events sorted by time: ``x = (addr >> 1) & 0x7F``, ``y = (addr >> 8) & 0x7F``,
        ``p = addr & 1``, ``t`` in microseconds.
    """
    path = check_input_file(path)
    with open(path, "rb") as f:
        header_end = read_text_header(f, path, AEDAT2_MAGIC, end_line=None)
        size = os.fstat(f.fileno()).st_size
        n_records, tail = divmod(size - header_end, 8)
        if tail:
            msg = (
                f"{path}: truncated record at byte offset {header_end + 8 * n_records}: "
                f"{tail} of 8 bytes"
            )
            if not allow_truncated:
                raise FormatError(msg + " (allow_truncated=True keeps the complete records)")
            warnings.warn(msg + "; keeping the complete records", stacklevel=2)
        events = np.empty(n_records, EVENT_DTYPE)
        fields = [events[name] for name in ("t", "x", "y", "p")]
        k, last_raw, wraps = 0, -1, 0
        for start in range(0, n_records, _CHUNK_RECORDS):
            count = min(_CHUNK_RECORDS, n_records - start)
            words = np.fromfile(f, dtype=np.uint32, count=2 * count)
            suspect, end_raw = _decode_aedat2_fast(
                words, *fields, k, last_raw, wraps * TIMESTAMP_WRAP
            )
            if not suspect:
                k, last_raw = k + count, end_raw
                continue
            k, last_raw, wraps, bad = _decode_aedat2(words, *fields, k, last_raw, wraps)
            if bad >= 0:
                raise FormatError(
                    f"{path}: timestamp goes backwards at byte offset "
                    f"{header_end + 8 * (start + bad)}: {int(_bswap32(words[2 * bad + 1]))} us "
                    f"after {last_raw} us (not a 32-bit wrap)"
                )
    return events[:k]


def write_aedat2(
    path: str | os.PathLike, events: np.ndarray, *, header: tuple[str, ...] = _DEFAULT_HEADER
) -> None:
    """Write raw-coordinate DVS128 events as jAER AEDAT 2.0, byte for byte as jAER lays it out.

    ``header`` lines (each starting with ``#``, the first ``#!AER-DAT2.0``) end with CRLF.
    Timestamps are stored modulo 2**32, as jAER does.
    """
    if events.dtype != EVENT_DTYPE:
        events = events.astype(EVENT_DTYPE)
    if not header or header[0].encode() != AEDAT2_MAGIC:
        raise ValueError(f"the first header line must be {AEDAT2_MAGIC.decode()!r}")
    if any(not line.startswith("#") for line in header):
        raise ValueError("every header line must start with '#'")
    records = np.empty(len(events), dtype=RECORD_DTYPE)
    records["address"] = (
        (events["y"].astype(np.uint32) << Y_SHIFT)
        | (events["x"].astype(np.uint32) << X_SHIFT)
        | events["p"].astype(np.uint32)
    )
    records["timestamp"] = (events["t"] % TIMESTAMP_WRAP).astype(np.uint32)
    with open(path, "wb") as f:
        f.write("".join(line + "\r\n" for line in header).encode("ascii"))
        records.tofile(f)
