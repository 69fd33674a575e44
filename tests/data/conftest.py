"""Fixtures for the data tests: small frame caches built by eventvision.cache from event files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import build_folder_cache, random_events

CLASSES = ["airplane", "automobile", "bird"]
SENSOR = (16, 16)  # width, height: resized to 8 x 8, so frames hold fractional values


def write_frame_cache(
    path: Path,
    labels,
    split,
    *,
    classes: list[str] = CLASSES,
    time_steps: int = 3,
    size: int = 8,
    seed: int = 0,
) -> Path:
    """A cache of one random 400-event sample per label; ``split`` holds 0 (train) or 1 (test)."""
    samples = [
        (
            random_events(400, seed + i, width=SENSOR[0], height=SENSOR[1]),
            int(label),
            ("train", "test")[s],
        )
        for i, (label, s) in enumerate(zip(labels, split, strict=True))
    ]
    return build_folder_cache(
        path, samples, classes, SENSOR, time_steps=time_steps, size=size, compression="lzf"
    )


def stored(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames, labels, split)`` of a cache, read with h5py alone."""
    with h5py.File(path, "r") as f:
        return f["frames"][...], f["labels"][...], f["split"][...]


@pytest.fixture
def write_cache():
    """The builder `write_frame_cache(path, labels, split, classes=..., time_steps, size, seed)`."""
    return write_frame_cache


@pytest.fixture
def frame_cache(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """A 10-sample cache (3 classes, T=3, 8 x 8): (path, frames, labels, split) as stored."""
    labels = [0, 1, 2, 0, 1, 2, 0, 0, 1, 2]
    split = [0, 0, 1, 0, 0, 1, 0, 0, 0, 1]
    path = write_frame_cache(tmp_path / "cache.h5", labels, split)
    return (path, *stored(path))
