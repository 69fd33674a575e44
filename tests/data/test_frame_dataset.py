from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch

from eventvision.cache import open_cache
from eventvision.data import FrameDataset
from eventvision.errors import CacheError, ConfigError

CLASSES = ["airplane", "automobile", "bird"]


@pytest.mark.parametrize("split", ["train", "test"])
def test_items_match_the_h5_content_with_three_channels(frame_cache, split):
    path, frames, labels, splits = frame_cache
    rows = np.flatnonzero(splits == (0 if split == "train" else 1))
    ds = FrameDataset(path, split=split)
    assert len(ds) == len(rows)
    for i, row in enumerate(rows):
        x, y = ds[i]
        assert x.dtype == torch.float32 and x.shape == (3, 3, 8, 8)
        assert isinstance(y, int) and y == labels[row]
        np.testing.assert_array_equal(x[:, 0].numpy(), frames[row, :, 0])  # OFF
        np.testing.assert_array_equal(x[:, 1].numpy(), frames[row, :, 1])  # ON
        np.testing.assert_array_equal(x[:, 2].numpy(), frames[row, :, 0] + frames[row, :, 1])


def test_two_channels_give_the_raw_pair(frame_cache):
    path, frames, _, splits = frame_cache
    x, _ = FrameDataset(path, split="test", channels=2)[1]
    assert x.shape == (3, 2, 8, 8)
    np.testing.assert_array_equal(x.numpy(), frames[np.flatnonzero(splits == 1)[1]])


def test_negative_index_and_out_of_range(frame_cache):
    path, frames, _, splits = frame_cache
    ds = FrameDataset(path, split="test", channels=2)
    np.testing.assert_array_equal(ds[-1][0].numpy(), frames[np.flatnonzero(splits == 1)[-1]])
    with pytest.raises(IndexError):
        ds[3]


def test_frames_other_than_float32_are_refused(frame_cache, tmp_path):
    path, frames, labels, splits = frame_cache
    with h5py.File(path, "a") as f:  # what the writer never stores
        del f["frames"]
        f.create_dataset("frames", data=frames.astype(np.uint16), chunks=(1, *frames.shape[1:]))
    with pytest.raises(CacheError, match="cache.h5: frames are uint16, expected float32"):
        FrameDataset(path)


def test_transform_sees_the_pair_and_the_third_channel_is_appended_after(frame_cache):
    path, frames, labels, splits = frame_cache
    seen = []

    def double_on(x):
        seen.append(tuple(x.shape))
        y = x.clone()
        y[:, 1] *= 2
        return y

    x, y = FrameDataset(path, transform=double_on, target_transform=lambda t: t + 10)[0]
    row = np.flatnonzero(splits == 0)[0]
    assert seen == [(3, 2, 8, 8)]
    np.testing.assert_array_equal(x[:, 2].numpy(), frames[row, :, 0] + 2 * frames[row, :, 1])
    assert y == labels[row] + 10


def test_class_counts_read_labels_only(frame_cache):
    path, _, _, _ = frame_cache
    train = FrameDataset(path, "train")
    assert train.class_counts() == {"airplane": 4, "automobile": 3, "bird": 0}
    assert FrameDataset(path, "test").class_counts() == {"airplane": 0, "automobile": 0, "bird": 3}
    assert train.classes == CLASSES
    assert not train._handle.is_open  # nothing opened to count


def test_repr_shows_path_split_length_and_options(frame_cache):
    path, _, _, _ = frame_cache
    text = repr(FrameDataset(path, "test", channels=2))
    for part in [
        str(path),
        "split='test'",
        "length=3",
        "C=2",
        "time_steps=3",
        "split_by='number'",
        "size=8",
        "dataset='folder'",
        f"options_hash='{open_cache(path).options_hash}'",
    ]:
        assert part in text, text


def test_an_incomplete_cache_is_refused_naming_the_file(tmp_path, write_cache):
    path = write_cache(tmp_path / "half.h5", [0, 1], [0, 1])
    with h5py.File(path, "a") as f:  # as a writer killed before its last step would leave it
        f.attrs["complete"] = False
    with pytest.raises(CacheError, match="half.h5.*incomplete"):
        FrameDataset(path)


def test_missing_and_malformed_caches(tmp_path):
    with pytest.raises(CacheError, match="nope.h5"):
        FrameDataset(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(CacheError, match="bad.h5"):
        FrameDataset(bad)
    with pytest.raises(ConfigError, match="split"):
        FrameDataset(bad, split="val")
    with pytest.raises(ConfigError, match="channels"):
        FrameDataset(bad, channels=1)


def test_pickling_drops_the_open_handle(frame_cache):
    path, frames, _, splits = frame_cache
    rows = np.flatnonzero(splits == 0)
    ds = FrameDataset(path, channels=2)
    ds[0]
    assert ds._handle.is_open
    copy = pickle.loads(pickle.dumps(ds))
    assert not copy._handle.is_open
    np.testing.assert_array_equal(copy[0][0].numpy(), frames[rows[0]])
    ds.close()
    np.testing.assert_array_equal(ds[1][0].numpy(), frames[rows[1]])


def test_a_cache_written_by_eventvision_cache(tmp_path):
    cache = pytest.importorskip("eventvision.cache")
    from eventvision.synth.cifar10dvs import make_cifar10dvs

    make_cifar10dvs(tmp_path / "raw", 2, seed=0, duration_us=10_000)
    options = cache.CacheOptions("cifar10-dvs", time_steps=3, size=16, compression="lzf")
    cache.write_cache(options, tmp_path / "raw", tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5") as f:
        frames, labels, split = f["frames"][...], f["labels"][...], f["split"][...]
    for name, code in (("train", 0), ("test", 1)):
        ds = FrameDataset(tmp_path / "c.h5", name)
        rows = np.flatnonzero(split == code)
        assert len(ds) == len(rows) and ds.options["time_steps"] == 3
        counts = np.bincount(labels[rows], minlength=10)
        assert list(ds.class_counts().values()) == counts.tolist()
        for i, row in enumerate(rows):
            x, y = ds[i]
            assert x.shape == (3, 3, 16, 16) and y == labels[row]
            np.testing.assert_array_equal(x[:, :2].numpy(), frames[row])
            np.testing.assert_array_equal(x[:, 2].numpy(), frames[row].sum(1))
