"""bin_events: the semantics of docs/preprocess.md, golden values, and spikingjelly's frames."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import random_events
from hypothesis import given, settings
from hypothesis import strategies as st

from eventvision.events import Sensor, make_events
from eventvision.frames import bin_events

sj_utils = pytest.importorskip("spikingjelly.datasets.utils")


def _as_dict(events):
    return {k: events[k].astype(np.int64) for k in ("t", "x", "y", "p")}


@pytest.mark.parametrize("n_bins", [1, 10, 16])
@pytest.mark.parametrize("split_by", ["number", "time"])
def test_equals_spikingjelly_fixed_frames_number(split_by, n_bins):
    events = random_events(30_011, seed=n_bins)
    ours = bin_events(events, n_bins, split_by)
    theirs = sj_utils.integrate_events_by_fixed_frames_number(
        _as_dict(events), split_by, n_bins, 128, 128
    )
    assert np.array_equal(ours, theirs)


def test_equals_spikingjelly_fixed_duration():
    events = random_events(10_000, seed=7)
    events["t"][-1] = events["t"][0] + 16 * 100_000  # t_last - t_0 divisible by T
    events["t"] = np.minimum.accumulate(events["t"][::-1])[::-1]
    ours = bin_events(events, 16, "time")
    theirs = sj_utils.integrate_events_by_fixed_duration(_as_dict(events), 100_000, 128, 128)
    assert theirs.shape == ours.shape
    assert np.array_equal(ours, theirs)


def test_golden_number_remainder_joins_last_frame():
    # 7 events in 3 bins: d = 2, bins hold events [0, 2), [2, 4), [4, 7).
    events = make_events(np.arange(7), [0, 1, 2, 3, 4, 5, 6], [0] * 7, [1] * 7)
    frames = bin_events(events, 3, sensor=Sensor(8, 1))
    assert frames[:, 1, 0].tolist() == [
        [1, 1, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 1, 1, 0],
    ]


def test_golden_fewer_events_than_bins_land_in_last_frame():
    frames = bin_events(make_events([0, 1], [1, 2], [0, 0], [0, 1]), 4, sensor=Sensor(4, 1))
    assert frames[:3].sum() == 0
    assert frames[3, 0, 0].tolist() == [0, 1, 0, 0] and frames[3, 1, 0].tolist() == [0, 0, 1, 0]


def test_golden_time_empty_window_gives_empty_frame():
    # t_0 = 0, t_last = 40, T = 4: dt = 10; no event in [10, 30).
    events = make_events([0, 5, 30, 39, 40], [0, 1, 2, 3, 3], [0] * 5, [1] * 5)
    frames = bin_events(events, 4, "time", sensor=Sensor(4, 1))
    assert frames[:, 1, 0].tolist() == [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 2]]
    with pytest.raises(IndexError):
        sj_utils.integrate_events_by_fixed_frames_number(_as_dict(events), "time", 4, 1, 4)


def test_golden_axes_and_channels():
    frames = bin_events(make_events([0], [3], [1], [0]), 1, sensor=Sensor(5, 2))
    assert frames.shape == (1, 2, 2, 5)
    assert frames[0, 0, 1, 3] == 1 and frames.sum() == 1


def test_hot_pixel_counts_past_int16_and_uint16():
    n = 70_000
    events = make_events(np.arange(n), np.full(n, 5), np.full(n, 6), np.zeros(n, int))
    frames = bin_events(events, 1)
    assert frames.dtype == np.uint32 and frames[0, 0, 6, 5] == n


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_empty_stream_gives_zeros_of_same_shape_and_dtype(split_by):
    full = bin_events(random_events(100), 16, split_by)
    empty = bin_events(random_events(0), 16, split_by)
    assert empty.shape == full.shape and empty.dtype == full.dtype and not empty.any()


def test_input_is_not_modified():
    events = random_events(1000, seed=9)
    before = events.copy()
    bin_events(events, 8, "time")
    assert np.array_equal(events, before)


def test_event_outside_sensor_is_named():
    events = random_events(100, seed=3)
    events["x"][42] = 130
    with pytest.raises(ValueError, match=r"event 42 \(x=130"):
        bin_events(events, 4)


def test_unsorted_time_split_raises():
    events = make_events([5, 3], [0, 0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="not time-sorted"):
        bin_events(events, 2, "time")


@pytest.mark.parametrize("bad", [{"n_bins": 0}, {"split_by": "duration"}])
def test_bad_arguments(bad):
    args = {"n_bins": 4, "split_by": "number", **bad}
    with pytest.raises(ValueError):
        bin_events(random_events(10), args["n_bins"], args["split_by"])


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 300),
    n_bins=st.integers(1, 20),
    span=st.integers(0, 1000),
    split_by=st.sampled_from(["number", "time"]),
    seed=st.integers(0, 2**16),
)
def test_every_event_is_counted_once(n, n_bins, span, split_by, seed):
    rng = np.random.default_rng(seed)
    events = make_events(
        np.sort(rng.integers(0, span + 1, n)),
        rng.integers(0, 8, n),
        rng.integers(0, 4, n),
        rng.integers(0, 2, n),
    )
    frames = bin_events(events, n_bins, split_by, sensor=Sensor(8, 4))
    assert frames.sum() == n
    assert np.array_equal(frames.sum(axis=0), bin_events(events, 1, sensor=Sensor(8, 4))[0])


def test_frames_and_cache_import_without_torch():
    code = "import eventvision.frames, eventvision.cache, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_out_accumulates_into_a_given_array():
    events = random_events(300, seed=8)
    out = np.ones((4, 2, 128, 128), np.int64)
    assert bin_events(events, 4, out=out) is out
    assert out.sum() == 300 + out.size
    with pytest.raises(ValueError, match="out must be an integer array of shape"):
        bin_events(events, 4, out=np.zeros((4, 2, 64, 64), np.uint32))
