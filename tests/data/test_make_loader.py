from __future__ import annotations

import numpy as np
import pytest
import torch

from eventvision.data import DVSAugment, FrameDataset, make_loader
from eventvision.errors import ConfigError


def _epochs(loader, n_epochs=2):
    return [[(x.clone(), y.clone()) for x, y in loader] for _ in range(n_epochs)]


def _assert_same(a, b):
    assert len(a) == len(b)
    for epoch_a, epoch_b in zip(a, b, strict=True):
        assert len(epoch_a) == len(epoch_b)
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b, strict=True):
            assert torch.equal(ya, yb)
            assert torch.equal(xa, xb)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_two_workers_give_the_same_batches_as_none(frame_cache, context):
    path = frame_cache[0]
    ds = FrameDataset(path, "train")
    ds[0]  # the parent holds an open handle: forked workers must not use it
    reference = _epochs(make_loader(ds, 3, train=True, workers=0, seed=5))
    loader = make_loader(ds, 3, train=True, workers=2, seed=5, multiprocessing_context=context)
    assert loader.persistent_workers and loader.num_workers == 2
    _assert_same(_epochs(loader), reference)
    assert not torch.equal(reference[0][0][1], reference[1][0][1])  # epochs reshuffle


def test_order_is_reproducible_for_a_seed(frame_cache):
    ds = FrameDataset(frame_cache[0], "train")

    def order(seed):
        return [y.tolist() for _, y in make_loader(ds, 1, train=True, seed=seed)]

    labels = [ds[i][1] for i in range(len(ds))]
    first = order(3)
    assert first == order(3)
    assert sorted(sum(first, [])) == sorted(labels)
    assert any(order(s) != first for s in (4, 5, 6))
    loader = make_loader(ds, 1, train=True, seed=3)
    epochs = [[y.item() for _, y in loader] for _ in range(3)]
    loader.sampler.set_epoch(2)  # a resumed run continues with the order of epoch 2
    assert [y.item() for _, y in loader] == epochs[2]


def test_last_partial_batch_is_dropped_in_training_only(frame_cache):
    train = FrameDataset(frame_cache[0], "train")  # 7 samples
    assert [len(y) for _, y in make_loader(train, 3, train=True)] == [3, 3]
    test = FrameDataset(frame_cache[0], "test")  # 3 samples, kept in order
    batches = list(make_loader(test, 2, train=False))
    assert [len(y) for _, y in batches] == [2, 1]
    assert torch.cat([y for _, y in batches]).tolist() == [test[i][1] for i in range(3)]
    assert batches[0][0].shape == (2, 3, 3, 8, 8)  # [B, T, C, H, W]


def test_loader_options(frame_cache):
    ds = FrameDataset(frame_cache[0], "test")
    loader = make_loader(ds, 2, train=False, workers=0)
    assert loader.pin_memory == torch.cuda.is_available()
    assert not loader.persistent_workers and not loader.drop_last
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(ds, 0, train=True)
    with pytest.raises(ConfigError, match="workers"):
        make_loader(ds, 1, train=True, workers=-1)


def test_augmented_batches_repeat_for_a_seed_with_workers(frame_cache):
    ds = FrameDataset(frame_cache[0], "train", transform=DVSAugment(seed=1))

    def run():
        return _epochs(
            make_loader(ds, 3, train=True, workers=2, seed=9, multiprocessing_context="fork")
        )

    first = run()
    _assert_same(first, run())


class _EventsAsFrames(torch.utils.data.Dataset):
    """Items whose randomness comes from every mechanism a transform may use.

    ``seed=None`` DVSAugment (torch's global RNG), a seeded DVSAugment (its own generator),
    a ``seed=None`` event transform (numpy generator from the item seed), timm-style python
    ``random`` and numpy global draws, as image transforms make them.
    """

    def __init__(self, frame_cache_path):
        from eventvision.data import make_event_augmentation
        from eventvision.events import make_events

        self.frames = FrameDataset(frame_cache_path, "train")
        self.unseeded, self.seeded = DVSAugment(seed=None), DVSAugment(seed=3)
        self.events = make_events(np.arange(50), np.arange(50) % 8, np.arange(50) % 5, [1] * 50)
        self.event_aug = make_event_augmentation("eventdrop", (8, 8, 2))

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, i):
        import random

        x, y = self.frames[i]
        kept = len(self.event_aug(self.events))
        noise = torch.tensor([random.random(), float(np.random.rand()), float(kept)])
        return torch.cat([self.unseeded(x).flatten(), self.seeded(x).flatten(), noise]), y


@pytest.mark.parametrize("workers", [1, 2])
def test_the_same_seed_gives_the_same_augmentations_for_any_worker_count(frame_cache, workers):
    ds = _EventsAsFrames(frame_cache[0])
    torch.manual_seed(0)  # the caller's generators must neither matter nor change
    before = torch.get_rng_state()
    reference = _epochs(make_loader(ds, 3, train=True, workers=0, seed=5))
    assert torch.equal(torch.get_rng_state(), before)  # workers=0 restores them
    torch.manual_seed(123)
    loader = make_loader(ds, 3, train=True, workers=workers, seed=5, persistent_workers=False)
    _assert_same(_epochs(loader), reference)
    other = _epochs(make_loader(ds, 3, train=True, workers=0, seed=6))
    assert not torch.equal(reference[0][0][0], other[0][0][0])
    # the items of epoch 0 and 1 are drawn differently (not one draw per item forever)
    flat = [x for epoch in reference for batch, _ in epoch for x in batch]
    assert len({tuple(x[-3:].tolist()) for x in flat}) == len(flat)


def test_evaluation_shards_load_every_item_once_under_its_seed(frame_cache):
    ds = FrameDataset(frame_cache[0], "test")
    shards = [make_loader(ds, 2, train=False, rank=r, world_size=2) for r in (0, 1)]
    labels = [y.tolist() for loader in shards for _, y in loader]
    assert sorted(sum(labels, [])) == sorted(int(ds[i][1]) for i in range(len(ds)))
