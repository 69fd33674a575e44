"""AEDAT 4.0 (iniVation DV): streaming reader and writer of event packets.

Format: https://docs.inivation.com/software/software-advanced-usage/file-formats/aedat-4.0.html
The line ``#!AER-DAT4.0\\r\\n``, then a size-prefixed FlatBuffer ``IOHeader`` (file identifier
``IOHE``: compression, data-table position, and an XML description of the streams), then packets
of ``int32 streamId, int32 size`` followed by ``size`` bytes: a size-prefixed FlatBuffer, whole
or compressed as one LZ4 frame or one Zstd frame as the header says. An event packet (identifier
``EVTS``) holds a vector of 16-byte structs ``int64 timestamp, int16 x, int16 y, bool polarity``
(3 bytes padding). Packets of other streams (frames, IMU, triggers) are skipped by their size;
the optional file data table after the last packet is not needed to read the file.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np

from ..errors import FormatError
from ..events import EVENT_DTYPE, Sensor
from . import _aedat4_pool as pool
from ._aedat4_pool import default_aedat4_threads
from ._kernels import (
    _decode_aedat4,
    _decode_aedat4_fast,
    _locate_aedat4_records,
    _walk_aedat4,
)
from .arrays import MAX_EXPANSION

__all__ = [
    "read_aedat4",
    "iter_aedat4",
    "write_aedat4",
    "read_aedat4_info",
    "default_aedat4_threads",
    "AEDAT4_MAGIC",
    "MAX_PACKET_BYTES",
]

AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
COMPRESSIONS = {0: "none", 1: "lz4", 2: "lz4", 3: "zstd", 4: "zstd"}  # 2, 4: the HIGH levels
_COMPRESSION_CODES = {"none": 0, "lz4": 1, "zstd": 3}
EVENT_IDENTIFIER = "EVTS"
EVENT_STRUCT = np.dtype(
    [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "u1"), ("_pad", "V3")]
)  # dv::Event, 16 bytes
PACKET_HEADER = struct.Struct("<ii")
_MAX_PACKET = 1 << 31
MAX_PACKET_BYTES = 1 << 26  # the default most bytes one packet may hold, decompressed (64 MiB)
_ZERO = np.zeros(1, np.int64)  # the start of a decompressed packet; never written
_BLOCK_BYTES = 1 << 22  # what iter_aedat4 reads at a time (a larger packet is read whole)


class Aedat4Info(NamedTuple):
    """What the IOHeader of an AEDAT 4 file says."""

    compression: str
    data_table_position: int
    event_streams: dict[int, Sensor]  # stream id -> sensor size of each event stream
    body_offset: int  # byte offset of the first packet
    stamp: tuple[int, ...] = ()  # the file read: (device, inode, size, mtime in ns)


def read_aedat4_info(path: str | os.PathLike) -> Aedat4Info:
    """Read the IOHeader of an AEDAT 4 file: compression, event streams and their sensor sizes."""
    path = Path(path)
    with open(path, "rb") as f:
        return _read_header(f, path)


def iter_aedat4(
    path: str | os.PathLike,
    *,
    stream_id: int | None = None,
    max_packet_bytes: int = MAX_PACKET_BYTES,
    info: Aedat4Info | None = None,
) -> Iterator[np.ndarray]:
    """Yield the events of one event stream packet by packet, in bounded memory.

    In memory at a time: one 4 MiB block of the file (or one larger packet) and one packet
    decompressed, at most ``max_packet_bytes``, and its events.

    Args:
        stream_id: which event stream; ``None`` takes the file's only event stream and raises
            FormatError when there are several.
        max_packet_bytes: the most bytes one packet may hold, stored or decompressed; a packet
            that claims or decompresses to more is a FormatError naming its byte offset.
        info: the file's IOHeader as :func:`read_aedat4_info` read it, so it is not read
            again; a file that changed since (inode, size or time) is a FormatError.
    """
    path = Path(path)
    limit = _packet_limit(max_packet_bytes)
    last_t = np.iinfo(np.int64).min
    for batch, sensor in _iter_batches(path, stream_id, _BLOCK_BYTES, limit, info):
        for j in range(len(batch.counts)):
            events = np.empty(batch.counts[j], EVENT_DTYPE)
            _, last_t = _decode_batch(events, 0, batch.packet(j), last_t, sensor, path)
            if len(events):
                yield events


def read_aedat4(
    path: str | os.PathLike,
    *,
    stream_id: int | None = None,
    threads: int | None = None,
    max_packet_bytes: int = MAX_PACKET_BYTES,
    info: Aedat4Info | None = None,
) -> np.ndarray:
    """Read all events of an AEDAT 4 event stream into one EVENT_DTYPE array.

    Timestamps are the file's microseconds as written (DV stores Unix time), x and y as the
    camera wrote them, polarity 1 for ON. See :func:`iter_aedat4` for ``stream_id``.

    Args:
        threads: how many threads decompress LZ4 or Zstd packets, in runs of about 128 KiB
            compressed, at most ``4 * threads`` runs ahead of the one being decoded; the
            events and errors are the same for every value. ``None``:
            :func:`default_aedat4_threads`. 1 decompresses each packet on the calling thread,
            as do files of under 256 KiB of compressed events (a pool costs more than it
            saves there) and uncompressed files.
            What threads buy, and when not: docs/formats.md (AEDAT 4 threads, Benchmark).
            The pool's read-ahead holds at most ``pool.AHEAD_BYTES`` decompressed bytes.
        max_packet_bytes: see :func:`iter_aedat4`. Peak memory: docs/formats.md, "Hostile files
            and memory".
        info: see :func:`iter_aedat4`.
    """
    path = Path(path)
    threads = pool.thread_count(threads)
    limit = _packet_limit(max_packet_bytes)
    with open(path, "rb") as f:
        info = _header(f, path, info)
        target, sensor = _pick_stream(info, stream_id, path)
        # the file memory-mapped whole and its packet headers walked at once: uncompressed
        # records are decoded from the OS file cache in one kernel call, compressed packets
        # in file order as they come out of decompression (on this thread, or a pool's)
        pos, end = info.body_offset, _packets_end(f, info)
        buf = _read_block(f, path, pos, end, None)
        offsets, sizes, stop, code, a, b = _walk_aedat4(buf, pos, pos, end, target)
        _check_sizes(path, offsets, sizes, limit)
        decompress = _decompressor(info.compression, limit)
        # records are 16 bytes: exact uncompressed, a guess for compression down to a quarter
        capacity = int(sizes.sum()) // EVENT_STRUCT.itemsize * (1 if decompress is None else 4)
        most = None if decompress is None else MAX_EXPANSION * end // EVENT_STRUCT.itemsize
        if decompress is None or threads == 1 or sizes.sum() < 2 * pool.TASK_BYTES:
            batches = _block_batches(buf, pos, offsets, sizes, decompress, path)
            out = _decode_all(batches, sensor, path, capacity, most)
        else:  # the calling thread decompresses too
            with pool.thread_pool(threads - 1) as executor:
                batches = _pooled_batches(
                    executor, threads, buf, pos, offsets, sizes, decompress, path
                )
                out = _decode_all(batches, sensor, path, capacity, most)
        _check_walk(path, stop, end, code, a, b)
        return out


def _pooled_batches(executor, threads: int, buf, pos: int, offsets, sizes, decompress, path: Path):
    """The batches of :func:`_block_batches` for compressed packets, decompressed by ``pool``."""
    starts = (offsets - pos + PACKET_HEADER.size).tolist()
    blobs = [buf[a : a + n] for a, n in zip(starts, sizes.tolist(), strict=True)]
    packets = pool.pooled_packets(executor, threads, blobs, offsets.tolist(), decompress, path)
    for offset, data in packets:
        yield _packet_batch(data, offset, path)


def _packet_batch(data: bytes, offset: int, path: Path) -> _Batch:
    """The batch of the decompressed packet ``data`` found at byte ``offset`` of the file."""
    payload = np.frombuffer(data, np.uint8)
    return _locate(payload, _ZERO, np.array([len(payload)]), np.array([offset]), path)


def _decode_all(
    batches: Iterator[_Batch], sensor: Sensor, path: Path, capacity: int, most: int | None
) -> np.ndarray:
    """Decode batches into one array, allocated for ``capacity`` events and trimmed to fit.

    More than ``most`` events (None: no bound) is a FormatError before the array grows: the
    packets of a compressed file may decompress to at most MAX_EXPANSION times the file.

    Untouched pages of the allocation cost no memory; it grows only when a file compresses
    to under a quarter, and trimming it gives the tail back without copying.
    """
    out = np.empty(capacity, EVENT_DTYPE)
    k, last_t = 0, np.iinfo(np.int64).min
    for batch in batches:
        need = k + int(batch.counts.sum())
        if most is not None and need > most:
            raise FormatError(
                f"{path}: the packets up to byte offset {int(batch.offsets[-1])} decompress to "
                f"{need} events, more than {MAX_EXPANSION} times the file's size "
                "(eventvision.io.arrays.MAX_EXPANSION); refused"
            )
        if need > len(out):
            out.resize(max(need, 2 * len(out)), refcheck=False)  # no view of out exists
        k, last_t = _decode_batch(out, k, batch, last_t, sensor, path)
    out.resize(k, refcheck=False)
    return out


class _Batch(NamedTuple):
    """Event packets whose records lie in one byte buffer."""

    buf: np.ndarray  # uint8: the file's bytes, or one decompressed packet
    positions: np.ndarray  # int64: byte position of each packet's first record in buf
    counts: np.ndarray  # int64: records of each packet
    offsets: np.ndarray  # int64: byte offset of each packet in the file, for messages

    def packet(self, j: int) -> _Batch:
        """The batch of packet j alone."""
        return _Batch(self.buf, *(a[j : j + 1] for a in self[1:]))


def _iter_batches(
    path: Path, stream_id: int | None, block_bytes: int, limit: int, info: Aedat4Info | None
):
    """Yield ``(batch, sensor)`` of the event packets of one stream, in file order."""
    with open(path, "rb") as f:
        info = _header(f, path, info)
        target, sensor = _pick_stream(info, stream_id, path)
        for batch in _iter_packet_batches(f, path, info, target, block_bytes, limit):
            yield batch, sensor


def _decode_batch(
    out: np.ndarray, k: int, batch: _Batch, last_t: int, sensor: Sensor, path: Path
) -> tuple[int, int]:
    """Decode a batch's records into ``out[k:]``; returns the new ``(k, last_t)``."""
    first = 0
    while True:
        rest = (a[first:] for a in batch[1:3])
        k, last_t, bad = _decode_aedat4_fast(batch.buf, *rest, out, k, last_t, *sensor[:2])
        if bad < 0:
            return k, last_t
        j = first + bad
        at, count = batch.positions[j], batch.counts[j]
        words = batch.buf[at : at + 16 * count].view("<i8")
        k, last_t = _decode_checked(out, k, words, last_t, sensor, batch.offsets[j], path)
        first = j + 1


