"""Shared fixtures of the model tests."""

from __future__ import annotations

import numba
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch and one numba thread: the CI box has 2 shared cores, and oversubscribed
    OpenMP barriers make these tiny tests 5x slower."""
    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(torch_threads)
    numba.set_num_threads(numba_threads)
