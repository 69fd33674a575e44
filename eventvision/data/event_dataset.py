"""EventDataset: frames binned in the loader from an event cache, with event augmentation.

The event cache (`eventvision preprocess ... --store events`) holds each sample's events as the
datasets yield them; this Dataset reads one sample's events (`eventvision.cache.events`), runs
an optional event transform, and bins and resizes them with the frame cache's kernels
(`EventsToFrames`), so time steps, size and binning change without rebuilding anything. See
docs/data.md ("Event caches in the loader").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..cache.options import parse_size, size_hw
from ..cache.reader import EventCacheReader
from .dataset import dataset_repr, finish_item, open_split
from .event_frames import EventsToFrames

__all__ = ["EventDataset"]


class EventDataset(Dataset):
    """`(float32 [T, C, h, w], int label)` of one split of an event cache, binned per item.

    Args:
        cache: the event cache file.
        split: "train" or "test".
        time_steps, size, split_by: the binning, as `eventvision preprocess` takes them.
        channels: 3 appends OFF+ON (as `FrameDataset`); 2 gives the pair.
        transform: called on the float32 `[T, 2, h, w]` tensor before the third channel is
            appended, as in `FrameDataset`.
        event_transform: called on the sample's structured events before binning (e.g.
            `make_event_augmentation("nda", sensor)`).
        target_transform: called on the int label.

    For the same options the frames equal a frame cache's through `FrameDataset`, bit for bit.
    """

    def __init__(
        self,
        cache: str | os.PathLike,
        split: Literal["train", "test"] = "train",
        time_steps: int = 16,
        size: int = 64,
        split_by: Literal["number", "time"] = "number",
        channels: Literal[2, 3] = 3,
        transform: Callable[[Tensor], Tensor] | None = None,
        event_transform: Callable[[np.ndarray], np.ndarray] | None = None,
        target_transform: Callable[[int], Any] | None = None,
    ) -> None:
        self.meta, self._rows, self.targets = open_split(cache, split, channels, "events")
        self.path = self.meta.path
        self._reader = EventCacheReader(self.meta)
        self.build_id = self.meta.build_id
        self.sensor = self.meta.sensor
        self.split, self.channels = split, int(channels)
        self.to_frames = EventsToFrames(time_steps, size, split_by, 2, self.meta.sensor)
        self.transform, self.event_transform = transform, event_transform
        self.target_transform = target_transform
        self.classes: list[str] = list(self.meta.classes)
        height, width = size_hw(parse_size(size))
        self.sample_shape = (int(time_steps), 2, height, width)  # [T, 2, h, w]

    def __len__(self) -> int:
        return len(self._rows)

    def events(self, index: int) -> np.ndarray:
        """The stored events of item ``index`` (before any event transform)."""
        n = len(self._rows)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        return self._reader.read(int(self._rows[index]))

    def __getitem__(self, index: int) -> tuple[Tensor, Any]:
        events = self.events(index)
        if self.event_transform is not None:
            events = self.event_transform(events)
        frames = torch.from_numpy(self.to_frames(events))  # [T, 2, h, w]
        return finish_item(self, frames, index)

    def close(self) -> None:
        """Close this process's file handle (it reopens on the next item)."""
        self._reader.close()

    def __repr__(self) -> str:
        return dataset_repr(
            self,
            f"binning={self.to_frames!r}",
            event_transform=self.event_transform,
            transform=self.transform,
        )
