"""A NaN loss or gradient norm stops the run (or skips up to N batches), never passes silently."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn
from train.tiny import tiny_pipeline

from eventvision.errors import NonFiniteError
from eventvision.train import read_metrics, train
from eventvision.train.checkpoint import load_checkpoint
from eventvision.train.distributed import DistInfo
from eventvision.train.guards import NonFiniteGuard


class PoisonedModel(nn.Module):
    """A small frame classifier whose training calls listed in ``poison`` return NaN logits."""

    def __init__(self, poison: set[int], classes: int = 4) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.classifier = nn.Linear(4, classes)
        self.poison = poison
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, C, H, W] -> [T, B, K]
        x = x.transpose(0, 1)  # [T, B, C, H, W]
        T, B = x.shape[:2]
        y = self.conv(x.flatten(0, 1)).mean((-2, -1)).reshape(T, B, 4)  # [T, B, 4]
        out = self.classifier(y)
        if self.training:
            self.calls += 1
            if self.calls in self.poison:
                out = out * float("nan")
        return out


def test_first_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(cache, tmp_path):
    pipe = tiny_pipeline(cache, **{"train.epochs": 3})  # 16 samples, batch 8: 2 steps per epoch
    run = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"epoch 2, step 1: non-finite loss.*--skip-nonfinite"):
        train(pipe, run, model=PoisonedModel({3}))
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert len(read_metrics(run)) == 1


def test_skip_nonfinite_skips_and_logs_up_to_n_batches(cache, tmp_path, caplog):
    pipe = tiny_pipeline(cache, **{"train.epochs": 2})
    with caplog.at_level(logging.WARNING, logger="eventvision.train.guards"):
        result = train(pipe, tmp_path / "ok", model=PoisonedModel({2, 3}), skip_nonfinite=2)
    skipped = [r.getMessage() for r in caplog.records if "batch skipped" in r.getMessage()]
    assert len(skipped) == 2 and "epoch 1, step 2" in skipped[0] and "epoch 2, step 1" in skipped[1]
    assert result.epochs == 2
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in read_metrics(result.run_dir))
    with pytest.raises(NonFiniteError, match="epoch 1, step 2"):
        train(pipe, tmp_path / "over", model=PoisonedModel({1, 2}), skip_nonfinite=1)


def test_nonfinite_gradient_norm_is_caught_when_clipping():
    guard = NonFiniteGuard(limit=0)
    assert guard.ok(torch.tensor(3.0), "gradient norm", "epoch 1, step 1", DistInfo())
    with pytest.raises(NonFiniteError, match="epoch 4, step 7: non-finite gradient norm \\(inf\\)"):
        guard.ok(torch.tensor(float("inf")), "gradient norm", "epoch 4, step 7", DistInfo())
