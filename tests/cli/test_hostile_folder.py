"""`preprocess folder` on hostile files (issue 22): one line, skippable, nothing read outside."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import hostile
import numpy as np
import pytest
from click.testing import CliRunner
from eventvision.cli.main import main
from helpers import random_events

from eventvision.cache import open_cache
from eventvision.io import write_aedat4

SENSOR_ARGS = ["--sensor-size", "30x40", "--test-fraction", "0.5"]  # a test sample of every class
BUILD_ARGS = ["--time-steps", "2", "--size", "8", "--workers", "1"]


def invoke(*args, code: int = 0) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    return result.output


def _events(seed: int) -> np.ndarray:
    return random_events(60, seed, width=40, height=30)


def _write_good(path: Path, events: np.ndarray) -> None:
    if path.suffix == ".aedat4":
        write_aedat4(path, events, hostile.SENSOR, compression="zstd")
    elif path.suffix == ".npy":
        np.save(path, events)
    elif path.suffix == ".npz":
        np.savez(path, **{k: events[k] for k in "txyp"})
    else:
        with h5py.File(path, "w") as f:
            for k in "txyp":
                f[k] = events[k]


def make_tree(root: Path, suffix: str) -> Path:
    """Classes a and b of two good files each."""
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            _write_good(root / c / f"{i}{suffix}", _events(10 * ord(c) + i))
    return root


CRAFTED = {
    "aedat4-zstd-frame-claims-1TiB": (".aedat4", lambda p, o: hostile.aedat4_claiming_tib(p)),
    "aedat4-lz4-frame-claims-1TiB": (
        ".aedat4",
        lambda p, o: hostile.aedat4_claiming_tib(p, "lz4"),
    ),
    "npy-claims-huge-shape": (".npy", lambda p, o: hostile.npy_claiming(p)),
    "npz-entry-claims-huge-shape": (".npz", lambda p, o: hostile.npz_entry_claiming(p)),
    "h5-claims-huge-shape": (".h5", lambda p, o: hostile.h5_unallocated(p, 1 << 30)),
    "h5-column-is-a-group": (".h5", lambda p, o: hostile.h5_group_column(p, _events(1))),
    "h5-column-holds-bytes": (".h5", lambda p, o: hostile.h5_bytes_column(p, _events(1))),
    "h5-soft-link": (".h5", lambda p, o: hostile.h5_soft_link(p, _events(1))),
    "h5-external-storage": (
        ".h5",
        lambda p, o: hostile.h5_external_storage(p, _events(1), o / "secret.txt"),
    ),
    "h5-external-link": (".h5", lambda p, o: hostile.h5_external_link(p, _events(1), o / "x.h5")),
    "h5-virtual-dataset": (".h5", lambda p, o: hostile.h5_virtual(p, _events(1), o / "x.h5")),
}


def _outside(tmp_path: Path) -> Path:
    """A folder outside the data: a private file and an HDF5 file with a column x."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"\x05\x00" * 200)  # x = 5: on the sensor
    with h5py.File(outside / "x.h5", "w") as f:
        f["x"] = _events(1)["x"]
    return outside


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_file_is_one_line_and_skippable(tmp_path, name):
    suffix, build = CRAFTED[name]
    root = make_tree(tmp_path / "raw", suffix)
    build(root / "b" / f"bad{suffix}", _outside(tmp_path))
    out = tmp_path / "c.h5"
    args = ["preprocess", "folder", root, out, *BUILD_ARGS, *SENSOR_ARGS]
    text = invoke(*args, code=1)
    assert text.startswith("Error: ") and text.count("\n") == 1, text
    assert f"b/bad{suffix}" in text
    assert not out.exists() and not out.with_name("c.h5.tmp").exists()
    parts = out.with_name("c.h5.parts")  # kept to resume: finished parts and the state only
    assert all(p.name == "state.json" or p.suffix == ".h5" for p in parts.iterdir())
    text = invoke(*args, "--skip-bad")
    assert "skipped 1 sample(s)" in text and f"b/bad{suffix}" in text
    meta = open_cache(out)
    assert meta.n_samples == 4 and not parts.exists()


@pytest.mark.parametrize("where", ["file", "class"])
@pytest.mark.parametrize("skip_bad", [False, True])
def test_names_that_are_not_utf8_are_refused_in_one_line(tmp_path, where, skip_bad):
    root = make_tree(tmp_path / "raw", ".npy")
    bad = os.fsdecode(b"caf\xe9")  # Latin-1, not UTF-8: a lone surrogate in Python
    if where == "file":
        _write_good(root / "a" / f"{bad}.npy", _events(7))
    else:
        (root / bad).mkdir()
        _write_good(root / bad / "0.npy", _events(7))
    out = tmp_path / "c.h5"
    flags = ["--skip-bad"] if skip_bad else []
    args = ["preprocess", "folder", root, out, *BUILD_ARGS, *SENSOR_ARGS, *flags]
    text = invoke(*args, code=1)
    assert text.count("\n") == 1 and "caf\\xe9" in text and "not UTF-8" in text, text
    assert not out.exists() and not out.with_name("c.h5.parts").exists()


