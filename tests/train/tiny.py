"""Helpers for the trainer tests: a tiny learnable frame cache and a tiny pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

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
    dataset: str = "cifar10-dvs",
) -> Path:
    """A complete cache in eventvision's layout whose class is a bright quadrant of the frame."""
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    labels = np.arange(n) % len(classes)
    frames = rng.poisson(0.3, (n, time_steps, 2, size, size)).astype(np.float32)
    half = size // 2
    for i, label in enumerate(labels):
        y, x = divmod(int(label) % 4, 2)
        frames[i, :, :, y * half : (y + 1) * half, x * half : (x + 1) * half] += 2.0
    split = np.r_[np.zeros(n_train), np.ones(n_test)].astype(np.uint8)
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=frames, chunks=(1, *frames.shape[1:]))
        f.create_dataset("labels", data=labels.astype(np.int64))
        f.create_dataset("split", data=split)
        f.attrs["dataset"] = dataset
        f.attrs["classes"] = json.dumps(classes)
        f.attrs["time_steps"] = time_steps
        f.attrs["split_by"] = "number"
        f.attrs["size"] = np.array([size, size])
        f.attrs["complete"] = True
    return path


def tiny_pipeline(cache_path: Path, **overrides) -> Pipeline:
    """cifar10dvs-direct shrunk to the tiny cache, a tiny model and a few CPU epochs."""
    values = {
        "data.path": str(cache_path),
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
