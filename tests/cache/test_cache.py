"""The HDF5 cache: contract layout, exact frames, reuse, mismatch, staleness, workers, shards."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import hdf5plugin
import numpy as np
import pytest

from eventvision.cache import (
    CacheOptions,
    cache_stats,
    merge_shards,
    open_cache,
    sample_frames,
    write_cache,
)
from eventvision.datasets import CIFAR10DVS, DVSGesture, cut_recording
from eventvision.errors import CacheError, CacheMismatchError, ConfigError, FormatError
from eventvision.io import write_aedat2

CIFAR = CacheOptions("cifar10-dvs", time_steps=4, size=32)
GESTURE = CacheOptions("dvs-gesture", time_steps=3, split_by="time", size=16)


@pytest.fixture(scope="module")
def cifar_cache(cifar_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "cifar.h5"
    write_cache(CIFAR, cifar_root, out, block_samples=4)
    return out


def test_layout_follows_the_contract(cifar_cache, cifar_root):
    with h5py.File(cifar_cache, "r") as f:
        n = 30
        assert f["frames"].shape == (n, 4, 2, 32, 32) and f["frames"].dtype == np.float32
        assert f["frames"].chunks == (1, 4, 2, 32, 32)
        first_filter = f["frames"].id.get_create_plist().get_filter(0)
        assert first_filter[0] == hdf5plugin.Bitshuffle.filter_id  # the default, bitshuffle-lz4
        assert f["labels"].dtype == np.int64 and f["split"].dtype == np.uint8
        assert f["row"].dtype == np.int64 and f["n_events"].dtype == np.int64
        assert h5py.check_string_dtype(f["source"].dtype).encoding == "utf-8"
        assert f["split"][:].tolist() == [0] * 20 + [1] * 10
        assert set(f["row"][:]) == {-1}
        a = f.attrs
        assert a["dataset"] == "cifar10-dvs" and a["complete"] == True  # noqa: E712
        assert json.loads(a["classes"])[0] == "airplane" and len(json.loads(a["classes"])) == 10
        assert (a["time_steps"], a["split_by"], a["size"]) == (4, "number", 32)
        assert json.loads(a["sensor"]) == [128, 128, 2] and a["compression"] == "bitshuffle-lz4"
        assert a["options_hash"] == CIFAR.hash() and json.loads(a["options"]) == CIFAR.to_dict()
        manifest = json.loads(a["manifest"])
        assert len(manifest) == 30 and manifest[0][0] == "airplane/cifar10_airplane_0.aedat"
        assert "eventvision_version" in a


def test_frames_equal_the_float32_reference(cifar_cache, cifar_root):
    samples = {"train": CIFAR10DVS(cifar_root, "train"), "test": CIFAR10DVS(cifar_root, "test")}
    ordered = [(ds, i) for ds in samples.values() for i in range(len(ds))]
    with h5py.File(cifar_cache, "r") as f:
        for n in (0, 7, 19, 20, 29):
            ds, i = ordered[n]
            events, label = ds[i]
            assert f["source"].asstr()[n] == ds.samples[i].path.relative_to(cifar_root).as_posix()
            assert f["labels"][n] == label and f["n_events"][n] == len(events)
            assert np.array_equal(f["frames"][n], sample_frames(events, CIFAR))


def test_open_cache_reports_metadata(cifar_cache):
    meta = open_cache(cifar_cache)
    assert (meta.n_samples, meta.n_train, meta.n_test) == (30, 20, 10)
    assert meta.frame_shape == (4, 2, 32, 32) and meta.stale == []
    with pytest.raises(CacheMismatchError, match="size: 32 .existing. vs 64 .requested."):
        open_cache(cifar_cache, expected=CacheOptions("cifar10-dvs", time_steps=4, size=64))
    stats = cache_stats(cifar_cache)
    assert stats.per_class["train"]["bird"] == 2 and stats.per_class["test"]["bird"] == 1
    assert stats.events["min"] == 500


def test_reused_when_options_and_sources_match(cifar_cache, cifar_root):
    mtime = cifar_cache.stat().st_mtime_ns
    report = write_cache(CIFAR, cifar_root, cifar_cache)
    assert report.reused and cifar_cache.stat().st_mtime_ns == mtime


def test_other_options_never_reuse_or_overwrite(cifar_cache, cifar_root):
    before = cifar_cache.read_bytes()
    other = CacheOptions("cifar10-dvs", time_steps=5, size=32)
    with pytest.raises(CacheMismatchError) as e:
        write_cache(other, cifar_root, cifar_cache)
    assert "time_steps: 4 (existing) vs 5 (requested)" in str(e.value)
    assert str(cifar_cache) in str(e.value)
    assert cifar_cache.read_bytes() == before


def test_changed_sources_make_the_cache_stale(cifar_root, tmp_path, raw):
    root = tmp_path / "raw"
    shutil.copytree(cifar_root, root)
    out = tmp_path / "c.h5"
    write_cache(CIFAR, root, out, block_samples=8)
    changed = root / "cat" / "cifar10_cat_1.aedat"
    size = changed.stat().st_size
    write_aedat2(changed, raw.random_raw_events(501, seed=99))
    expected = f"cat/cifar10_cat_1.aedat: size {size} -> {changed.stat().st_size} bytes"
    assert open_cache(out).stale == [expected]
    with pytest.raises(CacheMismatchError, match="stale"):
        write_cache(CIFAR, root, out)
    report = write_cache(CIFAR, root, out, overwrite=True)
    assert not report.reused and open_cache(out).stale == []


def test_two_workers_equal_one(cifar_cache, cifar_root, tmp_path, raw):
    out = tmp_path / "w2.h5"
    write_cache(CIFAR, cifar_root, out, workers=2, block_samples=4)
    raw.assert_same_content(out, cifar_cache)


def test_shards_merge_into_the_single_run_cache(cifar_cache, cifar_root, tmp_path, raw):
    shards = [tmp_path / f"s{i}.h5" for i in range(3)]
    for i, path in enumerate(shards):
        write_cache(CIFAR, cifar_root, path, shard=(i, 3), block_samples=4)
    with pytest.raises(CacheError, match="shard 1/3 of a cache"):
        open_cache(shards[1])
    with pytest.raises(CacheError, match="missing shard"):
        merge_shards(shards[:2], tmp_path / "m.h5")
    merge_shards(shards[::-1], tmp_path / "m.h5")
    raw.assert_same_content(tmp_path / "m.h5", cifar_cache)


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_compression_options_keep_the_frames(cifar_cache, cifar_root, tmp_path, compression):
    options = CacheOptions("cifar10-dvs", time_steps=4, size=32, compression=compression)
    out = tmp_path / f"{compression}.h5"
    write_cache(options, cifar_root, out)
    with h5py.File(out) as f, h5py.File(cifar_cache) as g:
        assert f["frames"].compression == (None if compression == "none" else "gzip")
        assert np.array_equal(f["frames"][:], g["frames"][:])


def test_gesture_cache_holds_one_sample_per_csv_row(gesture_root, tmp_path):
    out = tmp_path / "g.h5"
    write_cache(GESTURE, gesture_root, out, workers=2)
    train = DVSGesture(gesture_root, "train")
    with h5py.File(out) as f:
        assert len(f["labels"]) == 12 and f["split"][:].tolist() == [0] * 6 + [1] * 6
        assert f["row"][:6].tolist() == [s.row for s in train.samples]
        assert f["source"].asstr()[0] == "DvsGesture/user01_fluorescent.aedat"
        for n, s in enumerate(train.samples):
            events = cut_recording(train.recording_events(s.recording), s.start_us, s.end_us)
            assert f["labels"][n] == s.label and f["n_events"][n] == len(events)
            assert np.array_equal(f["frames"][n], sample_frames(events, GESTURE))
        manifest = [m[0] for m in json.loads(f.attrs["manifest"])]
    assert "DvsGesture/trials_to_test.txt" in manifest
    assert "DvsGesture/user02_lab_labels.csv" in manifest


def test_corrupt_source_stops_naming_it_and_keeps_the_work(cifar_root, tmp_path):
    root = tmp_path / "raw"
    shutil.copytree(cifar_root, root)
    bad = root / "dog" / "cifar10_dog_1.aedat"
    bad.write_bytes(bad.read_bytes()[:-3])
    out = tmp_path / "c.h5"
    with pytest.raises(FormatError, match="dog/cifar10_dog_1.aedat"):
        write_cache(CIFAR, root, out, block_samples=2)
    assert not out.exists()
    assert len(list((tmp_path / "c.h5.parts").glob("block-*.h5"))) == 5  # 10 samples before it
    # overwrite concerns OUT only: the parts of this very build are still resumed
    report = write_cache(CIFAR, root, out, block_samples=2, skip_bad=True, overwrite=True)
    assert report.resumed_blocks == 5
    assert [s[0] for s in report.skipped] == ["dog/cifar10_dog_1.aedat"]
    assert "truncated" in report.skipped[0][2]
    meta = open_cache(out)
    assert meta.n_samples == 29 and len(meta.skipped) == 1
    with h5py.File(out) as f:
        assert "dog/cifar10_dog_1.aedat" not in set(f["source"].asstr()[:])


def test_a_reader_never_sees_a_half_written_cache(cifar_root, tmp_path):
    out = tmp_path / "c.h5"
    seen = []
    write_cache(
        CIFAR, cifar_root, out, block_samples=4, progress=lambda n, e: seen.append(out.exists())
    )
    assert seen and not any(seen)
    assert not (tmp_path / "c.h5.parts").exists() and not (tmp_path / "c.h5.tmp").exists()


def test_incomplete_file_is_refused(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.attrs["options_hash"] = "abc"
        f.attrs["complete"] = False
    with pytest.raises(CacheError, match="incomplete"):
        open_cache(path)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(CacheError, match="not a readable HDF5 file"):
        open_cache(tmp_path / "junk.h5")


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError, match="split_by"):
        CacheOptions("cifar10-dvs", split_by="duration")
    with pytest.raises(ConfigError, match="unknown dataset"):
        CacheOptions("mnist-dvs")


def test_parts_of_other_options_are_not_resumed(cifar_root, tmp_path):
    out = tmp_path / "c.h5"
    parts = tmp_path / "c.h5.parts"
    parts.mkdir()
    other = CacheOptions("cifar10-dvs", time_steps=2, size=32)
    (parts / "state.json").write_text(
        json.dumps({"options_hash": other.hash(), "options": other.to_dict()})
    )
    with pytest.raises(CacheMismatchError, match="time_steps: 2 .existing. vs 4 .requested."):
        write_cache(CIFAR, cifar_root, out)
    assert os.listdir(parts) == ["state.json"]


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_cifar_frames_oriented_on_counts_equal_oriented_events(raw, split_by):
    from eventvision.cache.build import _oriented_frames
    from eventvision.datasets import cifar10dvs_fix_orientation

    options = CacheOptions("cifar10-dvs", time_steps=5, split_by=split_by, size=48)
    events = raw.random_raw_events(5000, seed=3)
    expected = sample_frames(cifar10dvs_fix_orientation(events), options)
    assert np.array_equal(_oriented_frames(events, options), expected)
