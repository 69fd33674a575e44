"""numba kernels of the raw readers: one pass over the bytes, straight into the event fields.

Each has a plain-numpy twin in ``reference.py``; ``tests/io/test_kernels.py`` checks they agree.
The kernels only loop; the readers validate, allocate and build error messages.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._bits import (
    AEDAT2_SPECIAL_EVENT_BIT,
    AEDAT2_X_MASK,
    AEDAT2_X_SHIFT,
    AEDAT2_Y_MASK,
    AEDAT2_Y_SHIFT,
    AEDAT31_POLARITY_SHIFT,
    AEDAT31_TIMESTAMP_MASK,
    AEDAT31_X_MASK,
    AEDAT31_X_SHIFT,
    AEDAT31_Y_MASK,
    AEDAT31_Y_SHIFT,
    ATIS_OVERFLOW_STEP_US,
    ATIS_OVERFLOW_Y,
    ATIS_POLARITY_SHIFT,
    ATIS_TIMESTAMP_HIGH_MASK,
    HALF_WRAP,
    TIMESTAMP_WRAP,
)


@njit(cache=True, inline="always")
def _bswap32(v):  # pragma: no cover
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | ((v >> 24) & 0xFF)


@njit(cache=True, inline="always")
def _le_u32(buf, j):  # pragma: no cover
    return (
        np.int64(buf[j])
        | (np.int64(buf[j + 1]) << 8)
        | (np.int64(buf[j + 2]) << 16)
        | (np.int64(buf[j + 3]) << 24)
    )


@njit(cache=True, inline="always")
def _le_i32(buf, j):  # pragma: no cover
    value = _le_u32(buf, j)
    return value - (1 << 32) if value >= 1 << 31 else value


@njit(cache=True, inline="always")
def _le_i16(buf, j):  # pragma: no cover
    value = np.int64(buf[j]) | (np.int64(buf[j + 1]) << 8)
    return value - (1 << 16) if value >= 1 << 15 else value


@njit(cache=True)
def _decode_aedat2_fast(words, t, x, y, p, k, last_raw, t_offset):  # pragma: no cover
    """Decode every record of ``words`` (big-endian u32 pairs read as native u32) from index k.

    The common case, branch-free so it pipelines: returns ``(suspect, last_raw)``, where
    suspect is True when a record steps back in time or is a special event; the caller then
    decodes the block again with :func:`_decode_aedat2`.
    """
    suspect = False
    for i in range(words.shape[0] // 2):
        address = _bswap32(np.int64(words[2 * i]))
        raw = _bswap32(np.int64(words[2 * i + 1]))
        suspect |= (raw < last_raw) | (address >= AEDAT2_SPECIAL_EVENT_BIT)
        last_raw = raw
        t[k + i] = raw + t_offset
        x[k + i] = (address >> AEDAT2_X_SHIFT) & AEDAT2_X_MASK
        y[k + i] = (address >> AEDAT2_Y_SHIFT) & AEDAT2_Y_MASK
        p[k + i] = address & 1
    return suspect, last_raw


@njit(cache=True)
def _decode_aedat2(words, t, x, y, p, k, last_raw, wraps):  # pragma: no cover
    """Decode the records of ``words`` from index k, one by one, handling every case.

    Drops special events (address bit 15 and up) and unwraps 32-bit timestamp wraps. Returns
    ``(k, last_raw, wraps, bad)``: bad is the record index where time goes backwards by less
    than half the 32-bit range (a larger drop is a wrap), else -1.
    """
    for i in range(words.shape[0] // 2):
        address = _bswap32(np.int64(words[2 * i]))
        raw = _bswap32(np.int64(words[2 * i + 1]))
        if raw < last_raw:
            if last_raw - raw > HALF_WRAP:
                wraps += 1
            else:
                return k, last_raw, wraps, i
        last_raw = raw
        if address >= AEDAT2_SPECIAL_EVENT_BIT:  # special / external event
            continue
        t[k] = raw + wraps * TIMESTAMP_WRAP
        x[k] = (address >> AEDAT2_X_SHIFT) & AEDAT2_X_MASK
        y[k] = (address >> AEDAT2_Y_SHIFT) & AEDAT2_Y_MASK
        p[k] = address & 1
        k += 1
    return k, last_raw, wraps, -1


@njit(cache=True)
def _decode_aedat31_fast(words, t, x, y, p, k, last_t):  # pragma: no cover
    """The common case of :func:`_decode_aedat31`, on the block viewed as native u32 words.

    Polarity events are decoded without branches. Returns ``(k, used_words, last_t, ok)``;
    when ok is False (a valid bit of 0, time going backwards, a bad packet header or a packet
    of a size that is no multiple of 4 bytes) the caller decodes the block again with
    :func:`_decode_aedat31`.
    """
    n = words.shape[0]
    pos = 0
    suspect = False
    while pos + 7 <= n:
        kind = np.int64(words[pos] & 0xFFFF)
        size, ts_offset = np.int64(words[pos + 1]), np.int64(words[pos + 2])
        overflow, capacity = np.int64(words[pos + 3]), np.int64(words[pos + 4])
        number, valid = np.int64(words[pos + 5]), np.int64(words[pos + 6])
        if (
            kind >= 0x8000
            or size == 0
            or size >= HALF_WRAP
            or capacity >= HALF_WRAP
            or overflow >= HALF_WRAP
            or number > capacity
            or valid > number
            or (kind == 1 and (size != 8 or ts_offset != 4))
            or (size * capacity) % 4 != 0
        ):
            return k, pos, last_t, False
        end = pos + 7 + (size * capacity) // 4
        if end > n:
            break
        if kind == 1:
            base = overflow << 31
            for e in range(number):
                data = np.int64(words[pos + 7 + 2 * e])
                full = base | (np.int64(words[pos + 8 + 2 * e]) & AEDAT31_TIMESTAMP_MASK)
                suspect |= ((data & 1) == 0) | (full < last_t)
                last_t = full
                t[k + e] = full
                x[k + e] = (data >> AEDAT31_X_SHIFT) & AEDAT31_X_MASK
                y[k + e] = (data >> AEDAT31_Y_SHIFT) & AEDAT31_Y_MASK
                p[k + e] = (data >> AEDAT31_POLARITY_SHIFT) & 1
            k += number
        pos = end
    return k, pos, last_t, not suspect


@njit(cache=True)
def _decode_aedat31(buf, t, x, y, p, k, last_t):  # pragma: no cover
    """Walk the complete AEDAT 3.1 packets at the start of ``buf``, decoding polarity events.

    Returns ``(k, used, last_t, code, where)``: ``used`` bytes hold complete packets; code 0 is
    fine, 1 a bad packet header at byte ``where``, 2 time going backwards in the packet at
    ``where``.
    """
    n = buf.shape[0]
    pos = 0
    while pos + 28 <= n:
        kind = _le_i16(buf, pos)
        size = _le_i32(buf, pos + 4)
        ts_offset = _le_i32(buf, pos + 8)
        overflow = _le_i32(buf, pos + 12)
        capacity = _le_i32(buf, pos + 16)
        number = _le_i32(buf, pos + 20)
        valid = _le_i32(buf, pos + 24)
        if (
            kind < 0
            or size <= 0
            or capacity < 0
            or number < 0
            or number > capacity
            or valid < 0
            or valid > number
            or overflow < 0
            or (kind == 1 and (size != 8 or ts_offset != 4))
        ):
            return k, pos, last_t, 1, pos
        end = pos + 28 + capacity * size
        if end > n:
            break
        if kind == 1:
            base = overflow * HALF_WRAP
            for e in range(number):
                j = pos + 28 + 8 * e
                data = _le_u32(buf, j)
                if data & 1 == 0:
                    continue
                full = base + (_le_u32(buf, j + 4) & AEDAT31_TIMESTAMP_MASK)
                if full < last_t:
                    return k, pos, last_t, 2, pos
                last_t = full
                t[k] = full
                x[k] = (data >> AEDAT31_X_SHIFT) & AEDAT31_X_MASK
                y[k] = (data >> AEDAT31_Y_SHIFT) & AEDAT31_Y_MASK
                p[k] = (data >> AEDAT31_POLARITY_SHIFT) & 1
                k += 1
        pos = end
    return k, pos, last_t, 0, pos


@njit(cache=True)
def _walk_aedat4(buf, base, pos, end, target):  # pragma: no cover
    """Walk the AEDAT 4 packets ``int32 stream, int32 size, payload`` from file offset pos.

    ``buf`` holds the file's bytes from offset ``base`` on; ``end`` is where packets end.
    Returns ``(offsets, sizes, pos, code, a, b)``: the offset and payload size of each complete
    packet of stream ``target``, then where the walk stopped and why: code 0 at end, 1 a
    truncated packet header at pos, 2 a bad header at pos (stream a, size b), 3 the packet at
    pos runs past ``buf`` (a: the bytes it needs from pos).
    """
    offsets = np.empty(256, np.int64)
    sizes = np.empty(256, np.int64)
    n = 0
    limit = base + buf.shape[0]
    while pos < end:
        if end - pos < 8:
            return offsets[:n], sizes[:n], pos, 1, 0, 0
        if pos + 8 > limit:
            return offsets[:n], sizes[:n], pos, 3, 8, 0
        stream = _le_i32(buf, pos - base)
        size = _le_i32(buf, pos - base + 4)
        if size < 0 or stream < 0 or pos + 8 + size > end:
            return offsets[:n], sizes[:n], pos, 2, stream, size
        if stream == target:
            if pos + 8 + size > limit:
                return offsets[:n], sizes[:n], pos, 3, 8 + size, 0
            if n == offsets.shape[0]:
                offsets = np.concatenate((offsets, np.empty(n, np.int64)))
                sizes = np.concatenate((sizes, np.empty(n, np.int64)))
            offsets[n] = pos
            sizes[n] = size
            n += 1
        pos += 8 + size
    return offsets[:n], sizes[:n], pos, 0, 0, 0


@njit(cache=True, nogil=True)  # decoding overlaps the decompressing threads
def _locate_aedat4_records(buf, starts, sizes, positions, counts):  # pragma: no cover
    """Find the dv::Event vector of each size-prefixed EventPacket FlatBuffer in ``buf``.

    Packet j spans ``buf[starts[j]:starts[j] + sizes[j]]``; its records' byte position and
    count go into ``positions[j]`` and ``counts[j]``. Returns ``(j, code, value)`` of the first
    bad packet, else ``(-1, 0, 0)``: code 1 a size prefix other than ``sizes[j] - 4``, 2 a file
    identifier other than EVTS (value: the identifier as a little-endian int), 3 a table,
    vtable or vector offset outside the packet, 4 ``value`` records running past it.
    """
    for j in range(starts.shape[0]):
        at, size = starts[j], sizes[j]
        if size < 12 or _le_u32(buf, at) != size - 4:
            return j, 1, 0
        fb, n = at + 4, size - 4  # the FlatBuffer after the size prefix
        ident = _le_u32(buf, fb + 4)
        if ident != 0x53545645:  # b"EVTS"
            return j, 2, ident
        table = _le_u32(buf, fb)
        if table + 4 > n:
            return j, 3, 0
        vtable = table - _le_i32(buf, fb + table)
        if vtable < 0 or vtable > n - 4:
            return j, 3, 0
        vt_size = np.int64(buf[fb + vtable]) | (np.int64(buf[fb + vtable + 1]) << 8)
        field = 0
        if vt_size >= 6:  # the vtable has a slot for field 0, the elements vector
            if vtable + 6 > n:
                return j, 3, 0
            field = np.int64(buf[fb + vtable + 4]) | (np.int64(buf[fb + vtable + 5]) << 8)
        positions[j], counts[j] = fb, 0
        if field == 0:  # no elements field: an empty packet
            continue
        field += table
        if field + 4 > n:
            return j, 3, 0
        vector = field + _le_u32(buf, fb + field)
        if vector + 4 > n:
            return j, 3, 0
        count = _le_u32(buf, fb + vector)
        if vector + 4 + count * 16 > n:
            return j, 4, count
        positions[j], counts[j] = fb + vector + 4, count
    return -1, 0, 0


@njit(cache=True)
def _decode_aedat4(words, out, k, last_t, width, height):  # pragma: no cover
    """Decode 16-byte dv::Event records, seen as pairs of little-endian int64 words, from k.

    Word 0 is the timestamp; word 1 holds x (bits 0-15, signed), y (bits 16-31, signed) and
    the polarity byte (bits 32-39). Returns ``(k, last_t, code, where)``: code 0 is fine, 1 a
    timestamp going backwards at record ``where``, 2 a coordinate outside ``width`` x
    ``height`` (0 means unchecked) or a polarity byte other than 0 and 1 there.
    """
    for i in range(words.shape[0] // 2):
        stamp = words[2 * i]
        packed = words[2 * i + 1]
        ex = packed & 0xFFFF
        ey = (packed >> 16) & 0xFFFF
        ep = (packed >> 32) & 0xFF
        if stamp < last_t:
            return k, last_t, 1, i
        if ex >= 0x8000 or ey >= 0x8000 or ep > 1:
            return k, last_t, 2, i
        if width > 0 and (ex >= width or ey >= height):
            return k, last_t, 2, i
        last_t = stamp
        event = out[k]
        event.t = stamp
        event.x = ex
        event.y = ey
        event.p = ep
        k += 1
    return k, last_t, 0, -1


@njit(cache=True, nogil=True)  # decoding overlaps the decompressing threads
def _decode_aedat4_fast(buf, positions, counts, out, k, last_t, width, height):  # pragma: no cover
    """The common case of :func:`_decode_aedat4` over many packets, without branches.

    Packet j holds ``counts[j]`` records at byte ``positions[j]`` of ``buf``, aligned or not
    (x86 and ARM load unaligned words at full speed). Whole records of the EVENT_DTYPE array
    ``out`` are written: about twice as fast as its four strided field views. Returns
    ``(k, last_t, j)``: j is the first suspect packet (time going backwards, a coordinate off
    the sensor or a bad polarity byte), which the caller decodes again with
    :func:`_decode_aedat4` to find and report the record, else -1.
    """
    w = width if width > 0 else 0x8000
    h = height if height > 0 else 0x8000
    for j in range(positions.shape[0]):
        words = buf[positions[j] : positions[j] + 16 * counts[j]].view(np.int64)
        end_t = last_t
        suspect = False
        for i in range(counts[j]):
            stamp = words[2 * i]
            packed = words[2 * i + 1]
            ex = packed & 0xFFFF
            ey = (packed >> 16) & 0xFFFF
            ep = (packed >> 32) & 0xFF
            suspect |= (stamp < end_t) | (ex >= w) | (ey >= h) | (ep > 1)
            end_t = stamp
            event = out[k + i]
            event.t = stamp
            event.x = ex
            event.y = ey
            event.p = ep
        if suspect:
            return k, last_t, j
        k += counts[j]
        last_t = end_t
    return k, last_t, -1


@njit(cache=True)
def _decode_atis(raw, t, x, y, p):  # pragma: no cover
    """Decode 5-byte ATIS records; a record with y == 240 adds 2**13 us from itself on.

    Overflow records are dropped. Returns ``(k, bad)``: k events written, bad the record index
    where time goes backwards, else -1.
    """
    k = 0
    offset = 0
    last_t = -1
    for i in range(raw.shape[0] // 5):
        j = 5 * i
        row = raw[j + 1]
        if row == ATIS_OVERFLOW_Y:
            offset += ATIS_OVERFLOW_STEP_US
            continue
        b2 = np.int64(raw[j + 2])
        stamp = (
            ((b2 & ATIS_TIMESTAMP_HIGH_MASK) << 16)
            | (np.int64(raw[j + 3]) << 8)
            | np.int64(raw[j + 4])
        ) + offset
        if stamp < last_t:
            return k, i
        last_t = stamp
        t[k] = stamp
        x[k] = raw[j]
        y[k] = row
        p[k] = b2 >> ATIS_POLARITY_SHIFT
        k += 1
    return k, -1
