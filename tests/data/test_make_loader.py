from __future__ import annotations

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
