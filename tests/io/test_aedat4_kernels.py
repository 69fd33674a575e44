"""AEDAT 4 packet walk and FlatBuffer kernels against their struct-based twins; block reading."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from helpers import random_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twins.readers import locate_aedat4_records, walk_aedat4_packets

from eventvision.events import EVENT_DTYPE, Sensor
from eventvision.io import aedat4, iter_aedat4, read_aedat4, read_aedat4_info, write_aedat4
from eventvision.io._kernels import _locate_aedat4_records, _walk_aedat4
from eventvision.io.aedat4 import AEDAT4_MAGIC, PACKET_HEADER, _event_packet, _info_xml, _io_header

SENSOR = Sensor(240, 180)


def _kernel_locate(payload: bytes) -> tuple[int, int] | None:
    buf = np.frombuffer(payload, np.uint8)
    positions, counts = np.empty(1, np.int64), np.empty(1, np.int64)
    j, _, _ = _locate_aedat4_records(
        buf, np.zeros(1, np.int64), np.array([len(payload)]), positions, counts
    )
    return None if j >= 0 else (int(positions[0]), int(counts[0]))


def _twin_locate(payload: bytes) -> tuple[int, int] | None:
    try:
        return locate_aedat4_records(payload)
    except (ValueError, struct.error):
        return None


VALID_PAYLOAD = _event_packet(random_events(5, 1, width=240, height=180))


@pytest.mark.parametrize("n", [0, 1, 300])
def test_locate_equals_twin_on_written_packets(n):
    payload = _event_packet(random_events(n, n, width=240, height=180))
    assert _kernel_locate(payload) == _twin_locate(payload) == (32, n)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_locate_equals_twin_on_mutated_packets(data):
    payload = bytearray(VALID_PAYLOAD)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    payload = bytes(payload[: data.draw(st.integers(0, len(payload)))])
    assert _kernel_locate(payload) == _twin_locate(payload)


def _stream_file(tmp_path, compression: str = "none"):
    """Event packets of streams 0 and 2 with odd-sized packets of stream 1 between them.

    The odd sizes leave most event records at addresses that are no multiple of 8.
    """
    xml = _info_xml(SENSOR, compression, "x")
    node = xml[xml.index('  <node name="0"') : xml.index(" </node>\n</dv>")]
    xml = xml.replace(" </node>\n</dv>", node.replace('"0"', '"2"').replace("/0/", "/2/"))
    xml += " </node>\n</dv>\n"
    first, second = random_events(700, 1, width=240, height=180), random_events(91, 2)
    compress = aedat4._compressor(compression)
    path = tmp_path / f"odd_{compression}.aedat4"
    with open(path, "wb") as f:
        f.write(AEDAT4_MAGIC + _io_header(aedat4._COMPRESSION_CODES[compression], xml))
        for i in range(7):
            for stream, events in ((0, first[100 * i : 100 * i + 100]), (2, second[13 * i :][:13])):
                blob = compress(_event_packet(events))
                f.write(PACKET_HEADER.pack(stream, len(blob)) + blob)
            f.write(PACKET_HEADER.pack(1, 2 * i + 1) + b"\xff" * (2 * i + 1))
    return path, first, second


@pytest.mark.parametrize("target", [0, 1, 2, 3])
def test_walk_equals_twin(tmp_path, target):
    path, _, _ = _stream_file(tmp_path)
    content = path.read_bytes()
    start, end = read_aedat4_info(path).body_offset, len(content)
    buf = np.frombuffer(content, np.uint8)[start:]
    offsets, sizes, stop, code, _, _ = _walk_aedat4(buf, start, start, end, target)
    assert (stop, code) == (end, 0)
    twin = walk_aedat4_packets(content, start, end, target)
    assert list(zip(offsets.tolist(), sizes.tolist(), strict=True)) == twin
    assert len(twin) == (7 if target != 3 else 0)


def test_walk_stops_where_the_block_ends(tmp_path):
    path, _, _ = _stream_file(tmp_path)
    content = path.read_bytes()
    start = read_aedat4_info(path).body_offset
    twin = walk_aedat4_packets(content, start, len(content), 0)
    block = np.frombuffer(content, np.uint8)[start : twin[2][0] + 20]  # cuts into packet 2
    offsets, _, stop, code, need, _ = _walk_aedat4(block, start, start, len(content), 0)
    assert offsets.tolist() == [twin[0][0], twin[1][0]]
    assert (stop, code, need) == (twin[2][0], 3, 8 + twin[2][1])


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_unaligned_records_and_foreign_streams(tmp_path, compression):
    path, first, second = _stream_file(tmp_path, compression)
    assert np.array_equal(read_aedat4(path, stream_id=0), first)
    assert np.array_equal(read_aedat4(path, stream_id=2), second)


@pytest.mark.parametrize("block", [1, 9, 50, 4096, 70_000])
@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_iter_in_small_blocks_equals_read(tmp_path, monkeypatch, compression, block):
    path, first, _ = _stream_file(tmp_path, compression)
    monkeypatch.setattr(aedat4, "_BLOCK_BYTES", block)
    parts = list(iter_aedat4(path, stream_id=0))
    assert [len(p) for p in parts] == [100] * 7
    assert np.array_equal(np.concatenate(parts), first)


def test_read_returns_its_own_memory(tmp_path):
    path = tmp_path / "own.aedat4"
    events = random_events(1000, 3, width=240, height=180)
    write_aedat4(path, events, SENSOR, packet_events=128)
    out = read_aedat4(path)
    assert out.flags.owndata and out.dtype == EVENT_DTYPE
    path.write_bytes(b"")  # the file mapping is gone; the events stay
    assert np.array_equal(out, events)


def test_read_without_mmap_reads_the_file(tmp_path, monkeypatch):
    path, first, _ = _stream_file(tmp_path, "zstd")

    def refuse(*args, **kwargs):
        raise OSError("no mmap on this file system")

    monkeypatch.setattr(aedat4.mmap, "mmap", refuse)
    assert np.array_equal(read_aedat4(path, stream_id=0), first)


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_output_grows_past_a_guess_for_files_compressing_under_a_quarter(tmp_path, compression):
    path = tmp_path / "flat.aedat4"
    n = 20_000
    events = np.zeros(n, EVENT_DTYPE)
    events["t"] = np.arange(n) // 64  # repetitive: compresses far below a quarter
    write_aedat4(path, events, SENSOR, compression=compression, packet_events=2048)
    body = path.stat().st_size - read_aedat4_info(path).body_offset
    assert body // 16 * 4 < n  # the first allocation is too small
    out = read_aedat4(path)
    assert out.flags.owndata and len(out) == n
    assert np.array_equal(out, events)


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
def test_equal_to_tonic_read_aedat4(tmp_path, compression):
    tonic_io = pytest.importorskip("tonic.io")
    pytest.importorskip("aedat")
    path = tmp_path / "t.aedat4"
    events = random_events(5000, 7, width=240, height=180, t0=10**12)
    write_aedat4(path, events, SENSOR, compression=compression, packet_events=700)
    theirs = tonic_io.read_aedat4(str(path))
    ours = read_aedat4(path)
    for name, their_name in (("t", "t"), ("x", "x"), ("y", "y"), ("p", "on")):
        assert np.array_equal(ours[name], theirs[their_name]), name
