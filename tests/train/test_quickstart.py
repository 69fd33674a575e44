"""The quickstart end to end, in its seconds-long --tiny version (the full run is no unit test)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from eventvision.cli.main import main


def test_tiny_quickstart_prints_its_table_and_draws_its_pictures(tmp_path):
    out = tmp_path / "qs"
    args = ["quickstart", "--tiny", "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for text in (
        "held-out results",
        "top-1 accuracy (%)",
        "firing rate",
        "energy per image",
        "synthesise",
        "preprocess",
        "train",
        "evaluate",
        "total",
    ):
        assert text in result.output, (text, result.output)
    for name in ("sample_frames.png", "curves.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    summary = json.loads((out / "results.json").read_text())
    assert summary["test_samples"] == 10 and summary["train_samples"] == 30
    correct = summary["acc1"] * summary["test_samples"] / 100
    assert correct == round(correct)  # a share of the 10 held-out samples
    # evaluate() of best.pt agrees with the training loop's test top-1 at the selected epoch
    rows = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    assert summary["acc1"] == rows[-1]["test_acc1_at_best"]
    assert set(summary["stage_seconds"]) == {
        "synthesise",
        "preprocess",
        "train",
        "evaluate",
        "pictures",
    }
    # a second run reuses the data, the cache and the finished run
    again = CliRunner().invoke(main, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert json.loads((out / "results.json").read_text())["acc1"] == summary["acc1"]
