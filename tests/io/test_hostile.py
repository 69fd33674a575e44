"""Hostile files (issue 22): a few kilobytes that claim gigabytes, or point outside the data.

Each bomb is read in a subprocess that imports only ``eventvision.io`` (no torch) under an
address-space cap 1 GiB above what its imports take; each must end in one FormatError line,
its peak resident memory far under the cap.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import hostile
import numpy as np
import pytest
from helpers import random_events

from eventvision.errors import FormatError
from eventvision.io import read_aedat4, read_events, write_aedat4
from eventvision.io.arrays import events_from_columns, read_npz_events

CAP = 1 << 30  # address space allowed above the child's own after its imports
PEAK_MB = 150  # the most the child's resident memory may grow reading any bomb (64 MiB packets)

_CHILD = r"""
import os, resource, sys
import eventvision.io as io
from eventvision.errors import EventVisionError

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

def vm():
    return status("VmSize")

def read(path, how):
    try:  # peak RSS (VmHWM) from here on; else the warm-up's, about the same
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    base = status("VmRSS")
    resource.setrlimit(resource.RLIMIT_AS, (vm() + int(sys.argv[1]), resource.RLIM_INFINITY))
    try:
        if how == "iter":
            for _ in io.iter_events(path):
                pass
        else:
            io.read_events(path, **({"threads": int(how)} if how.isdigit() else {}))
        line = "OK"
    except EventVisionError as e:
        line = type(e).__name__ + ": " + str(e)
    except BaseException as e:  # what the test must not see: a raw MemoryError, TypeError...
        line = "raw " + type(e).__name__ + ": " + str(e)[:200]
    peak = status("VmHWM") - base
    print(line.replace("\n", "\\n") + "\t" + str(peak >> 20), flush=True)

import h5py, lz4.frame, numpy as np, tempfile, zstandard  # warm: kernels compiled, modules in
from eventvision.events import EVENT_DTYPE, Sensor
with tempfile.TemporaryDirectory() as tmp:
    events = np.zeros(10, EVENT_DTYPE)
    for compression in ("zstd", "lz4"):
        io.write_aedat4(tmp + "/w.aedat4", events, Sensor(4, 4), compression=compression)
        io.read_events(tmp + "/w.aedat4", threads=1)
        list(io.iter_events(tmp + "/w.aedat4"))

for path, how in zip(sys.argv[2::2], sys.argv[3::2]):  # one forked child per file
    pid = os.fork()
    if pid == 0:
        try:
            read(path, how)
        finally:
            os._exit(0)
    if os.waitpid(pid, 0)[1]:
        print("CRASHED", flush=True)
