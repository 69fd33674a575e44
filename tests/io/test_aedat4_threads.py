"""AEDAT 4 packets decompressed on a thread pool: the same events and errors as on one thread."""

from __future__ import annotations

import struct
import threading

import numpy as np
import pytest
from helpers import random_events

from eventvision.errors import FormatError
from eventvision.events import Sensor
from eventvision.io import _aedat4_pool as pool
from eventvision.io import aedat4, read_aedat4, read_aedat4_info, write_aedat4

dv = pytest.importorskip("dv_processing")

SENSOR = Sensor(240, 180)
THREADS = (1, 2, 3)


@pytest.fixture
def small_runs(monkeypatch):
    """One packet per pool task, so that a few dozen packets slide through the bounded window."""
    monkeypatch.setattr(pool, "TASK_BYTES", 1)


def _write(tmp_path, compression: str, events=None, name: str = "x.aedat4", packet_events=37):
    path = tmp_path / name
    if events is None:
        events = random_events(1500, 11, width=SENSOR.width, height=SENSOR.height)
    write_aedat4(path, events, SENSOR, compression=compression, packet_events=packet_events)
    return path, events


def _packet_offsets(path) -> list[int]:
    """Byte offset of each packet, from the packet headers."""
    content, pos = path.read_bytes(), read_aedat4_info(path).body_offset
    offsets = []
    while pos < len(content):
        offsets.append(pos)
        pos += 8 + struct.unpack_from("<i", content, pos + 4)[0]
    return offsets


def _dv_read(path) -> np.ndarray:
    recording = dv.io.MonoCameraRecording(str(path))
    parts = []
    while (batch := recording.getNextEventBatch()) is not None:
        parts.append(batch.numpy())
    records = np.concatenate(parts)
    return np.stack([records[k] for k in ("timestamp", "x", "y", "polarity")], axis=1)


def _columns(events: np.ndarray) -> np.ndarray:
    return np.stack([events[k].astype(np.int64) for k in "txyp"], axis=1)


def _error(path, threads: int) -> str:
    with pytest.raises(FormatError) as caught:
        read_aedat4(path, threads=threads)
    return str(caught.value)


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
@pytest.mark.parametrize("threads", THREADS)
def test_threads_read_what_one_thread_and_dv_processing_read(
    tmp_path, small_runs, compression, threads
):
    path, events = _write(tmp_path, compression)
    assert len(_packet_offsets(path)) == 41  # more packets than 4 tasks per thread in flight
    ours = read_aedat4(path, threads=threads)
    assert np.array_equal(ours, read_aedat4(path, threads=1))
    assert np.array_equal(ours, events)
    assert np.array_equal(_columns(ours), _dv_read(path))


@pytest.mark.parametrize("compression", ["LZ4", "ZSTD_HIGH"])
def test_threads_on_files_dv_processing_wrote(tmp_path, small_runs, compression):
    events = random_events(600, 12, width=SENSOR.width, height=SENSOR.height, t0=10**12)
    config = dv.io.MonoCameraWriter.Config("DVXplorer_test")
    config.addEventStream((SENSOR.width, SENSOR.height))
    config.addTriggerStream()
    config.compression = getattr(dv.CompressionType, compression)
    path = tmp_path / "dv.aedat4"
    writer = dv.io.MonoCameraWriter(str(path), config)
    for batch in np.array_split(events, 30):
        store = dv.EventStore()
        for t, x, y, p in batch[["t", "x", "y", "p"]].tolist():
            store.push_back(t, x, y, bool(p))
        writer.writeEvents(store)
        writer.writeTrigger(dv.Trigger(int(batch["t"][-1]), dv.TriggerType.APS_FRAME_START))
    del writer  # closes the file
    for threads in THREADS:
        assert np.array_equal(read_aedat4(path, threads=threads), events), threads


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_bad_middle_packet_named_alike_on_any_threads(tmp_path, small_runs, compression):
    path, _ = _write(tmp_path, compression)
    offsets = _packet_offsets(path)
    content = bytearray(path.read_bytes())
    bad = offsets[20]
    content[bad + 8 : bad + 12] = b"\0\0\0\0"  # the frame magic
    path.write_bytes(bytes(content))
    messages = {_error(path, threads) for threads in THREADS}
    assert len(messages) == 1, messages
    assert messages.pop().startswith(
        f"{path}: packet at byte offset {bad} does not decompress as {compression}: "
    )


