"""The datasets a pipeline's ``[data]`` table describes, checked against the pipeline."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ..cache.options import size_hw
from ..errors import CacheError, CacheMismatchError, ConfigError
from .config import DataSpec, Pipeline

__all__ = [
    "build_datasets",
    "build_validation",
    "image_transform_kwargs",
    "validation_split",
    "validation_identity",
]


def validation_split(
    targets: np.ndarray, fraction: float, seed: int, classes: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(train indices, validation indices)``: a seeded per-class share of a train split.

    Class ``c`` with ``n_c`` samples gives ``round(fraction * n_c)`` of them, drawn by
    ``numpy.random.default_rng(seed)`` in label order, to validation; both index lists are
    sorted. ``fraction = 0`` keeps every sample for training.

    Raises:
        ConfigError: a class would get no validation sample, or no training sample.
    """
    targets = np.asarray(targets, dtype=np.int64)
    if fraction <= 0:
        return np.arange(len(targets)), np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(int(seed))
    held = []
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        take = int(round(fraction * len(members)))
        name = classes[label] if classes is not None and label < len(classes) else str(label)
        if not 0 < take < len(members):
            what = "no validation sample" if take == 0 else "no training sample"
            raise ConfigError(
                f"--val-fraction {fraction} leaves class {name!r} ({len(members)} train "
                f"samples) with {what}; choose a fraction between {1 / len(members):.3g} and "
                f"{1 - 1 / len(members):.3g}, or 0 for no validation"
            )
        held.append(rng.permutation(members)[:take])
    val = np.sort(np.concatenate(held))
    return np.setdiff1d(np.arange(len(targets)), val), val


def validation_identity(pipeline: Pipeline, validation: Any) -> dict[str, Any]:
    """What ``data.json`` records of the validation split: fraction, seed, size, index hash."""
    if validation is None:
        return {"fraction": 0.0}
    indices = np.asarray(validation.split_indices, dtype="<i8")
    return {
        "fraction": pipeline.data.val_fraction,
        "seed": pipeline.train.seed,
        "samples": len(indices),
        "indices_sha256": hashlib.sha256(indices.tobytes()).hexdigest()[:16],
    }


def _take(dataset: Any, indices: np.ndarray) -> Any:
    """A shallow copy of a frame, event or image dataset restricted to ``indices``."""
    out = copy.copy(dataset)
    out.split_indices = indices  # positions in the whole train split (data.json)
    out.targets = dataset.targets[indices]
    if hasattr(dataset, "_rows"):  # FrameDataset, EventDataset: rows of the cache
        out._rows = dataset._rows[indices]
    else:  # StaticImageDataset: pixels (CIFAR) or files (folder)
        if dataset._data is not None:
            out._data = dataset._data[indices]
        out._files = [dataset._files[i] for i in indices] if dataset._files else []
    return out


def _hold_out(pipeline: Pipeline, train: Any) -> Any:
    """The train split without its validation share (unchanged without ``val_fraction``)."""
    fraction = pipeline.data.val_fraction
    if fraction <= 0:
        return train
    kept, _ = validation_split(train.targets, fraction, pipeline.train.seed, train.classes)
    return _take(train, kept)


def build_validation(pipeline: Pipeline, allow_stale: bool = False) -> Dataset | None:
    """The validation share of the train split, unaugmented; ``None`` without ``val_fraction``.

    Raises:
        ConfigError: as :func:`validation_split`, and as :func:`build_datasets`.
    """
    fraction = pipeline.data.val_fraction
    if fraction <= 0:
        return None
    whole = replace(pipeline, data=replace(pipeline.data, val_fraction=0.0))
    train, _, classes = build_datasets(whole, augment=False, allow_stale=allow_stale)
    _, val = validation_split(train.targets, fraction, pipeline.train.seed, classes)
    return _take(train, val)


def image_transform_kwargs(spec: DataSpec) -> dict[str, Any]:
    """The `[data]` values that ``eventvision.data.image_transform`` takes (docs/training.md)."""
    return {
        "size": spec.size,
        "normalize": spec.normalize,
        "augment": spec.augment,
        "crop_scale": tuple(spec.crop_scale),
        "crop_ratio": tuple(spec.crop_ratio),
        "hflip": spec.hflip,
        "color_jitter": spec.color_jitter,
        "interpolation": spec.interpolation,
        "test_crop_pct": spec.test_crop_pct,
    }


