"""Arbitrary bytes give events or the project's FormatError: no other error, no hang."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
from helpers import random_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventvision.errors import FormatError
from eventvision.events import EVENT_DTYPE
from eventvision.io import read_aedat2, read_aedat31, write_aedat2, write_aedat31

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADERS = {
    read_aedat2: b"#!AER-DAT2.0\r\n# x\r\n",
    read_aedat31: b"#!AER-DAT3.1\r\n#!END-HEADER\r\n",
}


def _valid_file(reader) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.aedat"
        events = random_events(64, seed=11)
        if reader is read_aedat2:
            write_aedat2(path, events)
        else:
            write_aedat31(path, events, packet_events=16)
        return path.read_bytes()


VALID = {reader: _valid_file(reader) for reader in HEADERS}


def _check(reader, content: bytes, allow_truncated: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.aedat"
        path.write_bytes(content)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                events = reader(path, allow_truncated=allow_truncated)
        except FormatError as e:
            assert str(path) in str(e)
            return
        assert events.dtype == EVENT_DTYPE
        assert np.all(np.diff(events["t"]) >= 0)


readers = st.sampled_from(list(HEADERS))


@FUZZ
@given(reader=readers, content=st.binary(max_size=512), allow=st.booleans())
def test_arbitrary_bytes(reader, content, allow):
    _check(reader, content, allow)


@FUZZ
@given(reader=readers, body=st.binary(max_size=512), allow=st.booleans())
def test_arbitrary_body_after_a_valid_header(reader, body, allow):
    _check(reader, HEADERS[reader] + body, allow)


@FUZZ
@given(reader=readers, data=st.data(), allow=st.booleans())
def test_mutated_valid_file(reader, data, allow):
    content = bytearray(VALID[reader])
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(content) - 1))
        content[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(content)))
    _check(reader, bytes(content[:cut]), allow)
