"""CIFAR python batches go through a restricted unpickler: a crafted pickle runs nothing."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from eventvision.data import StaticImageDataset
from eventvision.data.static import CIFAR10_CLASSES, _unpickle
from eventvision.errors import DatasetError


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: a file appears if code runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _batch(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"training batch 1 of 5",
        b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
        b"labels": [int(v) for v in rng.integers(0, 10, 4)],
        b"filenames": [f"img_{i}.png".encode() for i in range(4)],
    }


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_batches_read_as_plain_pickle_reads_them(tmp_path, protocol):
    path = tmp_path / "data_batch_1"
    batch = {**_batch(protocol), b"extra": np.arange(6, dtype=np.int64).reshape(2, 3)}
    path.write_bytes(pickle.dumps(batch, protocol=protocol))
    got = _unpickle(path)
    plain = pickle.loads(path.read_bytes(), encoding="bytes")  # what pickle.load gives
    assert sorted(got) == sorted(batch) == sorted(plain)
    for key, value in plain.items():
        if isinstance(value, np.ndarray):
            assert got[key].dtype == value.dtype and np.array_equal(got[key], value)
        else:
            assert got[key] == value == batch[key]


def test_a_crafted_batch_raises_and_runs_nothing(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(2, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(_batch(i), protocol=2))
    (folder / "test_batch").write_bytes(pickle.dumps(_batch(0), protocol=2))
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    marker = tmp_path / "pwned"
    crafted = {**_batch(1), b"data": _Payload(marker)}
    (folder / "data_batch_1").write_bytes(pickle.dumps(crafted, protocol=2))
    with pytest.raises(
        DatasetError, match=r"data_batch_1: not a CIFAR python batch.*refused global \S*\.open"
    ):
        StaticImageDataset(tmp_path, "train")
    assert not marker.exists()


def test_a_batch_that_is_not_a_dict_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DatasetError, match="expected a CIFAR batch dict"):
        _unpickle(path)