"""


def read_capped(files: list[tuple[Path, str]]) -> list[tuple[str, int]]:
    """``(FormatError line or OK, peak MB)`` of reading each file in a capped child process."""
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OMP_NUM_THREADS": "1"}
    env["OPENBLAS_NUM_THREADS"] = "1"
    args = [str(a) for pair in files for a in pair]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(CAP), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = []
    for line in proc.stdout.splitlines():
        text, _, peak = line.rpartition("\t")
        results.append((text or line, int(peak) if peak.isdigit() else -1))
    assert len(results) == len(files), proc.stdout + proc.stderr[-2000:]
    return results


BOMBS = {
    "aedat4-zstd-frame-claims-1TiB": (lambda p: hostile.aedat4_claiming_tib(p, "zstd"), "read"),
    "aedat4-lz4-frame-claims-1TiB": (lambda p: hostile.aedat4_claiming_tib(p, "lz4"), "read"),
    "aedat4-ioheader-claims-2GiB": (hostile.aedat4_header_claiming, "read"),
    "aedat4-packet-640MiB": (hostile.aedat4_packet_bomb, "1"),
    "aedat4-packet-640MiB-iter": (hostile.aedat4_packet_bomb, "iter"),
    "aedat4-pool-160x60MiB-2-threads": (hostile.aedat4_pool_bomb, "2"),
    "aedat4-pool-160x60MiB-4-threads": (hostile.aedat4_pool_bomb, "4"),
    "aedat4-valid-events-40x64MB-1-thread": (hostile.aedat4_events_bomb, "1"),
    "aedat4-valid-events-40x64MB-2-threads": (hostile.aedat4_events_bomb, "2"),
    "npy-claims-2^40-rows": (hostile.npy_claiming, "read"),
    "npz-zip-bomb-8M-rows": (hostile.npz_bomb, "read"),
    "npz-entry-claims-2^40-rows": (hostile.npz_entry_claiming, "read"),
    "h5-unallocated-20M-rows": (hostile.h5_unallocated, "read"),
    "h5-unallocated-2^30-rows": (lambda p: hostile.h5_unallocated(p, 1 << 30), "read"),
}
SUFFIX = {"aedat4": ".aedat4", "npy": ".npy", "npz": ".npz", "h5": ".h5"}


@pytest.fixture(scope="module")
def bomb_results(tmp_path_factory) -> dict[str, tuple[Path, str, int]]:
    """Every bomb built, then read in one capped child: name -> (path, line, peak MB)."""
    folder = tmp_path_factory.mktemp("bombs")
    paths, built = {}, {}
    for name, (build, _) in BOMBS.items():  # a file read two ways is built once
        if build not in built:
            built[build] = build(folder / f"{name}{SUFFIX[name.split('-')[0]]}")
        paths[name] = built[build]
    results = read_capped([(paths[name], how) for name, (_, how) in BOMBS.items()])
    return {name: (paths[name], *result) for name, result in zip(BOMBS, results, strict=True)}


@pytest.mark.slow  # one child reads every bomb: 3 s, 10 s on a loaded machine, for them all
@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_is_one_format_error_in_bounded_memory(bomb_results, name):
    path, line, peak_mb = bomb_results[name]
    assert path.stat().st_size < 700_000  # a few kilobytes (the pool bomb: 160 packets)
    assert line.startswith(f"FormatError: {path}"), line
    assert "\\n" not in line
    assert 0 <= peak_mb < PEAK_MB, (line, peak_mb)


def test_a_packet_over_max_packet_bytes_names_its_offset(tmp_path):
    events = random_events(3000, 1, width=40, height=30)
    path = tmp_path / "x.aedat4"
    write_aedat4(path, events, hostile.SENSOR, compression="zstd", packet_events=1000)
    assert np.array_equal(read_aedat4(path, max_packet_bytes=16_100), events)
    with pytest.raises(FormatError, match=r"packet at byte offset \d+ declares 16\d\d\d bytes"):
        read_aedat4(path, max_packet_bytes=15_000)
    write_aedat4(path, events, hostile.SENSOR, packet_events=1000)  # uncompressed
    with pytest.raises(FormatError, match=r"packet at byte offset \d+ holds 16\d\d\d bytes"):
        read_aedat4(path, max_packet_bytes=15_000)


@pytest.mark.parametrize("threads", [2, 4])
def test_pool_packets_over_their_share_give_the_same_events(tmp_path, monkeypatch, threads):
    """Runs that would hold more than their share leave packets to the decoding thread."""
    from eventvision.io import _aedat4_pool as pool

    events = random_events(40_000, 2, width=40, height=30)
    path = tmp_path / "x.aedat4"
    write_aedat4(path, events, hostile.SENSOR, compression="lz4", packet_events=500)
    monkeypatch.setattr(pool, "TASK_BYTES", 1 << 12)
    monkeypatch.setattr(pool, "AHEAD_BYTES", 8 * threads * 9000)  # a share: about one packet
    assert np.array_equal(read_aedat4(path, threads=threads), events)


def _good(n: int = 50) -> np.ndarray:
    return random_events(n, 3, width=40, height=30)


@pytest.mark.parametrize(
    "build, says",
    [
        (hostile.h5_group_column, "x is a group"),
        (hostile.h5_bytes_column, "x holds |S1 values"),
        (hostile.h5_soft_link, "x is a soft link"),
    ],
)
def test_h5_columns_that_are_not_numbers_stored_here_are_refused(tmp_path, build, says):
    path = build(tmp_path / "x.h5", _good())
    with pytest.raises(FormatError, match=says):
        read_events(path)


def test_h5_external_storage_outside_the_data_is_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"\x05\x00" * 100)  # another file's bytes: x = 5, on the sensor
    path = hostile.h5_external_storage(tmp_path / "x.h5", _good(), secret)
    with h5py.File(path) as f:  # h5py reads the secret as column x
        assert f["x"].external and (f["x"][:] == 5).all()
    with pytest.raises(FormatError, match="x keeps its data in external file"):
        read_events(path)


@pytest.mark.parametrize("build", [hostile.h5_external_link, hostile.h5_virtual])
def test_h5_external_links_and_virtual_datasets_are_refused(tmp_path, build):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = _good()["x"]
    path = build(tmp_path / "x.h5", _good(), other)
    with h5py.File(path) as f:  # h5py follows either to the other file's data
        assert np.array_equal(f["x"][:], _good()["x"])
    with pytest.raises(FormatError, match="external link|virtual dataset"):
        read_events(path)


def test_h5_events_group_as_an_external_link_is_refused(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        for k in "txyp":
            f[f"events/{k}"] = _good()[k]
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["events"] = h5py.ExternalLink(other, "events")
    with pytest.raises(FormatError, match="events is an external link"):
        read_events(path)


def test_npz_coordinates_are_checked_as_npy(tmp_path):
    """x = 1.7 was stored as 1 and x = 65539 wrapped to 3; both are refused now."""
    good = _good(4)
    for x, says in (
        (np.array([0, 1.7, 2, 3]), "non-integer"),
        (np.array([0, 1, 2, 65539]), "16 bits"),
    ):
        path = tmp_path / "x.npz"
        np.savez(path, t=good["t"], x=x, y=good["y"], p=good["p"])
        with pytest.raises(FormatError, match=says):
            read_npz_events(path)
    np.savez(path, t=good["t"], x=good["x"].astype(np.int64), y=good["y"], p=good["p"])
    assert np.array_equal(read_npz_events(path), good)


@pytest.mark.parametrize("bad", [65536, 70000])
def test_every_array_reader_refuses_coordinates_that_wrap(tmp_path, bad):
    good = _good(3)
    x = np.array([1, 2, bad], dtype=np.int64)
    with pytest.raises(FormatError, match="does not fit 16 bits"):
        events_from_columns(tmp_path / "x", good["t"], x, good["y"], good["p"])
    np.save(tmp_path / "x.npy", np.stack([x, good["y"], good["p"], good["t"]], axis=1))
    with h5py.File(tmp_path / "x.h5", "w") as f:
        for k in "typ":
            f[k] = good[k]
        f["x"] = x
    for name in ("x.npy", "x.h5"):
        with pytest.raises(FormatError, match="does not fit 16 bits"):
            read_events(tmp_path / name)
    t = np.array([0, 1, 2**63], dtype=np.uint64)  # would wrap to a negative int64
    with pytest.raises(FormatError, match="beyond int64"):
        events_from_columns(tmp_path / "x", t, good["x"], good["y"], good["p"])
