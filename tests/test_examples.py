"""The scripts in examples/ run on their embedded (synthetic) data."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(monkeypatch, tmp_path, name: str, *args: str):
    """Run ``examples/<name>`` in this process from ``tmp_path``; its ``main``'s return value."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "argv", [name, *map(str, args)])
    namespace = runpy.run_path(str(EXAMPLES / name), run_name="example")
    return namespace["main"]()


@pytest.mark.slow  # synthesises 20 recordings, then 2 tiny steps: ~5 s on 2 quiet cores
def test_custom_training_loop_over_frame_dataset(monkeypatch, tmp_path, capsys):
    loss = _run(monkeypatch, tmp_path, "train_loop.py", "--steps", "2")
    assert loss == loss and loss > 0  # a finite loss after 2 steps
    assert "step 2: loss" in capsys.readouterr().out
    assert (tmp_path / "example-data" / "cache.h5").is_file()


def test_tonic_transforms_on_our_events(monkeypatch, tmp_path, capsys):
    pytest.importorskip("tonic")
    n_in, n_kept = _run(monkeypatch, tmp_path, "tonic_transforms.py")
    assert 0 < n_kept <= n_in
    assert "equal to EventsToFrames: True" in capsys.readouterr().out


@pytest.mark.slow  # a 1-epoch tiny run, then two evaluations: ~5 s on 2 quiet cores
def test_evaluate_a_checkpoint_from_python(monkeypatch, tmp_path, capsys):
    from train.tiny import tiny_pipeline, write_cache

    from eventvision.train import train

    cache = write_cache(tmp_path / "tiny.h5")
    run = train(tiny_pipeline(cache, **{"train.epochs": 1}), tmp_path / "run")
    one_call, by_hand = _run(monkeypatch, tmp_path, "evaluate_checkpoint.py", run.best_checkpoint)
    assert one_call == pytest.approx(by_hand)  # the library's evaluation is the loop by hand
    out = capsys.readouterr().out
    assert "evaluate(): top-1" in out and "by hand:    top-1" in out