@pytest.mark.parametrize("where", ["file", "class"])
def test_symlinks_out_of_the_root_need_follow_symlinks(tmp_path, where):
    root = make_tree(tmp_path / "raw", ".npy")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _write_good(outside / "0.npy", _events(9))
    _write_good(outside / "1.npy", _events(8))  # a linked class needs a train and a test file
    link = root / "a" / "linked.npy" if where == "file" else root / "c"
    link.symlink_to(outside / "0.npy" if where == "file" else outside)
    (root / "b" / "inside.npy").symlink_to(root / "b" / "0.npy")  # inside the root: fine
    out = tmp_path / "c.h5"
    args = ["preprocess", "folder", root, out, *BUILD_ARGS, *SENSOR_ARGS]
    text = invoke(*args, code=1)
    assert text.count("\n") == 1 and f"{link}: a symlink to" in text, text
    assert "--follow-symlinks" in text and not out.exists()
    invoke(*args, "--follow-symlinks")
    meta = open_cache(out)
    assert meta.n_samples == (6 if where == "file" else 7)
    assert meta.options["follow_symlinks"] is True  # recorded
    with h5py.File(out) as f:
        sources = set(f["source"].asstr()[:])
    assert ("a/linked.npy" if where == "file" else "c/0.npy") in sources


def test_without_follow_symlinks_the_options_hash_is_unchanged(tmp_path):
    from eventvision.cache.options import CacheOptions

    a = CacheOptions("folder", sensor_size=(4, 3), classes=("a",))
    b = CacheOptions("folder", sensor_size=(4, 3), classes=("a",), follow_symlinks=False)
    assert a.hash() == b.hash() and "follow_symlinks" not in a.to_dict()
    root = make_tree(tmp_path / "raw", ".npy")
    text = invoke("preprocess", "nmnist", root, tmp_path / "n.h5", "--follow-symlinks", code=1)
    assert "['follow_symlinks'] do not apply to nmnist" in text


@pytest.mark.parametrize("skip_bad", [False, True])
def test_event_cache_checks_the_sensor_at_build_time(tmp_path, skip_bad):
    """--store events refuses events outside the sensor as frames do (audit point 8)."""
    root = make_tree(tmp_path / "raw", ".npy")
    wide = random_events(60, 3, width=50, height=30)  # x up to 49 on a 40x30 sensor
    wide["x"][-1] = 45
    np.save(root / "b" / "wide.npy", wide)
    out = tmp_path / "e.h5"
    args = ["preprocess", "folder", root, out, "--store", "events", *SENSOR_ARGS]
    if not skip_bad:
        text = invoke(*args, code=1)
        assert "b/wide.npy" in text and "outside the 30x40 (HxW) sensor" in text
        assert text.count("\n") == 1 and not out.exists()
        return
    text = invoke(*args, "--skip-bad")
    assert "skipped 1 sample(s)" in text and "b/wide.npy" in text
    assert open_cache(out).n_samples == 4


def test_a_name_that_is_not_utf8_is_refused_for_every_source(tmp_path):
    from eventvision.synth.atis import make_nmnist

    root = tmp_path / "raw"
    make_nmnist(root, per_class=1, seed=0, duration_us=10_000)
    first = next((root / "Train" / "0").glob("*.bin"))
    first.rename(first.with_name(os.fsdecode(b"caf\xe9.bin")))
    out = tmp_path / "n.h5"
    text = invoke("preprocess", "nmnist", root, out, *BUILD_ARGS, code=1)
    assert text.count("\n") == 1 and "caf\\xe9.bin" in text and "not UTF-8" in text, text
    assert not out.exists() and not out.with_name("n.h5.parts").exists()


def test_event_cache_of_external_storage_holds_none_of_the_other_file(tmp_path):
    """The audit's case: `--store events` copied another file's bytes into events/x."""
    root = make_tree(tmp_path / "raw", ".h5")
    secret = _outside(tmp_path) / "secret.txt"
    hostile.h5_external_storage(root / "b" / "bad.h5", _events(1), secret)
    out = tmp_path / "e.h5"
    args = ["preprocess", "folder", root, out, "--store", "events", *SENSOR_ARGS]
    assert "x keeps its data in external file" in invoke(*args, code=1)
    invoke(*args, "--skip-bad")
    with h5py.File(out) as f:
        assert len(f["source"]) == 4 and "b/bad.h5" not in set(f["source"].asstr()[:])
