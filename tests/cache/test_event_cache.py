"""The event cache: events as the datasets yield them, with the frame cache's guarantees."""

from __future__ import annotations

from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from eventvision.cache import CacheOptions, cache_stats, merge_shards, open_cache, write_cache
from eventvision.cache import writer as writer_module
from eventvision.cache.events import (
    EVENT_COLUMNS,
    column_dtypes,
    create_event_layout,
    decode_event_columns,
    encode_event_columns,
    write_event_samples,
)
from eventvision.cache.reader import EventCacheReader
from eventvision.data import EventDataset, FrameDataset
from eventvision.datasets import open_dataset
from eventvision.errors import CacheError, CacheMismatchError
from eventvision.events import DVS128, Sensor, make_events


def _dataset_events(name: str, root: Path) -> dict[tuple[str, int], np.ndarray]:
    """Every sample's events as the datasets yield them, keyed as the cache's (source, row)."""
    keyed = {}
    for split in ("train", "test"):
        dataset = open_dataset(name, root, split)
        for i, sample in enumerate(dataset.samples):
            path = sample.path if name == "cifar10-dvs" else sample.recording
            keyed[(path.name, -1 if name == "cifar10-dvs" else sample.row)] = dataset[i][0]
    return keyed


@pytest.fixture(scope="module")
def event_caches(cifar_root, gesture_root, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """(raw root, event cache) per dataset, built in blocks of 4 samples."""
    out = tmp_path_factory.mktemp("event-caches")
    caches = {}
    for name, root in (("cifar10-dvs", cifar_root), ("dvs-gesture", gesture_root)):
        path = out / f"{name}.h5"
        write_cache(CacheOptions(name, store="events"), root, path, block_samples=4)
        caches[name] = (root, path)
    return caches


@pytest.mark.parametrize("name", ["cifar10-dvs", "dvs-gesture"])
def test_each_sample_holds_the_events_the_dataset_yields(event_caches, name):
    root, path = event_caches[name]
    expected = _dataset_events(name, root)
    with h5py.File(path, "r") as f:
        group, offsets = f["events"], f["offsets"][:]
        columns = {name: group[name][:] for name in EVENT_COLUMNS}
        t_first = group["t_first"][:]
        sources, rows = f["source"].asstr()[:], f["row"][:]
        for name, dtype in column_dtypes(DVS128).items():
            first_filter = group[name].id.get_create_plist().get_filter(0)
            assert first_filter[0] == hdf5plugin.Bitshuffle.filter_id  # the default
            assert group[name].dtype == dtype
        assert group["x"].dtype == group["y"].dtype == np.uint8  # a 128 px sensor
        assert "frames" not in f
    n_events = len(columns["t_step"])
    assert len(sources) == len(expected) and offsets[0] == 0 and offsets[-1] == n_events
    for i, (source, row) in enumerate(zip(sources, rows, strict=True)):
        lo, hi = offsets[i], offsets[i + 1]
        want = expected[(Path(source).name, int(row))]
        # The columns by hand: t is the first t plus the running sum of the int32 steps.
        assert np.array_equal(t_first[i] + np.cumsum(columns["t_step"][lo:hi]), want["t"])
        for name in ("x", "y", "p"):
            assert np.array_equal(columns[name][lo:hi], want[name]), (source, row, name)
        assert np.array_equal(EventCacheReader(path).read(i), want), (source, row)


@pytest.mark.parametrize(
    "name, time_steps, size, split_by",
    [
        ("cifar10-dvs", 5, 16, "number"),
        ("dvs-gesture", 4, 24, "time"),
        ("dvs-gesture", 3, 128, "number"),
    ],
)
def test_event_dataset_frames_equal_the_frame_cache_bit_for_bit(
    event_caches, tmp_path, name, time_steps, size, split_by
):
    root, path = event_caches[name]
    frames_path = tmp_path / "frames.h5"
    write_cache(
        CacheOptions(name, time_steps=time_steps, size=size, split_by=split_by), root, frames_path
    )
    for split in ("train", "test"):
        ours = EventDataset(path, split, time_steps, size, split_by)
        theirs = FrameDataset(frames_path, split)
        assert len(ours) == len(theirs) > 0 and ours.classes == theirs.classes
        for i in range(len(ours)):
            (a, label_a), (b, label_b) = ours[i], theirs[i]
            assert a.dtype == b.dtype and a.shape == b.shape == (time_steps, 3, size, size)
            assert label_a == label_b and np.array_equal(a.numpy(), b.numpy()), (split, i)


def test_the_event_cache_does_not_depend_on_the_binning_options(event_caches, tmp_path):
    root, path = event_caches["dvs-gesture"]
    other = CacheOptions("dvs-gesture", time_steps=3, size=32, store="events")
    assert other.hash() == CacheOptions("dvs-gesture", store="events").hash()
    assert write_cache(other, root, path).reused
    assert "time_steps" not in open_cache(path).options


def test_shards_merge_into_the_single_run_cache(gesture_root, tmp_path, raw):
    options = CacheOptions("dvs-gesture", store="events", compression="gzip")
    write_cache(options, gesture_root, tmp_path / "whole.h5")
    shards = [tmp_path / f"s{i}.h5" for i in range(3)]
    for i, shard in enumerate(shards):
        write_cache(options, gesture_root, shard, shard=(i, 3))
    merge_shards(shards[::-1], tmp_path / "merged.h5")
    raw.assert_same_content(tmp_path / "whole.h5", tmp_path / "merged.h5")


def test_an_interrupted_build_resumes_to_the_same_cache(cifar_root, tmp_path, raw, monkeypatch):
    options = CacheOptions("cifar10-dvs", store="events")
    write_cache(options, cifar_root, tmp_path / "once.h5", block_samples=4)
    real, calls = writer_module.compute_block, []

    def dies_on_the_third_block(*args):
        calls.append(args[2])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(writer_module, "compute_block", dies_on_the_third_block)
    with pytest.raises(KeyboardInterrupt):
        write_cache(options, cifar_root, tmp_path / "twice.h5", block_samples=4)
    monkeypatch.setattr(writer_module, "compute_block", real)
    assert not (tmp_path / "twice.h5").exists()
    report = write_cache(options, cifar_root, tmp_path / "twice.h5", block_samples=4)
    assert report.resumed_blocks == 2
    raw.assert_same_content(tmp_path / "once.h5", tmp_path / "twice.h5")


def test_frames_and_events_never_share_an_output(event_caches):
    root, path = event_caches["cifar10-dvs"]
    with pytest.raises(CacheMismatchError, match="store"):
        write_cache(CacheOptions("cifar10-dvs"), root, path)
    with pytest.raises(CacheError, match="frame cache, not an event cache|FrameDataset reads"):
        EventDataset(_frame_cache(root, path.with_name("f.h5")), "train")
    with pytest.raises(CacheError, match="frames"):
        FrameDataset(path, "train")


def _frame_cache(root: Path, path: Path) -> Path:
    write_cache(CacheOptions("cifar10-dvs", time_steps=2, size=8), root, path)
    return path


def test_info_counts_the_stored_events(event_caches):
    root, path = event_caches["dvs-gesture"]
    stats = cache_stats(path)
    expected = _dataset_events("dvs-gesture", root)
    assert stats.meta.store == "events" and stats.events["total"] == sum(
        map(len, expected.values())
    )


def test_event_dataset_refuses_a_cache_rebuilt_after_it_was_made(gesture_root, tmp_path):
    path = tmp_path / "c.h5"
    options = CacheOptions("dvs-gesture", store="events")
    write_cache(options, gesture_root, path)
    ds = EventDataset(path, "train", 2, 16)
    ds[0]
    ds.close()
    write_cache(options, gesture_root, path, overwrite=True)
    with pytest.raises(CacheError, match="rebuilt"):
        ds[0]


def test_event_transform_runs_before_binning_and_an_emptied_sample_gives_zero_frames(event_caches):
    _, path = event_caches["dvs-gesture"]
    ds = EventDataset(path, "test", 4, 16, event_transform=lambda ev: ev[:0])
    frames, _ = ds[0]
    assert frames.shape == (4, 3, 16, 16) and not frames.any()


def _to_first_layout(path: Path) -> None:
    """Rewrite an event cache (or shard) in place as the first layout stored it: one table."""
    with h5py.File(path, "r+") as f:
        offsets, t_first = f["offsets"][:], f["events/t_first"][:]
        columns = [f[f"events/{name}"][:] for name in EVENT_COLUMNS]
        records = np.concatenate(
            [
                decode_event_columns(t_first[i], *(c[offsets[i] : offsets[i + 1]] for c in columns))
                for i in range(len(offsets) - 1)
            ]
        )
        del f["events"]
        f.create_dataset("events", data=records, chunks=True)


def test_a_cache_of_the_first_layout_is_refused_with_a_rebuild_message(gesture_root, tmp_path):
    path = tmp_path / "old.h5"
    write_cache(CacheOptions("dvs-gesture", store="events"), gesture_root, path)
    _to_first_layout(path)
    for open_it in (lambda: EventDataset(path, "train"), lambda: open_cache(path)):
        with pytest.raises(CacheError, match="first layout.*rebuild it with"):
            open_it()


def test_merge_refuses_shards_of_the_first_layout(gesture_root, tmp_path):
    options = CacheOptions("dvs-gesture", store="events")
    shards = [tmp_path / f"s{i}.h5" for i in range(2)]
    for i, shard in enumerate(shards):
        write_cache(options, gesture_root, shard, shard=(i, 2))
    _to_first_layout(shards[1])
    with pytest.raises(CacheError, match="first layout.*rebuild"):
        merge_shards(shards, tmp_path / "merged.h5")
    assert not (tmp_path / "merged.h5").exists()


def test_the_layout_is_part_of_the_options_hash():
    options = CacheOptions("dvs-gesture", store="events").to_dict()
    assert options["event_layout"] == 2
    assert "event_layout" not in CacheOptions("dvs-gesture").to_dict()


def test_columns_round_trip_any_timestamps_and_refuse_a_step_past_int32(tmp_path):
    events = make_events([2**40, 2**40 + 5, 2**40 + 3, 2**40 + 3 + 2**31 - 1], [0, 1, 2, 3],
                         [4, 5, 6, 7], [1, 0, 1, 0])  # fmt: skip
    columns = encode_event_columns(events)
    assert columns["t_first"] == 2**40 and columns["t_step"].tolist() == [0, 5, -2, 2**31 - 1]
    assert np.array_equal(decode_event_columns(**columns), events)
    too_far = make_events([0, 2**31], [0, 0], [0, 0], [0, 0])
    with pytest.raises(CacheError, match=r"user01\.aedat: events 0 and 1 lie 2147483648 us"):
        encode_event_columns(too_far, "user01.aedat")


def test_coordinates_take_one_byte_up_to_256_px_and_a_wider_value_is_refused(tmp_path):
    assert column_dtypes(Sensor(256, 200))["x"] == np.uint8
    assert column_dtypes(Sensor(304, 240))["y"] == np.uint16
    with h5py.File(tmp_path / "c.h5", "w") as f:
        create_event_layout(f, {}, 2, 0, DVS128)
        fine = make_events([7, 9], [255, 3], [4, 5], [0, 1])
        write_event_samples(f, [fine, fine[:0]], ["a.aedat", "b.aedat"])
        stored = (f["events"][column][:] for column in EVENT_COLUMNS)
        assert np.array_equal(decode_event_columns(f["events/t_first"][0], *stored), fine)
        wide = make_events([0, 1], [256, 3], [4, 5], [0, 1])
        with pytest.raises(CacheError, match=r"b\.aedat: x = 256 does not fit .* uint8"):
            write_event_samples(f, [fine, wide], ["a.aedat", "b.aedat"])
    with h5py.File(tmp_path / "atis.h5", "w") as f:  # an ATIS-size sensor: two bytes
        create_event_layout(f, {}, 1, 0, Sensor(304, 240))
        corner = make_events([2**35, 2**35 + 1], [303, 0], [239, 0], [1, 0])
        write_event_samples(f, [corner], ["c.dat"])
        assert f["events/x"].dtype == np.uint16
        stored = (f["events"][column][:] for column in EVENT_COLUMNS)
        assert np.array_equal(decode_event_columns(f["events/t_first"][0], *stored), corner)
