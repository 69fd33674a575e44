"""The one cache reader: split rows, one stored sample, the per-process handle, refusals."""

from __future__ import annotations

import os
import pickle

import h5py
import numpy as np
import pytest

from eventvision.cache import (
    SPLIT_CODES,
    CacheHandle,
    CacheOptions,
    open_cache,
    read_sample,
    split_rows,
    write_cache,
)
from eventvision.errors import CacheError, ConfigError

OPTIONS = CacheOptions("cifar10-dvs", time_steps=2, size=8, compression="lzf")


@pytest.fixture(scope="module")
def built(tmp_path_factory, raw):
    root = raw.make_cifar_release(tmp_path_factory.mktemp("read") / "raw", per_class=2)
    out = root.parent / "c.h5"
    write_cache(OPTIONS, root, out)
    with h5py.File(out, "r") as f:
        stored = {k: f[k][...] for k in ("frames", "labels", "split")}
        stored["source"] = f["source"].asstr()[...]
    return out, stored


def test_split_rows_and_read_sample_agree_with_h5py(built):
    out, stored = built
    meta = open_cache(out)
    for name, code in SPLIT_CODES.items():
        rows, labels = split_rows(meta, name)
        assert rows.tolist() == np.flatnonzero(stored["split"] == code).tolist()
        assert labels.dtype == np.int64 and labels.tolist() == stored["labels"][rows].tolist()
    sample = read_sample(meta, 3)
    assert np.array_equal(sample.data, stored["frames"][3])
    assert sample.label == meta.classes[stored["labels"][3]]
    assert sample.source == stored["source"][3]
    assert SPLIT_CODES[sample.split] == stored["split"][3]
    with pytest.raises(IndexError, match="holds 20 samples"):
        read_sample(meta, 20)
    with pytest.raises(ConfigError, match="split must be one of \\['train', 'test'\\], got 'val'"):
        split_rows(meta, "val")


def test_the_handle_reopens_per_process_and_drops_its_file_when_pickled(built):
    out, stored = built
    handle = CacheHandle(out, open_cache(out).build_id)
    assert not handle.is_open
    assert np.array_equal(handle.dataset("frames")[1], stored["frames"][1])
    assert handle.is_open
    copy = pickle.loads(pickle.dumps(handle))
    assert not copy.is_open and copy.build_id == handle.build_id
    handle._pid = os.getpid() + 1  # as in a forked worker: the inherited file is not used
    assert not handle.is_open
    assert np.array_equal(handle.dataset("labels")[...], stored["labels"])
    handle.close()
    with pytest.raises(CacheError, match="rebuilt"):
        CacheHandle(out, "another-build").dataset("frames")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("labels", 10, "labels span 0..10, outside 0..9"),
        ("split", 2, r"split codes \[2\]"),
    ],
)
def test_labels_outside_the_classes_and_unknown_split_codes_are_refused(
    built, tmp_path, name, value, message
):
    out = tmp_path / "c.h5"
    out.write_bytes(built[0].read_bytes())
    with h5py.File(out, "a") as f:
        f[name][0] = value
    with pytest.raises(CacheError, match=message):
        open_cache(out)


def test_a_folder_is_not_a_cache(tmp_path):
    with pytest.raises(CacheError, match="is a folder"):
        open_cache(tmp_path)
