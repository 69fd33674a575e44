from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events

from eventvision.errors import EventVisionError, FormatError
from eventvision.events import EVENT_DTYPE, make_events
from eventvision.io import read_aedat2, write_aedat2
from eventvision.io.aedat2 import RECORD_DTYPE

HEADER = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n"


def _records(address, timestamp) -> bytes:
    records = np.empty(len(address), RECORD_DTYPE)
    records["address"] = address
    records["timestamp"] = timestamp
    return records.tobytes()


def test_round_trip_is_exact(tmp_path):
    events = random_events(5000, seed=1)
    path = tmp_path / "a.aedat"
    write_aedat2(path, events)
    back = read_aedat2(path)
    assert back.dtype == EVENT_DTYPE
    assert np.array_equal(back, events)


def test_writer_layout_byte_for_byte(tmp_path):
    # One event at raw x=3, y=5, p=1, t=7: address = y << 8 | x << 1 | p = 0x0507, big-endian.
    path = tmp_path / "one.aedat"
    write_aedat2(path, make_events([7], [3], [5], [1]), header=("#!AER-DAT2.0", "# hi"))
    assert path.read_bytes() == b"#!AER-DAT2.0\r\n# hi\r\n" + bytes.fromhex("00000507 00000007")


def test_decodes_hand_made_records_and_drops_special_events(tmp_path):
    path = tmp_path / "f.aedat"
    address = [0x0507, 0x8000 | 0x0507, (127 << 8) | (127 << 1)]
    path.write_bytes(HEADER + _records(address, [10, 11, 3_000_000_000]))
    events = read_aedat2(path)
    assert events.tolist() == [(10, 3, 5, 1), (3_000_000_000, 127, 127, 0)]


def test_long_header_and_unsigned_timestamps(tmp_path):
    header = b"#!AER-DAT2.0\r\n" + b"".join(b"# <xml line %d/>\r\n" % i for i in range(84))
    path = tmp_path / "f.aedat"
    path.write_bytes(header + _records([2, 4], [2**31 + 5, 2**32 - 1]))
    assert read_aedat2(path)["t"].tolist() == [2**31 + 5, 2**32 - 1]


def test_timestamp_wrap_is_unwrapped(tmp_path):
    path = tmp_path / "f.aedat"
    path.write_bytes(HEADER + _records([0, 0, 0], [2**32 - 10, 5, 6]))
    assert read_aedat2(path)["t"].tolist() == [2**32 - 10, 2**32 + 5, 2**32 + 6]


def test_empty_body(tmp_path):
    path = tmp_path / "f.aedat"
    path.write_bytes(HEADER)
    events = read_aedat2(path)
    assert events.dtype == EVENT_DTYPE and len(events) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"#!AER-DAT3.1\r\n", "header says AEDAT 3.1, expected 2.0"),
        (b"hello world\r\n", "bad magic at byte offset 0"),
        (b"", "bad magic at byte offset 0"),
        (b"#!AER-DAT2.0\r\n# unfinished", "truncated header at byte offset 14"),
        (HEADER + b"\x00" * 12, "truncated record at byte offset 66: 4 of 8 bytes"),
        (HEADER + _records([0, 0], [100, 50]), "timestamp goes backwards at byte offset 66"),
    ],
)
def test_bad_input_names_file_offset_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.aedat"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=message) as info:
        read_aedat2(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, EventVisionError)


def test_truncated_file_can_keep_complete_events(tmp_path):
    path = tmp_path / "cut.aedat"
    events = random_events(10, seed=2)
    write_aedat2(path, events)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.warns(UserWarning, match="keeping the complete records"):
        kept = read_aedat2(path, allow_truncated=True)
    assert np.array_equal(kept, events[:9])


def test_large_file_reads_in_chunks(tmp_path, monkeypatch):
    import eventvision.io.aedat2 as aedat2

    monkeypatch.setattr(aedat2, "_CHUNK_RECORDS", 1000)
    events = random_events(4321, seed=3)
    path = tmp_path / "big.aedat"
    write_aedat2(path, events)
    assert np.array_equal(read_aedat2(path), events)
