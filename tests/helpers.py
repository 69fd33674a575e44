"""Small shared helpers for the tests: random events and paths to the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eventvision.events import make_events

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def random_events(n: int, seed: int = 0, *, width: int = 128, height: int = 128, t0: int = 0):
    """n time-sorted random events (ties included) on a width x height sensor."""
    rng = np.random.default_rng(seed)
    t = t0 + np.sort(rng.integers(0, 2_000_000, n))
    return make_events(
        t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n)
    )
