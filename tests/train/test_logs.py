"""train.log lines, strict JSON, timm's summary.csv and TensorBoard scalars (with and without)."""

from __future__ import annotations

import csv
import json
import math
import sys

import pytest

from eventvision.train.logs import (
    LOG_FILE,
    SUMMARY_FILE,
    RunLog,
    dumps_strict,
    format_epoch,
    json_safe,
    write_summary_csv,
)


def _strict_loads(text: str):
    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _row(epoch: int, **extra) -> dict:
    row = {
        "epoch": epoch,
        "lr": 1e-3 / (epoch + 1),
        "train_loss": 1.5 - 0.1 * epoch,
        "train_acc1": 30.0 + epoch,
        "train_acc5": 80.0,
        "test_loss": 1.4,
        "test_acc1": 35.0 + 2 * epoch,
        "test_acc5": 85.0,
        "train_samples_per_s": 123.4,
        "dssa_rates": {"a": 0.1},
    }
    row.update(extra)
    return row


def test_non_finite_numbers_become_null_everywhere():
    value = {"a": math.nan, "b": [1.0, math.inf, {"c": -math.inf}], "d": 2, "e": "nan"}
    assert json_safe(value) == {"a": None, "b": [1.0, None, {"c": None}], "d": 2, "e": "nan"}
    assert _strict_loads(dumps_strict(value)) == json_safe(value)
    assert "NaN" in json.dumps(value)  # what the standard library would have written


def test_metrics_jsonl_is_strict_json(tmp_path):
    from eventvision.train.trainer import _write_metrics, read_metrics

    rows = [_row(0), _row(1, train_loss=math.nan, test_loss=math.inf)]
    _write_metrics(tmp_path, rows)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    parsed = [_strict_loads(line) for line in lines]
    assert parsed[1]["train_loss"] is None and parsed[1]["test_loss"] is None
    assert read_metrics(tmp_path) == parsed


def test_summary_csv_has_timms_columns_and_values(tmp_path):
    from timm.utils import update_summary

    rows = [_row(0), _row(1, test_acc1=math.nan)]
    ours = write_summary_csv(tmp_path / SUMMARY_FILE, rows)
    theirs = tmp_path / "timm.csv"
    for r in rows:
        update_summary(
            r["epoch"],
            {"loss": r["train_loss"], "top1": r["train_acc1"], "top5": r["train_acc5"]},
            {"loss": r["test_loss"], "top1": r["test_acc1"], "top5": r["test_acc5"]},
            str(theirs),
            lr=r["lr"],
        )
    a = list(csv.reader(ours.open()))
    b = list(csv.reader(theirs.open()))
    assert a[0] == b[0]  # the same header, column for column
    assert a[1] == b[1]
    assert a[2][5] == "" and b[2][5] == "nan"  # a missing value is empty, not "nan"
    assert [x for i, x in enumerate(a[2]) if i != 5] == [x for i, x in enumerate(b[2]) if i != 5]


def test_summary_csv_adds_ema_columns_only_when_evaluated(tmp_path):
    path = write_summary_csv(tmp_path / SUMMARY_FILE, [_row(0, ema_test_acc1=40.0)])
    header = next(csv.reader(path.open()))
    assert "eval_ema_top1" in header and "eval_ema_loss" not in header
    assert header[0] == "epoch" and header[-1] == "lr"


def test_summary_csv_keeps_columns_aligned_when_values_are_missing(tmp_path):
    rows = [_row(0), _row(1, lr=math.nan, train_loss=None)]
    a, b, c = list(csv.reader(write_summary_csv(tmp_path / SUMMARY_FILE, rows).open()))
    assert len(a) == len(b) == len(c) and a[-1] == "lr" and a[1] == "train_loss"
    assert c[-1] == "" and c[1] == "" and b[-1] == str(rows[0]["lr"])


def test_epoch_line_by_hand():
    line = format_epoch(_row(1), epochs=10, elapsed_s=3725.2)
    assert line == (
        "epoch 2/10  train loss 1.4000 top-1 31.00%  test loss 1.4000 top-1 37.00%"
        "  lr 5.00e-04  123.4 samples/s  elapsed 1:02:05"
    )
    assert "(EMA 12.50%)" in format_epoch(_row(0, ema_test_acc1=12.5), 1, 0)
    assert "test loss nan" in format_epoch(_row(0, test_loss=None), 1, 0)


def test_run_log_writes_lines_csv_and_tensorboard(tmp_path, caplog):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = RunLog(tmp_path)
    assert log.tensorboard
    rows = []
    with caplog.at_level("INFO", logger="eventvision.train.logs"):
        for epoch in range(3):
            rows.append(_row(epoch))
            log.epoch(rows[-1], rows, epochs=3)
    log.close()
    text = (tmp_path / LOG_FILE).read_text()
    assert text.count(" epoch ") == 3 and "\r" not in text
    assert [r.getMessage()[:9] for r in caplog.records] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    events = acc.Scalars("top1/test")
    assert [e.step for e in events] == [1, 2, 3]
    assert [e.value for e in events] == pytest.approx([r["test_acc1"] for r in rows])
    assert len(list(csv.reader((tmp_path / SUMMARY_FILE).open()))) == 4


def test_run_log_without_tensorboard_says_so_and_carries_on(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails
    log = RunLog(tmp_path)
    assert not log.tensorboard
    log.epoch(_row(0), [_row(0)], epochs=1)
    log.close()
    text = (tmp_path / LOG_FILE).read_text()
    assert "tensorboard package is not installed" in text and "epoch 1/1" in text
    assert not (tmp_path / "tb").exists()
