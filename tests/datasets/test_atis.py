"""N-MNIST and N-Caltech101 on written releases, against tonic's dataset classes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events

from eventvision.datasets import NMNIST, NCaltech101, open_dataset
from eventvision.errors import DatasetError, FormatError
from eventvision.io import NCALTECH101_INFO, NMNIST_INFO, write_atis_bin

tonic = pytest.importorskip("tonic")


def _no_download(monkeypatch, cls) -> None:
    monkeypatch.setattr(cls, "_check_exists", lambda self: True)  # files are there: never fetch


@pytest.fixture(scope="module")
def nmnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("nm") / "NMNIST"
    for split, count in (("Train", 3), ("Test", 2)):
        for digit in range(10):
            folder = root / split / str(digit)
            folder.mkdir(parents=True)
            for i in range(count):
                events = random_events(40, 100 * digit + 10 * i + len(split), width=34, height=34)
                write_atis_bin(folder / f"{i:05d}.bin", events, timestamp_limit=50_000)
    return root


@pytest.mark.parametrize("split", ["train", "test"])
def test_nmnist_equals_tonic(nmnist_root, monkeypatch, split):
    _no_download(monkeypatch, tonic.datasets.NMNIST)
    theirs = tonic.datasets.NMNIST(str(nmnist_root.parent), train=split == "train")
    ours = NMNIST(nmnist_root.parent, split)
    assert len(ours) == len(theirs) == (30 if split == "train" else 20)
    for i in range(len(ours)):
        events, label = ours[i]
        their_events, their_label = theirs[i]
        assert label == their_label
        for name in "txyp":
            assert np.array_equal(events[name], their_events[name]), (i, name)


def test_nmnist_sensor_is_checked(tmp_path):
    for digit in range(10):
        (tmp_path / "Train" / str(digit)).mkdir(parents=True)
        write_atis_bin(tmp_path / "Train" / str(digit) / "0.bin", random_events(5, digit))
    with pytest.raises(
        FormatError, match=r"0.bin: event at .* outside the 34x34 \(HxW\) nmnist sensor"
    ):
        NMNIST(tmp_path)[0]


@pytest.fixture(scope="module")
def caltech_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("nc") / "NCALTECH101" / "Caltech101"  # tonic's save_to below
    for c, name in enumerate(NCALTECH101_INFO.classes):
        (root / name).mkdir(parents=True)
        for i in range(1 + c % 13):
            events = random_events(20, 1000 * c + i, width=240, height=180)
            write_atis_bin(root / name / f"image_{i + 1:04d}.bin", events)
    return root


def test_ncaltech101_equals_tonic(caltech_root, monkeypatch):
    _no_download(monkeypatch, tonic.datasets.NCALTECH101)
    theirs = tonic.datasets.NCALTECH101(str(caltech_root.parent.parent))
    ours = NCaltech101(caltech_root.parent.parent, "all")
    assert len(ours) == len(theirs)
    their_index = {path: i for i, path in enumerate(theirs.data)}  # tonic leaves files unsorted
    for i in range(0, len(ours), 7):
        events, label = ours[i]
        their_events, their_name = theirs[their_index[str(ours.samples[i].path)]]
        assert ours.classes[label] == their_name
        for name in "tp":
            assert np.array_equal(events[name], their_events[name]), (i, name)
        for (
            name
        ) in "xy":  # tonic moves each sample to x.min() == y.min() == 0; we keep the sensor's
            assert np.array_equal(events[name] - events[name].min(), their_events[name]), (i, name)


def test_ncaltech101_split_is_stratified_and_seeded(caltech_root):
    train, test = NCaltech101(caltech_root, "train"), NCaltech101(caltech_root, "test")
    train_paths = {s.path for s in train.samples}
    test_paths = {s.path for s in test.samples}
    assert not train_paths & test_paths
    assert train_paths | test_paths == {s.path for s in NCaltech101(caltech_root, "all").samples}
    for label in range(len(NCALTECH101_INFO.classes)):
        n = 1 + label % 13
        assert sum(s.label == label for s in test.samples) == n - n * 9 // 10
    other = NCaltech101(caltech_root, "test", seed=1)
    assert {s.path for s in other.samples} != test_paths
    assert [s.path for s in NCaltech101(caltech_root, "test").samples] == [
        s.path for s in test.samples
    ]


def test_unknown_class_folder_is_refused(tmp_path):
    for name in (*NMNIST_INFO.classes, "ten"):
        (tmp_path / "Test" / name).mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"unknown class folders \['ten'\]"):
        NMNIST(tmp_path, "test")


def test_open_dataset_knows_both(nmnist_root, caltech_root):
    assert len(open_dataset("nmnist", nmnist_root, "test")) == 20
    assert open_dataset("ncaltech101", caltech_root, "all").classes == NCALTECH101_INFO.classes
