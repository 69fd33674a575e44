from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torchvision.transforms import Resize

from eventvision.data import ToFrames
from eventvision.errors import ConfigError
from eventvision.events import EVENT_DTYPE, Sensor, make_events
from eventvision.frames import bin_events

tonic = pytest.importorskip("tonic")  # the `tonic` extra (also in `test`)

TONIC_DTYPES = {
    "DVSGesture": tonic.datasets.DVSGesture.dtype,  # x, y int16, p bool, t int64
    "CIFAR10DVS": tonic.datasets.CIFAR10DVS.dtype,  # t uint64, x, y uint16, p bool
    "NMNIST": tonic.datasets.NMNIST.dtype,  # all int64
}


def _events(n: int, seed: int, width: int = 32, height: int = 24):
    rng = np.random.default_rng(seed)
    t = 1_000 + np.sort(rng.integers(0, 100_000, n))
    return make_events(
        t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n)
    )


def _as_tonic(events: np.ndarray, dtype: np.dtype) -> np.ndarray:
    out = np.empty(len(events), dtype=dtype)
    for name in ("t", "x", "y", "p"):
        out[name] = events[name]
    return out


@pytest.mark.parametrize("name", sorted(TONIC_DTYPES))
@pytest.mark.parametrize("split_by", ["number", "time"])
def test_tonic_events_bin_unchanged_inside_a_tonic_compose(name, split_by):
    sensor = Sensor(32, 24)
    events = _events(997, seed=1)
    tonic_events = _as_tonic(events, TONIC_DTYPES[name])
    before = tonic_events.copy()
    transform = tonic.transforms.Compose(
        # a filter longer than the recording keeps every event: tonic steps chain with ours
        [tonic.transforms.Denoise(filter_time=10**9), ToFrames(5, split_by, (32, 24, 2))]
    )
    frames = transform(tonic_events)
    assert frames.dtype == np.float32 and frames.shape == (5, 2, 24, 32)
    expected = bin_events(events, 5, split_by, sensor=sensor)
    np.testing.assert_array_equal(frames, expected.astype(np.float32))
    np.testing.assert_array_equal(bin_events(tonic_events, 5, split_by, sensor=sensor), expected)
    np.testing.assert_array_equal(tonic_events, before)  # the input is untouched


def test_by_number_tonic_drops_the_remainder_we_keep_it_in_the_last_frame():
    sensor = (32, 24, 2)
    events = _as_tonic(_events(103, seed=2), tonic.datasets.DVSGesture.dtype)  # 103 = 5 * 20 + 3
    theirs = tonic.transforms.ToFrame(sensor, n_event_bins=5)(events.copy()).astype(np.float32)
    ours = ToFrames(5, "number", sensor)(events)
    np.testing.assert_array_equal(ours[:-1], theirs[:-1])
    tail = ToFrames(1, "number", sensor)(events[100:])[0]  # the N mod T = 3 last events
    np.testing.assert_array_equal(ours[-1], theirs[-1] + tail)
    assert ours.sum() == 103 and theirs.sum() == 100


def test_by_time_tonic_drops_the_tail_we_keep_it_in_the_last_frame():
    sensor = (32, 24, 2)
    events = _as_tonic(_events(500, seed=3), tonic.datasets.DVSGesture.dtype)
    t = events["t"].astype(np.int64)
    end = t[0] + 7 * ((t[-1] - t[0]) // 7)  # t_0 + T*dt
    theirs = tonic.transforms.ToFrame(sensor, n_time_bins=7)(events.copy()).astype(np.float32)
    ours = ToFrames(7, "time", sensor)(events)
    np.testing.assert_array_equal(ours[:-1], theirs[:-1])
    tail = ToFrames(1, "time", sensor)(events[t >= end])[0]  # always holds the last event
    assert tail.sum() >= 1
    np.testing.assert_array_equal(ours[-1], theirs[-1] + tail)
    assert ours.sum() == 500 and theirs.sum() == 500 - tail.sum()


def test_semantics_agree_when_nothing_is_left_over():
    events = _as_tonic(_events(100, seed=4), tonic.datasets.CIFAR10DVS.dtype)
    theirs = tonic.transforms.ToFrame((32, 24, 2), n_event_bins=4)(events.copy())
    np.testing.assert_array_equal(ToFrames(4, "number", (32, 24, 2))(events), theirs)


def test_resize_is_the_papers_antialiased_bilinear():
    events = _as_tonic(_events(20_000, seed=5, width=128, height=128), tonic.datasets.NMNIST.dtype)
    frames = ToFrames(3, "number", (128, 128, 2), size=64)(events)
    assert frames.shape == (3, 2, 64, 64) and frames.dtype == np.float32
    counts = torch.from_numpy(ToFrames(3, "number", (128, 128, 2))(events)).reshape(6, 128, 128)
    expected = Resize(64, antialias=True)(counts).reshape(3, 2, 64, 64).numpy()  # [T, 2, h, w]
    np.testing.assert_allclose(frames, expected, atol=1e-5 * counts.max().item())


def test_size_int_means_a_square_as_everywhere():
    """ToFrames(size=64) and EventsToFrames(T, 64) give the same 64x64 frames on 240x180."""
    from eventvision.data import EventsToFrames

    sensor = Sensor(240, 180)
    events = _events(5_000, seed=6, width=240, height=180)
    ours = ToFrames(3, "number", sensor, size=64)(events)
    assert ours.shape == (3, 2, 64, 64)  # torchvision's Resize(64) would give 64x85
    same = EventsToFrames(3, 64, channels=2, sensor=sensor)(events)
    assert np.array_equal(ours, same)
    hw = ToFrames(3, "number", sensor, size=(48, 64))(events)
    assert np.array_equal(hw, EventsToFrames(3, "48x64", channels=2, sensor=sensor)(events))


def test_invalid_options():
    with pytest.raises(ConfigError, match="time_steps"):
        ToFrames(0)
    with pytest.raises(ConfigError, match="split_by"):
        ToFrames(4, "count")
    with pytest.raises(ConfigError, match="polarities"):
        ToFrames(4, "number", (32, 32, 1))
    assert ToFrames(4, "number", (32, 24, 2)).sensor == Sensor(32, 24, 2)


def test_tonic_transform_runs_on_our_events_without_touching_them():
    from eventvision.data import TonicTransform

    events = _events(2_000, seed=9, width=128, height=128)
    before = events.copy()
    flip = TonicTransform("RandomFlipLR", sensor_size=(128, 128, 2), p=1.0)
    out = flip(events)
    assert out.dtype == EVENT_DTYPE and np.array_equal(events, before)
    assert np.array_equal(out["x"], 127 - events["x"]) and np.array_equal(out["t"], events["t"])
    theirs = tonic.transforms.Denoise(filter_time=5_000)(
        _as_tonic(events, tonic.datasets.NMNIST.dtype)
    )
    ours = TonicTransform(tonic.transforms.Denoise(filter_time=5_000))(events)
    assert len(ours) == len(theirs) < len(events)
    assert np.array_equal(ours["t"], np.sort(theirs["t"]))
    with pytest.raises(ConfigError, match="not events"):
        TonicTransform("ToFrame", sensor_size=(128, 128, 2), n_time_bins=2)(events)


def test_missing_tonic_names_the_extra(monkeypatch):
    from eventvision.data import TonicTransform

    monkeypatch.setitem(sys.modules, "tonic", None)  # import tonic raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'eventvision\[tonic\]'"):
        TonicTransform("Denoise", filter_time=10)
