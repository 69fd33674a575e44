"""The examples' embedded data: a tiny synthetic CIFAR10-DVS release and its frame cache."""

from __future__ import annotations

from pathlib import Path

from eventvision.cache import CacheOptions, write_cache
from eventvision.synth import make_cifar10dvs


def tiny_cache(folder: str | Path, time_steps: int = 4, size: int = 16) -> Path:
    """``folder/cache.h5``: 2 recordings a class of synthetic CIFAR10-DVS (20 samples)."""
    folder = Path(folder)
    raw = folder / "raw"
    if not raw.is_dir():
        make_cifar10dvs(raw, per_class=2, seed=0, duration_us=50_000)
    options = CacheOptions("cifar10-dvs", time_steps=time_steps, size=size, compression="lzf")
    out = folder / "cache.h5"
    write_cache(options, raw, out)  # reused when it is already there
    return out
