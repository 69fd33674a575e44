"""The numba reader kernels against their plain-numpy twins, event for event."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REAL_DATA, random_events
from twins.readers import decode_aedat2_body, decode_aedat31_body

from eventvision.io import encode_packet, read_aedat2, read_aedat31, write_aedat2, write_aedat31
from eventvision.io.aedat31 import POLARITY_DTYPE


def _body(path, header_end: bytes) -> bytes:
    content = path.read_bytes()
    return content[content.index(header_end) + len(header_end) :]


@pytest.mark.parametrize("n", [0, 1, 7, 20_000])
def test_aedat2_kernel_equals_numpy_twin(tmp_path, n):
    events = random_events(n, seed=n, t0=2**32 - 1_000_000)  # wraps the 32-bit clock
    path = tmp_path / "a.aedat"
    write_aedat2(path, events)
    # add special events (address bit 15) that both must drop
    content = bytearray(path.read_bytes())
    for i in range(0, n, 5):
        content[-8 * (n - i) + 2] |= 0x80
    path.write_bytes(bytes(content))
    ours = read_aedat2(path)
    assert np.array_equal(ours, decode_aedat2_body(_body(path, b"eventvision\r\n")))
    assert len(ours) == n - len(range(0, n, 5))


def test_aedat2_kernel_equals_twin_on_real_recordings():
    files = sorted(REAL_DATA.glob("*/*.aedat"))
    if not files:
        pytest.skip("the shared real data is absent")
    for path in files:
        content = path.read_bytes()
        end = 0
        while content[end : end + 1] == b"#":
            end = content.index(b"\n", end) + 1
        assert np.array_equal(read_aedat2(path), decode_aedat2_body(content[end:])), path.name


@pytest.mark.parametrize("packet_events", [1, 100, 4096])
def test_aedat31_kernel_equals_numpy_twin(tmp_path, packet_events):
    events = random_events(9_000, seed=packet_events, t0=2**31 - 1_000_000)
    path = tmp_path / "g.aedat"
    write_aedat31(path, events, packet_events=packet_events)
    records = np.zeros(3, POLARITY_DTYPE)
    records["data"] = [0b10, 0b11, 0b111]  # one invalid event
    records["timestamp"] = 2**31 - 1
    extra = encode_packet(0, b"\x01" * 24, event_size=8) + encode_packet(
        1, records.tobytes(), event_size=8, ts_overflow=1, number=2
    )
    path.write_bytes(path.read_bytes() + extra)
    ours = read_aedat31(path)
    assert np.array_equal(ours, decode_aedat31_body(_body(path, b"#!END-HEADER\r\n")))
    assert len(ours) == 9_001
