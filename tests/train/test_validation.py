"""A validation split of the train split, best.pt chosen on it, and the three reported numbers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from eventvision.cli.main import main
from train.test_cli import TINY

from eventvision.errors import ConfigError
from eventvision.train import read_metrics
from eventvision.train._data import validation_split
from eventvision.train.logs import format_scores, run_scores


def _invoke(*args, code: int = 0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_validation_split_is_per_class_seeded_and_disjoint():
    targets = np.array([0] * 10 + [1] * 20 + [2] * 5)
    train, val = validation_split(targets, 0.2, seed=3)
    assert np.bincount(targets[val]).tolist() == [2, 4, 1]  # round(0.2 * n) of each class
    assert sorted([*train, *val]) == list(range(len(targets)))
    assert set(train).isdisjoint(val)
    again, val_again = validation_split(targets, 0.2, seed=3)
    assert np.array_equal(val, val_again) and np.array_equal(train, again)
    assert not np.array_equal(val, validation_split(targets, 0.2, seed=4)[1])
    rng = np.random.default_rng(3)  # the rule by hand: classes in label order, one generator
    by_hand = [rng.permutation(10)[:2], 10 + rng.permutation(20)[:4], 30 + rng.permutation(5)[:1]]
    assert np.array_equal(np.sort(np.concatenate(by_hand)), val)
    assert validation_split(targets, 0.0, seed=3)[1].size == 0


def test_a_fraction_that_leaves_a_class_without_validation_is_one_line():
    targets = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ConfigError, match="class 'b' \\(3 train samples\\) with no validation"):
        validation_split(targets, 0.1, seed=0, classes=["a", "b"])


def test_run_scores_by_hand():
    rows = [
        {"epoch": 0, "test_acc1": 50.0, "val_acc1": 40.0},
        {"epoch": 1, "test_acc1": 70.0, "val_acc1": 60.0},
        {"epoch": 2, "test_acc1": 80.0, "val_acc1": 60.0},  # a tie keeps the first
        {"epoch": 3, "test_acc1": 65.0, "val_acc1": 55.0},
    ]
    assert run_scores(rows) == {
        "selected_on": "validation",
        "best_epoch": 2,
        "test_acc1_at_best": 70.0,
        "test_acc1_last": 65.0,
        "test_acc1_max": 80.0,
    }
    no_val = [{k: v for k, v in r.items() if k != "val_acc1"} for r in rows]
    assert run_scores(no_val)["selected_on"] == "test"
    assert run_scores(no_val)["test_acc1_at_best"] == 80.0
    assert run_scores(no_val)["best_epoch"] == 3
    line = format_scores(run_scores(rows))
    assert "at best validation (epoch 2): 70.00%" in line and "last epoch: 65.00%" in line
    assert "max over epochs (the paper's protocol, selected on test): 80.00%" in line


@pytest.fixture(scope="module")
def val_run(cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("val")
    args = ("train", "--data", cache, "--out", root / "run", "--epochs", "2", *TINY)
    return root, _invoke(*args, "--val-fraction", "0.25")


def test_validation_run_records_selects_and_labels(val_run):
    root, result = val_run
    run = root / "run"
    identity = json.loads((run / "data.json").read_text())["validation"]
    assert identity["fraction"] == 0.25 and identity["samples"] == 4  # 1 of each class's 4
    assert identity["seed"] == 12450
    rows = read_metrics(run)
    assert all("val_acc1" in r and r["selected_on"] == "validation" for r in rows)
    scores = run_scores(rows)
    vals = [r["val_acc1"] for r in rows]
    assert scores["best_epoch"] == vals.index(max(vals)) + 1
    # best.pt is the selected (validation) epoch, not the best test one
    best = torch.load(run / "best.pt", weights_only=True, map_location="cpu")
    assert best["epoch"] == scores["best_epoch"]
    assert rows[-1]["test_acc1_at_best"] == scores["test_acc1_at_best"]
    assert rows[-1]["test_acc1_max"] == max(r["test_acc1"] for r in rows)
    log = (run / "train.log").read_text()
    assert format_scores(scores) in log and "at best validation (epoch" in log
    assert "val loss" in log
    assert format_scores(scores) in result.stdout
    header, *lines = list(csv.reader((run / "summary.csv").open()))
    for col in ("val_top1", "test_top1_at_best", "test_top1_max_paper_protocol", "selected_on"):
        assert col in header, header
    assert [line[header.index("selected_on")] for line in lines] == ["validation"] * 2


def test_runs_table_and_evaluation_json_carry_the_three_numbers(val_run, cache, tmp_path):
    root, _ = val_run
    _invoke("train", "--data", cache, "--out", root / "plain", "--epochs", "1", *TINY)
    table = _invoke("runs", root).stdout.splitlines()
    assert "test@selected" in table[0] and "selected on" in table[0]
    plain = next(line for line in table if line.startswith(str(root / "plain")))
    with_val = next(line for line in table if line.startswith(str(root / "run ")))
    assert " test " in plain and " validation " in with_val
    assert "paper's protocol" in table[-1]
    out = _invoke("evaluate", root / "run", "--no-energy").stdout
    record = json.loads(open(out.strip().splitlines()[-1].removeprefix("saved ")).read())
    assert record["run_scores"] == run_scores(read_metrics(root / "run"))
    assert record["acc1"] == pytest.approx(record["run_scores"]["test_acc1_at_best"])
    val = _invoke("evaluate", root / "run", "--split", "val", "--no-energy", "--no-save").stdout
    assert "val split" in val


def test_resume_with_another_fraction_or_seed_is_refused(val_run):
    root, _ = val_run
    run = root / "run"
    for flag, key in (
        (("--val-fraction", "0.5"), "data.val_fraction"),
        (("--seed", "1"), "train.seed"),
    ):
        r = _invoke("train", "--resume", run, *flag, "--epochs", "4", code=1)
        assert f"not ['{key}" in r.output and r.output.count("\n") == 1, r.output
    data = json.loads((run / "data.json").read_text())
    data["validation"]["seed"] = 7  # a split recorded differently than the run's own
    (run / "data.json").write_text(json.dumps(data))
    r = _invoke("train", "--resume", run, "--epochs", "4", code=1)
    assert "validation seed 12450 differs from the run's 7" in r.output, r.output
    assert len(read_metrics(run)) == 2  # nothing was run or written


def test_cli_fraction_leaving_a_class_empty_is_one_line(cache, tmp_path):
    args = ("train", "--data", cache, "--out", tmp_path / "r", "--epochs", "1", *TINY)
    r = _invoke(*args, "--val-fraction", "0.1", code=1)
    assert r.output.count("\n") == 1 and "with no validation sample" in r.output, r.output
    assert not (tmp_path / "r").exists()
