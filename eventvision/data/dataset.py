"""FrameDataset: a torchvision-style Dataset over one eventvision HDF5 frame cache.

The cache holds `frames` [N, T, 2, h, w] (already binned and resized, one sample per chunk),
`labels` [N], `split` [N] (0 = train, 1 = test) and the options in its attributes. The file is
opened lazily, once per process, so DataLoader workers work under fork and spawn alike.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..cache.identity import read_build_id, reopen_build
from ..errors import CacheError, ConfigError

__all__ = ["FrameDataset", "SPLITS"]

SPLITS = {"train": 0, "test": 1}
_OPTION_ATTRS = ("dataset", "time_steps", "split_by", "size", "options_hash")


def _attr(value: Any) -> Any:
    """An HDF5 attribute as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return tuple(_attr(v) for v in value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


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
        if split not in SPLITS:
            raise ConfigError(f"split={split!r}: expected one of {list(SPLITS)}")
        if channels not in (2, 3):
            raise ConfigError(f"channels={channels!r}: expected 2 (OFF, ON) or 3 (OFF, ON, OFF+ON)")
        self.path = Path(cache_path)
        self.split = split
        self.channels = int(channels)
        self.transform = transform
        self.target_transform = target_transform
        self._h5: h5py.File | None = None
        self._frames: h5py.Dataset | None = None
        self._pid: int | None = None
        self._read_index()

    def _read_index(self) -> None:
        """Read everything except the frames: attributes, labels and the split's rows."""
        if self.path.is_dir():
            raise CacheError(f"{self.path}: is a folder, expected an HDF5 cache file")
        if not self.path.is_file():
            raise CacheError(f"{self.path}: no such cache file; build it with eventvision.cache")
        try:
            h5 = h5py.File(self.path, "r")
        except OSError as e:
            raise CacheError(f"{self.path}: not a readable HDF5 file ({e})") from e
        with h5:
            attrs = {key: _attr(value) for key, value in h5.attrs.items()}
            self.build_id = read_build_id(h5.attrs)  # checked on every reopen (docs/preprocess.md)
            complete = attrs.get("complete")
            if not (isinstance(complete, int) and complete == 1):
                raise CacheError(
                    f"{self.path}: incomplete cache (attribute complete={complete!r},"
                    " expected True); the writer was interrupted, rebuild it"
                )
            missing = [name for name in ("frames", "labels", "split") if name not in h5]
            if missing:
                raise CacheError(
                    f"{self.path}: missing datasets {missing}; expected frames, labels, split"
                )
            frames = h5["frames"]
            if frames.ndim != 5 or frames.shape[2] != 2:
                raise CacheError(
                    f"{self.path}: frames have shape {frames.shape}, expected [N, T, 2, h, w]"
                )
            n = frames.shape[0]
            labels = np.asarray(h5["labels"][...], dtype=np.int64)
            split = np.asarray(h5["split"][...])
            if labels.shape != (n,) or split.shape != (n,):
                raise CacheError(
                    f"{self.path}: labels {labels.shape} and split {split.shape}, expected ({n},)"
                )
            self.sample_shape = tuple(int(s) for s in frames.shape[1:])  # [T, 2, h, w]
        self.attrs = attrs
        try:
            self.classes: list[str] = [str(c) for c in json.loads(attrs.get("classes", "[]"))]
        except (TypeError, ValueError) as e:
            raise CacheError(
                f"{self.path}: attribute classes={attrs.get('classes')!r} is not a JSON list"
            ) from e
        self._rows = np.flatnonzero(split == SPLITS[self.split])
        self.targets = labels[self._rows]
        if len(self.targets) and (
            self.targets.min() < 0 or (self.classes and self.targets.max() >= len(self.classes))
        ):
            raise CacheError(
                f"{self.path}: labels span {self.targets.min()}..{self.targets.max()},"
                f" outside 0..{len(self.classes) - 1} for the classes attribute"
            )

    @property
    def options(self) -> dict[str, Any]:
        """The cache's binning options (dataset, time_steps, split_by, size, options_hash)."""
        return {key: self.attrs[key] for key in _OPTION_ATTRS if key in self.attrs}

    def class_counts(self) -> dict[str, int]:
        """Samples per class in this split, in label order, read from labels only."""
        n_classes = max(len(self.classes), int(self.targets.max()) + 1 if len(self.targets) else 0)
        counts = np.bincount(self.targets, minlength=n_classes)
        names = self.classes or [str(i) for i in range(n_classes)]
        return {name: int(c) for name, c in zip(names, counts, strict=True)}

    def __len__(self) -> int:
        return len(self._rows)

    def _dataset(self) -> h5py.Dataset:
        # A handle inherited through fork is not safe to use: reopen in every new process, and
        # refuse a file rebuilt since the rows and labels were read.
        if self._frames is None or self._pid != os.getpid():
            h5 = reopen_build(self.path, self.build_id)
            self._h5, self._frames, self._pid = h5, h5["frames"], os.getpid()
        return self._frames

    def __getitem__(self, index: int) -> tuple[Tensor, Any]:
        n = len(self._rows)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        row = int(self._rows[index])
        frames = torch.from_numpy(
            np.asarray(self._dataset()[row], dtype=np.float32)
        )  # [T, 2, h, w]
        return finish_item(self, frames, index)

    def close(self) -> None:
        """Close this process's file handle (it reopens on the next item)."""
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = self._frames = self._pid = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_h5"] = state["_frames"] = state["_pid"] = None
        return state

    def __repr__(self) -> str:
        options = ", ".join(f"{key}={value!r}" for key, value in self.options.items())
        lines = [
            f"{type(self).__name__}(",
            f"    path={str(self.path)!r}, split={self.split!r}, length={len(self)},",
            f"    sample=[T={self.sample_shape[0]}, C={self.channels}, h={self.sample_shape[2]},"
            f" w={self.sample_shape[3]}], classes={len(self.classes)},",
            f"    {options},",
        ]
        if self.transform is not None:
            lines.append(f"    transform={self.transform!r},")
        if self.target_transform is not None:
            lines.append(f"    target_transform={self.target_transform!r},")
        lines.append(")")
        return "\n".join(lines)
