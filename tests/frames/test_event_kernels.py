"""The event kernels (pack, decode, affine map, select) equal their numpy twins bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events
from twins.frames import (
    affine_events_reference,
    decode_events_reference,
    drop_box_reference,
    pack_events_reference,
    select_events_reference,
    translate_events_reference,
)

from eventvision.events import EVENT_DTYPE
from eventvision.frames.kernels import (
    _affine_events_kernel,
    _decode_events_kernel,
    _drop_box_kernel,
    _pack_events_kernel,
    _select_events_kernel,
    _translate_events_kernel,
)


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


@pytest.mark.parametrize("n", [0, 1, 5000])
def test_decode_kernel_equals_reference(n):
    events = random_events(n, seed=4, t0=2**40)  # a first t far beyond int32
    rng = np.random.default_rng(5)
    steps = np.diff(events["t"], prepend=events["t"][:1]).astype(np.int32)
    steps[1::7] = -rng.integers(0, 2**31 - 1, len(steps[1::7]))  # unsorted: negative steps
    x, y, p = events["x"].copy(), events["y"].copy(), events["p"].copy()
    fast = np.zeros(n, EVENT_DTYPE)
    slow = np.zeros(n, EVENT_DTYPE)
    _decode_events_kernel(np.int64(2**40), steps, x, y, p, fast)
    decode_events_reference(2**40, steps, x, y, p, slow)
    assert fast.tobytes() == slow.tobytes()
    if n:
        assert fast["t"][-1] == 2**40 + int(steps.astype(np.int64).sum())  # no int32 wrap


@pytest.mark.parametrize(
    "coeffs, wrap",
    [
        ((1.0, 0.0, 0.0, 1.0, 0.0, 0.0), False),
        ((-1.0, 0.0, 0.0, 1.0, 0.0, 0.0), False),
        ((1.0, 0.0, 0.0, 1.0, 17.0, -40.0), True),
        ((0.8, 0.6, -0.6, 0.8, 0.0, 0.0), False),
        ((1.0, 0.577, 0.0, 1.0, 0.0, 0.0), False),
        ((1.0, 0.0, 0.0, 1.0, 0.5, 0.5), False),  # every position a tie: round half to even
    ],
)
@pytest.mark.parametrize("n", [0, 1, 5000])
def test_affine_kernel_equals_reference(coeffs, wrap, n):
    events = random_events(n, seed=3, width=40, height=30)
    fast = np.zeros(n, EVENT_DTYPE)
    slow = np.zeros(n, EVENT_DTYPE)
    c = np.asarray(coeffs)
    n_fast = _affine_events_kernel(events, c, wrap, 40, 30, fast)
    n_slow = affine_events_reference(events, c, wrap, 40, 30, slow)
    assert n_fast == n_slow
    assert fast[:n_fast].tobytes() == slow[:n_slow].tobytes()


@pytest.mark.parametrize("n", [0, 1, 5000])
@pytest.mark.parametrize("fraction", [0.0, 0.3, 1.0])
def test_select_kernel_equals_reference(n, fraction):
    events = random_events(n, seed=4)
    keep = np.random.default_rng(n).random(n) < fraction
    fast = np.zeros(n, EVENT_DTYPE)
    slow = np.zeros(n, EVENT_DTYPE)
    n_fast = _select_events_kernel(events, keep, fast)
    n_slow = select_events_reference(events, keep, slow)
    assert n_fast == n_slow == int(keep.sum())
    assert fast[:n_fast].tobytes() == slow[:n_slow].tobytes()


@pytest.mark.parametrize("flip_x", [False, True])
@pytest.mark.parametrize("dx, dy", [(0, 0), (7, -13), (-45, 31), (95, -200)])
@pytest.mark.parametrize("wrap", [False, True])
def test_translate_kernel_equals_reference_and_the_float_map(flip_x, dx, dy, wrap):
    events = random_events(5000, seed=6, width=40, height=30)
    fast, slow, general = (np.zeros(5000, EVENT_DTYPE) for _ in range(3))
    n_fast = _translate_events_kernel(events, flip_x, dx, dy, wrap, 40, 30, fast)
    n_slow = translate_events_reference(events, flip_x, dx, dy, wrap, 40, 30, slow)
    coeffs = np.array([-1.0 if flip_x else 1.0, 0.0, 0.0, 1.0, dx, dy])
    n_general = _affine_events_kernel(events, coeffs, wrap, 40, 30, general)
    assert n_fast == n_slow == n_general
    assert fast[:n_fast].tobytes() == slow[:n_slow].tobytes() == general[:n_general].tobytes()


@pytest.mark.parametrize("box", [(0, 0, 0, 0), (10, 5, 30, 25), (0, 0, 40, 30), (35, 25, 99, 99)])
@pytest.mark.parametrize("n", [0, 1, 5000])
def test_drop_box_kernel_equals_reference(box, n):
    events = random_events(n, seed=7, width=40, height=30)
    fast = np.zeros(n, EVENT_DTYPE)
    slow = np.zeros(n, EVENT_DTYPE)
    n_fast = _drop_box_kernel(events, *box, fast)
    n_slow = drop_box_reference(events, *box, slow)
    assert n_fast == n_slow
    assert fast[:n_fast].tobytes() == slow[:n_slow].tobytes()
