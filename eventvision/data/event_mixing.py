"""EventMix as a training option: each item mixed with a random partner, with soft targets.

`EventMixDataset` wraps a training `EventDataset`: item i's events (after the dataset's
``event_transform``, e.g. NDA) get a random space-time box of a random partner's events pasted
in (`event_mix`), are binned as the dataset bins, and come with a soft target whose two label
weights are the shares of the mixed events from each sample. See docs/data.md ("EventMix")
and docs/training.md ("Event augmentation").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError
from .dataset import finish_item
from .event_dataset import EventDataset
from .event_transforms import MixedSample, event_mix

__all__ = ["EventMixDataset", "PAIR_AUGMENTATIONS", "soft_target", "torch_drawn_rng"]

PAIR_AUGMENTATIONS = ("eventmix",)  # names that mix two samples: not per-sample transforms


def torch_drawn_rng() -> np.random.Generator:
    """A numpy generator seeded from torch's RNG, which the trainer seeds per run, epoch and worker.

    Checkpoints save torch's RNG, so a resumed run draws as an uninterrupted one.
    """
    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


def soft_target(
    labels: tuple[int, int], weights: tuple[float, float], num_classes: int, smoothing: float
) -> Tensor:
    """float32 ``[num_classes]``: ``weights`` on ``labels``, smoothed as the trainer's mixup.

    ``(1 - smoothing) * (w_a e_a + w_b e_b) + smoothing / num_classes``, the target timm's mixup
    gives for the same two labels and weights.
    """
    target = torch.full((num_classes,), smoothing / num_classes, dtype=torch.float64)
    for label, weight in zip(labels, weights, strict=True):
        target[label] += (1.0 - smoothing) * weight
    return target.float()


class EventMixDataset(Dataset):
    """`(float32 [T, C, h, w], float32 [num_classes] soft target)` of EventMix on ``dataset``.

    Args:
        dataset: the training `EventDataset`; its ``event_transform`` runs on both samples
            before they are mixed, and its binning, ``transform`` and channels after.
        num_classes: length of the soft target.
        label_smoothing: as the trainer's ``label_smoothing`` (the loss of soft targets does
            not smooth them itself).
        prob: probability that an item is mixed; unmixed items get the (smoothed) one-hot target.
        rng: a function giving each item's generator (default: drawn from torch's RNG).
    """

    def __init__(
        self,
        dataset: EventDataset,
        num_classes: int,
        label_smoothing: float = 0.0,
        prob: float = 1.0,
        rng: Callable[[], np.random.Generator] = torch_drawn_rng,
    ) -> None:
        if not isinstance(dataset, EventDataset):
            raise ConfigError(f"EventMix mixes events: expected an EventDataset, got {dataset!r}")
        if not 0.0 <= label_smoothing < 1.0 or not 0.0 <= prob <= 1.0:
            raise ConfigError(
                f"label_smoothing={label_smoothing}, prob={prob}: expected [0, 1) and [0, 1]"
            )
        if len(dataset) == 0 or num_classes <= int(dataset.targets.max()):
            raise ConfigError(f"num_classes={num_classes} does not cover the labels of {dataset}")
        self.dataset, self.num_classes = dataset, int(num_classes)
        self.label_smoothing, self.prob, self.rng = float(label_smoothing), float(prob), rng
        self.targets = dataset.targets

    def __len__(self) -> int:
        return len(self.dataset)

    def mixed_sample(self, index: int, rng: np.random.Generator) -> MixedSample:
        """Item ``index`` mixed with a partner drawn from ``rng`` (and the box, from ``rng``)."""
        ds = self.dataset
        partner = int(rng.integers(len(ds)))
        samples = []
        for i in (index, partner):
            events = ds.events(i)
            if ds.event_transform is not None:
                events = ds.event_transform(events)
            samples.append((events, int(ds.targets[i])))
        return event_mix(samples[0], samples[1], rng, ds.sensor)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        rng = self.rng()
        if rng.random() < self.prob:
            mixed = self.mixed_sample(index, rng)
        else:
            events = self.dataset.events(index)
            if self.dataset.event_transform is not None:
                events = self.dataset.event_transform(events)
            label = int(self.dataset.targets[index])
            mixed = MixedSample(events, (label, label), (1.0, 0.0))
        frames = torch.from_numpy(self.dataset.to_frames(mixed.events))  # [T, 2, h, w]
        frames, _ = finish_item(_NoTarget(self.dataset), frames, index)
        return frames, soft_target(mixed.labels, mixed.weights, self.num_classes,
                                   self.label_smoothing)  # fmt: skip

    def close(self) -> None:
        """Close the wrapped dataset's file handle."""
        self.dataset.close()

    def __repr__(self) -> str:
        inner = "\n".join("    " + line for line in repr(self.dataset).splitlines())
        return (
            f"{type(self).__name__}(num_classes={self.num_classes}, label_smoothing="
            f"{self.label_smoothing}, prob={self.prob},\n{inner}\n)"
        )


class _NoTarget:
    """``dataset`` as `finish_item` sees it, its target transform left out (targets are soft)."""

    def __init__(self, dataset: Any) -> None:
        self.transform, self.channels = dataset.transform, dataset.channels
        self.targets, self.target_transform = dataset.targets, None
