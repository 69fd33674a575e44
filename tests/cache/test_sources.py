"""The registry of sources: every source builds a cache equal to binning its dataset's events."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from eventvision.cache import CacheOptions, open_cache, sample_frames, write_cache
from eventvision.datasets import open_dataset
from eventvision.datasets.folder import read_event_file
from eventvision.datasets.registry import (
    SPLIT_CODES,
    Listing,
    Source,
    get_source,
    list_sources,
    register_source,
)
from eventvision.errors import ConfigError
from eventvision.events import Sensor
from eventvision.synth.atis import make_ncaltech101, make_nmnist


def _cached(path: Path) -> dict[tuple[str, int], tuple[np.ndarray, int, int]]:
    """``(source, row) -> (frames, label, split)`` of every sample of a cache."""
    with h5py.File(path, "r") as f:
        sources, rows = f["source"].asstr()[:], f["row"][:]
        frames, labels, split = f["frames"][:], f["labels"][:], f["split"][:]
    return {
        (s, int(r)): (frames[i], int(labels[i]), int(split[i]))
        for i, (s, r) in enumerate(zip(sources, rows, strict=True))
    }


def _dataset_key(ds, i: int, root: Path) -> tuple[str, int]:
    sample = ds.samples[i]
    path = getattr(sample, "path", None) or sample.recording
    return path.relative_to(root).as_posix(), getattr(sample, "row", -1)


def _assert_equals_dataset(options: CacheOptions, root: Path, out: Path, **kwargs) -> int:
    """Every cached sample equals ``sample_frames`` of the dataset's own events for it."""
    cached = _cached(out)
    seen = 0
    for split, code in SPLIT_CODES.items():
        ds = open_dataset(options.dataset, root, split, **kwargs)
        for i in range(len(ds)):
            events, label = ds[i]
            frames, cached_label, cached_split = cached[_dataset_key(ds, i, root)]
            assert (cached_label, cached_split) == (label, code)
            assert np.array_equal(frames, sample_frames(events, options))
            seen += 1
    assert seen == len(cached)
    return seen


@pytest.fixture(scope="module")
def nmnist_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nmnist")
    make_nmnist(root, per_class=1, seed=0, duration_us=20_000)
    return root


@pytest.fixture(scope="module")
def ncaltech_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ncaltech")
    make_ncaltech101(root, per_class=1, seed=0, duration_us=10_000)
    return root


def test_registry_lists_the_sources_and_refuses_unknown_and_twice():
    assert {"cifar10-dvs", "dvs-gesture", "nmnist", "ncaltech101", "folder"} <= set(list_sources())
    with pytest.raises(ConfigError, match="did you mean \\['nmnist'\\]"):
        get_source("nmnsit")
    with pytest.raises(ConfigError, match="already registered"):
        register_source(get_source("nmnist"))


def test_a_new_source_is_one_registration(tmp_path, raw, monkeypatch):
    """A source registered at run time builds a cache with no change to the cache code."""
    from eventvision.datasets import registry
    from eventvision.io import NMNIST_INFO, read_atis_bin, write_atis_bin

    # registered for this test only: later tests (docs/cli.md's choices) see the real registry
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    events = raw.random_raw_events(300, seed=1)
    events["x"] %= 34
    events["y"] %= 34
    (tmp_path / "raw").mkdir()
    write_atis_bin(tmp_path / "raw" / "a.bin", events)

    def lister(root, options):
        return Listing(
            [s._replace(split=k) for k, s in enumerate([_sample("a.bin"), _sample("a.bin")])],
            None,
            ["a.bin"],
        )

    name = "test-one-file"
    if name not in list_sources():
        register_source(Source(name, lister, read_atis_bin, NMNIST_INFO))
    options = CacheOptions(name, time_steps=3, size=17)
    write_cache(options, tmp_path / "raw", tmp_path / "c.h5")
    meta = open_cache(tmp_path / "c.h5")
    assert (meta.n_train, meta.n_test, meta.classes) == (1, 1, NMNIST_INFO.classes)
    with h5py.File(tmp_path / "c.h5", "r") as f:
        expected = sample_frames(read_atis_bin(tmp_path / "raw" / "a.bin"), options)
        assert np.array_equal(f["frames"][0], expected)


