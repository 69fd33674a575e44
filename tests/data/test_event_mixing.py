"""EventMixDataset: mixed items whose soft targets are the shares of the mixed events."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from eventvision.cache import CacheOptions, write_cache
from eventvision.data import EventDataset, EventsToFrames, make_loader
from eventvision.data.event_mixing import EventMixDataset, soft_target
from eventvision.errors import ConfigError
from eventvision.train.mixing import _Mixer


@pytest.fixture(scope="module")
def events_train(tmp_path_factory) -> EventDataset:
    path = Path(__file__).resolve().parents[1] / "cache" / "raw_release.py"
    spec = importlib.util.spec_from_file_location("raw_release", path)
    raw_release = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(raw_release)
    root = raw_release.make_gesture_release(tmp_path_factory.mktemp("mix") / "raw")
    cache = root.parent / "events.h5"
    write_cache(CacheOptions("dvs-gesture", store="events"), root, cache)
    return EventDataset(cache, "train", time_steps=3, size=16)


def _counts_by_hand(
    ds: EventDataset, index: int, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """(partner, label of it, events kept from the item, events taken from the partner).

    The draws of `EventMixDataset.mixed_sample` and `event_mix` redone in order, and the box
    counted with plain numpy: the item's events outside the space-time box stay, the partner's
    inside it come in.
    """
    partner = int(rng.integers(len(ds)))
    v = rng.uniform()
    side = v ** (1 / 3)
    w, h = round(side * 128), round(side * 128)
    x0, y0 = int(rng.integers(0, 128 - w + 1)), int(rng.integers(0, 128 - h + 1))
    f0 = rng.uniform(0.0, 1.0 - side)

    def inside(events: np.ndarray) -> np.ndarray:
        t = events["t"].astype(np.int64)
        span = t[-1] - t[0]
        in_time = (t >= t[0] + f0 * span) & (t <= t[0] + (f0 + side) * span)
        x, y = events["x"].astype(int), events["y"].astype(int)
        return (x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h) & in_time

    kept = int((~inside(ds.events(index))).sum())
    taken = int(inside(ds.events(partner)).sum())
    return partner, int(ds.targets[partner]), kept, taken


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_target_weights_are_the_hand_counted_shares(events_train, seed):
    ds = events_train
    mix = EventMixDataset(ds, 11, label_smoothing=0.1, rng=lambda: np.random.default_rng(seed))
    # __getitem__ draws "mix or not" first (prob=1: always mixed), then the mixed sample.
    partner, partner_label, kept, taken = _counts_by_hand(ds, 1, _after_first_draw(seed))
    frames, target = mix[1]
    total = kept + taken
    expected = np.full(11, 0.1 / 11)
    expected[int(ds.targets[1])] += 0.9 * kept / total
    expected[partner_label] += 0.9 * taken / total
    assert target.dtype == torch.float32 and target.shape == (11,)
    np.testing.assert_allclose(target.numpy(), expected, rtol=1e-6)
    mixed = mix.mixed_sample(1, _after_first_draw(seed))
    assert len(mixed.events) == total and mixed.labels == (int(ds.targets[1]), partner_label)
    want = torch.from_numpy(EventsToFrames(3, 16, sensor=ds.sensor)(mixed.events))
    assert torch.equal(frames, want)


def _after_first_draw(seed: int) -> np.random.Generator:
    rng = np.random.default_rng(seed)
    rng.random()
    return rng


def test_soft_targets_equal_the_trainers_mixup_targets():
    lam = 0.3
    ours = torch.stack(
        [soft_target((2, 5), (lam, 1 - lam), 6, 0.1), soft_target((5, 2), (lam, 1 - lam), 6, 0.1)]
    )
    spec = type("Spec", (), dict(mixup_alpha=1.0, cutmix_alpha=0.0, mixup_prob=1.0,
                                 mixup_switch_prob=0.5, label_smoothing=0.1))  # fmt: skip
    theirs = _Mixer(spec, 6)._targets(torch.tensor([2, 5]), lam)
    torch.testing.assert_close(ours, theirs.float())


def test_a_seeded_loader_repeats_the_mixing(events_train):
    mix = EventMixDataset(events_train, 11)
    runs = []
    for _ in range(2):
        torch.manual_seed(5)
        loader = make_loader(mix, 2, train=True, workers=0, seed=5)
        runs.append([(x.clone(), y.clone()) for x, y in loader])
    for (xa, ya), (xb, yb) in zip(*runs, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert any(float(row.max()) < 1.0 for _, y in runs[0] for row in y)  # some items are mixed


def test_bad_arguments_are_refused(events_train):
    with pytest.raises(ConfigError, match="EventDataset"):
        EventMixDataset([1, 2, 3], 11)
    with pytest.raises(ConfigError, match="num_classes"):
        EventMixDataset(events_train, 2)
    with pytest.raises(ConfigError, match="label_smoothing"):
        EventMixDataset(events_train, 11, label_smoothing=1.0)
