"""Helpers for the trainer tests: a tiny learnable frame cache and a tiny pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers import build_folder_cache

from eventvision.events import make_events
from eventvision.train import Pipeline, load_pipeline

TIME_STEPS = 2
SIZE = 16
CLASSES = ["a", "b", "c", "d"]

# A SpikingResformer small enough for a CPU test: three one-block stages at 16 px.
TINY_MODEL = {
    "model.planes": [8, 16, 32],
    "model.num_heads": [1, 1, 2],
    "model.blocks": [1, 1, 1],
    "model.group_size": 8,
    "model.stem": "imagenet",  # 16 px become 4x4 tokens: cheap
}


def write_cache(
    path: Path,
    n_train: int = 16,
    n_test: int = 8,
    time_steps: int = TIME_STEPS,
    size: int = SIZE,
    classes: list[str] = CLASSES,
    seed: int = 0,
) -> Path:
    """A ``folder`` cache built by eventvision.cache whose class is a bright quadrant.

    Each sample is 150 events spread over a ``size`` x ``size`` sensor and 300 more in the
    quadrant of its label.
    """
    rng = np.random.default_rng(seed)
    half = size // 2
    samples = []
    for i in range(n_train + n_test):
        label = i % len(classes)
        y0, x0 = (half * v for v in divmod(label % 4, 2))
        x = np.r_[rng.integers(0, size, 150), rng.integers(x0, x0 + half, 300)]
        y = np.r_[rng.integers(0, size, 150), rng.integers(y0, y0 + half, 300)]
        order = rng.permutation(len(x))  # time-sorted, quadrant and spread events mixed
        t = np.sort(rng.integers(0, 100_000, len(x)))
        events = make_events(t, x[order], y[order], rng.integers(0, 2, len(x)))
        samples.append((events, label, "train" if i < n_train else "test"))
    options = {"time_steps": time_steps, "size": size, "compression": "lzf"}
    return build_folder_cache(path, samples, classes, (size, size), **options)


def tiny_pipeline(cache_path: Path, **overrides) -> Pipeline:
    """cifar10dvs-direct shrunk to the tiny (folder) cache, a tiny model and a few CPU epochs."""
    values = {
        "data.path": str(cache_path),
        "data.dataset": "",  # the tiny cache is a folder source
        "data.time_steps": TIME_STEPS,
        "data.size": SIZE,
        "data.augment": "none",
        "model.num_classes": len(CLASSES),
        "train.epochs": 2,
        "train.batch_size": 8,
        "train.lr": 5e-3,
        "train.warmup_epochs": 0,
        **TINY_MODEL,
    }
    values.update(overrides)
    return load_pipeline("cifar10dvs-direct", values)