def _decode_checked(out, k, words, last_t, sensor, offset, path) -> tuple[int, int]:
    """Decode one packet record by record, raising FormatError at the first bad record."""
    k, last_t, code, where = _decode_aedat4(words, out, k, last_t, sensor.width, sensor.height)
    reasons = {
        1: f"timestamp goes backwards in the packet at byte offset {offset}",
        2: f"event {where} of the packet at byte offset {offset} has a coordinate outside the "
        f"{sensor.height}x{sensor.width} (HxW) sensor the header declares, or a polarity byte "
        "other than 0 and 1",
    }
    _raise_for_code(path, code, reasons)
    return k, last_t


def _raise_for_code(path: Path, code: int, reasons: dict[int, str]) -> None:
    """Raise the FormatError ``reasons`` gives a kernel's status ``code``; other codes pass."""
    if code in reasons:
        raise FormatError(f"{path}: {reasons[code]}")


def _header(f: BinaryIO, path: Path, info: Aedat4Info | None) -> Aedat4Info:
    """The IOHeader of the open file ``f``: ``info`` if read before from this very file, or read."""
    if info is None:
        return _read_header(f, path)
    if info.stamp != _stamp(f):
        raise FormatError(
            f"{path}: the file changed (or is another) since its IOHeader was read; read it again"
        )
    return info


