from __future__ import annotations

import numpy as np
import pytest
from helpers import random_events

from eventvision.datasets import CIFAR10DVS, cifar10dvs_fix_orientation, open_dataset
from eventvision.errors import ConfigError, DatasetError, FormatError
from eventvision.io import CIFAR10_DVS_INFO, read_aedat2, write_aedat2

PER_CLASS = 12


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar10dvs")
    for c, name in enumerate(CIFAR10_DVS_INFO.classes):
        (root / name).mkdir()
        for i in range(PER_CLASS):
            write_aedat2(
                root / name / f"cifar10_{name}_{i}.aedat", random_events(50, seed=100 * c + i)
            )
    return root


def _index(sample) -> int:
    return int(sample.path.stem.rsplit("_", 1)[1])


def test_orientation_is_spikingjellys():
    raw = random_events(100, seed=1)
    fixed = cifar10dvs_fix_orientation(raw)
    assert np.array_equal(fixed["x"], 127 - raw["y"])
    assert np.array_equal(fixed["y"], 127 - raw["x"])
    assert np.array_equal(fixed["p"], 1 - raw["p"])
    assert np.array_equal(fixed["t"], raw["t"])


def test_paper_split_lexicographic_first_90_percent(release):
    train = CIFAR10DVS(release, "train")
    test = CIFAR10DVS(release, "test")
    assert len(train) == 10 * 10 and len(test) == 10 * 2
    # string order of 0..11 is 0, 1, 10, 11, 2, ..., 9: train takes the first ten, test the last two
    assert [_index(s) for s in train.samples[:10]] == [0, 1, 10, 11, 2, 3, 4, 5, 6, 7]
    assert [_index(s) for s in test.samples[:2]] == [9, 8]
    assert [s.label for s in train.samples[::10]] == list(range(10))


def test_paper_split_matches_the_official_splitter_formula(tmp_path):
    # The official DatasetSplitter on a class-ordered dataset of n per class, rate 0.9 / 0.1.
    n = 20
    it_train, it_test = int(n * 0.9), int(n * 0.1)
    official_train = [(i // it_train) * n + i % it_train for i in range(10 * it_train)]
    official_test = [(i // it_test) * n + n - i % it_test - 1 for i in range(10 * it_test)]
    for name in CIFAR10_DVS_INFO.classes:
        (tmp_path / name).mkdir()
        for i in range(n):
            (tmp_path / name / f"cifar10_{name}_{i}.aedat").write_bytes(b"#!AER-DAT2.0\r\n")
    everything = CIFAR10DVS(tmp_path, "all").samples
    for split, official in (("train", official_train), ("test", official_test)):
        assert CIFAR10DVS(tmp_path, split).samples == [everything[i] for i in official]


@pytest.mark.parametrize("protocol", ["first-test", "random"])
def test_other_protocols_partition_each_class(release, protocol):
    train = {s.path for s in CIFAR10DVS(release, "train", protocol, seed=3).samples}
    test = {s.path for s in CIFAR10DVS(release, "test", protocol, seed=3).samples}
    assert not train & test
    assert len(train | test) == 10 * PER_CLASS and len(test) == 20


def test_items_are_oriented_events_and_label(release):
    ds = open_dataset("cifar10-dvs", release, "test")
    events, label = ds[5]
    path, expected_label = ds.samples[5]
    assert label == expected_label == 2
    assert np.array_equal(events, cifar10dvs_fix_orientation(read_aedat2(path)))
    assert "split='test'" in repr(ds) and "samples=20" in repr(ds)


def test_bad_layouts(tmp_path, release):
    with pytest.raises(DatasetError, match="no such folder"):
        CIFAR10DVS(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="unrecognised CIFAR10-DVS layout; looked for orig"):
        CIFAR10DVS(tmp_path)
    (tmp_path / "airplane").mkdir()
    (tmp_path / "airplane" / "cifar10_airplane_0.aedat").write_bytes(b"")
    with pytest.raises(DatasetError, match="missing class folders"):
        CIFAR10DVS(tmp_path)
    for name in CIFAR10_DVS_INFO.classes[1:]:
        (tmp_path / name).mkdir()
    with pytest.raises(DatasetError, match="automobile: no .aedat files"):
        CIFAR10DVS(tmp_path)
    with pytest.raises(ValueError, match="protocol must be one of"):
        CIFAR10DVS(release, protocol="mine")
    with pytest.raises(
        ConfigError, match=r"unknown dataset 'cifar-dvs'; did you mean \['cifar10-dvs'\]"
    ):
        open_dataset("cifar-dvs", release)


def test_corrupt_file_names_the_file(tmp_path, release):
    for name in CIFAR10_DVS_INFO.classes:
        (tmp_path / name).mkdir()
        (tmp_path / name / f"cifar10_{name}_0.aedat").write_bytes(b"#!AER-DAT2.0\r\n\x00\x01")
    ds = CIFAR10DVS(tmp_path, "all")
    with pytest.raises(FormatError, match="cifar10_airplane_0.aedat: truncated record"):
        ds[0]
