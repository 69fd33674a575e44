"""read_events / iter_events: one entry for every format, found from the file itself."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from helpers import random_events

from eventvision.errors import ConfigError, FormatError
from eventvision.events import DVS128, Sensor
from eventvision.io import (
    FORMATS,
    detect_format,
    iter_events,
    read_events,
    write_aedat2,
    write_aedat4,
    write_aedat31,
    write_atis_bin,
)

SENSOR = Sensor(40, 30)


def _h5(path, ev):
    with h5py.File(path, "w") as f:
        for k in "txyp":
            f[k] = ev[k]


# name -> (suffix, writer, the sensor the file states)
WRITERS = {
    "aedat2": (".aedat", lambda p, ev: write_aedat2(p, ev), DVS128),
    "aedat31": (".aedat", lambda p, ev: write_aedat31(p, ev, packet_events=50), DVS128),
    "aedat4": (".aedat4", lambda p, ev: write_aedat4(p, ev, SENSOR, packet_events=50), SENSOR),
    "atis": (".bin", lambda p, ev: write_atis_bin(p, ev), None),
    "npy": (".npy", lambda p, ev: np.save(p, ev), None),
    "npz": (".npz", lambda p, ev: np.savez(p, **{k: ev[k] for k in "txyp"}), None),
    "h5": (".h5", _h5, None),
}


def _events(fmt: str) -> np.ndarray:
    sensor = DVS128 if fmt.startswith("aedat") and fmt != "aedat4" else SENSOR
    ev = random_events(300, 1, width=sensor.width, height=sensor.height)
    if fmt == "atis":
        ev["t"] //= 8  # within the ATIS timestamp range the writer takes without overflows
    return ev


def test_every_format_is_covered():
    assert set(WRITERS) == set(FORMATS)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_read_and_stream_every_format_by_its_content(tmp_path, fmt):
    suffix, write, sensor = WRITERS[fmt]
    ev = _events(fmt)
    path = tmp_path / f"rec{suffix}"
    write(path, ev)
    assert detect_format(path) == fmt
    events, stated = read_events(path)
    assert np.array_equal(events, ev)
    assert stated == sensor
    opts = {"aedat31": {"block_bytes": 512}, "aedat4": {}}.get(fmt, {"chunk_events": 64})
    stream = iter_events(path, **opts)
    assert stream.format == fmt and stream.sensor == sensor
    chunks = list(stream)
    assert np.array_equal(np.concatenate(chunks), ev)
    assert len(chunks) > 1  # packet by packet, block by block, or in chunks: never whole


def test_content_beats_a_wrong_suffix(tmp_path):
    ev = _events("h5")
    path = tmp_path / "actually_h5.npy"
    _h5(path, ev)
    assert detect_format(path) == "h5"
    assert np.array_equal(read_events(path)[0], ev)


def test_unknown_format_named(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(FormatError, match=r"notes\.txt: unknown event file format"):
        read_events(path)


def test_garbage_with_a_known_suffix_reaches_its_reader(tmp_path):
    path = tmp_path / "x.npy"
    path.write_bytes(b"garbage")
    with pytest.raises(FormatError, match=r"x\.npy: not a readable npy file"):
        read_events(path)


def test_an_option_the_reader_lacks_is_a_config_error(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, _events("npy"))
    with pytest.raises(ConfigError, match="npy reader takes no such option"):
        read_events(path, threads=2)


def test_an_aedat4_header_is_read_once_for_the_sensor_and_the_events(tmp_path, monkeypatch):
    from eventvision.io import aedat4

    path, ev = tmp_path / "rec.aedat4", _events("aedat4")
    write_aedat4(path, ev, SENSOR, packet_events=50)
    parses = []
    read_header = aedat4._read_header
    monkeypatch.setattr(aedat4, "_read_header", lambda f, p: parses.append(p) or read_header(f, p))
    events, stated = read_events(path)
    assert np.array_equal(events, ev) and stated == SENSOR and len(parses) == 1
    stream = iter_events(path)
    assert np.array_equal(np.concatenate(list(stream)), ev) and stream.sensor == SENSOR
    assert len(parses) == 2  # one more for the stream: its sensor and its packets


def test_an_aedat4_file_changed_after_its_header_was_read_is_refused(tmp_path):
    path = tmp_path / "rec.aedat4"
    write_aedat4(path, _events("aedat4"), SENSOR, packet_events=50)
    stream = iter_events(path)  # the header (and the sensor it states) read now
    other = Sensor(64, 48)
    write_aedat4(path, random_events(200, 2, width=64, height=48), other, packet_events=50)
    with pytest.raises(FormatError, match=r"rec\.aedat4: the file changed .* since its IOHeader"):
        list(stream)
    assert iter_events(path).sensor == other  # read again, the new header holds


def test_aedat4_info_of_another_file_is_refused(tmp_path):
    from eventvision.io import read_aedat4, read_aedat4_info

    a, b = tmp_path / "a.aedat4", tmp_path / "b.aedat4"
    for seed, path in enumerate((a, b)):
        write_aedat4(path, random_events(100, seed, width=40, height=30), SENSOR)
    assert np.array_equal(read_aedat4(a, info=read_aedat4_info(a)), read_aedat4(a))
    with pytest.raises(FormatError, match=r"a\.aedat4: the file changed \(or is another\)"):
        read_aedat4(a, info=read_aedat4_info(b))
