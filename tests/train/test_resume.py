"""A run killed with SIGKILL mid-epoch and resumed ends with the weights of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from eventvision.train import read_metrics

TESTS = Path(__file__).resolve().parents[1]
# DVS augmentation (torch RNG) and mixup (numpy RNG) on, so RNG states must be restored too.
SETTINGS = {"train.epochs": 3, "data.augment": "dvs", "train.mixup_alpha": 0.5}

CHILD = textwrap.dedent(
    """
    import sys, time
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[1])
    from train.tiny import tiny_pipeline
    from eventvision.train import loop, train

    cache, run_dir = sys.argv[2], sys.argv[3]
    kill_at_step, settings, resume = int(sys.argv[4]), eval(sys.argv[5]), sys.argv[6] == "resume"
    step, original = [0], loop._step

    def step_then_maybe_hang(*args):
        original(*args)
        step[0] += 1
        if step[0] == kill_at_step:  # mid-epoch: tell the parent, then wait for SIGKILL
            open(run_dir + "/.killme", "w").close()
            time.sleep(600)

    loop._step = step_then_maybe_hang
    train(tiny_pipeline(cache, **settings), run_dir, resume=resume)
    """
)


def _child(script: Path, cache: Path, run_dir: Path, kill_at_step: int, resume: bool = False):
    """Train in a fresh one-thread process, as a user's command would (no state leaks in)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        sys.executable,
        str(script),
        str(TESTS),
        str(cache),
        str(run_dir),
        str(kill_at_step),
        repr(SETTINGS),
        "resume" if resume else "new",
    ]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigkill_then_resume_gives_the_uninterrupted_weights(cache, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    run_dir = tmp_path / "run"
    # 16 train samples, batch 8: 2 steps per epoch; step 3 is the middle of the second epoch
    proc = _child(script, cache, run_dir, 3)
    deadline = time.monotonic() + 120
    while not (run_dir / ".killme").exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "child never reached the kill point"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    (run_dir / ".killme").unlink()
    assert torch.load(run_dir / "last.pt", weights_only=True)["epoch"] == 1
    assert len(read_metrics(run_dir)) == 1

    for run, resume in ((run_dir, True), (tmp_path / "reference", False)):
        proc = _child(script, cache, run, 0, resume)
        output = proc.communicate(timeout=300)[0].decode()
        assert proc.returncode == 0, output

    want_dir = tmp_path / "reference"
    got = torch.load(run_dir / "last.pt", weights_only=True)
    want = torch.load(want_dir / "last.pt", weights_only=True)
    assert got["epoch"] == want["epoch"] == 3
    assert got["model"].keys() == want["model"].keys()
    for key in want["model"]:
        assert torch.equal(got["model"][key], want["model"][key]), key
    rows, ref_rows = read_metrics(run_dir), read_metrics(want_dir)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert [r["train_loss"] for r in rows] == [r["train_loss"] for r in ref_rows]
