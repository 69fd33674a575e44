"""A SIGKILL between the writes of `last.pt` and `best.pt`; the resume repairs `best.pt`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from train.test_cli import TINY, ok
from train.tiny import write_cache

from eventvision.train import evaluate, read_metrics
from eventvision.train.runs_table import list_runs

# `eventvision train` whose process is killed right after the `last.pt` of the first epoch
# that beats the earlier ones, before its `best.pt` is written.
KILL_BETWEEN_SAVES = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from eventvision.cli.main import main
    from eventvision.train import trainer

    real_save, seen = trainer.save_checkpoint, []

    def save_then_die(payload, path):
        real_save(payload, path)
        if Path(path).name == "last.pt":
            if seen and payload["best_metric"] > seen[-1]:
                os.kill(os.getpid(), signal.SIGKILL)
            seen.append(payload["best_metric"])

    trainer.save_checkpoint = save_then_die
    main(sys.argv[1:])
    """
)


@pytest.mark.slow
def test_sigkill_between_the_checkpoint_writes_then_resume(tmp_path):
    # 48 training samples at lr 2e-2: held-out top-1 25% after epoch 1, 75% after epoch 2
    cache = write_cache(tmp_path / "c.h5", n_train=48)
    run = tmp_path / "run"
    args = ["train", "--data", cache, "--out", run, "--epochs", "3", *TINY, "--lr", "2e-2"]
    proc = subprocess.run(
        [sys.executable, "-c", KILL_BETWEEN_SAVES, *map(str, args)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    last = torch.load(run / "last.pt", weights_only=True)
    stale = torch.load(run / "best.pt", weights_only=True)
    assert stale["best_metric"] < last["best_metric"]  # what the kill left
    assert last["epoch"] == 2 and stale["epoch"] == 1

    done = last["epoch"]
    ok("train", "--resume", run, "--epochs", done)  # nothing left to train: only the repair
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["best_metric"] == last["best_metric"] and best["epoch"] == done
    for key, value in last["model"].items():
        assert torch.equal(best["model"][key], value), key
    rows = read_metrics(run)
    assert max(r["test_acc1"] for r in rows) == last["best_metric"]
    (summary,) = list_runs(tmp_path)
    assert summary.best_acc1 == evaluate(run / "best.pt", energy=False, save=False).acc1
