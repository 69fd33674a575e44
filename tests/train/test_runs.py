"""Run folders refuse instead of restarting, travel between directories, and clean up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import pytest
from helpers import digest_tree
from train.test_cli import fails, ok
from train.tiny import tiny_pipeline, write_cache

from eventvision.errors import CacheMismatchError, CheckpointError, ConfigError
from eventvision.train import evaluate, load_pipeline, lr_at_epoch, read_metrics, train
from eventvision.train.checkpoint import load_checkpoint
from eventvision.train.config import pipeline_to_toml

TESTS = Path(__file__).resolve().parents[1]


def _hashed_cache(path: Path, options_hash: str) -> Path:
    write_cache(path)
    with h5py.File(path, "a") as f:
        f.attrs["options_hash"] = options_hash
        f.attrs["build_id"] = f"build-{options_hash}"
    return path


def test_resume_without_last_checkpoint_is_refused_and_leaves_the_folder_unchanged(cache, tmp_path):
    pipe = tiny_pipeline(cache)
    run = tmp_path / "run"
    run.mkdir()
    (run / "pipeline.toml").write_text(pipeline_to_toml(pipe), encoding="utf-8")
    (run / "metrics.jsonl").write_text('{"epoch": 0, "test_acc1": 50.0}\n', encoding="utf-8")
    (run / "best.pt").write_bytes(b"an earlier best checkpoint")
    before = digest_tree(run)
    with pytest.raises(CheckpointError, match="nothing to resume: no last.pt"):
        train(load_pipeline(run / "pipeline.toml"), run, resume=True)
    line = fails("train", "--resume", run, match="nothing to resume")
    assert "--overwrite" in line
    assert digest_tree(run) == before


def test_a_new_run_into_a_run_folder_needs_resume_or_overwrite(cache, tmp_path):
    run = tmp_path / "run"
    train(tiny_pipeline(cache, **{"train.epochs": 1}), run)
    (run / "notes.txt").write_text("mine", encoding="utf-8")
    before = digest_tree(run)
    with pytest.raises(ConfigError, match="--overwrite"):
        train(tiny_pipeline(cache, **{"train.epochs": 1}), run)
    assert digest_tree(run) == before
    with pytest.raises(ConfigError, match="pick one"):
        train(tiny_pipeline(cache), run, resume=True, overwrite=True)
    result = train(
        tiny_pipeline(cache, **{"train.epochs": 2, "train.lr": 1e-3}), run, overwrite=True
    )
    assert [r["epoch"] for r in read_metrics(run)] == [0, 1] and result.epochs == 2
    assert load_pipeline(run / "pipeline.toml").train.lr == 1e-3
    assert (run / "notes.txt").read_text(encoding="utf-8") == "mine"  # not a run file: kept


def test_runs_travel_extend_and_relocate(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    _hashed_cache(home / "data.h5", "abc123")
    monkeypatch.chdir(home)
    train(tiny_pipeline(Path("data.h5"), **{"train.epochs": 1}), "run")  # relative paths
    run = home / "run"
    saved = load_pipeline(run / "pipeline.toml")
    assert saved.data.path == str(home / "data.h5")
    identity = json.loads((run / "data.json").read_text(encoding="utf-8"))
    assert identity["options_hash"] == "abc123" and identity["build_id"] == "build-abc123"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert evaluate(run, energy=False).samples == 8  # from another folder
    moved = _hashed_cache(elsewhere / "moved.h5", "abc123")
    out = ok("train", "--resume", run, "--data", "moved.h5", "--epochs", "3", "--workers", "0")
    assert "3 epochs" in out
    rows = read_metrics(run)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    # the cosine runs over the new total (3 epochs, no warm-up), not the old one (1 epoch)
    assert rows[-1]["lr"] == pytest.approx(lr_at_epoch(2, 5e-3, 3, warmup_epochs=0))
    assert load_pipeline(run / "pipeline.toml").data.path == str(moved)
    assert load_checkpoint(run / "last.pt")["epoch"] == 3

    other = _hashed_cache(elsewhere / "other.h5", "def456")
    before = digest_tree(run)
    with pytest.raises(CacheMismatchError, match="options_hash 'def456' differs"):
        train(load_pipeline(run / "pipeline.toml", {"data.path": str(other)}), run, resume=True)
    fails("train", "--resume", run, "--epochs", "2", match="cannot shorten")
    assert digest_tree(run) == before


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    sys.path.insert(0, sys.argv[1])
    from train.tiny import tiny_pipeline
    from eventvision.train import train

    real_save, calls = torch.save, []

    def save_then_die(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) < 3:  # epoch 1's last.pt and best.pt
            return real_save(obj, f, *args, **kwargs)
        f.write(b"x" * 100_000)  # epoch 2's last.pt: half written, then the kill
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    torch.save = save_then_die
    train(tiny_pipeline(sys.argv[2], **{"train.epochs": 2}), sys.argv[3])
    """
)


def test_temporary_checkpoint_of_a_killed_write_is_removed_on_restart(cache, tmp_path):
    (tmp_path / "killer.py").write_text(KILLER, encoding="utf-8")
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(tmp_path / "killer.py"), str(TESTS), str(cache), str(run)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == -9, proc.stderr[-2000:]
    leftovers = [p.name for p in run.iterdir() if ".tmp" in p.name]
    assert leftovers and leftovers[0] == ".last.pt.tmp", sorted(os.listdir(run))
    result = train(load_pipeline(run / "pipeline.toml"), run, resume=True)
    assert result.epochs == 2 and load_checkpoint(run / "last.pt")["epoch"] == 2
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]
    shutil.rmtree(run)
