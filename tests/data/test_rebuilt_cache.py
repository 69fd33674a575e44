"""Build identity: a FrameDataset never serves a sample whose frames and label are of two builds."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import h5py
import pytest
import torch

from eventvision.cache import CacheOptions, write_cache
from eventvision.data import FrameDataset
from eventvision.errors import CacheError

_spec = importlib.util.spec_from_file_location(
    "raw_release", Path(__file__).parents[1] / "cache" / "raw_release.py"
)
raw_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw_release)

PAPER = CacheOptions("cifar10-dvs", time_steps=2, size=8, protocol="paper")
OTHER = CacheOptions("cifar10-dvs", time_steps=2, size=8, protocol="first-test")


@pytest.fixture()
def rebuilt(tmp_path):
    """A cache, a train FrameDataset on it, then the cache rebuilt with another split."""
    root = raw_release.make_cifar_release(tmp_path / "raw", per_class=2, n_events=200)
    out = tmp_path / "c.h5"
    write_cache(PAPER, root, out)
    old = FrameDataset(out, "train")
    with h5py.File(out, "r") as f:
        assert old.build_id == f.attrs["build_id"] and old.build_id.startswith(PAPER.hash())
        old_sources = f["source"].asstr()[:][old._rows]
    write_cache(OTHER, root, out, overwrite=True)
    new = FrameDataset(out, "train")
    assert new.build_id != old.build_id
    with h5py.File(out, "r") as f:
        new_sources = f["source"].asstr()[:][new._rows]
    # The two builds put other samples into training: mixing them would leak test samples.
    assert set(old_sources) != set(new_sources)
    return old, new


def test_a_dataset_refuses_the_file_rebuilt_after_it_was_created(rebuilt):
    old, new = rebuilt
    with pytest.raises(CacheError, match="rebuilt after the dataset .* create the dataset again"):
        old[0]
    frames, label = new[0]
    assert frames.shape == (2, 3, 8, 8) and label == int(new.targets[0])


def test_spawned_workers_check_the_build_too(rebuilt):
    old, _ = rebuilt
    with pytest.raises(CacheError, match="rebuilt"):
        pickle.loads(pickle.dumps(old))[0]  # what a spawn worker receives


def test_forked_workers_check_the_build_too(rebuilt):
    old, new = rebuilt
    loader = torch.utils.data.DataLoader(old, num_workers=1, multiprocessing_context="fork")
    with pytest.raises(CacheError, match="rebuilt"):
        next(iter(loader))
    loader = torch.utils.data.DataLoader(new, num_workers=1, multiprocessing_context="fork")
    frames, labels = next(iter(loader))
    assert frames.shape == (1, 2, 3, 8, 8) and int(labels[0]) == int(new.targets[0])


def test_a_handle_opened_before_the_rebuild_keeps_serving_its_own_build(tmp_path):
    root = raw_release.make_cifar_release(tmp_path / "raw", per_class=2, n_events=200)
    out = tmp_path / "c.h5"
    write_cache(PAPER, root, out)
    ds = FrameDataset(out, "test")
    before = [ds[i][0] for i in range(len(ds))]  # opens the file in this process
    write_cache(OTHER, root, out, overwrite=True)
    after = [ds[i][0] for i in range(len(ds))]  # same handle: the old build, whole
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    ds.close()
    with pytest.raises(CacheError, match="rebuilt"):
        ds[0]