@pytest.mark.parametrize("first", ["decompress", "decode"])
def test_first_bad_packet_in_file_order_is_reported(tmp_path, small_runs, first):
    """A packet that fails to decode is reported before a later one that fails to decompress,
    and the other way round, however the pool's threads finish."""
    events = random_events(1500, 13, width=SENSOR.width, height=SENSOR.height)
    early, late = 7, 30
    backwards = late if first == "decompress" else early
    events["t"][backwards * 37 + 5] = events["t"][backwards * 37 + 4] - 1  # time runs backwards
    path, _ = _write(tmp_path, "zstd", events)
    offsets = _packet_offsets(path)
    corrupt = offsets[early if first == "decompress" else late]
    content = bytearray(path.read_bytes())
    content[corrupt + 8 : corrupt + 12] = b"\0\0\0\0"
    path.write_bytes(bytes(content))
    want = (
        f"packet at byte offset {offsets[early]} does not decompress"
        if first == "decompress"
        else f"timestamp goes backwards in the packet at byte offset {offsets[early]}"
    )
    messages = {_error(path, threads) for threads in THREADS}
    assert len(messages) == 1 and want in messages.pop()


def test_pool_threads_stopped_after_an_error(tmp_path, small_runs):
    path, _ = _write(tmp_path, "lz4")
    content = bytearray(path.read_bytes())
    bad = _packet_offsets(path)[3]
    content[bad + 8 : bad + 12] = b"\0\0\0\0"
    path.write_bytes(bytes(content))
    _error(path, 3)
    names = [t.name for t in threading.enumerate()]
    assert not [n for n in names if n.startswith("eventvision-aedat4")], names


def test_decompression_runs_at_most_a_window_ahead(tmp_path, small_runs, monkeypatch):
    """Memory stays bounded: run i starts only once run i - 4 * threads has been decoded."""
    path, events = _write(tmp_path, "zstd")
    threads, decoded, lead = 2, [0], []
    real_run, real_decode = pool._decompress_run, aedat4._decode_batch

    def run(decompress, blobs, offsets, path, share):
        lead.append(len(lead) - decoded[0])  # one packet a run: runs started minus decoded
        return real_run(decompress, blobs, offsets, path, share)

    def decode(*args):
        decoded[0] += 1
        return real_decode(*args)

    monkeypatch.setattr(pool, "_decompress_run", run)
    monkeypatch.setattr(aedat4, "_decode_batch", decode)
    assert np.array_equal(read_aedat4(path, threads=threads), events)
    assert len(lead) == 41
    assert max(lead) <= pool.AHEAD_PER_THREAD * threads - 1


def test_runs_cover_every_packet_once():
    sizes = [5, 1, 1, 10, 2, 2, 2, 3]
    runs = list(pool.runs(sizes, 4))
    assert runs == [(0, 1), (1, 4), (4, 6), (6, 8)]
    assert list(pool.runs([], 4)) == []


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_refused(tmp_path, threads):
    path, _ = _write(tmp_path, "zstd")
    with pytest.raises(ValueError, match="threads must be a positive int or None"):
        read_aedat4(path, threads=threads)


def test_default_threads(monkeypatch):
    assert 1 <= aedat4.default_aedat4_threads() <= 4
    monkeypatch.setattr(pool.os, "sched_getaffinity", lambda pid: set(range(64)))
    assert aedat4.default_aedat4_threads() == 4
    monkeypatch.setattr(pool.multiprocessing, "parent_process", lambda: object())
    assert aedat4.default_aedat4_threads() == 1  # a worker process: its siblings share the cores


def test_uncompressed_file_reads_alike_whatever_threads(tmp_path):
    path, events = _write(tmp_path, "none")
    for threads in THREADS:
        assert np.array_equal(read_aedat4(path, threads=threads), events)


def test_decoding_thread_takes_unstarted_runs_while_it_waits():
    """While a pool thread holds the run to decode next, the caller decompresses newer runs."""
    from collections import deque
    from concurrent.futures import Future

    head = Future()
    head.set_running_or_notify_cancel()  # a pool thread has started it
    order = []

    def newer():
        order.append("newer")
        head.set_result([(0, b"head")])  # the pool thread finishes meanwhile
        return [(1, b"newer")]

    def newest():
        order.append("newest")
        return [(2, b"newest")]

    runs = [pool.Run(lambda: pytest.fail("run twice"), head)]
    runs += [pool.Run(task, Future()) for task in (newer, newest)]
    pending = deque(runs)
    assert pool.next_run(pending) == [(0, b"head")]
    assert order == ["newest", "newer"]  # newest first: the pool works from the oldest
    assert [r.result for r in pending] == [[(1, b"newer")], [(2, b"newest")]]
    assert all(r.future.cancelled() for r in pending)  # no pool thread runs them again


def test_small_file_read_without_a_pool(tmp_path, monkeypatch):
    """Under two runs of compressed events, starting a pool would cost more than it saves."""
    path, events = _write(tmp_path, "zstd", packet_events=4096)
    assert path.stat().st_size < 2 * pool.TASK_BYTES
    monkeypatch.setattr(pool, "thread_pool", lambda threads: pytest.fail("a pool started"))
    assert np.array_equal(read_aedat4(path, threads=3), events)