def _stamp(f: BinaryIO) -> tuple[int, ...]:
    """What tells one state of a file from another: device, inode, size, mtime in ns."""
    st = os.fstat(f.fileno())
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _read_header(f: BinaryIO, path: Path) -> Aedat4Info:
    magic = f.read(len(AEDAT4_MAGIC))
    if magic != AEDAT4_MAGIC:
        shown = magic.rstrip(b"\r\n")
        if shown.startswith(b"#!AER-DAT") and shown != AEDAT4_MAGIC.rstrip(b"\r\n"):
            found = shown[len(b"#!AER-DAT") :].decode("ascii", "replace")
            raise FormatError(f"{path}: header says AEDAT {found}, expected 4.0")
        raise FormatError(
            f"{path}: bad magic at byte offset 0: {magic!r}, expected {AEDAT4_MAGIC!r}"
        )
    start = len(AEDAT4_MAGIC)
    raw = f.read(4)
    size = struct.unpack("<I", raw)[0] if len(raw) == 4 else -1
    stamp = _stamp(f)
    left = stamp[2] - start - 4  # never read (or allocate) past the file
    buf = f.read(size) if 8 <= size <= min(left, _MAX_PACKET) else b""
    if len(buf) != size or size < 8:
        raise FormatError(f"{path}: truncated IOHeader at byte offset {start}")
    try:
        compression, table_pos, xml = _parse_io_header(buf)
        streams = _event_streams(xml)
    except (struct.error, ValueError, UnicodeDecodeError, ET.ParseError) as e:
        raise FormatError(f"{path}: bad IOHeader at byte offset {start}: {e}") from None
    if compression not in COMPRESSIONS:
        raise FormatError(
            f"{path}: IOHeader at byte offset {start} names compression {compression}, "
            f"expected one of {sorted(COMPRESSIONS)}"
        )
    body = start + 4 + size
    return Aedat4Info(COMPRESSIONS[compression], table_pos, streams, body, stamp)


