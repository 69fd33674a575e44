"""Watching and comparing runs from the command line: epoch lines, plot, runs, evaluate, models."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner
from eventvision.cli.main import main
from train.test_cli import TINY

ROOT = Path(__file__).resolve().parents[2]


def _invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def two_runs(cache, tmp_path_factory):
    """Run a (plain, -v after the command) and run b (accumulation, EMA, bf16, per-step warm-up)."""
    root = tmp_path_factory.mktemp("runs")
    a = _invoke("train", "--data", cache, "--out", root / "a", "--epochs", "2", *TINY, "-v")
    b = _invoke(
        *("train", "--data", cache, "--out", root / "b", "--epochs", "1", *TINY),
        *("--batch-size", "4", "--accum-steps", "2", "--ema-decay", "0.9"),
        *("--amp-dtype", "bfloat16", "--warmup-per-iter", "--set", "train.warmup_epochs=1"),
    )
    return root, a, b


def test_epoch_lines_reach_stderr_and_train_log_without_carriage_returns(two_runs):
    root, a, _ = two_runs
    assert "epoch 1/2  train loss" in a.stderr and "epoch 2/2" in a.stderr, a.stderr
    assert "\r" not in a.stderr
    log = (root / "a" / "train.log").read_text()
    assert log.count(" epoch ") == 2 and "\r" not in log and "starting: pipeline" in log
    assert a.stdout.startswith(f"run {root / 'a'}: 2 epochs")


def test_quiet_after_the_command_hides_epoch_lines(cache, tmp_path):
    r = _invoke("train", "--data", cache, "--out", tmp_path / "q", "--epochs", "1", *TINY, "-q")
    assert "epoch 1/1" not in r.stderr, r.stderr
    assert "epoch 1/1" in (tmp_path / "q" / "train.log").read_text()


def test_training_options_run_and_are_recorded(two_runs):
    root, _, b = two_runs
    ckpt = torch.load(root / "b" / "last.pt", weights_only=True)
    assert set(ckpt["model_ema"]) == set(ckpt["model"])
    spec = ckpt["pipeline"]["train"]
    assert (spec["accum_steps"], spec["ema_decay"], spec["amp_dtype"]) == (2, 0.9, "bfloat16")
    row = json.loads((root / "b" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"ema_test_acc1", "ema_test_loss"} <= set(row)
    assert "eval_ema_top1" in (root / "b" / "summary.csv").read_text().splitlines()[0]
    # 4 per step x 1 process x 2 steps differs from the recipe's 8
    assert "global batch 8" not in b.stderr and "differs from the paper's" not in b.stderr


def test_global_batch_differing_from_the_paper_is_announced(cache, tmp_path):
    r = _invoke(
        *("train", "--data", cache, "--out", tmp_path / "g", "--epochs", "1", *TINY),
        *("--batch-size", "4"),
    )
    assert "differs from the paper's 8; --accum-steps 2 matches it" in r.stderr, r.stderr


def test_plot_overlays_runs_and_refuses_unknown_metrics(two_runs, tmp_path):
    root, _, _ = two_runs
    png = tmp_path / "both.png"
    out = _invoke("plot", root / "a", root / "b", "--metric", "test_acc1", "--out", png).stdout
    assert f"wrote {png}" in out and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(main, ["plot", str(root / "a"), "--metric", "acc", "--out", str(png)])
    assert bad.exit_code == 1 and "no metric 'acc'" in bad.output and "test_acc1" in bad.output


def test_runs_table_lists_every_run(two_runs):
    root, _, _ = two_runs
    lines = _invoke("runs", root).stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "recipe", "model"]
    a = next(line for line in lines if line.startswith(str(root / "a")))
    assert "cifar10dvs-direct" in a and "2/2" in a and a.endswith("done")
    assert any(line.startswith(str(root / "b")) for line in lines)


def test_evaluate_saves_a_record_with_its_options(two_runs):
    root, _, _ = two_runs
    out = _invoke(
        "evaluate", root / "a", "--time-steps", "2", "--size", "16", "--set", "data.workers=0"
    ).stdout
    saved = Path(out.strip().splitlines()[-1].removeprefix("saved "))
    assert saved.parent == root / "a" and saved.name.startswith("eval-tiny-test-")
    record = json.loads(saved.read_text())
    assert record["options"]["time_steps"] == 2 and record["options"]["size"] == 16
    assert record["split"] == "test"
    correct = record["acc1"] * record["samples"] / 100
    assert correct == pytest.approx(round(correct))  # a whole number of the test samples
    assert record["energy"] and record["firing_rates"]
    metrics = json.loads((root / "a" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["acc1"] == pytest.approx(metrics["test_acc1"])  # best.pt is epoch 1 or 2


def test_models_lists_every_variant_with_its_parameters():
    from eventvision.models import create_model, list_models

    text = _invoke("models").stdout
    for name in list_models():
        line = next(x for x in text.splitlines() if x.startswith(name + " "))
        model = create_model(name)
        assert f"{sum(p.numel() for p in model.parameters()):,}" in line
        assert f"{model.cfg.img_size} px" in line


def _message_strings(path: Path):
    """String constants of a module that are not docstrings (f-string pieces included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.body and isinstance(node.body[0], ast.Expr):
                docs.add(id(node.body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.value


def _all_flags(command: click.Command) -> set[str]:
    flags = {o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", []))}
    if isinstance(command, click.Group):  # lazy groups load their commands on get_command
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            flags |= _all_flags(command.get_command(ctx, name))
    return flags


def test_every_flag_named_in_a_message_exists():
    known = _all_flags(main) | {"--help", "--version"}
    named = {}
    files = [*sorted((ROOT / "eventvision").rglob("*.py")), *sorted((ROOT / "cli").rglob("*.py"))]
    for path in files:
        for text in _message_strings(path):
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text):
                named.setdefault(flag, str(path.relative_to(ROOT)))
    assert "--time-steps" in named and "--resume" in named  # the scan does see messages
    missing = {flag: where for flag, where in named.items() if flag not in known}
    assert not missing, f"messages name flags no command has: {missing}"
