"""EventsToFrames equals what a frame cache gives through FrameDataset, bit for bit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest

from eventvision.cache import CacheOptions, write_cache
from eventvision.data import EventsToFrames, FrameDataset, make_event_augmentation
from eventvision.datasets import open_dataset
from eventvision.errors import ConfigError
from eventvision.events import DVS128, make_events
from tests.helpers import random_events


def _raw_release():
    """The cache tests' raw-release writer (tests/cache/raw_release.py)."""
    path = Path(__file__).resolve().parents[1] / "cache" / "raw_release.py"
    spec = importlib.util.spec_from_file_location("raw_release", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dataset_events(name: str, root: Path, split: str) -> dict[tuple[str, int], np.ndarray]:
    """The dataset's events of each sample, keyed as the cache's (source, row) columns."""
    dataset = open_dataset(name, root, split)
    keyed = {}
    for i, sample in enumerate(dataset.samples):
        path = sample.path if name == "cifar10-dvs" else sample.recording
        row = 0 if name == "cifar10-dvs" else sample.row
        keyed[(path.name, row)] = dataset[i][0]
    return keyed


@pytest.mark.parametrize(
    "name, split_by, size",
    [("cifar10-dvs", "number", 16), ("dvs-gesture", "time", 24), ("dvs-gesture", "number", 128)],
)
def test_frames_equal_the_frame_cache(tmp_path, name, split_by, size):
    raw = _raw_release()
    root = tmp_path / "raw"
    if name == "cifar10-dvs":
        raw.make_cifar_release(root, per_class=1, n_events=400)
    else:
        raw.make_gesture_release(root, n_events=2000)
    options = CacheOptions(name, time_steps=5, split_by=split_by, size=size)
    write_cache(options, root, tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5") as f:
        sources = [s.decode() if isinstance(s, bytes) else s for s in f["source"][...]]
        rows, split = f["row"][...], f["split"][...]
    to_frames = EventsToFrames(5, size, split_by)
    checked = 0
    for split_name, code in (("train", 0), ("test", 1)):
        events = _dataset_events(name, root, split_name)
        ds = FrameDataset(tmp_path / "c.h5", split_name)
        for i, r in enumerate(np.flatnonzero(split == code)):
            sample = events[(Path(sources[r]).name, int(rows[r]) if name != "cifar10-dvs" else 0)]
            expected = ds[i][0].numpy()
            got = to_frames(sample)
            assert got.dtype == np.float32 and got.shape == expected.shape
            assert np.array_equal(got, expected), f"{split_name} sample {i}"
            checked += 1
    assert checked == len(sources) > 0


def test_two_channels_and_an_empty_sample():
    events = random_events(1000, seed=0)
    three = EventsToFrames(4, 32)(events)
    two = EventsToFrames(4, 32, channels=2)(events)
    np.testing.assert_array_equal(three[:, :2], two)
    np.testing.assert_array_equal(three[:, 2], two[:, 0] + two[:, 1])
    empty = EventsToFrames(4, 32)(events[:0])
    assert empty.shape == (4, 3, 32, 32) and not empty.any()


def test_a_transform_that_empties_the_sample_gives_empty_frames():
    one = make_events([0], [60], [60], [1])
    drop_all = make_event_augmentation("drop-events", DVS128)
    drop_all.ratio = (1.0, 1.0)
    frames = EventsToFrames(16, 64)(drop_all(one, np.random.default_rng(0)))
    assert frames.shape == (16, 3, 64, 64) and not frames.any()


def test_bad_options_are_refused():
    for kwargs in ({"time_steps": 0}, {"split_by": "count"}, {"channels": 4}):
        with pytest.raises(ConfigError):
            EventsToFrames(**{"time_steps": 4, "size": 32, **kwargs})
