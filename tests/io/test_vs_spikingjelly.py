"""The readers against spikingjelly 2.0's own readers on the same bytes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import REAL_DATA, random_events

from eventvision.datasets import cifar10dvs_fix_orientation
from eventvision.io import read_aedat2, read_aedat31, write_aedat2, write_aedat31

sj_cifar = pytest.importorskip("spikingjelly.datasets.cifar10_dvs")
sj_utils = pytest.importorskip("spikingjelly.datasets.utils")

REAL_AEDAT2 = sorted(REAL_DATA.glob("*/*.aedat"))


def _assert_same(ours: np.ndarray, theirs: dict) -> None:
    for field in "txyp":
        assert np.array_equal(
            ours[field].astype(np.int64), np.asarray(theirs[field]).astype(np.int64)
        ), field


@pytest.mark.parametrize("path", REAL_AEDAT2, ids=lambda p: p.name)
def test_real_aedat2_equals_spikingjelly_cifar10dvs_reader(path):
    ours = cifar10dvs_fix_orientation(read_aedat2(path))
    _assert_same(ours, sj_cifar._load_origin_data(path))


def test_written_aedat2_equals_spikingjelly(tmp_path):
    path = tmp_path / "cifar10_cat_0.aedat"
    write_aedat2(path, random_events(20_000, seed=8, t0=2**31))
    _assert_same(cifar10dvs_fix_orientation(read_aedat2(path)), sj_cifar._load_origin_data(path))


def test_written_aedat31_equals_spikingjelly(tmp_path):
    path = tmp_path / "user01_lab.aedat"
    write_aedat31(path, random_events(5_000, seed=9, t0=2**31 - 500_000), packet_events=333)
    _assert_same(read_aedat31(path), sj_utils.load_aedat_v3(path))
