"""AEDAT 4: our reader against dv-processing's on the same files, and our writer read back by it."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from helpers import random_events

from eventvision.errors import FormatError
from eventvision.events import EVENT_DTYPE, Sensor
from eventvision.io import iter_aedat4, read_aedat4, read_aedat4_info, write_aedat4
from eventvision.io.aedat4 import AEDAT4_MAGIC

dv = pytest.importorskip("dv_processing")

SENSOR = Sensor(240, 180)
COMPRESSIONS = {"none": "NONE", "lz4": "LZ4", "zstd": "ZSTD"}


def _dv_write(path, batches, compression: str, triggers: bool = False) -> None:
    """Write each batch as its own DV event packet, with trigger packets between if asked."""
    config = dv.io.MonoCameraWriter.Config("DVXplorer_test")
    config.addEventStream((SENSOR.width, SENSOR.height))
    if triggers:
        config.addTriggerStream()
    config.compression = getattr(dv.CompressionType, compression)
    writer = dv.io.MonoCameraWriter(str(path), config)
    for batch in batches:
        store = dv.EventStore()
        for t, x, y, p in batch[["t", "x", "y", "p"]].tolist():
            store.push_back(t, x, y, bool(p))
        writer.writeEvents(store)
        if triggers:
            writer.writeTrigger(dv.Trigger(int(batch["t"][-1]), dv.TriggerType.APS_FRAME_START))
    del writer  # closes the file


def _dv_read(path) -> np.ndarray:
    recording = dv.io.MonoCameraRecording(str(path))
    parts = []
    while (batch := recording.getNextEventBatch()) is not None:
        parts.append(batch.numpy())
    if not parts:
        return np.empty(0, EVENT_DTYPE)
    records = np.concatenate(parts)
    out = np.empty(len(records), EVENT_DTYPE)
    for ours, theirs in zip("txyp", ("timestamp", "x", "y", "polarity"), strict=True):
        out[ours] = records[theirs]
    return out


def _batches(seed: int, sizes=(300, 1, 700)) -> list[np.ndarray]:
    events = random_events(sum(sizes), seed, width=SENSOR.width, height=SENSOR.height, t0=10**12)
    cuts = np.cumsum(sizes)[:-1]
    return np.split(events, cuts)


@pytest.mark.parametrize("compression", ["NONE", "LZ4", "ZSTD", "LZ4_HIGH", "ZSTD_HIGH"])
def test_equal_to_dv_processing_on_dv_files(tmp_path, compression):
    path = tmp_path / "dv.aedat4"
    _dv_write(path, _batches(1), compression, triggers=True)
    ours = read_aedat4(path)
    assert len(ours) == 1001
    assert np.array_equal(ours, _dv_read(path))
    assert read_aedat4_info(path).event_streams == {0: SENSOR}


@pytest.mark.parametrize("compression", sorted(COMPRESSIONS))
def test_our_writer_read_by_dv_processing(tmp_path, compression):
    path = tmp_path / "ours.aedat4"
    events = np.concatenate(_batches(2))
    write_aedat4(path, events, SENSOR, compression=compression, packet_events=256)
    assert read_aedat4_info(path).compression == compression
    assert np.array_equal(_dv_read(path), events)
    assert np.array_equal(read_aedat4(path), events)
    assert dv.io.MonoCameraRecording(str(path)).getEventResolution() == SENSOR[:2]


def test_iter_yields_packet_by_packet(tmp_path):
    path = tmp_path / "ours.aedat4"
    events = random_events(1000, 3, width=240, height=180)
    write_aedat4(path, events, SENSOR, compression="lz4", packet_events=300)
    parts = list(iter_aedat4(path))
    assert [len(p) for p in parts] == [300, 300, 300, 100]
    assert np.array_equal(np.concatenate(parts), events)


def test_empty_stream(tmp_path):
    path = tmp_path / "empty.aedat4"
    write_aedat4(path, np.empty(0, EVENT_DTYPE), SENSOR)
    out = read_aedat4(path)
    assert out.dtype == EVENT_DTYPE and len(out) == 0


def _ours(tmp_path, compression="none", n=40) -> tuple:
    path = tmp_path / "x.aedat4"
    write_aedat4(path, random_events(n, 4, width=240, height=180), SENSOR, compression=compression)
    return path, bytearray(path.read_bytes()), read_aedat4_info(path).body_offset


def test_aedat31_file_named_as_such(tmp_path):
    path = tmp_path / "old.aedat4"
    path.write_bytes(b"#!AER-DAT3.1\r\n#!END-HEADER\r\n")
    with pytest.raises(FormatError, match=r"old.aedat4: header says AEDAT 3.1, expected 4.0"):
        read_aedat4(path)


def test_truncated_packet_names_its_offset(tmp_path):
    path, content, body = _ours(tmp_path)
    path.write_bytes(bytes(content[:-5]))
    with pytest.raises(FormatError, match=rf"bad packet header at byte offset {body}: stream 0"):
        read_aedat4(path)


def test_corrupt_lz4_packet_names_its_offset(tmp_path):
    path, content, body = _ours(tmp_path, "lz4")
    content[body + 8 : body + 12] = b"\0\0\0\0"  # the LZ4 frame magic
    path.write_bytes(bytes(content))
    with pytest.raises(FormatError, match=rf"packet at byte offset {body} does not decompress"):
        read_aedat4(path)


def test_time_going_backwards_is_refused(tmp_path):
    path, content, body = _ours(tmp_path)
    first_t = body + 8 + 32  # packet header, then 32 bytes of FlatBuffer before the events
    content[first_t : first_t + 8] = struct.pack("<q", 10**15)
    path.write_bytes(bytes(content))
    with pytest.raises(FormatError, match=rf"backwards in the packet at byte offset {body}"):
        read_aedat4(path)


def test_event_outside_declared_sensor_is_refused(tmp_path):
    path = tmp_path / "x.aedat4"
    write_aedat4(path, random_events(40, 5, width=240, height=180), Sensor(100, 100))
    with pytest.raises(FormatError, match=r"100x100 \(HxW\) sensor the header declares"):
        read_aedat4(path)


def test_no_event_stream_is_refused(tmp_path):
    path = tmp_path / "x.aedat4"
    write_aedat4(path, random_events(4, 6), SENSOR)
    content = path.read_bytes().replace(b">EVTS<", b">IMUS<")
    path.write_bytes(content)
    with pytest.raises(FormatError, match=r"declares no event stream"):
        read_aedat4(path)


def test_magic_checked(tmp_path):
    path = tmp_path / "x.aedat4"
    path.write_bytes(AEDAT4_MAGIC[:-2] + b"\n")
    with pytest.raises(FormatError, match="bad magic at byte offset 0"):
        read_aedat4(path)


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_kernel_equals_numpy_twin(tmp_path, n):
    from twins.readers import decode_aedat4_records

    path = tmp_path / "k.aedat4"
    events = random_events(n, 8, width=240, height=180)
    write_aedat4(path, events, SENSOR, packet_events=1000)
    content, offset = path.read_bytes(), read_aedat4_info(path).body_offset
    parts = []
    while offset < len(content):
        size = struct.unpack_from("<i", content, offset + 4)[0]
        parts.append(decode_aedat4_records(content[offset + 8 + 32 : offset + 8 + size]))
        offset += 8 + size
    twin = np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)
    assert np.array_equal(read_aedat4(path), twin)
    assert np.array_equal(twin, events)


def test_several_event_streams_need_a_stream_id(tmp_path):
    from eventvision.io.aedat4 import PACKET_HEADER, _event_packet, _info_xml, _io_header

    xml = _info_xml(SENSOR, "none", "left")
    second = xml[xml.index('  <node name="0"') : xml.index(" </node>\n</dv>")].replace('"0"', '"1"')
    xml = xml.replace(" </node>\n</dv>", second.replace("/0/", "/1/") + " </node>\n</dv>")
    left, right = (random_events(50, s, width=240, height=180) for s in (9, 10))
    path = tmp_path / "stereo.aedat4"
    with open(path, "wb") as f:
        f.write(AEDAT4_MAGIC + _io_header(0, xml))
        for stream, events in ((0, left[:25]), (1, right), (0, left[25:])):
            packet = _event_packet(events)
            f.write(PACKET_HEADER.pack(stream, len(packet)) + packet)
    assert sorted(read_aedat4_info(path).event_streams) == [0, 1]
    with pytest.raises(FormatError, match=r"event streams \[0, 1\]; pass stream_id"):
        read_aedat4(path)
    assert np.array_equal(read_aedat4(path, stream_id=0), left)
    assert np.array_equal(read_aedat4(path, stream_id=1), right)
    with pytest.raises(FormatError, match=r"no event stream 2"):
        read_aedat4(path, stream_id=2)
