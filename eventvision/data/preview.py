"""One sample of a cache as frames, for a look: what `eventvision show` draws.

A frame cache gives the stored frames; an event cache's events are binned (and, with an event
augmentation, binned again after it), so a binning or an augmentation can be judged before
training with it (docs/preprocess.md, "Looking at a cache").
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ..cache.reader import open_cache, read_sample
from ..errors import ConfigError
from .event_frames import EventsToFrames
from .event_transforms import make_event_augmentation

__all__ = ["SamplePreview", "preview_sample"]


class SamplePreview(NamedTuple):
    """``frames [T, 2, h, w]`` of one sample, its class and source, and after an augmentation."""

    frames: np.ndarray
    label: str
    source: str
    augmented: np.ndarray | None


def preview_sample(
    cache: str | os.PathLike,
    index: int = 0,
    *,
    time_steps: int | None = None,
    size: int | tuple[int, int] | None = None,
    split_by: str = "number",
    augment: str | None = None,
    seed: int = 0,
) -> SamplePreview:
    """Sample ``index`` (cache order) of ``cache`` as frames.

    Event caches are binned into ``time_steps`` (default 16) frames of ``size`` (default 64)
    by ``split_by``; ``augment`` names an event augmentation (`make_event_augmentation`, seeded
    with ``seed``) drawn as ``augmented``.

    Raises:
        ConfigError: binning or augmentation asked of a frame cache (binned at preprocess).
        IndexError: ``index`` outside the cache.
    """
    meta = open_cache(cache, check_sources=False)
    if meta.store == "frames":
        given = [
            k for k, v in (("time_steps", time_steps), ("size", size), ("augment", augment)) if v
        ]
        if given:
            raise ConfigError(
                f"{meta.path} is a frame cache (binned at preprocess); {', '.join(given)} apply "
                "to event caches (`preprocess --store events`)"
            )
        sample = read_sample(meta, index)
        return SamplePreview(sample.data, sample.label, sample.source, None)
    transform = make_event_augmentation(augment, meta.sensor, seed=seed) if augment else None
    to_frames = EventsToFrames(time_steps or 16, size or 64, split_by, 2, meta.sensor)
    sample = read_sample(meta, index)
    after = to_frames(transform(sample.data)) if transform is not None else None
    return SamplePreview(to_frames(sample.data), sample.label, sample.source, after)
