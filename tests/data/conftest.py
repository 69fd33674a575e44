"""Fixtures for the data tests: small HDF5 frame caches written with h5py per the cache contract."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

CLASSES = ["airplane", "automobile", "bird"]


def write_frame_cache(
    path: Path,
    frames: np.ndarray,
    labels: np.ndarray,
    split: np.ndarray,
    *,
    classes: list[str] = CLASSES,
    complete: bool = True,
) -> Path:
    """Write a cache as eventvision.cache does: frames [N, T, 2, h, w], one sample per chunk."""
    n, time_steps, _, h, w = frames.shape
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=frames, chunks=(1, *frames.shape[1:]))
        f.create_dataset("labels", data=np.asarray(labels, dtype=np.int64))
        f.create_dataset("split", data=np.asarray(split, dtype=np.uint8))
        f.create_dataset(
            "source", data=[f"sample_{i}.aedat" for i in range(n)], dtype=h5py.string_dtype()
        )
        f.create_dataset("row", data=np.arange(n, dtype=np.int64))
        f.create_dataset("n_events", data=np.full(n, 1000, dtype=np.int64))
        f.attrs["dataset"] = "cifar10dvs"
        f.attrs["classes"] = json.dumps(classes)
        f.attrs["time_steps"] = time_steps
        f.attrs["split_by"] = "number"
        f.attrs["size"] = np.array([h, w])
        f.attrs["options_hash"] = "0123abcd"
        f.attrs["eventvision_version"] = "0.1.0"
        f.attrs["complete"] = complete
    return path


def sample_frames(n: int = 10, time_steps: int = 3, size: int = 8, seed: int = 0) -> np.ndarray:
    """Random float32 frames [n, T, 2, size, size] with fractional values, as after a resize."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 40, (n, time_steps, 2, size, size)) / 4).astype(np.float32)


@pytest.fixture
def write_cache():
    """The writer `write_frame_cache(path, frames, labels, split, classes=..., complete=...)`."""
    return write_frame_cache


@pytest.fixture
def make_frames():
    """The generator `sample_frames(n, time_steps, size, seed)` of fractional float32 frames."""
    return sample_frames


@pytest.fixture
def frame_cache(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """A 10-sample cache: (path, frames, labels, split), train = rows with split 0."""
    frames = sample_frames()
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 0, 1, 2])
    split = np.array([0, 0, 1, 0, 0, 1, 0, 0, 0, 1])
    path = write_frame_cache(tmp_path / "cache.h5", frames, labels, split)
    return path, frames, labels, split
