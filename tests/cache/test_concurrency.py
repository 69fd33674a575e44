"""One writer per output: two real processes against one output, kills and restarts.

Every trial's result is compared, array by array with h5py, with an uninterrupted build.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import h5py
import numpy as np
import pytest

from eventvision.cache import CacheOptions, write_cache
from eventvision.cache.lock import lock_path, output_lock
from eventvision.errors import CacheBusyError

OPTIONS = CacheOptions("cifar10-dvs", time_steps=2, size=8)
TRIALS = 20
_COLUMNS = ("frames", "labels", "split", "source", "row", "n_events")


@pytest.fixture(scope="module")
def tiny(raw, tmp_path_factory):
    """A 10-sample raw release and its uninterrupted build's arrays."""
    root = raw.make_cifar_release(
        tmp_path_factory.mktemp("race") / "raw", per_class=1, n_events=300
    )
    ref = root.parent / "reference.h5"
    write_cache(OPTIONS, root, ref, block_samples=2)
    return root, _arrays(ref)


def _arrays(path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"]
        return {name: f[name][:] for name in _COLUMNS}


def _writer(root, out, wait: bool, delay: float, queue) -> None:
    """A second process's preprocess: the library call the CLI makes (forked: no imports)."""
    time.sleep(delay)
    try:
        write_cache(OPTIONS, root, out, block_samples=2, wait=wait)
        queue.put((os.getpid(), "ok", ""))
    except CacheBusyError as e:
        queue.put((os.getpid(), "busy", str(e)))
    except Exception as e:  # noqa: BLE001 - reported to the test, which fails on it
        queue.put((os.getpid(), "error", f"{type(e).__name__}: {e}"))


def _trial(root, out, rng, ctx) -> tuple[list, bool]:
    """Two writers racing on ``out``, the first maybe SIGKILLed; their reports, and the kill."""
    queue = ctx.Queue()
    wait_b = bool(rng.integers(2))
    procs = [
        ctx.Process(target=_writer, args=(root, out, False, 0.0, queue)),
        ctx.Process(target=_writer, args=(root, out, wait_b, rng.uniform(0, 0.05), queue)),
    ]
    for p in procs:
        p.start()
    killed = bool(rng.integers(3) == 0)
    if killed:
        time.sleep(rng.uniform(0, 0.15))
        os.kill(procs[0].pid, signal.SIGKILL)
    for p in procs:
        p.join(60)
        assert p.exitcode is not None, "a writer hung"
    reports = []
    while len(reports) < 2 - (killed and procs[0].exitcode == -signal.SIGKILL):
        reports.append(queue.get(timeout=10))
    return reports, killed


def test_two_processes_one_output_never_a_wrong_complete_file(tiny, tmp_path):
    root, reference = tiny
    ctx = multiprocessing.get_context("fork")
    rng = np.random.default_rng(9)
    outcomes = {"busy": 0, "ok": 0, "killed": 0}
    for k in range(TRIALS):
        out = tmp_path / f"trial{k}" / "cache.h5"
        reports, killed = _trial(root, out, rng, ctx)
        outcomes["killed"] += killed
        for _pid, status, message in reports:
            assert status in ("ok", "busy"), message
            outcomes[status] += 1
            if status == "busy":  # one line naming the output and the holder
                assert str(out) in message and "PID " in message and "\n" not in message
        if out.exists():  # whatever happened, a file at ``out`` is the uninterrupted build
            got = _arrays(out)
            for name in _COLUMNS:
                assert np.array_equal(got[name], reference[name]), (k, name)
        # A restart after any of it finishes (or reuses) the same build; no manual cleanup.
        write_cache(OPTIONS, root, out, block_samples=2)
        got = _arrays(out)
        for name in _COLUMNS:
            assert np.array_equal(got[name], reference[name]), (k, name)
        assert not out.with_name(out.name + ".parts").exists()
    assert outcomes["ok"] >= TRIALS and outcomes["killed"] > 0


def test_second_writer_is_refused_at_once_naming_the_holder(tiny, tmp_path):
    root, _ = tiny
    out = tmp_path / "held.h5"
    with output_lock(out):
        with pytest.raises(
            CacheBusyError, match=rf"{out.name} is being written.*PID {os.getpid()}"
        ):
            write_cache(OPTIONS, root, out, block_samples=2)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["held.h5.lock"]
    write_cache(OPTIONS, root, out, block_samples=2)  # the lock went with its holder
    assert lock_path(out).exists() and out.exists()


def test_lock_of_a_killed_holder_needs_no_cleanup(tmp_path):
    out = tmp_path / "x.h5"
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()

    def hold() -> None:
        with output_lock(out):
            ready.set()
            time.sleep(60)

    p = ctx.Process(target=hold)
    p.start()
    assert ready.wait(20)
    with pytest.raises(CacheBusyError, match=f"PID {p.pid}"):
        with output_lock(out):
            pass
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    with output_lock(out):  # taken at once
        pass
