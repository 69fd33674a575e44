"""Predictor: windows of a recording binned as the run's cache, bit for bit, and classified."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional

from eventvision.cache.reader import open_cache, read_sample
from eventvision.data import FrameDataset
from eventvision.errors import ConfigError, FormatError
from eventvision.events import Sensor, make_events
from eventvision.predict import Binning, Predictor, Windowing, iter_windows, run_binning


def _reference_logits(model, cache, split="test"):
    """Each cached sample's logits: the cache's frames through the model, one at a time."""
    ds = FrameDataset(cache, split)
    meta = open_cache(cache)
    out = []
    for i in range(len(ds)):
        x, _ = ds[i]
        with torch.no_grad():
            logits = model(x[None]).mean(0)[0].numpy()  # [classes]
        functional.reset_net(model)
        source = read_sample(meta, int(ds._rows[i])).source
        out.append((cache.with_name(cache.stem + "_raw") / source, logits))
    return out


def test_window_of_a_cached_sample_gives_its_logits_bit_for_bit(tiny_run, tiny_cache):
    predictor = Predictor(tiny_run, batch_size=3)
    reference = _reference_logits(predictor.model, tiny_cache)
    assert len({r[1].tobytes() for r in reference}) == len(reference)  # outputs differ
    whole = [next(predictor.predict_file(path)) for path, _ in reference]  # default: the file
    for (path, logits), got in zip(reference, whole, strict=True):
        assert got.logits.dtype == np.float32 and np.array_equal(got.logits, logits), path
    # the same events cut as a 100 ms window (the samples span 0..100 ms) and as 450 events
    for windowing in (Windowing(window_us=100_000), Windowing(window_events=450)):
        predictor.windowing = windowing
        for path, logits in reference[:3]:
            (window,) = list(predictor.predict_file(path))
            assert window.n_events == 450 and np.array_equal(window.logits, logits)


def test_batches_and_shifted_windows_are_classified_in_order(tiny_run, tiny_cache):
    predictor = Predictor(tiny_run, batch_size=2, windowing=Windowing(window_us=20_000))
    path, _ = _reference_logits(predictor.model, tiny_cache)[0]
    events = np.load(path)
    rows = list(predictor.predict_file(path))
    t0 = int(events["t"][0])
    assert [w.index for w in rows] == list(range(len(rows)))
    assert rows[0].t_start_us == t0 and rows[-1].t_start_us <= events["t"][-1]
    assert sum(w.n_events for w in rows) == len(events)
    alone = Predictor(tiny_run, batch_size=1)
    for w in rows[:3]:
        cut = events[(events["t"] >= w.t_start_us) & (events["t"] < w.t_end_us)]
        (one,) = alone.predict_events(cut)
        np.testing.assert_allclose(w.logits, one.logits, rtol=0, atol=1e-5)
        assert abs(sum(p for _, p in w.top(4)) - 1) < 1e-9


def test_windows_without_events_get_a_row_saying_so(tiny_run):
    predictor = Predictor(tiny_run, windowing=Windowing(window_us=10_000))
    events = make_events([0, 5, 35_000], [1, 2, 3], [1, 2, 3], [0, 1, 1])
    rows = predictor.predict_events(events)
    assert [(w.t_start_us, w.n_events) for w in rows] == [
        (0, 2),
        (10_000, 0),
        (20_000, 0),
        (30_000, 1),
    ]
    assert rows[1].logits is None and rows[1].top() == [] and rows[0].logits is not None


def test_iter_windows_streams_and_matches_a_plain_cut():
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(0, 1_000_000, 5000))
    events = make_events(t, rng.integers(0, 16, 5000), rng.integers(0, 16, 5000), t % 2)
    chunks = [events[i : i + 97] for i in range(0, len(events), 97)]
    w = Windowing(window_us=70_000, stride_us=30_000)
    got = list(iter_windows(iter(chunks), w))
    starts = range(int(t[0]), int(t[-1]) + 1, 30_000)
    assert [x.t_start_us for x in got] == list(starts)
    for x in got:
        want = events[(t >= x.t_start_us) & (t < x.t_start_us + 70_000)]
        assert np.array_equal(x.events, want)
    counted = list(iter_windows(iter(chunks), Windowing(window_events=300, stride_us=100_000)))
    assert [x.t_start_us for x in counted] == list(range(int(t[0]), int(t[-1]) + 1, 100_000))
    for x in counted:
        lo = np.searchsorted(t, x.t_start_us)
        assert np.array_equal(x.events, events[lo : lo + 300])
    blocks = list(iter_windows(iter(chunks), Windowing(window_events=1000)))
    assert [len(b.events) for b in blocks] == [1000] * 5
    assert np.array_equal(np.concatenate([b.events for b in blocks]), events)


def test_truncated_stream_gives_its_good_windows_then_the_error(tiny_run, tmp_path):
    from eventvision.io import write_aedat4

    predictor = Predictor(tiny_run, windowing=Windowing(window_us=10_000), batch_size=4)
    n = 5000
    events = make_events(np.arange(n) * 10, np.arange(n) % 16, np.arange(n) // 16 % 16, [1] * n)
    path = tmp_path / "rec.aedat4"
    write_aedat4(path, events, Sensor(16, 16), packet_events=500)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    out, error = [], None
    try:
        for w in predictor.predict_file(path):
            out.append(w)
    except FormatError as e:
        error = str(e)
    assert error is not None and error.startswith(str(path)), error
    # the good packets before the cut give whole windows; the one the cut falls in is not given
    assert 1 <= len(out) < 5 and [w.t_start_us for w in out] == [
        i * 10_000 for i in range(len(out))
    ]
    assert all(w.n_events == 1000 for w in out)  # no window cut short by the truncation


def test_other_sensor_refused_in_one_line_or_resized(tiny_run, tmp_path):
    from eventvision.io import write_aedat4

    events = make_events([0, 10, 20], [30, 31, 32], [3, 4, 5], [0, 1, 1])
    path = tmp_path / "big.aedat4"
    write_aedat4(path, events, Sensor(40, 30))
    with pytest.raises(ConfigError, match=r"big.aedat4: sensor 40x30 differs from the run's 16x16"):
        list(Predictor(tiny_run).predict_file(path))
    (row,) = Predictor(tiny_run, resize_sensor=True).predict_file(path)
    assert row.n_events == 3 and row.logits is not None


def test_events_outside_the_sensor_and_unknown_formats_name_the_file(tiny_run, tmp_path):
    path = tmp_path / "wide.npy"
    np.save(path, make_events([0, 1], [3, 99], [3, 3], [1, 1]))
    with pytest.raises(FormatError, match=r"wide.npy: window 0: event 1 \(x=99"):
        list(Predictor(tiny_run).predict_file(path))
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"hello world, not events")
    with pytest.raises(FormatError, match="junk.dat: unknown event file format"):
        list(Predictor(tiny_run).predict_file(junk))


def test_binning_comes_from_data_json_or_is_asked_for(tiny_run, tiny_cache, tmp_path):
    binning = run_binning(tiny_run, 2, 16, 3)
    meta = open_cache(tiny_cache)
    assert (binning.dataset, binning.classes, binning.sensor) == (
        "folder",
        meta.classes,
        meta.sensor,
    )
    assert (binning.time_steps, binning.size, binning.split_by) == (2, 16, "number")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "model.pt").write_bytes((tiny_run / "best.pt").read_bytes())
    with pytest.raises(ConfigError, match=r"bare: no data.json .* no binning options given"):
        Predictor(bare / "model.pt")
    sidecar = tmp_path / "binning.json"
    sidecar.write_text(json.dumps({"binning": binning.to_dict()}), encoding="utf-8")
    assert Predictor(bare / "model.pt", binning=sidecar).binning == binning
    other = Binning(**{**binning.to_dict(), "time_steps": 4})
    with pytest.raises(ConfigError, match="does not fit the model"):
        Predictor(bare / "model.pt", binning=other)


def test_cifar10dvs_windows_are_oriented_and_binned_as_its_cache(tmp_path):
    """The raw AEDAT 2.0 file, read and oriented as predict does, gives the cached frames."""
    from eventvision.cache import CacheOptions, write_cache
    from eventvision.io import iter_events
    from eventvision.synth.cifar10dvs import make_cifar10dvs

    root = tmp_path / "raw"
    make_cifar10dvs(root, 1, seed=0, duration_us=10_000)
    cache = tmp_path / "c.h5"
    write_cache(CacheOptions("cifar10-dvs", time_steps=3, size=16, compression="lzf"), root, cache)
    run = tmp_path / "run"
    run.mkdir()
    (run / "data.json").write_text(json.dumps({"path": str(cache)}), encoding="utf-8")
    binning = run_binning(run, 3, 16, 3)
    assert binning.dataset == "cifar10-dvs" and binning.whole_files
    meta = open_cache(cache)
    for split in ("train", "test"):
        ds = FrameDataset(cache, split)
        for i in range(len(ds)):
            source = read_sample(meta, int(ds._rows[i])).source
            events = np.concatenate([binning.orient(c) for c in iter_events(root / source)])
            frames = binning.to_frames()(events)
            assert np.array_equal(frames, ds[i][0].numpy()), source
            raw = binning.to_frames()(np.concatenate(list(iter_events(root / source))))
            assert not np.array_equal(raw, frames)  # the orientation matters


def test_data_json_records_the_binning_so_the_cache_may_go(tiny_run, tmp_path):
    identity = json.loads((tiny_run / "data.json").read_text(encoding="utf-8"))
    assert identity["options"]["time_steps"] == 2 and identity["whole_files"] is True
    moved = tmp_path / "moved"
    moved.mkdir()
    gone = {**identity, "path": str(tmp_path / "gone.h5")}
    (moved / "data.json").write_text(json.dumps(gone), encoding="utf-8")
    assert run_binning(moved, 2, 16, 3) == run_binning(tiny_run, 2, 16, 3)
    older = {k: v for k, v in gone.items() if k not in ("options", "classes", "whole_files")}
    (moved / "data.json").write_text(json.dumps(older), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"gone.h5, which is not there.*--binning"):
        run_binning(moved, 2, 16, 3)