def _sample(source: str):
    from eventvision.datasets.registry import SourceSample

    return SourceSample(0, 3, source, -1, 0, 0)


@pytest.mark.parametrize("name", ["cifar10-dvs", "dvs-gesture"])
def test_original_sources_equal_binning_their_dataset(name, cifar_root, gesture_root, tmp_path):
    root = cifar_root if name == "cifar10-dvs" else gesture_root
    options = CacheOptions(name, time_steps=3, size=24)
    write_cache(options, root, tmp_path / "c.h5")
    kwargs = {"layout": "original"}
    assert _assert_equals_dataset(options, root, tmp_path / "c.h5", **kwargs) > 0


def test_nmnist_source_equals_binning_the_dataset(nmnist_root, tmp_path):
    options = CacheOptions("nmnist", time_steps=3, size=16)
    write_cache(options, nmnist_root, tmp_path / "c.h5")
    meta = open_cache(tmp_path / "c.h5")
    assert (meta.n_train, meta.n_test, meta.sensor) == (10, 10, Sensor(34, 34))
    assert _assert_equals_dataset(options, nmnist_root, tmp_path / "c.h5") == 20


def test_ncaltech101_source_equals_binning_the_dataset_non_square(ncaltech_root, tmp_path):
    options = CacheOptions("ncaltech101", time_steps=2, size=(12, 16), seed=3)
    write_cache(options, ncaltech_root, tmp_path / "c.h5", workers=1)
    meta = open_cache(tmp_path / "c.h5")
    assert meta.size == (12, 16) and meta.frame_shape == (2, 2, 12, 16)
    assert len(meta.classes) == 101
    assert _assert_equals_dataset(options, ncaltech_root, tmp_path / "c.h5", seed=3) == 101


def test_original_options_hash_is_unchanged():
    """The two originals' option dicts carry no new key, so their hashes (and files) stay."""
    for name in ("cifar10-dvs", "dvs-gesture"):
        d = CacheOptions(name).to_dict()
        assert not {"sensor_size", "classes", "test_fraction"} & set(d)
    assert CacheOptions("cifar10-dvs", size=(64, 64)).hash() == CacheOptions("cifar10-dvs").hash()


@pytest.mark.parametrize("bad", ["0", "3x", "x4", "4x5x6", "-2", "ax3"])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ConfigError, match="size"):
        CacheOptions("nmnist", size=bad)


def test_folder_options_need_a_sensor_and_classes():
    with pytest.raises(ConfigError, match="sensor_size"):
        CacheOptions("folder")
    assert read_event_file  # the folder reader is what the folder source reads with
    assert get_source("folder").read is read_event_file


def test_layout_and_orientation_are_options_and_defaults_keep_old_hashes():
    base = CacheOptions("cifar10-dvs")
    assert CacheOptions("cifar10-dvs", layout="original").hash() == base.hash()
    tonic = CacheOptions("cifar10-dvs", layout="tonic")
    assert tonic.hash() != base.hash() and tonic.to_dict()["layout"] == "tonic"
    assert "layout" not in base.to_dict() and "orientation" not in base.to_dict()
    folder = {"sensor_size": (40, 30), "classes": ("a", "b")}
    raw = CacheOptions("folder", **folder)
    assert CacheOptions("folder", orientation="raw", **folder).hash() == raw.hash()
    assert CacheOptions("folder", orientation="jaer", **folder).to_dict()["orientation"] == "jaer"
    with pytest.raises(ConfigError, match="layout must be one of"):
        CacheOptions("dvs-gesture", layout="mine")
    with pytest.raises(ConfigError, match="orientation must be one of"):
        CacheOptions("folder", orientation="upside", **folder)
    with pytest.raises(ConfigError, match="needs the raw root"):
        CacheOptions("cifar10-dvs", layout="auto")
