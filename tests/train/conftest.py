"""Fixtures for the trainer tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from train.tiny import write_cache


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    return write_cache(tmp_path_factory.mktemp("cache") / "tiny.h5")


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread: tiny models run faster so, and results do not depend on the load."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
