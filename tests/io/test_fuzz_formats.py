"""AEDAT 4 and ATIS .bin: arbitrary or mutated bytes give events or FormatError, nothing else."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from helpers import random_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventvision.errors import FormatError
from eventvision.events import EVENT_DTYPE, Sensor
from eventvision.io import read_aedat4, read_atis_bin, write_aedat4, write_atis_bin

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid(reader, compression: str = "none") -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v"
        events = random_events(48, seed=12, width=240, height=180)
        if reader is read_aedat4:
            write_aedat4(path, events, Sensor(240, 180), compression=compression, packet_events=16)
        else:
            write_atis_bin(path, events, timestamp_limit=1 << 14)
        return path.read_bytes()


VALID = [
    (read_aedat4, _valid(read_aedat4)),
    (read_aedat4, _valid(read_aedat4, "lz4")),
    (read_aedat4, _valid(read_aedat4, "zstd")),
    (read_atis_bin, _valid(read_atis_bin)),
]


def _check(reader, content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.bin"
        path.write_bytes(content)
        try:
            events = reader(path)
        except FormatError as e:
            assert str(path) in str(e)
            return
        assert events.dtype == EVENT_DTYPE
        assert np.all(np.diff(events["t"]) >= 0)


@FUZZ
@given(case=st.sampled_from(VALID), content=st.binary(max_size=512))
def test_arbitrary_bytes(case, content):
    _check(case[0], content)


@FUZZ
@given(case=st.sampled_from(VALID), data=st.data())
def test_mutated_valid_file(case, data):
    reader, valid = case
    content = bytearray(valid)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(content) - 1))
        content[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(content)))
    _check(reader, bytes(content[:cut]))
