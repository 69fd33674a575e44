"""resize_frames equals torchvision's antialiased Resize; golden [1, 3, 3, 1] / 8 weights."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events

from eventvision.events import Sensor
from eventvision.frames import (
    bin_and_resize,
    bin_events,
    parse_size,
    resize_frames,
    resize_weights,
    size_hw,
)

torch = pytest.importorskip("torch")
transforms = pytest.importorskip("torchvision.transforms")


@pytest.fixture(scope="module")
def frames():
    return bin_events(random_events(100_000, seed=11), 8)


@pytest.mark.parametrize("size", [64, 32, 48, 100, 128, 200, 37, (30, 90)])
def test_equals_torchvision_resize(frames, size):
    ours = resize_frames(frames, size)
    flat = torch.from_numpy(frames.astype(np.float32)).reshape(16, 128, 128)  # [T*2, H, W]
    hw = (size, size) if isinstance(size, int) else size  # an int is a square (parse_size)
    theirs = transforms.Resize(hw, antialias=True)(flat).numpy().reshape(ours.shape)
    assert ours.dtype == np.float32
    assert np.abs(ours - theirs).max() <= 1e-5 * frames.max()


def test_same_size_is_identity(frames):
    out = resize_frames(frames, 128)
    assert out.dtype == np.float32 and np.array_equal(out, frames)


def test_golden_half_size_weights():
    starts, weights = resize_weights(128, 64)
    assert np.allclose(weights[0], [3 / 7, 3 / 7, 1 / 7, 0])
    assert np.allclose(weights[5], [1 / 8, 3 / 8, 3 / 8, 1 / 8]) and starts[5] == 9
    assert np.allclose(weights[63], [0, 1 / 7, 3 / 7, 3 / 7]) and starts[63] == 124


def test_golden_single_pixel():
    image = np.zeros((4, 4), np.float32)
    image[1, 1] = 64.0
    out = resize_frames(image, 2)
    # Row and column weights of input 1 for output 0 are both 3/7 (border renormalised).
    assert out[0, 0] == pytest.approx(64 * 9 / 49)
    assert out.sum() == pytest.approx(64 * (3 / 7 + 1 / 7) ** 2)


def test_int_size_is_a_square_everywhere():
    """One rule for ``size=int`` (issue 21): a square, never torchvision's keep-aspect."""
    assert resize_frames(np.zeros((2, 100, 50)), 25).shape == (2, 25, 25)
    assert resize_frames(np.zeros((2, 100, 50)), "20x10").shape == (2, 20, 10)
    assert (
        size_hw(25) == (25, 25) and size_hw("48x64") == (48, 64) and size_hw([48, 64]) == (48, 64)
    )
    assert parse_size((32, 32)) == 32 and parse_size(np.int64(8)) == 8


@pytest.mark.parametrize("split_by", ["number", "time"])
@pytest.mark.parametrize(
    ("sensor", "size"),
    [((128, 128, 2), 64), ((240, 180, 2), (48, 64)), ((34, 34, 2), 64), ((34, 34, 2), 34)],
)
def test_bin_and_resize_equals_binning_then_resizing(split_by, sensor, size):
    width, height, _ = sensor
    events = random_events(30_000, seed=7, width=width, height=height)
    expected = resize_frames(bin_events(events, 10, split_by, sensor=Sensor(*sensor)), size)
    got = bin_and_resize(events, 10, size, split_by, sensor=Sensor(*sensor))
    assert got.dtype == np.float32 and np.array_equal(got, expected)  # bit for bit


def test_bin_and_resize_names_an_event_outside_the_sensor():
    events = random_events(100, seed=8)
    events["p"][40] = 2
    with pytest.raises(ValueError) as binned:
        bin_events(events, 4)
    with pytest.raises(ValueError, match="event 40 .*outside the sensor") as fused:
        bin_and_resize(events, 4, 64)
    assert str(fused.value) == str(binned.value)
