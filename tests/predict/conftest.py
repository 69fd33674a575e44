"""Fixtures for the predict tests: the tiny cache and a run folder on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from predict.run import write_run
from train.tiny import write_cache


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    return write_cache(tmp_path_factory.mktemp("predict-cache") / "tiny.h5")


@pytest.fixture(scope="session")
def tiny_run(tiny_cache, tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("predict-run") / "run", tiny_cache)


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: tiny models run faster so, and results do not depend on the load."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
