"""Stale sources at training time: train/finetune/evaluate check the cache's raw sources."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from eventvision.cli.main import main

from eventvision.cache import CacheOptions, write_cache
from eventvision.errors import CacheMismatchError
from eventvision.train import load_pipeline
from eventvision.train._data import build_datasets

_spec = importlib.util.spec_from_file_location(
    "raw_release", Path(__file__).parents[1] / "cache" / "raw_release.py"
)
raw_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw_release)

OPTIONS = CacheOptions("cifar10-dvs", time_steps=2, size=16)


@pytest.fixture()
def stale(tmp_path):
    """A cache whose raw root then had one recording modified."""
    root = raw_release.make_cifar_release(tmp_path / "raw", per_class=2, n_events=200)
    out = tmp_path / "c.h5"
    write_cache(OPTIONS, root, out)
    changed = root / "bird" / "cifar10_bird_1.aedat"
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    return root, out


def _pipeline(out: Path):
    return load_pipeline(
        "cifar10dvs-direct", {"data.path": str(out), "data.time_steps": 2, "data.size": 16}
    )


def test_train_refuses_a_stale_cache_in_one_line(stale, tmp_path):
    _, out = stale
    run = tmp_path / "run"
    args = ["train", "--data", out, "--time-steps", "2", "--size", "16", "--out", run]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    line = result.output.strip()
    assert "\n" not in line and "is stale" in line and "bird/cifar10_bird_1.aedat" in line
    assert "--allow-stale" in line and not run.exists()


def test_evaluate_and_finetune_take_allow_stale(stale):
    for command in ("train", "finetune", "evaluate"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert "--allow-stale" in result.output, command


def test_allow_stale_uses_the_cache_as_it_is(stale):
    _, out = stale
    with pytest.raises(CacheMismatchError, match="1 source file"):
        build_datasets(_pipeline(out), augment=False)  # evaluate's call
    train, test, classes = build_datasets(_pipeline(out), augment=False, allow_stale=True)
    assert len(train) + len(test) == 20 and len(classes) == 10


def test_unreachable_raw_root_is_said_once_and_training_goes_on(stale, tmp_path, caplog):
    root, out = stale
    root.rename(tmp_path / "moved")
    with caplog.at_level(logging.WARNING):
        train, test, _ = build_datasets(_pipeline(out))
    said = [r for r in caplog.records if "not reachable" in r.getMessage()]
    assert len(said) == 1 and str(root) in said[0].getMessage() and len(train) + len(test) == 20


class _Reached(Exception):
    pass


@pytest.mark.parametrize("allow", [False, True])
def test_train_finetune_evaluate_pass_allow_stale_down(stale, tmp_path, monkeypatch, allow):
    import torch

    from eventvision.train import evaluate, evaluation, finetune, train, trainer

    seen = []

    def spy(pipeline, augment=True, allow_stale=False):
        seen.append(allow_stale)
        raise _Reached

    monkeypatch.setattr(trainer, "build_datasets", spy)
    monkeypatch.setattr(evaluation, "build_datasets", spy)
    _, out = stale
    ckpt = tmp_path / "w.pt"
    torch.save({"w": torch.zeros(1)}, ckpt)
    calls = [
        lambda: train(_pipeline(out), tmp_path / "a", allow_stale=allow),
        lambda: finetune(_pipeline(out), ckpt, tmp_path / "b", allow_stale=allow),
        lambda: evaluate(ckpt, _pipeline(out), allow_stale=allow, save=False),
    ]
    for call in calls:
        with pytest.raises(_Reached):
            call()
    assert seen == [allow] * 3