def _table(buf: bytes, identifier: bytes) -> tuple[int, int]:
    """The root table of a FlatBuffer and its vtable position; checks the file identifier."""
    if buf[4:8] != identifier:
        raise ValueError(f"file identifier {buf[4:8]!r}, expected {identifier!r}")
    table = struct.unpack_from("<I", buf, 0)[0]
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    if not 0 <= vtable <= len(buf) - 4 or table + 4 > len(buf):
        raise ValueError("root table outside the buffer")
    return table, vtable


def _field(buf: bytes, table: int, vtable: int, index: int) -> int:
    """Byte position of field ``index`` of a table, or 0 when the field is absent."""
    vt_size = struct.unpack_from("<H", buf, vtable)[0]
    slot = 4 + 2 * index
    if slot + 2 > vt_size:
        return 0
    at = struct.unpack_from("<H", buf, vtable + slot)[0]
    return table + at if at else 0


def _parse_io_header(buf: bytes) -> tuple[int, int, str]:
    """``(compression, dataTablePosition, infoNode)`` of an IOHeader FlatBuffer."""
    table, vtable = _table(buf, b"IOHE")
    at = _field(buf, table, vtable, 0)
    compression = struct.unpack_from("<i", buf, at)[0] if at else 0
    at = _field(buf, table, vtable, 1)
    table_pos = struct.unpack_from("<q", buf, at)[0] if at else -1
    at = _field(buf, table, vtable, 2)
    if not at:
        return compression, table_pos, ""
    string = at + struct.unpack_from("<I", buf, at)[0]
    length = struct.unpack_from("<I", buf, string)[0]
    if string + 4 + length > len(buf):
        raise ValueError("infoNode string runs past the header")
    return compression, table_pos, buf[string + 4 : string + 4 + length].decode("utf-8")


