"""Small shared helpers for the tests: random events and paths to the real data."""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
from pathlib import Path

import h5py
import numpy as np

from eventvision.events import make_events

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def random_events(n: int, seed: int = 0, *, width: int = 128, height: int = 128, t0: int = 0):
    """n time-sorted random events (ties included) on a width x height sensor."""
    rng = np.random.default_rng(seed)
    t = t0 + np.sort(rng.integers(0, 2_000_000, n))
    return make_events(
        t, rng.integers(0, width, n), rng.integers(0, height, n), rng.integers(0, 2, n)
    )


def digest_tree(folder: Path, skip: tuple[str, ...] = ("run.lock",)) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path: equal digests, unchanged tree.

    ``skip``: names left out (a run folder's lock file holds the PID of its last holder).
    """
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file() and p.name not in skip
    }


def _inside(path, folder: Path) -> bool:
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False
    return Path(os.fsdecode(path)).absolute().is_relative_to(folder)


def deny_writes_under(folder: Path, monkeypatch, code: int = errno.EACCES) -> None:
    """Make every file-creating call for a path under ``folder`` fail with ``code``."""

    def refuse(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    real_open, real_os_open, real_mkdir, real_h5 = builtins.open, os.open, os.mkdir, h5py.File

    def fake_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and _inside(file, folder):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _inside(path, folder):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if _inside(path, folder) and Path(path).absolute() != folder:
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    class File(real_h5):
        def __init__(self, name, mode="r", *args, **kwargs):
            if mode != "r" and _inside(name, folder):
                refuse(name)
            super().__init__(name, mode, *args, **kwargs)

    for module, name, fake in (
        (builtins, "open", fake_open),
        (io, "open", fake_open),
        (os, "open", fake_os_open),
        (os, "mkdir", fake_mkdir),
        (h5py, "File", File),
    ):
        monkeypatch.setattr(module, name, fake)


def build_folder_cache(
    out: Path,
    samples: list[tuple[np.ndarray, int, str]],
    classes: list[str],
    sensor_size: tuple[int, int],
    **options,
) -> Path:
    """A cache built by ``eventvision.cache.write_cache`` from a ``folder`` tree of samples.

    ``samples`` are ``(events, label, split)``; each becomes ``<split>/<class>/<i>.npy`` under
    ``<out stem>_raw/`` beside ``out``, so the cache is exactly what the real writer produces.
    """
    from eventvision.cache import folder_options, write_cache

    root = out.with_name(out.stem + "_raw")
    for i, (events, label, split) in enumerate(samples):
        folder = root / split / classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{i:04d}.npy", events)
    for split in ("train", "test"):  # a split may have no samples: keep the folder
        (root / split).mkdir(parents=True, exist_ok=True)
    write_cache(folder_options(root, sensor_size, **options), root, out)
    return out
