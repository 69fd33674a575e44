"""`eventvision predict`: rows per window, summary line, atomic partial output, one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
from click.testing import CliRunner

from cli.main import main
from eventvision.events import Sensor, make_events
from eventvision.io import write_aedat4


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _recording(path, n=3000, step_us=50, packet_events=400):
    """A 16x16 AEDAT 4 recording of ``n`` events, one every ``step_us``, with a gap of 60 ms."""
    t = np.arange(n) * step_us
    t[n // 2 :] += 60_000  # a pause: windows without events
    events = make_events(t, np.arange(n) % 16, np.arange(n) // 16 % 16, np.arange(n) % 2)
    write_aedat4(path, events, Sensor(16, 16), packet_events=packet_events)
    return path


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_predict_writes_a_row_per_window_and_a_summary(tiny_run, tmp_path):
    rec = _recording(tmp_path / "rec.aedat4")
    out = tmp_path / "preds.csv"
    r = _invoke("predict", tiny_run, rec, "--out", out, "--window-ms", 20, "--top-k", 2)
    assert r.exit_code == 0, r.output
    rows = _rows(out)
    # 3000 events over 0.21 s: windows start every 20 ms from the first event to the last
    assert len(rows) == 11 and [int(x["t_start_us"]) for x in rows] == list(
        range(0, 220_000, 20_000)
    )
    assert list(rows[0]) == [
        "file",
        "window",
        "t_start_us",
        "t_end_us",
        "events",
        "status",
        "top1",
        "p1",
        "top2",
        "p2",
    ]
    assert sum(int(x["events"]) for x in rows) == 3000
    empty = [x for x in rows if x["status"] == "no events"]
    assert len(empty) == 2 and all(x["top1"] == "" and x["events"] == "0" for x in empty)
    full = [x for x in rows if x["status"] == "ok"]
    assert all(x["top1"] in "abcd" and float(x["p1"]) >= float(x["p2"]) for x in full)
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("11 windows (2 without events) of 1 file(s), 3000 events in"), last
    assert "events/s, real-time factor" in last and str(out) in last
    # the recording is first event to last (0 to 209,950 us), not the last window's end (0.22 s)
    assert "(recording 0.21 s)" in last, last


def test_predict_json_gif_and_event_windows(tiny_run, tmp_path):
    rec = _recording(tmp_path / "rec.aedat4")
    out, gif = tmp_path / "p.json", tmp_path / "p.gif"
    r = _invoke("predict", tiny_run, rec, "-o", out, "--window-events", 1000, "--gif", gif)
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["complete"] is True and data["windowing"] == "windows of 1000 events"
    assert [w["events"] for w in data["windows"]] == [1000, 1000, 1000]
    assert data["binning"]["classes"] == ["a", "b", "c", "d"]
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 3


def test_predict_stops_at_a_truncated_file_with_partial_rows_written(tiny_run, tmp_path):
    good = _recording(tmp_path / "good.aedat4")
    bad = _recording(tmp_path / "bad.aedat4")
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    out = tmp_path / "preds.csv"
    r = _invoke("predict", tiny_run, good, bad, "--out", out, "--window-ms", 20)
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
    assert "bad.aedat4" in r.output and "Traceback" not in r.output
    rows = _rows(out)
    assert [x["file"] for x in rows[:11]] == [str(good)] * 11
    assert rows[-1]["file"] == str(bad) and rows[-1]["status"].startswith("error: ")
    assert 11 < len(rows) - 1 < 22  # the bad file's good windows, before its error
    assert not list(tmp_path.glob(".*tmp"))


def test_predict_writes_nothing_when_it_fails_before_its_first_window(tiny_run, tmp_path):
    out = tmp_path / "preds.csv"
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"not an event file at all")
    r = _invoke("predict", tiny_run, junk, "--out", out)
    assert r.exit_code == 1 and "junk.dat: unknown event file format" in r.output, r.output
    big = tmp_path / "big.aedat4"
    write_aedat4(big, make_events([0, 1], [20, 21], [1, 1], [0, 1]), Sensor(32, 24))
    r = _invoke("predict", tiny_run, big, "--out", out, "--window-ms", 10)
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output
    assert "sensor 32x24 differs from the run's 16x16" in r.output
    assert not out.exists()
    r = _invoke("predict", tiny_run, big, "--out", tmp_path / "p.txt")
    assert r.exit_code == 1 and "expected a .csv or .json output file" in r.output
    r = _invoke("predict", tiny_run, big, "--out", out, "--stride-ms", 5)
    assert r.exit_code == 2 and "--stride-ms needs --window-ms" in r.output
    assert not out.exists()


def test_predict_streams_long_recordings(tiny_run, tmp_path, monkeypatch):
    """The first window is classified before the reader has gone far: memory stays bounded."""
    from eventvision.io import recording
    from eventvision.predict import Predictor, Windowing

    rec = _recording(tmp_path / "rec.aedat4", n=20_000, step_us=10, packet_events=500)
    read = []
    real = recording.iter_aedat4

    def counting(path, **opts):
        for chunk in real(path, **opts):
            read.append(len(chunk))
            yield chunk

    monkeypatch.setitem(recording._STREAMS, "aedat4", counting)
    windows = Predictor(tiny_run, windowing=Windowing(window_us=5_000), batch_size=1)
    first = next(windows.predict_file(rec))
    assert first.n_events == 500 and sum(read) <= 1500 < 20_000