def _event_streams(xml: str) -> dict[int, Sensor]:
    """Stream id -> sensor size of every output whose typeIdentifier is EVTS."""
    if not xml.strip():
        return {}
    streams = {}
    for node in ET.fromstring(xml).iter("node"):
        attrs = {a.get("key"): (a.text or "") for a in node.findall("attr")}
        if attrs.get("typeIdentifier") != EVENT_IDENTIFIER or not node.get("name", "").isdigit():
            continue
        sizes = {}
        for info in node.findall("node[@name='info']"):
            sizes = {a.get("key"): a.text for a in info.findall("attr")}
        width, height = int(sizes.get("sizeX") or 0), int(sizes.get("sizeY") or 0)
        streams[int(node.get("name"))] = Sensor(width, height)
    return streams


def _pick_stream(info: Aedat4Info, stream_id: int | None, path: Path) -> tuple[int, Sensor]:
    streams = info.event_streams
    if stream_id is None:
        if len(streams) != 1:
            what = "no event stream" if not streams else f"event streams {sorted(streams)}"
            raise FormatError(
                f"{path}: the IOHeader declares {what}; "
                + ("pass stream_id to pick one" if streams else "expected one of type EVTS")
            )
        stream_id = next(iter(streams))
    if stream_id not in streams:
        raise FormatError(f"{path}: no event stream {stream_id}; event streams: {sorted(streams)}")
    return stream_id, streams[stream_id]


def _iter_packet_batches(
    f: BinaryIO, path: Path, info: Aedat4Info, target: int, block_bytes: int, limit: int
) -> Iterator[_Batch]:
    """Yield the event packets of stream ``target`` in batches, reading ``block_bytes`` at a time.

    A packet larger than a block is read whole, if it holds at most ``limit`` bytes.
    """
    pos, end = info.body_offset, _packets_end(f, info)
    decompress = _decompressor(info.compression, limit)
    need = PACKET_HEADER.size
    while pos < end:
        buf = _read_block(f, path, pos, end, max(need, block_bytes))
        offsets, sizes, stop, code, a, b = _walk_aedat4(buf, pos, pos, end, target)
        _check_sizes(path, offsets, sizes, limit)
        yield from _block_batches(buf, pos, offsets, sizes, decompress, path)
        _check_walk(path, stop, end, code, a, b)
        if code == 3:  # the next packet of the stream is larger than a block
            _check_sizes(path, np.array([stop]), np.array([a - PACKET_HEADER.size]), limit)
        pos, need = stop, (a if code == 3 else PACKET_HEADER.size)


def _packets_end(f: BinaryIO, info: Aedat4Info) -> int:
    """Where the packets end: the end of the file, or the file data table where there is one."""
    end = os.fstat(f.fileno()).st_size
    return end if info.data_table_position < 0 else min(end, info.data_table_position)


def _block_batches(buf, pos: int, offsets, sizes, decompress, path: Path) -> Iterator[_Batch]:
    """The batches of the packets at ``offsets`` of a block holding the file from ``pos``.

    The packets of an uncompressed file come as one batch, their records read in place; each
    compressed packet is its own batch, decompressed when the batch is asked for.
    """
    starts = offsets - pos + PACKET_HEADER.size
    if decompress is None:
        yield _locate(buf, starts, sizes, offsets, path)
        return
    for at, size, offset in zip(starts.tolist(), sizes.tolist(), offsets.tolist(), strict=True):
        yield _packet_batch(decompress(buf[at : at + size], offset, path), offset, path)


def _read_block(f: BinaryIO, path: Path, pos: int, end: int, size: int | None) -> np.ndarray:
    """Bytes ``[pos, pos + size)`` of the file, at most to ``end``; ``None``: all, mapped."""
    if pos >= end:
        return np.empty(0, np.uint8)
    if size is None:
        try:  # no copy: the pages are the OS file cache, unmapped with the last view
            mapped = mmap.mmap(f.fileno(), end, access=mmap.ACCESS_READ)
            return np.frombuffer(mapped, np.uint8, count=end - pos, offset=pos)
        except (OSError, ValueError):  # a file system without mmap, or the file shrank: read
            size = end - pos
    size = min(size, end - pos)
    f.seek(pos)
    data = f.read(size)
    if len(data) < size:  # the file shrank since its size was taken
        raise FormatError(f"{path}: truncated packet at byte offset {pos + len(data)}")
    return np.frombuffer(data, np.uint8)


