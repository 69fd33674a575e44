"""Synthetic N-MNIST and N-Caltech101 in their release layouts (ATIS ``.bin``), from a seed.

The shapes are the synthetic CIFAR10-DVS generator's (one silhouette per label modulo 10),
moved on its small loop for ``duration_us`` and mapped onto each dataset's sensor: the data
exercise readers, caches and training end to end; they are no stand-in for digits or the
101 Caltech objects (N-Caltech101 labels c and c + 10 share a silhouette).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..events import Sensor, make_events
from ..io import NCALTECH101_INFO, NMNIST_INFO, write_atis_bin
from .cifar10dvs import make_cifar10dvs_sample

__all__ = ["make_nmnist", "make_ncaltech101", "make_atis_sample"]

_SOURCE_SIDE = 128  # the CIFAR10-DVS generator draws on a DVS128


def make_atis_sample(
    label: int, index: int, seed: int, sensor: Sensor, *, duration_us: int
) -> np.ndarray:
    """One synthetic sample on ``sensor``, time starting at 0 us, deterministic in its inputs."""
    source = make_cifar10dvs_sample(label % 10, index, seed, duration_us=duration_us)
    x = source["x"].astype(np.int64) * sensor.width // _SOURCE_SIDE
    y = source["y"].astype(np.int64) * sensor.height // _SOURCE_SIDE
    return make_events(
        source["t"] - source["t"][0] if len(source) else source["t"], x, y, source["p"]
    )


def make_nmnist(
    root: str | os.PathLike, per_class: int, seed: int, *, duration_us: int = 300_000
) -> list[Path]:
    """Write ``<root>/Train|Test/<digit>/<i>.bin``: ``per_class`` train and a fifth as many test."""
    root = Path(root)
    paths = []
    for split, count, offset in (("Train", per_class, 0), ("Test", max(1, per_class // 5), 10**6)):
        for label, name in enumerate(NMNIST_INFO.classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                events = make_atis_sample(
                    label, offset + i, seed, NMNIST_INFO.sensor, duration_us=duration_us
                )
                paths.append(folder / f"{i:05d}.bin")
                write_atis_bin(paths[-1], events)
    return paths


def make_ncaltech101(
    root: str | os.PathLike, per_class: int, seed: int, *, duration_us: int = 300_000
) -> list[Path]:
    """Write ``<root>/Caltech101/<class>/image_<i>.bin`` for the 101 classes of the release."""
    root = Path(root) / "Caltech101"
    paths = []
    for label, name in enumerate(NCALTECH101_INFO.classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            events = make_atis_sample(
                label,
                1000 * (label // 10) + i,
                seed,
                NCALTECH101_INFO.sensor,
                duration_us=duration_us,
            )
            paths.append(folder / f"image_{i + 1:04d}.bin")
            write_atis_bin(paths[-1], events)
    return paths
