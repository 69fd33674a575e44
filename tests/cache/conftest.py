"""Fixtures of the cache tests: tiny raw releases written with eventvision.io."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "raw_release", Path(__file__).with_name("raw_release.py")
)
raw_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw_release)


@pytest.fixture(scope="session")
def raw():
    """The raw_release helper module (raw releases, cache comparison)."""
    return raw_release


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    """CIFAR10-DVS layout, 3 files per class (30 samples: 20 train, 10 test)."""
    return raw_release.make_cifar_release(tmp_path_factory.mktemp("cifar") / "raw", per_class=3)


@pytest.fixture(scope="module")
def gesture_root(tmp_path_factory) -> Path:
    """DVS Gesture layout, 2 users x 2 lightings x 3 rows (user 2 is the test split)."""
    return raw_release.make_gesture_release(tmp_path_factory.mktemp("gesture") / "raw")