def _check_walk(path: Path, pos: int, end: int, code: int, stream: int, size: int) -> None:
    """Raise FormatError for a packet header the walk stopped at."""
    reasons = {
        1: f"truncated packet header at byte offset {pos}",
        2: f"bad packet header at byte offset {pos}: stream {stream}, size {size} "
        f"({end - pos - 8} bytes left)",
    }
    _raise_for_code(path, code, reasons)


def _locate(buf, starts, sizes, offsets, path: Path) -> _Batch:
    """The batch of the EventPacket FlatBuffers ``buf[starts[j]:starts[j] + sizes[j]]``."""
    positions, counts = np.empty_like(starts), np.empty_like(starts)
    j, code, value = _locate_aedat4_records(buf, starts, sizes, positions, counts)
    if j >= 0:
        bad = f"bad event packet at byte offset {offsets[j]}"
        reasons = {
            1: f"{bad}: size prefix does not match the {sizes[j]}-byte packet",
            2: f"{bad}: file identifier {int(value).to_bytes(4, 'little')!r}, expected b'EVTS'",
            3: f"{bad}: a table or vector offset points outside the packet",
            4: f"{bad}: {value} events run past the packet",
        }
        raise FormatError(f"{path}: {reasons[code]}")  # the kernel stopped at packet j
    return _Batch(buf, positions, counts, offsets)


def _packet_limit(max_packet_bytes: int) -> int:
    """``max_packet_bytes`` checked."""
    if isinstance(max_packet_bytes, bool) or not isinstance(max_packet_bytes, int):
        raise ValueError(f"max_packet_bytes must be a positive int, got {max_packet_bytes!r}")
    if max_packet_bytes < 1:
        raise ValueError(f"max_packet_bytes must be a positive int, got {max_packet_bytes!r}")
    return max_packet_bytes


def _check_sizes(path: Path, offsets, sizes, limit: int) -> None:
    """Raise FormatError for the first packet whose stored size is above ``limit``."""
    over = np.flatnonzero(sizes > limit)
    if len(over):
        j = int(over[0])
        raise FormatError(
            f"{path}: the packet at byte offset {int(offsets[j])} holds {int(sizes[j])} bytes, "
            f"more than the {limit}-byte packet limit (max_packet_bytes)"
        )


def _decompressor(compression: str, limit: int):
    """A function ``(blob, offset, path[, limit]) -> bytes`` undoing the packet compression.

    The output of one packet is at most ``limit`` bytes (or the call's own ``limit``): a frame
    that declares or decompresses to more raises :class:`pool.PacketTooLarge` before holding
    more than that. None: no compression.
    """
    if compression == "none":
        return None
    decode, errors = _lz4_decoder() if compression == "lz4" else _zstd_decoder()

    def undo(blob, offset: int, path: Path, most: int | None = None) -> bytes:
        try:
            return decode(blob, limit if most is None else min(limit, most))
        except pool.PacketTooLarge as e:
            if most is not None and most < limit:  # a pool thread's share: the caller decides
                raise
            claim = f"declares {e.args[0]} bytes," if e.args[0] else "decompresses to"
            raise FormatError(
                f"{path}: the packet at byte offset {offset} {claim} more than the "
                f"{limit}-byte packet limit (max_packet_bytes)"
            ) from None
        except errors as e:
            raise FormatError(
                f"{path}: packet at byte offset {offset} does not decompress as {compression}: {e}"
            ) from None

    return undo


def _lz4_decoder():
    """``(decode(blob, most), errors)`` of LZ4 frames, holding at most ``most + 1`` bytes."""
    import lz4.frame

    def decode(blob, most: int) -> bytes:
        declared = lz4.frame.get_frame_info(blob)["content_size"]  # 0: not declared
        if declared > most:
            raise pool.PacketTooLarge(declared)
        d = lz4.frame.LZ4FrameDecompressor()
        out = d.decompress(blob, max_length=(declared or most) + 1)
        if len(out) > most:
            raise pool.PacketTooLarge(None)
        if not d.eof or (declared and len(out) != declared):
            raise RuntimeError(f"truncated LZ4 frame, or not the {declared} bytes it declares")
        return out

    return decode, (RuntimeError,)