def build_datasets(
    pipeline: Pipeline, augment: bool = True, allow_stale: bool = False
) -> tuple[Dataset, Dataset, list[str]]:
    """``(train, test, class names)`` for the pipeline's data, with the recipe's augmentation.

    With ``[data] val_fraction`` the train split is returned without its validation share
    (:func:`build_validation` gives that share). ``allow_stale`` uses a cache whose raw
    sources changed since its build (``--allow-stale``).

    Raises:
        ConfigError: no data path, or an augmentation that does not fit the format.
        CacheError: a missing or unreadable cache; CacheMismatchError when its time steps,
            size or dataset differ from the pipeline's, or its sources changed and not
            ``allow_stale``.
    """
    spec = pipeline.data
    if not spec.path:
        kind = "an HDF5 frame cache" if spec.format == "frames" else "an image folder"
        raise ConfigError(f"pipeline {pipeline.name!r} needs data: give --data with {kind}")
    if spec.format == "frames":
        return _frame_datasets(pipeline, augment, allow_stale)
    return _image_datasets(pipeline, augment)


def _frame_datasets(
    pipeline: Pipeline, augment: bool, allow_stale: bool
) -> tuple[Dataset, Dataset, list[str]]:
    from ..data import DVSAugment, FrameDataset

    spec = pipeline.data
    path = Path(spec.path)
    if not path.is_file():
        raise CacheError(
            f"{path}: no such cache file; build it with `eventvision preprocess` first"
        )
    if _is_event_cache(path):
        return _event_datasets(pipeline, augment, allow_stale)
    if spec.augment not in ("dvs", "none"):
        _refuse_event_augmentation(path, spec.augment)
        raise ConfigError(
            f"[data] augment {spec.augment!r} is for images; frame caches take dvs or none"
        )
    # seed=None: augmentation draws from torch's global RNG, which make_loader seeds for every
    # item from (seed, epoch, index): a resumed run augments exactly as an uninterrupted one.
    transform = DVSAugment(seed=None) if augment and spec.augment == "dvs" else None
    train = FrameDataset(path, "train", channels=spec.channels, transform=transform)
    test = FrameDataset(path, "test", channels=spec.channels)
    _check_splits(pipeline, path, train, test, allow_stale)
    train = _hold_out(pipeline, train)
    time_steps, _, height, width = train.sample_shape
    if (time_steps, height, width) != (spec.time_steps, *size_hw(spec.size)):
        raise CacheMismatchError(
            f"{path}: cache holds T={time_steps} frames of {height}x{width} px, but pipeline "
            f"{pipeline.name!r} expects time_steps={spec.time_steps}, size={spec.size}; "
            f"rebuild with `eventvision preprocess ... --time-steps {spec.time_steps} --size "
            f"{_size_text(spec.size)}` or pass --time-steps {time_steps} --size "
            f"{_size_text((height, width))}"
        )
    classes = train.classes or [str(i) for i in range(int(train.targets.max()) + 1)]
    return train, test, list(classes)


def _check_splits(pipeline: Pipeline, path: Path, train: Any, test: Any, allow_stale: bool) -> None:
    """One build for both splits, sources unchanged, the recipe's dataset, no empty split."""
    from ..cache.reader import check_sources

    if test.build_id != train.build_id:
        raise CacheError(f"{path} was rebuilt while it was being opened; run again")
    check_sources(path, train.meta.manifest, train.meta.raw_root, allow_stale=allow_stale)
    cached, expected = train.meta.dataset, pipeline.data.dataset
    if expected and cached != expected:
        raise CacheMismatchError(
            f"{path}: cache holds dataset {cached!r}, pipeline {pipeline.name!r} expects "
            f"{expected!r}"
        )
    if len(train) == 0 or len(test) == 0:
        raise CacheError(
            f"{path}: {len(train)} train and {len(test)} test samples; both splits are needed"
        )


def _size_text(size: int | tuple[int, int]) -> str:
    """``64`` or ``48x64``, as ``--size`` takes it."""
    h, w = size_hw(size)
    return str(h) if h == w else f"{h}x{w}"


def _is_event_cache(path: Path) -> bool:
    """True for a cache written with ``preprocess --store events`` (docs/training.md)."""
    from ..cache.reader import read_header

    return read_header(path).get("store", "frames") == "events"


