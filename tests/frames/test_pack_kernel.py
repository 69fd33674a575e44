"""The event-packing kernel equals its plain-numpy twin bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events

from eventvision.events import EVENT_DTYPE
from eventvision.frames.kernels import _pack_events_kernel
from eventvision.frames.reference import pack_events_reference


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_pack_kernel_equals_reference(n):
    events = random_events(n, seed=2)
    columns = (
        events["t"].astype(np.int64),
        events["x"].astype(np.int64),
        events["y"].astype(np.int64),
        events["p"].astype(np.int64),
    )
    fast = np.zeros(n, EVENT_DTYPE)
    slow = np.zeros(n, EVENT_DTYPE)
    _pack_events_kernel(*columns, fast)
    pack_events_reference(*columns, slow)
    assert fast.tobytes() == slow.tobytes() == events.tobytes()
