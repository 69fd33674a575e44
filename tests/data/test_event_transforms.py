"""Random event transforms: seeding, no writes into the input, drawn magnitudes, names, EventMix."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from eventvision.data import event_ops as ops
from eventvision.data.event_transforms import (
    EVENT_AUGMENTATIONS,
    NDA,
    Compose,
    CropZoom,
    DropByArea,
    DropByTime,
    DropEvents,
    EventDrop,
    FlipLR,
    SpatialJitter,
    TimeReverse,
    TimeScale,
    TimeShift,
    event_mix,
    make_event_augmentation,
)
from eventvision.errors import ConfigError
from eventvision.events import DVS128, EVENT_DTYPE, Sensor, check_events
from tests.helpers import random_events

EVENTS = random_events(3000, seed=1, t0=5000)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.all(a == b))


@pytest.mark.parametrize("name", sorted(EVENT_AUGMENTATIONS))
def test_each_named_augmentation_is_seeded_sorted_and_leaves_its_input_alone(name):
    before = EVENTS.copy()
    outs = [make_event_augmentation(name, seed=7)(EVENTS) for _ in range(2)]
    assert _same(EVENTS, before)
    assert _same(outs[0], outs[1]), "one seed, one result"
    check_events(outs[0], DVS128)  # sorted, inside the sensor
    rng_outs = [make_event_augmentation(name)(EVENTS, np.random.default_rng(3)) for _ in range(2)]
    assert _same(rng_outs[0], rng_outs[1]), "an explicit generator decides everything"
    empty = make_event_augmentation(name, seed=0)(EVENTS[:0])
    assert empty.dtype == EVENT_DTYPE and empty.shape == (0,)


def test_a_seeded_transform_varies_from_call_to_call_and_survives_pickling():
    flip = FlipLR(p=0.5, seed=0)
    draws = {bool(_same(flip(EVENTS), EVENTS)) for _ in range(20)}
    assert draws == {True, False}
    clone = pickle.loads(pickle.dumps(FlipLR(p=0.5, seed=0)))
    fresh = FlipLR(p=0.5, seed=0)
    assert all(_same(clone(EVENTS), fresh(EVENTS)) for _ in range(5))


def test_nda_draws_each_op_with_the_documented_magnitudes():
    nda = NDA(DVS128)
    seen = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        twin = np.random.default_rng(seed)
        op = nda.ops[int(twin.integers(5))]
        seen.add(op)
        out = nda(EVENTS, rng)
        if op == "flip":
            expected = ops.flip_lr(EVENTS, DVS128)
        elif op == "roll":
            dx, dy = int(twin.integers(-13, 14)), int(twin.integers(-13, 14))
            expected = ops.roll_events(EVENTS, DVS128, dx, dy)
        elif op == "rotate":
            expected = ops.rotate_events(EVENTS, DVS128, twin.uniform(-1, 1) * 30.0)
        elif op == "shear":
            expected = ops.shear_x_events(EVENTS, DVS128, twin.uniform(-1, 1) * 30.0)
        else:
            cx, cy = int(twin.integers(128)), int(twin.integers(128))
            expected = ops.drop_box(EVENTS, max(cx - 21, 0), max(cy - 21, 0), cx + 21, cy + 21)
        assert _same(out, expected), op
    assert seen == {"flip", "roll", "rotate", "shear", "cutout"}


def test_nda_refuses_unknown_ops():
    with pytest.raises(ConfigError, match="subset"):
        NDA(ops=("roll", "solarize"))


def test_drops_remove_what_they_say():
    rng = np.random.default_rng(0)
    out = DropEvents(ratio=0.25)(EVENTS, rng)
    assert len(out) == len(EVENTS) - 750 and np.isin(out, EVENTS).all()
    span = int(EVENTS["t"][-1] - EVENTS["t"][0])
    for seed in range(5):
        out = DropByTime(ratio=0.3)(EVENTS, np.random.default_rng(seed))
        gaps = np.diff(out["t"])
        assert gaps.max() >= 0.3 * span - 1, "a window of 30% of the span is empty"
    out = DropByArea(ratio=0.25)(EVENTS, np.random.default_rng(1))
    removed = EVENTS[~np.isin(EVENTS, out)]
    assert len(removed) > 0 and len(out) + len(removed) == len(EVENTS)
    for axis in ("x", "y"):
        assert removed[axis].max() - removed[axis].min() < 32, "inside one 32 px box"
        lo = removed[axis].min()
        box = (out[axis] >= lo) & (out[axis] <= removed[axis].max())
        other = "y" if axis == "x" else "x"
        lo_o, hi_o = removed[other].min(), removed[other].max()
        inside = box & (out[other] >= lo_o) & (out[other] <= hi_o)
        assert not inside.any(), "nothing left inside the dropped box"


def test_eventdrop_is_one_of_its_four_kinds():
    kinds = set()
    for seed in range(30):
        out = EventDrop()(EVENTS, np.random.default_rng(seed))
        kinds.add(int(np.random.default_rng(seed).integers(0, 4)))
        assert np.isin(out, EVENTS).all()
        if int(np.random.default_rng(seed).integers(0, 4)) == 0:
            assert _same(out, EVENTS)
    assert kinds == {0, 1, 2, 3}


def test_reverse_twice_is_the_identity_up_to_the_time_origin():
    rev = TimeReverse(p=1.0)
    twice = rev(rev(EVENTS))
    assert _same(twice["x"], EVENTS["x"]) and _same(twice["p"], EVENTS["p"])
    np.testing.assert_array_equal(twice["t"], EVENTS["t"] - EVENTS["t"][0])


def test_scale_jitter_and_zoom_keep_the_stream_valid():
    sensor = Sensor(32, 24)
    events = random_events(2000, seed=2, width=32, height=24)
    for transform in (TimeScale(sensor, (0.5, 2.0)), SpatialJitter(sensor, 2.0), CropZoom(sensor)):
        for seed in range(3):
            check_events(transform(events, np.random.default_rng(seed)), sensor)
    scaled = TimeScale(sensor, 2.0)(events)
    assert scaled["t"][-1] - scaled["t"][0] == 2 * (events["t"][-1] - events["t"][0])


def test_compose_shares_one_generator_and_checks_sensors():
    steps = [FlipLR(p=0.5), DropEvents(ratio=0.5)]
    a = Compose(steps)(EVENTS, np.random.default_rng(4))
    rng = np.random.default_rng(4)
    b = EVENTS
    for step in steps:
        b = step(b, rng)
    assert _same(a, b)
    with pytest.raises(ConfigError, match="disagree on the sensor"):
        Compose([FlipLR(Sensor(32, 32)), FlipLR(DVS128)])


def test_unknown_names_suggest_close_matches():
    with pytest.raises(ConfigError, match=r"'evntdrop'; did you mean \['eventdrop'\]"):
        make_event_augmentation("evntdrop")
    with pytest.raises(ConfigError, match="known: "):
        make_event_augmentation("flip+zzz")
    composed = make_event_augmentation("flip+eventdrop", seed=1)
    assert isinstance(composed, Compose) and len(composed.transforms) == 2


def test_bad_magnitudes_are_refused():
    with pytest.raises(ConfigError, match="ratio"):
        DropEvents(ratio=(0.5, 0.2))
    with pytest.raises(ConfigError, match="p="):
        FlipLR(p=1.5)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: TimeShift(max_shift_us=float("inf")), "max_shift_us=inf"),
        (lambda: TimeShift(max_shift_us=float("nan")), "max_shift_us=nan"),
        (lambda: TimeShift(max_shift_us=1.5), "whole number"),
        (lambda: TimeShift(max_shift_us=2**70), "whole number"),
        (lambda: TimeShift(max_shift_us="100"), "whole number"),
        (lambda: TimeShift(max_shift_us=-1), "whole number"),
        (lambda: FlipLR((-5, 10, 2)), "width=-5"),
        (lambda: CropZoom((0, 16, 2)), "width=0"),
        (lambda: DropByArea((16, 2.5, 2)), "height=2.5"),
        (lambda: FlipLR((16,)), "expected \\(width, height, polarities\\)"),
        (lambda: FlipLR(seed=-1), "seed=-1"),
        (lambda: FlipLR(p=True), "p=True"),
        (lambda: CropZoom(scale="ab"), "scale='ab'"),
        (lambda: SpatialJitter(sigma=float("inf")), "sigma=inf"),
        (lambda: NDA(ops="flip"), "NDA ops 'flip'"),
        (lambda: NDA(ops=3), "NDA ops 3"),
    ],
)
def test_bad_parameters_are_config_errors_at_construction(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_whole_float_parameters_are_accepted():
    assert TimeShift(max_shift_us=1e5).max_shift_us == 100_000
    assert TimeShift(DVS128, max_shift_us=np.int64(7), seed=np.int64(3)).seed == 3


def test_event_mix_weights_are_the_shares_of_mixed_events():
    a = random_events(4000, seed=5)
    b = random_events(2000, seed=6, t0=10**7)
    for seed in range(5):
        mixed = event_mix((a, 3), (b, 8), np.random.default_rng(seed))
        check_events(mixed.events, DVS128)
        assert mixed.labels == (3, 8)
        assert sum(mixed.weights) == pytest.approx(1.0)
        from_a = np.isin(mixed.events, a).sum()
        assert mixed.weights[0] == pytest.approx(from_a / len(mixed.events))
    empty = event_mix((a[:0], 0), (b[:0], 1), np.random.default_rng(0))
    assert len(empty.events) == 0 and sum(empty.weights) == pytest.approx(1.0)


class _Events(torch.utils.data.Dataset):
    def __init__(self, transform):
        self.transform = transform

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int):
        return torch.from_numpy(self.transform(EVENTS)["x"].astype(np.int64)[:50])


def _epoch(transform, seed: int) -> list:
    loader = torch.utils.data.DataLoader(
        _Events(transform),
        batch_size=1,
        num_workers=2,
        generator=torch.Generator().manual_seed(seed),
        multiprocessing_context="fork",
    )
    return [batch[0].tolist() for batch in loader]


def test_workers_draw_differently_and_a_seeded_loader_repeats():
    for transform in (CropZoom(seed=3), CropZoom(seed=None)):
        first, again = _epoch(transform, 0), _epoch(transform, 0)
        assert first == again
        assert first[0] != first[1], "workers 0 and 1 differ"
