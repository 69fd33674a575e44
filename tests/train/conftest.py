"""Fixtures for the trainer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from train.tiny import write_cache


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    return write_cache(tmp_path_factory.mktemp("cache") / "tiny.h5")


@pytest.fixture(scope="session")
def paper_cache(tmp_path_factory) -> Path:
    """A CIFAR10-DVS cache (T=2, 16 px) of a synthetic release: it picks the paper's recipe."""
    from eventvision.cache import CacheOptions
    from eventvision.cache import write_cache as build
    from eventvision.synth.cifar10dvs import make_cifar10dvs

    root = tmp_path_factory.mktemp("paper") / "raw"
    make_cifar10dvs(root, 2, seed=0, duration_us=10_000)
    out = root.parent / "c.h5"
    build(CacheOptions("cifar10-dvs", time_steps=2, size=16, compression="lzf"), root, out)
    return out


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread: tiny models run faster so, and results do not depend on the load."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
