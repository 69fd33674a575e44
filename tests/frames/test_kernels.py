"""The numba kernels equal their plain-numpy twins bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events
from twins.frames import (
    bin_events_reference,
    bin_resize_reference,
    resize_reference,
)

from eventvision.events import make_events
from eventvision.frames import bin_bounds, resize_weights
from eventvision.frames.binning import COUNT_DTYPE
from eventvision.frames.kernels import _bin_events_kernel, _bin_resize_kernel, _resize_kernel

SHAPE = (16, 2, 128, 128)


def _both(events, n_bins=16, split_by="number", shape=SHAPE):
    bounds = bin_bounds(events["t"], n_bins, split_by)
    fast = np.zeros((n_bins, *shape[1:]), COUNT_DTYPE)
    slow = np.zeros_like(fast)
    bad_fast = _bin_events_kernel(events, bounds, fast)
    bad_slow = bin_events_reference(events, bounds, slow)
    return fast, slow, bad_fast, bad_slow


CASES = {
    "random": random_events(20_000, seed=1),
    "random_ties": make_events(
        np.repeat(np.arange(500), 7),
        *(np.random.default_rng(2).integers(0, 128, (2, 3500))),
        np.arange(3500) % 2,
    ),
    "empty": random_events(0),
    "one_event": make_events([5], [3], [4], [1]),
    "at_t_last": make_events([0, 10, 20, 160], [0, 1, 2, 127], [0, 1, 2, 127], [0, 1, 0, 1]),
    "fewer_than_bins": random_events(5, seed=3),
    "hot_pixel": make_events(
        np.arange(70_000), np.full(70_000, 7), np.full(70_000, 9), np.ones(70_000, int)
    ),
}


@pytest.mark.parametrize("split_by", ["number", "time"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bin_kernel_equals_reference(case, split_by):
    fast, slow, bad_fast, bad_slow = _both(CASES[case], split_by=split_by)
    assert bad_fast == bad_slow == -1
    assert np.array_equal(fast, slow)
    assert fast.sum() == len(CASES[case])


def test_bin_kernel_hot_pixel_does_not_wrap():
    fast, slow, _, _ = _both(CASES["hot_pixel"], n_bins=1)
    assert fast[0, 1, 9, 7] == slow[0, 1, 9, 7] == 70_000


@pytest.mark.parametrize("field,value", [("x", 128), ("y", 200), ("p", 2)])
def test_bin_kernel_stops_at_the_first_event_outside(field, value):
    events = random_events(100, seed=4)
    events[field][60] = value
    fast, slow, bad_fast, bad_slow = _both(events, n_bins=4)
    assert bad_fast == bad_slow == 60
    assert np.array_equal(fast, slow)


@pytest.mark.parametrize("size", [(64, 64), (48, 100), (128, 128), (200, 37), (1, 1)])
def test_resize_kernel_equals_reference(size):
    rng = np.random.default_rng(5)
    src = rng.integers(0, 50, (6, 128, 128)).astype(np.float32)
    (ys, yw), (xs, xw) = resize_weights(128, size[0]), resize_weights(128, size[1])
    fast = np.empty((6, *size), np.float32)
    slow = np.empty_like(fast)
    _resize_kernel(src, ys, yw, xs, xw, np.empty((size[0], 128)), fast)
    resize_reference(src, ys, yw, xs, xw, np.empty((size[0], 128)), slow)
    assert np.array_equal(fast, slow)


def test_bin_kernel_writes_through_a_transposed_view():
    events = random_events(5000, seed=6)
    bounds = bin_bounds(events["t"], 4, "number")
    fast = np.zeros((4, 2, 128, 128), COUNT_DTYPE)
    slow = np.zeros_like(fast)
    _bin_events_kernel(events, bounds, fast[:, ::-1].transpose(0, 1, 3, 2))
    bin_events_reference(events, bounds, slow[:, ::-1].transpose(0, 1, 3, 2))
    assert np.array_equal(fast, slow) and fast.sum() == 5000


def _bin_resize_both(events, split_by, size, sensor=(128, 128)):
    width, height = sensor
    bounds = bin_bounds(events["t"], 8, split_by)
    ys, yw = resize_weights(height, size[0])
    xs, xw = resize_weights(width, size[1])
    outs = []
    for kernel in (_bin_resize_kernel, bin_resize_reference):
        counts = np.full((1, 2, height, width), 7, COUNT_DTYPE)  # stale: zeroed per bin
        out = np.full((8, 2, *size), np.nan, np.float32)
        bad = kernel(events, bounds, counts, ys, yw, xs, xw, np.empty((size[0], width)), out)
        outs.append((bad, out))
    return outs


@pytest.mark.parametrize("split_by", ["number", "time"])
@pytest.mark.parametrize("case", ["random", "random_ties", "empty", "hot_pixel"])
@pytest.mark.parametrize("size", [(64, 64), (48, 80), (37, 128)])
def test_bin_resize_kernel_equals_its_twin_and_the_two_kernels_in_turn(case, split_by, size):
    events = CASES[case]
    (bad_fast, fast), (bad_slow, slow) = _bin_resize_both(events, split_by, size)
    assert bad_fast == bad_slow == -1
    np.testing.assert_array_equal(fast, slow)
    counts, _, _, _ = _both(events, 8, split_by)
    src = counts.reshape(-1, 128, 128)
    ys, yw = resize_weights(128, size[0])
    xs, xw = resize_weights(128, size[1])
    two = np.empty((16, *size), np.float32)
    _resize_kernel(src, ys, yw, xs, xw, np.empty((size[0], 128)), two)
    assert np.array_equal(fast, two.reshape(fast.shape))  # bit for bit


def test_bin_resize_kernel_stops_at_the_first_event_outside():
    events = random_events(3000, seed=5)
    events["x"][1234] = 128
    events["y"][2000] = 200
    (bad_fast, _), (bad_slow, _) = _bin_resize_both(events, "number", (64, 64))
    assert bad_fast == bad_slow == 1234
