"""Sweeps: the spec, run folders per grid point, restart, report, and workers sharing a grid."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from eventvision.cli.main import main
from train.tiny import TINY_MODEL, write_cache

from eventvision.errors import ConfigError
from eventvision.train import read_metrics
from eventvision.train.logs import run_scores
from eventvision.train.sweep import load_spec, point_name

optuna = pytest.importorskip("optuna")

# The tiny model and data of tests/train/tiny.py, as a spec's fixed keys.
FIXED = {
    "pipeline": "cifar10dvs-direct",
    "data": "tiny.h5",
    "epochs": 2,
    "batch-size": 8,
    "lr": 5e-3,
    "time-steps": 2,
    "size": 16,
    "data.dataset": "",
    "model.num_classes": 4,
    "train.warmup_epochs": 0,
    **TINY_MODEL,
}


def _toml(value) -> str:
    return json.dumps(value)  # JSON scalars and lists are TOML too


def write_spec(folder: Path, grid: dict, **fixed) -> Path:
    lines = [f'"{k}" = {_toml(v)}' for k, v in {**FIXED, **fixed}.items()]
    lines += ["[grid]", *(f'"{k}" = {_toml(v)}' for k, v in grid.items())]
    path = folder / "spec.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """A folder with a 12-sample tiny cache: one training step of 8 per epoch."""
    folder = tmp_path_factory.mktemp("sweep")
    write_cache(folder / "tiny.h5", n_train=12, n_test=4)
    return folder


def _invoke(*args, code: int = 0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def test_the_issue_spec_parses_with_flags_and_set_keys(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(
        'pipeline = "quickstart"\ndata = "cache.h5"\nepochs = 2\n'
        '[grid]\n"model.stem" = ["imagenet", "small"]\nseed = [0, 1]\n'
    )
    spec = load_spec(path)
    assert spec.settings == {"data.path": str(tmp_path / "cache.h5"), "train.epochs": 2}
    assert spec.grid == {"model.stem": ["imagenet", "small"], "train.seed": [0, 1]}
    assert [point_name(p) for p in spec.points()] == [
        "model.stem=imagenet,train.seed=0",
        "model.stem=imagenet,train.seed=1",
        "model.stem=small,train.seed=0",
        "model.stem=small,train.seed=1",
    ]
    pipe = spec.pipeline_for(spec.points()[3])
    assert (pipe.name, pipe.model.stem, pipe.train.seed, pipe.train.epochs) == (
        "quickstart", "small", 1, 2
    )  # fmt: skip


def test_the_issue_spec_as_written_grids_the_attention(tmp_path):
    path = tmp_path / "spec.toml"
    path.write_text(
        'pipeline = "quickstart"\ndata = "cache.h5"\nepochs = 2\n'
        '[grid]\n"model.attention" = ["dssa", "ssa"]\nseed = [0, 1]\n'
    )
    spec = load_spec(path)
    pipes = [spec.pipeline_for(p) for p in spec.points()]
    assert [(p.model.attention, p.train.seed) for p in pipes] == [
        ("dssa", 0), ("dssa", 1), ("ssa", 0), ("ssa", 1)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochz = 2\n[grid]\nseed = [0]", "unknown key 'epochz'"),
        ('[grid]\n"model.colour" = [1]', "unknown key 'model.colour'"),
        ("[grid]\nseed = []", "[grid] 'seed' has no values: the grid has zero points"),
        ('[grid]\n"model.stem" = ["imagenet", "round"]', "'model.stem' value 'round'"),
        ("[grid]\nlr = 0.1", "[grid] 'lr' must be a list"),
        ("epochs = 2", "needs a [grid] table"),
    ],
)
def test_bad_specs_are_one_line_naming_the_key(tmp_path, text, message):
    path = tmp_path / "spec.toml"
    path.write_text('pipeline = "quickstart"\n' + text + "\n")
    with pytest.raises(ConfigError, match=None) as err:
        load_spec(path)
    assert message in str(err.value) and "\n" not in str(err.value), str(err.value)
    r = _invoke("sweep", "--out", tmp_path / "out", path, code=1)  # options first work too
    assert r.output.count("\n") == 1 and message in r.output, r.output
    assert not (tmp_path / "out").exists()  # nothing written for a bad spec


def test_sweep_runs_each_point_into_a_run_folder_restarts_and_reports(small):
    spec = write_spec(small, {"seed": [0, 1]}, **{"val-fraction": 0.34})
    out = small / "out"
    r = _invoke("sweep", spec, "--out", out, "--poll", "0.1")
    assert "2 point(s) run here, 0 failed" in r.output
    names = ["train.seed=0", "train.seed=1"]
    assert (
        sorted(p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")) == names
    )
    for name in names:
        rows = read_metrics(out / name)
        assert [row["epoch"] for row in rows] == [0, 1] and "val_acc1" in rows[0]
    again = _invoke("sweep", spec, "--out", out)  # a restart skips the finished points
    assert "0 point(s) run here" in again.output
    assert all(len(read_metrics(out / n)) == 2 for n in names)
    table = _invoke("runs", out).stdout  # ordinary run folders
    assert table.count(" done") == 2 and " validation " in table
    _invoke("evaluate", out / names[0], "--no-energy")
    _invoke("plot", out / names[0])
    assert (out / names[0] / "curves.png").is_file()
    _invoke("sweep", "report", out)
    with open(out / "results.csv") as f:
        (row,) = list(csv.DictReader(f))
    scores = [run_scores(read_metrics(out / n)) for n in names]
    for key in ("test_acc1_at_best", "test_acc1_last", "test_acc1_max"):
        values = [s[key] for s in scores]
        mean = sum(values) / 2
        std = (sum((v - mean) ** 2 for v in values)) ** 0.5  # sample std of two: n - 1 = 1
        assert float(row[f"{key}_mean"]) == pytest.approx(mean)
        assert float(row[f"{key}_std"]) == pytest.approx(std)
    assert row["runs"] == "2" and row["selected_on"] == "validation"
    md = (out / "results.md").read_text()
    assert "paper's protocol" in md and "±" in md and (out / "results.png").stat().st_size > 0


def test_another_spec_into_the_same_folder_is_refused_naming_the_difference(small, tmp_path):
    out = tmp_path / "out"
    (out).mkdir()
    first = load_spec(write_spec(small, {"seed": [0, 1]}))
    (out / "sweep.json").write_text(json.dumps(first.identity()))
    spec = write_spec(small, {"seed": [0, 1, 2]})
    r = _invoke("sweep", spec, "--out", out, code=1)
    assert "holds another sweep ([grid] train.seed [0, 1] there, [0, 1, 2] here)" in r.output
    spec = write_spec(small, {"seed": [0, 1]}, epochs=3)
    r = _invoke("sweep", spec, "--out", out, code=1)
    assert "train.epochs 2 there, 3 here" in r.output, r.output
    assert sorted(p.name for p in out.iterdir()) == ["sweep.json"]


def _holder(pids: list[int], lock: Path) -> int | None:
    """The process that has ``lock`` open (a worker holds its point's lock file open)."""
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except FileNotFoundError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock):
                    return pid
            except OSError:
                continue
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_two_workers_share_the_grid_and_a_killed_workers_point_is_resumed(small, tmp_path):
    spec = write_spec(small, {"lr": [5e-3, 2e-3]})
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from eventvision.cli.main import main; main()"]
    cmd += ["sweep", str(spec), "--out", str(out), "--poll", "0.2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)]
    workers.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    pids = [w.pid for w in workers]
    victim, killed_point, deadline = None, None, time.monotonic() + 240
    while victim is None and time.monotonic() < deadline:  # one epoch of two done, saved
        if all(w.poll() is not None for w in workers):
            break
        for run in out.glob("train.lr=*"):
            if len(read_metrics(run)) == 1 and (run / "last.pt").is_file():
                victim = _holder(pids, out / ".locks" / f"{run.name}.lock")
                if victim is not None:
                    os.kill(victim, signal.SIGKILL)
                    killed_point = run
                    break
        time.sleep(0.05)
    assert victim is not None, [w.communicate()[0].decode()[-2000:] for w in workers]
    survivor = next(w for w in workers if w.pid != victim)
    output = survivor.communicate(timeout=300)[0].decode()
    assert survivor.returncode == 0, output
    assert next(w for w in workers if w.pid == victim).wait() == -signal.SIGKILL
    for run in sorted(out.glob("train.lr=*")):  # every point once, every epoch once
        assert [r["epoch"] for r in read_metrics(run)] == [0, 1], run
        log = (run / "train.log").read_text()
        assert log.count("starting: ") == 1, (run, log)  # never run twice from scratch
    assert len(list(out.glob("train.lr=*"))) == 2
    assert "resuming after epoch 1" in (killed_point / "train.log").read_text()
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal"))
    )
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.params["train.lr"] for t in complete) == [0, 1]


def test_every_train_flag_is_a_spec_key_by_its_long_name():
    from eventvision.cli.train import _FLAG_KEYS

    from eventvision.train.sweep import _pipeline_key

    for flag, key in _FLAG_KEYS.items():
        assert _pipeline_key(flag.replace("_", "-"), "spec") == key, flag
