from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events

from eventvision.errors import FormatError
from eventvision.events import EVENT_DTYPE, make_events
from eventvision.io import encode_packet, iter_aedat31, read_aedat31, write_aedat31
from eventvision.io.aedat31 import POLARITY_DTYPE

HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#!END-HEADER\r\n"  # 42 bytes


def _polarity(data, timestamp, **kwargs) -> bytes:
    records = np.empty(len(data), POLARITY_DTYPE)
    records["data"] = data
    records["timestamp"] = timestamp
    return encode_packet(1, records.tobytes(), event_size=8, **kwargs)


def _data(x, y, p, valid=1):
    return (x << 17) | (y << 2) | (p << 1) | valid


def test_round_trip_is_exact_across_overflow_and_packets(tmp_path):
    events = random_events(3000, seed=4, t0=2**31 - 1_000_000)  # crosses the 2**31 overflow
    path = tmp_path / "g.aedat"
    write_aedat31(path, events, packet_events=256)
    back = read_aedat31(path)
    assert back.dtype == EVENT_DTYPE
    assert np.array_equal(back, events)


def test_writer_layout_byte_for_byte(tmp_path):
    path = tmp_path / "one.aedat"
    write_aedat31(
        path, make_events([2**31 + 9], [3], [5], [1]), header=("#!AER-DAT3.1", "#!END-HEADER")
    )
    packet_header = (
        np.array([1, 1], "<i2").tobytes() + np.array([8, 4, 1, 1, 1, 1], "<i4").tobytes()
    )
    body = np.array([_data(3, 5, 1)], "<u4").tobytes() + np.array([9], "<i4").tobytes()
    assert path.read_bytes() == b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + packet_header + body


def test_hand_made_packets_honour_types_valid_bit_number_and_overflow(tmp_path):
    path = tmp_path / "g.aedat"
    special = encode_packet(0, b"\xff" * 16, event_size=8)  # skipped by its declared size
    frame = encode_packet(2, b"\x00" * 30, event_size=10)
    first = _polarity([_data(1, 2, 0), _data(9, 9, 1, valid=0)], [5, 6])
    # capacity 3, number 2: the third slot is unused and must be ignored
    second = _polarity(
        [_data(4, 3, 1), _data(127, 127, 0), _data(7, 7, 1)], [1, 2, 3], ts_overflow=1, number=2
    )
    path.write_bytes(HEADER + special + first + frame + second)
    events = read_aedat31(path)
    assert events.tolist() == [(5, 1, 2, 0), (2**31 + 1, 4, 3, 1), (2**31 + 2, 127, 127, 0)]


def test_timestamp_uses_low_31_bits(tmp_path):
    path = tmp_path / "g.aedat"
    path.write_bytes(HEADER + _polarity([_data(1, 1, 1)], [-(2**31) + 7]))
    assert read_aedat31(path)["t"].tolist() == [7]


def test_streaming_yields_bounded_blocks(tmp_path):
    events = random_events(10_000, seed=5)
    path = tmp_path / "g.aedat"
    write_aedat31(path, events, packet_events=100)
    blocks = list(iter_aedat31(path, block_bytes=4096))
    assert len(blocks) > 10
    assert max(len(b) for b in blocks) <= 4096 // 8
    assert np.array_equal(np.concatenate(blocks), events)


def test_packet_larger_than_block(tmp_path):
    events = random_events(2000, seed=6)
    path = tmp_path / "g.aedat"
    write_aedat31(path, events, packet_events=2000)
    assert np.array_equal(np.concatenate(list(iter_aedat31(path, block_bytes=1000))), events)


def test_header_only_file_is_empty(tmp_path):
    path = tmp_path / "g.aedat"
    path.write_bytes(HEADER)
    assert len(read_aedat31(path)) == 0


PACKET = _polarity([_data(1, 1, 1), _data(2, 2, 0)], [10, 20])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"#!AER-DAT2.0\r\n", "header says AEDAT 2.0, expected 3.1"),
        (b"\x00\x01garbage", "bad magic at byte offset 0"),
        (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "truncated header at byte offset 28"),
        (
            b"#!AER-DAT3.1\r\nnot a comment\r\n#!END-HEADER\r\n",
            "garbage in the header at byte offset 14",
        ),
        (HEADER + PACKET[:20], "truncated packet header at byte offset 42: 20 of 28 bytes"),
        (
            HEADER + PACKET[:-1],
            "packet at byte offset 42 declares 16 bytes of events, only 15 remain",
        ),
        (HEADER + PACKET + PACKET, "timestamp goes backwards"),
        (
            HEADER + encode_packet(1, b"\x00" * 12, event_size=12),
            "polarity packet with eventSize 12",
        ),
        (
            HEADER + encode_packet(3, b"\x00" * 8, event_size=8)[:4] + b"\x00" * 24,
            "eventSize 0 is not positive",
        ),
        (HEADER + encode_packet(1, b"\x00" * 8, event_size=8, number=2), "inconsistent counts"),
    ],
)
def test_bad_input_names_file_offset_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.aedat"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=message) as info:
        read_aedat31(path)
    assert str(path) in str(info.value)


def test_truncated_file_can_keep_complete_packets(tmp_path):
    events = random_events(1000, seed=7)
    path = tmp_path / "cut.aedat"
    write_aedat31(path, events, packet_events=100)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(FormatError, match="allow_truncated=True"):
        read_aedat31(path)
    with pytest.warns(UserWarning, match="keeping the complete packets"):
        kept = read_aedat31(path, allow_truncated=True)
    assert np.array_equal(kept, events[:900])
