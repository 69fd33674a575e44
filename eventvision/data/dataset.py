"""FrameDataset: a torchvision-style Dataset over one eventvision HDF5 frame cache.

The cache holds `frames` [N, T, 2, h, w] (already binned and resized, one sample per chunk),
`labels` [N], `split` [N] (`SPLIT_CODES`) and the options in its attributes. `eventvision.cache`
opens and validates it; the dataset keeps a lazy per-process handle (`CacheHandle`), so
DataLoader workers work under fork and spawn alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..cache.identity import CacheHandle
from ..cache.reader import CacheMeta, open_cache, split_rows
from ..datasets.registry import SPLIT_CODES
from ..errors import CacheError, ConfigError, check_choice

__all__ = ["FrameDataset", "open_split"]


def open_split(
    path: str | os.PathLike, split: str, channels: int, store: str
) -> tuple[CacheMeta, np.ndarray, np.ndarray]:
    """``(meta, rows, labels)`` of one split of the cache at ``path``, which must hold ``store``.

    The opening that `FrameDataset` and `EventDataset` share: arguments checked, the cache
    validated by `open_cache`, the split's rows and labels read from that build.
    """
    check_choice("split", split, SPLIT_CODES)
    if channels not in (2, 3):
        raise ConfigError(f"channels={channels!r}: expected 2 (OFF, ON) or 3 (OFF, ON, OFF+ON)")
    meta = open_cache(path, check_sources=False)
    if meta.store != store:
        kind = {"frames": "a frame cache", "events": "an event cache"}
        reader = {"frames": "FrameDataset", "events": "EventDataset"}
        raise CacheError(
            f"{meta.path}: {kind[meta.store]} (store={meta.store}); {reader[store]} reads "
            f"{kind[store][2:]}s (store={store}), {reader[meta.store]} reads this one"
        )
    rows, labels = split_rows(meta, split)
    return meta, rows, labels


def finish_item(dataset: Any, frames: Tensor, index: int) -> tuple[Tensor, Any]:
    """``dataset``'s transform, third channel and target transform around one sample's frames.

    The part of ``__getitem__`` that `FrameDataset` and `EventDataset` share: ``frames`` is the
    sample's ``[T, 2, h, w]``; ``dataset`` has ``transform``, ``channels``, ``targets`` and
    ``target_transform``.
    """
    if dataset.transform is not None:
        frames = dataset.transform(frames)
    if dataset.channels == 3:
        frames = torch.cat([frames, frames.sum(dim=1, keepdim=True)], dim=1)  # [T, 3, h, w]
    target: Any = int(dataset.targets[index])
    if dataset.target_transform is not None:
        target = dataset.target_transform(target)
    return frames, target


def dataset_repr(dataset: Any, options: str, **optional: Any) -> str:
    """The ``repr`` of `FrameDataset` and `EventDataset`: path, split, length, sample shape,
    ``options``, then each of ``optional`` that is set."""
    t, _, h, w = dataset.sample_shape
    lines = [
        f"{type(dataset).__name__}(",
        f"    path={str(dataset.path)!r}, split={dataset.split!r}, length={len(dataset)},",
        f"    sample=[T={t}, C={dataset.channels}, h={h}, w={w}], classes={len(dataset.classes)},",
        f"    {options},",
        *(f"    {key}={value!r}," for key, value in optional.items() if value is not None),
        ")",
    ]
    return "\n".join(lines)


class FrameDataset(Dataset):
    """Event frames `(float32 [T, C, h, w], int label)` of one split of an HDF5 frame cache.

    Args:
        cache_path: the cache file written by `eventvision.cache`.
        split: "train" or "test".
        channels: 3 appends OFF+ON after the two polarity channels (the paper's order
            OFF, ON, OFF+ON); 2 gives the pair.
        transform: called on the float32 `[T, 2, h, w]` frames before the third channel is
            appended, as the paper's DVStransform does (e.g. `DVSAugment`).
        target_transform: called on the int label.

    Usage (needs a cache file)::

        ds = FrameDataset("cifar10dvs_T16_64.h5", split="train")
        frames, label = ds[0]  # frames: [16, 3, 64, 64] float32
    """

    def __init__(
        self,
        cache_path: str | os.PathLike,
        split: Literal["train", "test"] = "train",
        channels: Literal[2, 3] = 3,
        transform: Callable[[Tensor], Tensor] | None = None,
        target_transform: Callable[[int], Any] | None = None,
    ) -> None:
        self.meta, self._rows, self.targets = open_split(cache_path, split, channels, "frames")
        self.path = self.meta.path
        self.split = split
        self.channels = int(channels)
        self.transform = transform
        self.target_transform = target_transform
        self.build_id = self.meta.build_id  # checked on every reopen (docs/preprocess.md)
        self.classes: list[str] = list(self.meta.classes)
        self.sample_shape = self.meta.frame_shape  # [T, 2, h, w]
        self._handle = CacheHandle(self.path, self.build_id)

    @property
    def options(self) -> dict[str, Any]:
        """The cache's binning options (dataset, time_steps, split_by, size, options_hash)."""
        m = self.meta
        keys = ("dataset", "time_steps", "split_by", "size", "options_hash")
        return {key: getattr(m, key) for key in keys}

    def class_counts(self) -> dict[str, int]:
        """Samples per class in this split, in label order, read from labels only."""
        counts = np.bincount(self.targets, minlength=len(self.classes))
        return {name: int(c) for name, c in zip(self.classes, counts, strict=True)}

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> tuple[Tensor, Any]:
        n = len(self._rows)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        row = int(self._rows[index])
        frames = torch.from_numpy(self._handle.dataset("frames")[row])  # [T, 2, h, w] float32
        return finish_item(self, frames, index)

    def close(self) -> None:
        """Close this process's file handle (it reopens on the next item)."""
        self._handle.close()

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.options.items())
        return dataset_repr(
            self, options, transform=self.transform, target_transform=self.target_transform
        )
