"""ATIS .bin: our reader against tonic's read_mnist_file on the same bytes, overflows included."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events

from eventvision.errors import FormatError
from eventvision.events import make_events
from eventvision.io import read_atis_bin, write_atis_bin

tonic_io = pytest.importorskip("tonic.io")
TONIC_DTYPE = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])  # tonic's NMNIST dtype


def _tonic(path) -> np.ndarray:
    theirs = tonic_io.read_mnist_file(str(path), dtype=TONIC_DTYPE)
    return make_events(theirs["t"], theirs["x"], theirs["y"], theirs["p"])


@pytest.mark.parametrize("limit", [1 << 23, 30_000, 8192])
def test_equal_to_tonic_with_and_without_overflows(tmp_path, limit):
    path = tmp_path / "00002.bin"
    events = random_events(3000, 7, width=240, height=180)
    write_atis_bin(path, events, timestamp_limit=limit)
    records = path.stat().st_size // 5
    assert (records > len(events)) == (limit < 2_000_000)  # overflow records were written
    ours = read_atis_bin(path)
    assert np.array_equal(ours, _tonic(path))
    assert np.array_equal(ours, events)


def test_golden_records(tmp_path):
    # x=3, y=4, ON, t=0x012345; an overflow (+8192 us); x=33, y=0, OFF, t=0x000010
    path = tmp_path / "g.bin"
    path.write_bytes(bytes([3, 4, 0x81, 0x23, 0x45, 0, 240, 0, 0, 0, 33, 0, 0x7F, 0xFF, 0xFF]))
    events = read_atis_bin(path)
    assert events.tolist() == [(0x012345, 3, 4, 1), (0x7FFFFF + 8192, 33, 0, 0)]


def test_truncated_record_names_its_offset(tmp_path):
    path = tmp_path / "t.bin"
    path.write_bytes(bytes(12))
    with pytest.raises(FormatError, match=r"t.bin: truncated record at byte offset 10: 2 of 5"):
        read_atis_bin(path)


def test_time_going_backwards_names_its_offset(tmp_path):
    path = tmp_path / "b.bin"
    path.write_bytes(bytes([1, 1, 0, 0, 9, 1, 1, 0, 0, 8]))
    with pytest.raises(FormatError, match=r"backwards at byte offset 5: 8 us after 9 us"):
        read_atis_bin(path)


def test_empty_file(tmp_path):
    path = tmp_path / "e.bin"
    path.write_bytes(b"")
    assert len(read_atis_bin(path)) == 0


@pytest.mark.parametrize("n", [0, 1, 4000])
def test_kernel_equals_numpy_twin(tmp_path, n):
    from twins.readers import decode_atis_bin

    path = tmp_path / "k.bin"
    write_atis_bin(path, random_events(n, n, width=240, height=180), timestamp_limit=9000)
    assert np.array_equal(read_atis_bin(path), decode_atis_bin(path.read_bytes()))
