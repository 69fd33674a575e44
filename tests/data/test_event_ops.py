"""The deterministic event ops against per-event Python references, tonic and frame-level ops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eventvision.data import event_ops as ops
from eventvision.data.augment import DVSAugment, DVSAugmentParams
from eventvision.events import EVENT_DTYPE, Sensor, make_events
from eventvision.frames import bin_events
from tests.helpers import random_events

SENSOR = Sensor(8, 6)
# Hand-built: corners, the centre row, ties in time, both polarities.
EVENTS = make_events(
    [0, 0, 5, 9, 9, 12, 20, 31],
    [0, 7, 3, 4, 1, 7, 2, 5],
    [0, 5, 2, 3, 5, 0, 4, 1],
    [1, 0, 1, 0, 0, 1, 1, 0],
)


def _reference(events: np.ndarray, sensor: Sensor, move) -> np.ndarray:
    """Per-event loop: ``move(t, x, y, p)`` gives the new event or None (dropped)."""
    rows = []
    for e in events:
        new = move(int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"]))
        if new is not None and 0 <= new[1] < sensor.width and 0 <= new[2] < sensor.height:
            rows.append(new)
    out = np.array(rows, dtype=np.int64).reshape(-1, 4)
    return make_events(out[:, 0], out[:, 1], out[:, 2], out[:, 3])


def _equal(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == EVENT_DTYPE
    for name in ("t", "x", "y", "p"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def _unchanged_input(fn):
    before = EVENTS.copy()
    out = fn(EVENTS)
    _equal(EVENTS, before)
    return out


def test_flip_lr_and_polarity_against_references():
    _equal(
        _unchanged_input(lambda e: ops.flip_lr(e, SENSOR)),
        _reference(EVENTS, SENSOR, lambda t, x, y, p: (t, 7 - x, y, p)),
    )
    _equal(
        _unchanged_input(ops.flip_polarity),
        _reference(EVENTS, SENSOR, lambda t, x, y, p: (t, x, y, 1 - p)),
    )


@pytest.mark.parametrize("dx, dy", [(0, 0), (3, -2), (-9, 7)])
def test_roll_against_reference_and_torch_roll(dx, dy):
    out = _unchanged_input(lambda e: ops.roll_events(e, SENSOR, dx, dy))
    _equal(out, _reference(EVENTS, SENSOR, lambda t, x, y, p: (t, (x + dx) % 8, (y + dy) % 6, p)))
    frames = torch.from_numpy(bin_events(EVENTS, 2, sensor=SENSOR).astype(np.int64))
    rolled = torch.roll(frames, shifts=(dy, dx), dims=(-2, -1)).numpy()
    np.testing.assert_array_equal(bin_events(out, 2, sensor=SENSOR), rolled)


@pytest.mark.parametrize("angle", [0.0, 17.0, -30.0, 90.0])
def test_rotate_against_reference(angle):
    a = math.radians(angle)
    cx, cy = 3.5, 2.5

    def move(t, x, y, p):
        u, v = x - cx, y - cy
        cos, sin = math.cos(a), math.sin(a)
        return (t, round(cx + (cos * u + sin * v)), round(cy + (-sin * u + cos * v)), p)

    out = _unchanged_input(lambda e: ops.rotate_events(e, SENSOR, angle))
    _equal(out, _reference(EVENTS, SENSOR, move))


def test_rotate_90_is_np_rot90_on_a_square_sensor():
    sensor = Sensor(16, 16)
    events = random_events(500, seed=3, width=16, height=16)
    out = ops.rotate_events(events, sensor, 90.0)
    assert len(out) == len(events)
    frames = bin_events(events, 3, sensor=sensor)
    np.testing.assert_array_equal(
        bin_events(out, 3, sensor=sensor), np.rot90(frames, axes=(-2, -1))
    )


@pytest.mark.parametrize("angle", [0.0, 25.0, -30.0])
def test_shear_x_against_reference(angle):
    k = math.tan(math.radians(angle))
    out = _unchanged_input(lambda e: ops.shear_x_events(e, SENSOR, angle))
    ref = _reference(
        EVENTS, SENSOR, lambda t, x, y, p: (t, round(3.5 + (x - 3.5 + k * (y - 2.5))), y, p)
    )
    _equal(out, ref)


def test_drop_box_against_reference_and_dvsaugment_cutout():
    out = _unchanged_input(lambda e: ops.drop_box(e, 2, 1, 6, 4))
    ref = _reference(
        EVENTS, SENSOR, lambda t, x, y, p: None if 2 <= x < 6 and 1 <= y < 4 else (t, x, y, p)
    )
    _equal(out, ref)
    # NDA's cutout box is DVSAugment's (side ⌊side/3⌋ around a centre, clipped at the border).
    sensor = Sensor(64, 64)
    events = random_events(3000, seed=4, width=64, height=64)
    cy, cx = 5, 40
    half = (64 // 3) // 2
    out = ops.drop_box(events, max(cx - half, 0), max(cy - half, 0), cx + half, cy + half)
    # One bin: dropping events moves the bin bounds of binning by number.
    frames = torch.from_numpy(bin_events(events, 1, sensor=sensor).astype(np.float32))
    params = DVSAugmentParams(flip=False, op="cutout", center=(cy, cx))
    expected = DVSAugment.apply(frames, params).numpy()
    np.testing.assert_array_equal(bin_events(out, 1, sensor=sensor), expected)


def test_drop_time_window_includes_both_ends():
    out = _unchanged_input(lambda e: ops.drop_time_window(e, 5, 12))
    ref = _reference(EVENTS, SENSOR, lambda t, x, y, p: None if 5 <= t <= 12 else (t, x, y, p))
    _equal(out, ref)


def test_crop_zoom_against_reference():
    rng = np.random.default_rng(0)
    dither = rng.random((len(EVENTS), 2))
    box = (1, 1, 5, 4)  # x0, y0, w, h
    out = _unchanged_input(lambda e: ops.crop_zoom(e, SENSOR, box, dither))
    rows = []
    for e, (ux, uy) in zip(EVENTS, dither, strict=True):
        x, y = int(e["x"]) - 1, int(e["y"]) - 1
        if 0 <= x < 5 and 0 <= y < 4:
            new_x, new_y = math.floor((x + ux) * 8 / 5), math.floor((y + uy) * 6 / 4)
            rows.append((e["t"], new_x, new_y, e["p"]))
    ref = np.array(rows, dtype=np.int64)
    _equal(out, make_events(ref[:, 0], ref[:, 1], ref[:, 2], ref[:, 3]))
    with pytest.raises(ValueError, match="dither has shape"):
        ops.crop_zoom(EVENTS, SENSOR, box, dither[:3])


def test_crop_zoom_of_the_whole_sensor_is_the_identity():
    out = ops.crop_zoom(EVENTS, SENSOR, (0, 0, 8, 6), np.full((len(EVENTS), 2), 0.999))
    _equal(out, EVENTS)


def test_time_ops_against_references():
    _equal(
        _unchanged_input(lambda e: ops.shift_time(e, 7)),
        _reference(EVENTS, SENSOR, lambda t, x, y, p: (t + 7, x, y, p)),
    )
    events = EVENTS.copy()
    events["t"] += 100
    _equal(
        ops.scale_time(events, 1.7),
        _reference(events, SENSOR, lambda t, x, y, p: (100 + math.floor((t - 100) * 1.7), x, y, p)),
    )
    rev = _unchanged_input(ops.reverse_time)
    ref = _reference(EVENTS[::-1], SENSOR, lambda t, x, y, p: (31 - t, x, y, 1 - p))
    _equal(rev, ref)
    assert np.all(np.diff(rev["t"]) >= 0)
    with pytest.raises(ValueError, match="before 0"):
        ops.shift_time(EVENTS, -1)
    with pytest.raises(ValueError, match="positive"):
        ops.scale_time(EVENTS, 0.0)


def test_against_tonic_where_semantics_agree():
    tonic = pytest.importorskip("tonic")
    events = random_events(2000, seed=5)
    sensor = (128, 128, 2)
    T = tonic.transforms

    def tonic_run(transform):
        return transform(events.copy())

    _equal(ops.flip_lr(events, Sensor(*sensor)), tonic_run(T.RandomFlipLR(sensor, p=1.0)))
    _equal(ops.flip_polarity(events), tonic_run(T.RandomFlipPolarity(p=1.0)))
    _equal(ops.reverse_time(events), tonic_run(T.RandomTimeReversal(p=1.0)))
    # tonic's TimeSkew scales about t = 0, ours about the first event: equal when that is 0.
    zero = events.copy()
    zero["t"] -= zero["t"][0]
    _equal(ops.scale_time(zero, 1.5), T.TimeSkew(coefficient=1.5, offset=0)(zero.copy()))
    _equal(ops.shift_time(events, 123), tonic_run(T.TimeSkew(coefficient=1.0, offset=123)))
    # tonic's drop by time with its window [start, start + d], both ends included.
    kept = tonic.functional.drop_by_time_numpy
    np.random.seed(0)
    start = np.random.uniform(0.0, events["t"].max() * 0.7)
    np.random.seed(0)
    ref = kept(events.copy(), 0.3)
    d = events["t"].max() * 0.3
    _equal(ops.drop_time_window(events, math.ceil(start), math.floor(start + d)), ref)


def test_mix_events_against_reference():
    a = make_events([10, 20, 30, 40], [0, 1, 2, 3], [0, 1, 2, 3], [1, 1, 0, 0])
    b = make_events([100, 150, 200, 300], [1, 2, 3, 1], [1, 2, 3, 1], [0, 1, 0, 1])
    mixed, n_a, n_b = ops.mix_events(a, b, (1, 1, 3, 3), (0.0, 0.5))
    # a's box events: x, y in [1, 3) and t <= 10 + 0.5 * 30 = 25 -> t=20 (x=1, y=1)
    # b's: t <= 100 + 0.5 * 200 = 200 -> t=100 (1,1), t=150 (2,2); moved to 10 + (t-100)*30//200
    expected = make_events([10, 10, 17, 30, 40], [0, 1, 2, 2, 3], [0, 1, 2, 2, 3], [1, 0, 1, 0, 0])
    _equal(mixed, expected)
    assert (n_a, n_b) == (3, 2)


def test_every_op_keeps_an_empty_sample_empty():
    empty = EVENTS[:0]
    for out in (
        ops.flip_lr(empty, SENSOR),
        ops.roll_events(empty, SENSOR, 1, 1),
        ops.rotate_events(empty, SENSOR, 10),
        ops.shear_x_events(empty, SENSOR, 10),
        ops.drop_box(empty, 0, 0, 2, 2),
        ops.drop_time_window(empty, 0, 5),
        ops.crop_zoom(empty, SENSOR, (0, 0, 4, 3), np.zeros((0, 2))),
        ops.shift_time(empty, 4),
        ops.scale_time(empty, 2.0),
        ops.reverse_time(empty),
        ops.mix_events(empty, empty, (0, 0, 8, 6), (0.0, 1.0))[0],
    ):
        assert out.dtype == EVENT_DTYPE and out.shape == (0,)


def test_a_non_event_array_is_refused():
    with pytest.raises(ValueError, match="fields"):
        ops.flip_lr(np.zeros(3), SENSOR)


def test_drops_against_tonic_with_the_same_draws():
    tonic = pytest.importorskip("tonic")
    events = random_events(3000, seed=6)
    n_drop = int(0.3 * len(events) + 0.5)
    np.random.seed(1)
    dropped = np.random.choice(len(events), n_drop, replace=False)
    np.random.seed(1)
    ref = tonic.functional.drop_event_numpy(events.copy(), 0.3)
    keep = np.ones(len(events), dtype=bool)
    keep[dropped] = False
    _equal(ops.copy_events(events, keep), ref)
    # tonic's box: sides int(128 * r), corner from randint(0, 128 - side), both ends included.
    side = int(128 * 0.2)
    np.random.seed(2)
    x0, y0 = np.random.randint(0, 128 - side), np.random.randint(0, 128 - side)
    np.random.seed(2)
    ref = tonic.functional.drop_by_area_numpy(events.copy(), (128, 128, 2), 0.2)
    _equal(ops.drop_box(events, x0, y0, x0 + side, y0 + side), ref)