def _refuse_event_augmentation(path: Path, name: str) -> None:
    """An event augmentation asked of a frame cache: say what to build instead."""
    from ..data import EVENT_AUGMENTATIONS
    from ..data.event_mixing import PAIR_AUGMENTATIONS

    known = (*EVENT_AUGMENTATIONS, *PAIR_AUGMENTATIONS)
    if all(part in known for part in name.split("+")):
        raise ConfigError(
            f"[data] augment {name!r} is an event augmentation, but {path} is a frame cache; "
            "build an event cache with `eventvision preprocess ... --store events`"
        )


class _TorchDrawn:
    """An event transform whose generator is drawn from torch's RNG for every sample.

    As `DVSAugment(seed=None)`: make_loader seeds torch's RNG for every item from (seed, epoch,
    index), so a resumed run augments exactly as an uninterrupted one, with any worker count.
    """

    def __init__(self, transform: Callable[..., Any]) -> None:
        self.transform = transform

    def __call__(self, events: Any) -> Any:
        from ..data.event_mixing import torch_drawn_rng

        return self.transform(events, torch_drawn_rng())

    def __repr__(self) -> str:
        return f"{self.transform!r} (drawn from torch's RNG)"


def _event_datasets(
    pipeline: Pipeline, augment: bool, allow_stale: bool
) -> tuple[Dataset, Dataset, list[str]]:
    """Train and test EventDatasets binned to the pipeline's T and size; event augmentation.

    ``[data] augment`` names an event augmentation (`make_event_augmentation`: nda, eventdrop,
    flip+eventdrop, ...) or none, optionally with ``eventmix`` (e.g. ``nda+eventmix``), which
    wraps the train split in `EventMixDataset`; the randomness comes from torch's RNG.
    """
    from ..data import EventDataset, make_event_augmentation

    spec, path = pipeline.data, Path(pipeline.data.path)
    if spec.augment == "dvs":
        raise ConfigError(
            f"[data] augment 'dvs' is a frame augmentation; {path} is an event cache: name an "
            "event augmentation (nda, eventdrop, ...) or none"
        )
    binning = {"time_steps": spec.time_steps, "size": spec.size, "channels": spec.channels}
    train = EventDataset(path, "train", **binning)
    per_sample, eventmix = _split_eventmix(pipeline)
    if per_sample != "none":  # validated even when not used (evaluation)
        transform = _TorchDrawn(make_event_augmentation(per_sample, train.sensor))
        train.event_transform = transform if augment else None
    test = EventDataset(path, "test", **binning)
    _check_splits(pipeline, path, train, test, allow_stale)
    train = _hold_out(pipeline, train)
    if eventmix and augment:
        from ..data.event_mixing import EventMixDataset

        smoothing = pipeline.train.label_smoothing
        return EventMixDataset(train, len(train.classes), smoothing), test, list(train.classes)
    return train, test, list(train.classes)


def _split_eventmix(pipeline: Pipeline) -> tuple[str, bool]:
    """``[data] augment`` as (the per-sample part or "none", whether EventMix is on).

    EventMix's soft targets replace mixup's: both at once is a ConfigError.
    """
    parts = pipeline.data.augment.split("+")
    eventmix = "eventmix" in parts
    if eventmix and pipeline.train.mixes:
        raise ConfigError(
            f"[data] augment {pipeline.data.augment!r}: EventMix mixes samples and their labels "
            "itself; turn mixup and cutmix off (--set train.mixup_prob=0)"
        )
    rest = [part for part in parts if part != "eventmix"]
    return ("+".join(rest) or "none"), eventmix


def _image_datasets(pipeline: Pipeline, augment: bool) -> tuple[Dataset, Dataset, list[str]]:
    from ..data import StaticImageDataset, image_transform

    spec = pipeline.data
    if spec.augment == "dvs":
        raise ConfigError("[data] augment 'dvs' is for frame caches; images take none or rand-...")
    kwargs = image_transform_kwargs(spec)
    try:  # built before loading anything, so a bad augment string fails first
        train_tf = image_transform(augment, **kwargs)
        test_tf = image_transform(False, **kwargs)
    except ConfigError as e:
        raise ConfigError(f"[data] {e}") from None
    train = StaticImageDataset(spec.path, "train", transform=train_tf, size=spec.size)
    test = StaticImageDataset(spec.path, "test", transform=test_tf, size=spec.size)
    return _hold_out(pipeline, train), test, list(train.classes)
