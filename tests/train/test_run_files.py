"""Run files written atomically, write errors naming the file, runs that refuse other data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from eventvision.cli.main import main
from train.test_cli import TINY, fails, ok
from train.tiny import tiny_pipeline, write_cache

from eventvision.train import load_pipeline, read_metrics
from eventvision.train.config import pipeline_to_toml
from eventvision.train.rundir import LOCK_FILE, run_lock


@pytest.fixture(scope="module")
def finished(cache, tmp_path_factory) -> Path:
    """A finished one-epoch run of the tiny cache (copy it before changing it)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    ok("train", "--data", cache, "--out", run, "--epochs", "1", *TINY)
    return run


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, symlinks=True)
    return to


def test_runs_marks_an_unreadable_folder_and_goes_on(cache, tmp_path):
    good, broken, live = tmp_path / "good", tmp_path / "broken", tmp_path / "live"
    text = pipeline_to_toml(tiny_pipeline(cache, **{"train.epochs": 2}))
    for run in (good, broken, live):
        run.mkdir()
        (run / "pipeline.toml").write_text(text, encoding="utf-8")
        (run / "metrics.jsonl").write_text('{"epoch": 0, "test_acc1": 50.0}\n')
    cut = text.index('path = "') + 10  # a write cut off inside a string
    (broken / "pipeline.toml").write_text(text[:cut], encoding="utf-8")
    with run_lock(live):  # as a training process holds it
        result = CliRunner().invoke(main, ["runs", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert lines[str(good)].endswith("stopped") and "50.00" in lines[str(good)]
    assert lines[str(broken)].endswith("unreadable")
    assert lines[str(live)].endswith("running")
    assert f"{broken}: unreadable run folder" in result.stderr, result.stderr


# `eventvision ...` in a process whose files may not grow past 500 bytes: writes fail with EFBIG.
SMALL_FILES = textwrap.dedent(
    """
    import resource, signal, sys
    from eventvision.cli.main import main
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (500, 500))
    main(sys.argv[1:])
    """
)


def test_a_failed_write_of_pipeline_toml_on_resume_names_it_and_leaves_it_whole(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    before = (run / "pipeline.toml").read_bytes()
    assert len(before) > 500
    proc = subprocess.run(
        [sys.executable, "-c", SMALL_FILES, "train", "--resume", str(run), "--epochs", "2"],
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error")]
    assert errors == [f"Error: {run / 'pipeline.toml'}: cannot write: File too large"], errors
    assert (run / "pipeline.toml").read_bytes() == before
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]
    assert load_pipeline(run / "pipeline.toml").train.epochs == 1
    assert ok("runs", tmp_path).splitlines()[1].endswith("done")


def test_resuming_does_not_rewrite_an_unchanged_pipeline_toml(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    os.utime(run / "pipeline.toml", ns=(1, 1))
    ok("train", "--resume", run)  # finished: nothing to train
    assert (run / "pipeline.toml").stat().st_mtime_ns == 1  # not written again
    assert (run / LOCK_FILE).is_file()


def test_evaluate_refuses_other_class_names_unless_allowed(finished, tmp_path):
    other = write_cache(tmp_path / "other.h5", classes=["w", "x", "y", "z"])
    args = ["evaluate", finished, "--data", other, "--no-energy", "--no-save"]
    line = fails(*args, match="trained on other classes")
    assert "class 0 is 'a' there, 'w' here" in line and "--allow-other-classes" in line
    assert "top-1 accuracy" in ok(*args, "--allow-other-classes")
    assert "top-1 accuracy" in ok("evaluate", finished, "--no-energy", "--no-save")


def test_resume_on_another_build_is_refused_saying_what_differs(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    other = write_cache(tmp_path / "other.h5", seed=1)  # same options, other recordings
    args = ["train", "--resume", run, "--data", other, "--epochs", "2"]
    line = fails(*args, match="not the data the run was trained on")
    assert "its source files" in line and "--allow-other-data" in line
    assert len(read_metrics(run)) == 1
    ok(*args, "--allow-other-data")
    assert [r["epoch"] for r in read_metrics(run)] == [0, 1]
    assert load_pipeline(run / "pipeline.toml").data.path == str(other)
