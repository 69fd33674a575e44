"""One writer per run folder: a second `train`, `--resume` or `--overwrite` is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import digest_tree
from train.test_cli import TINY, fails

from eventvision.errors import RunBusyError
from eventvision.train import load_pipeline, read_metrics, train
from eventvision.train.checkpoint import load_checkpoint
from eventvision.train.rundir import LOCK_FILE

TESTS = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from eventvision.cli.main import main; main()"]

# `eventvision train` in a child that pauses after its first training step.
PAUSING = textwrap.dedent(
    """
    import sys, time
    from eventvision.train import loop
    from eventvision.cli.main import main

    marker, step, original = sys.argv[1], [0], loop._step

    def step_then_pause(*args):
        original(*args)
        step[0] += 1
        if step[0] == 1:
            open(marker, "w").close()
            time.sleep(600)

    loop._step = step_then_pause
    main(sys.argv[2:])
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture()
def live_run(cache, tmp_path):
    """A `train --out RUN` process paused in its first epoch: (process, run folder)."""
    run, marker = tmp_path / "run", tmp_path / "paused"
    args = ["train", "--data", cache, "--out", run, "--epochs", "1", *TINY]
    child = [sys.executable, "-c", PAUSING, str(marker), *map(str, args)]
    proc = subprocess.Popen(child, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "the first run never started"
        time.sleep(0.05)
    yield proc, run
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_a_second_writer_of_a_live_run_is_refused_naming_the_holder(live_run, cache):
    proc, run = live_run
    before = digest_tree(run)
    assert (run / LOCK_FILE).read_text().strip() == str(proc.pid)

    # another process: the audit's `train --out R` with another --lr
    args = ["train", "--data", cache, "--out", run, "--epochs", "1", *TINY, "--lr", "1e-3"]
    second = subprocess.run(
        [*CLI, *map(str, args)], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"PID {proc.pid}" in lines[0] and str(run) in lines[0], lines

    # and this process: --resume, --overwrite, and the library call
    fails("train", "--resume", run, match=f"PID {proc.pid}")
    args = ["--data", cache, "--out", run, "--epochs", "1", *TINY]
    fails("train", *args, "--overwrite", match=f"PID {proc.pid}")
    with pytest.raises(RunBusyError, match=f"PID {proc.pid}"):
        train(load_pipeline(run / "pipeline.toml"), run, resume=True)
    assert digest_tree(run) == before  # nothing of the live run removed or rewritten

    # the holder dies (SIGKILL): the kernel frees the lock, and the run can start again
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    result = train(load_pipeline(run / "pipeline.toml"), run, overwrite=True)
    assert result.epochs == 1 and load_checkpoint(run / "last.pt")["epoch"] == 1
    assert [r["epoch"] for r in read_metrics(run)] == [0]
    assert (run / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_a_planted_lock_link_is_refused_and_its_target_untouched(cache, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).symlink_to(victim)
    args = ["train", "--data", cache, "--out", run, "--epochs", "1", *TINY]
    line = fails(*args, match=str(run / LOCK_FILE))
    assert "symbolic link" in line
    os.link(victim, run / "hard.lock")
    (run / LOCK_FILE).unlink()
    (run / "hard.lock").rename(run / LOCK_FILE)  # a hard link to the victim
    fails(*args, match="hard links")
    assert victim.read_text() == "precious\n"
    assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]


def test_a_refused_new_run_leaves_no_folder_behind(tmp_path):
    run = tmp_path / "new" / "run"
    fails("train", "--data", tmp_path / "missing.h5", "--out", run, *TINY, match="no such")
    assert not run.exists()
