"""Tiny raw releases in the original layouts, written with eventvision.io for the cache tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eventvision.events import make_events
from eventvision.io import (
    CIFAR10_DVS_INFO,
    write_aedat2,
    write_aedat31,
    write_labels_csv,
    write_trials,
)


def random_raw_events(n: int, seed: int, *, t_span_us: int = 1_300_000):
    """n time-sorted DVS128 events in raw sensor coordinates."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_span_us, n))
    return make_events(t, rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n))


def make_cifar_release(root: Path, per_class: int = 3, n_events: int = 500, seed: int = 0) -> Path:
    """``root/<class>/cifar10_<class>_<i>.aedat`` for the ten classes."""
    for c, name in enumerate(CIFAR10_DVS_INFO.classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            events = random_raw_events(n_events + 37 * i, seed=seed * 10_000 + 100 * c + i)
            write_aedat2(root / name / f"cifar10_{name}_{i}.aedat", events)
    return root


def make_gesture_release(
    root: Path, users: int = 2, rows: int = 3, n_events: int = 3000, seed: int = 0
) -> Path:
    """``root/DvsGesture/userNN_<lighting>.aedat`` with labels csv files and trials lists.

    The last user is the test split; the first recording of each user repeats a class, and
    rows are written out of class order, as in the real csv files.
    """
    folder = root / "DvsGesture"
    folder.mkdir(parents=True, exist_ok=True)
    names = {"train": [], "test": []}
    for u in range(1, users + 1):
        for lighting in ("fluorescent", "lab"):
            name = f"user{u:02d}_{lighting}"
            events = random_raw_events(n_events, seed=seed * 1000 + 10 * u + len(lighting))
            write_aedat31(folder / f"{name}.aedat", events)
            span = 1_300_000 // rows
            classes = [(3 * u + 5 * r + len(lighting)) % 11 + 1 for r in range(rows)][::-1]
            if lighting == "fluorescent":
                classes[-1] = classes[0]
            csv_rows = [(c, r * span, (r + 1) * span - 1000) for r, c in enumerate(classes)]
            write_labels_csv(folder / f"{name}_labels.csv", csv_rows)
            names["test" if u == users else "train"].append(f"{name}.aedat")
    write_trials(folder / "trials_to_train.txt", names["train"])
    write_trials(folder / "trials_to_test.txt", names["test"])
    return root


def cache_content(path: Path) -> tuple[dict, dict]:
    """Every dataset (groups walked, keyed by path) and attribute of a cache file."""
    import h5py

    datasets = {}

    def take(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            datasets[name] = obj[:]

    with h5py.File(path, "r") as f:
        f.visititems(take)  # the event cache's columns sit in a group
        return datasets, {k: f.attrs[k] for k in f.attrs}


def assert_same_content(a: Path, b: Path) -> None:
    """The two cache files hold the same datasets (values and dtypes) and attributes.

    Only the build ids differ (two builds), and both carry the same options hash.
    """
    (da, aa), (db, ab) = cache_content(a), cache_content(b)
    assert sorted(da) == sorted(db)
    for k in da:
        assert da[k].dtype == db[k].dtype and np.array_equal(da[k], db[k]), k
    assert sorted(aa) == sorted(ab)
    id_a, id_b = str(aa.pop("build_id")), str(ab.pop("build_id"))
    assert id_a != id_b and id_a.split("-")[0] == id_b.split("-")[0] == aa["options_hash"]
    for k in aa:
        assert np.array_equal(aa[k], ab[k]), k