def _zstd_decoder():
    """``(decode(blob, most), errors)`` of Zstd frames, holding at most ``most + 1`` bytes."""
    import zstandard

    local = threading.local()  # a ZstdDecompressor serves one thread at a time

    def decode(blob, most: int) -> bytes:
        context = getattr(local, "context", None)
        if context is None:
            context = local.context = zstandard.ZstdDecompressor()
        declared = zstandard.frame_content_size(blob)
        if declared > most:
            raise pool.PacketTooLarge(declared)
        if declared >= 0:  # DV writes the size: one call, which checks it
            return context.decompress(blob)
        with context.stream_reader(blob) as reader:
            out = reader.read(most + 1)
        if len(out) > most:
            raise pool.PacketTooLarge(None)
        return out

    return decode, (zstandard.ZstdError,)


def _info_xml(sensor: Sensor, compression: str, source: str) -> str:
    return (
        '<dv version="2.0">\n <node name="outInfo" path="/outInfo/">\n'
        '  <node name="0" path="/outInfo/0/">\n'
        f'   <attr key="compression" type="string">{compression.upper()}</attr>\n'
        '   <attr key="originalOutputName" type="string">events</attr>\n'
        f'   <attr key="typeIdentifier" type="string">{EVENT_IDENTIFIER}</attr>\n'
        '   <node name="info" path="/outInfo/0/info/">\n'
        f'    <attr key="sizeX" type="int">{sensor.width}</attr>\n'
        f'    <attr key="sizeY" type="int">{sensor.height}</attr>\n'
        f'    <attr key="source" type="string">{source}</attr>\n'
        "   </node>\n  </node>\n </node>\n</dv>\n"
    )


def _io_header(compression: int, xml: str) -> bytes:
    """A size-prefixed IOHeader FlatBuffer laid out as DV writes it (no data table)."""
    text = xml.encode("utf-8") + b"\0"
    text += b"\0" * (-len(text) % 4)
    body = (
        struct.pack("<I4s6x", 0x18, b"IOHE")
        + struct.pack("<5H", 10, 20, 4, 12, 8)  # vtable: compression, dataTablePosition, infoNode
        + struct.pack("<iiIq", 10, compression, 12, -1)
        + struct.pack("<I", len(xml.encode("utf-8")))
        + text
    )
    return struct.pack("<I", len(body)) + body


def _event_packet(events: np.ndarray) -> bytes:
    """A size-prefixed EventPacket FlatBuffer of ``events``, as DV lays it out."""
    records = np.zeros(len(events), EVENT_STRUCT)
    for name in ("t", "x", "y", "p"):
        records[name] = events[name]
    body = struct.pack("<I4s2x3HiII", 0x10, b"EVTS", 6, 8, 4, 6, 4, len(events))
    body += records.tobytes()
    return struct.pack("<I", len(body)) + body


def write_aedat4(
    path: str | os.PathLike,
    events: np.ndarray,
    sensor: Sensor,
    *,
    compression: str = "none",
    packet_events: int = 4096,
    source: str = "eventvision",
) -> None:
    """Write events as one AEDAT 4 event stream (id 0) in packets of ``packet_events``.

    ``compression`` is ``"none"``, ``"lz4"`` or ``"zstd"`` (each packet one frame). No file
    data table is written, as in a recording DV stopped abruptly; readers walk the packets.
    """
    if compression not in _COMPRESSION_CODES:
        raise ValueError(f"compression must be one of {sorted(_COMPRESSION_CODES)}")
    if events.dtype != EVENT_DTYPE:
        events = events.astype(EVENT_DTYPE)
    compress = _compressor(compression)
    with open(path, "wb") as f:
        f.write(AEDAT4_MAGIC)
        xml = _info_xml(sensor, compression, source)
        f.write(_io_header(_COMPRESSION_CODES[compression], xml))
        for start in range(0, len(events), packet_events):
            blob = compress(_event_packet(events[start : start + packet_events]))
            f.write(PACKET_HEADER.pack(0, len(blob)) + blob)


def _compressor(compression: str):
    if compression == "lz4":
        import lz4.frame

        return lz4.frame.compress
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress
    return lambda blob: blob
