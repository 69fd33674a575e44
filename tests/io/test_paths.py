"""Readers and datasets given a folder, a missing path or an unreadable file: our own errors."""

from __future__ import annotations

import os

import pytest

from eventvision.data import FrameDataset
from eventvision.errors import CacheError, EventVisionError, PathError
from eventvision.io import read_aedat2, read_aedat31

READERS = [read_aedat2, read_aedat31]


@pytest.mark.parametrize("reader", READERS)
def test_a_folder_or_a_missing_path_names_the_path(reader, tmp_path):
    with pytest.raises(PathError, match=f"{tmp_path}: is a folder"):
        reader(tmp_path)
    missing = tmp_path / "absent.aedat"
    with pytest.raises(PathError, match=f"{missing}: no such file"):
        reader(missing)


@pytest.mark.parametrize("reader", READERS)
def test_an_unreadable_file_names_the_path(reader, tmp_path, monkeypatch):
    path = tmp_path / "locked.aedat"
    path.write_bytes(b"#!AER-DAT2.0\r\n")
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads anything: make the permission check say no for this file
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, m, **k: p != path and real(p, m, **k))
    with pytest.raises(PathError, match=f"{path}: not readable"):
        reader(path)


def test_path_errors_are_the_projects_errors():
    assert issubclass(PathError, EventVisionError) and issubclass(PathError, OSError)


def test_frame_dataset_given_a_folder_or_a_missing_path(tmp_path):
    with pytest.raises(CacheError, match="is a folder"):
        FrameDataset(tmp_path)
    with pytest.raises(CacheError, match="no such cache file"):
        FrameDataset(tmp_path / "absent.h5")
