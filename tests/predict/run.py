"""A tiny run folder for the predict and export tests: made in seconds, outputs that vary.

A few epochs of the tiny pipeline leave a model whose eval output hardly depends on its
input, which would let a wrong binning pass; here the batch norms' weights are drawn wide
and their running statistics (and the DSSA firing rates) taken from the train split in one
train-mode pass, so each sample gets its own logits. The run folder holds what `train`
writes for predict: ``best.pt`` (model and pipeline) and ``data.json``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from spikingjelly.activation_based import functional
from train.tiny import tiny_pipeline

from eventvision.data import FrameDataset
from eventvision.train.checkpoint import save_checkpoint
from eventvision.train.config import pipeline_dict
from eventvision.train.model_setup import build_model
from eventvision.train.runs import absolute_data_path, data_identity, write_data_identity


def write_run(run_dir: Path, cache: Path, seed: int = 0, **overrides) -> Path:
    """A run folder of the tiny pipeline on ``cache`` with a model whose outputs vary."""
    pipeline = absolute_data_path(tiny_pipeline(cache, **overrides))
    torch.manual_seed(seed)
    model = build_model(pipeline, len(FrameDataset(cache, "train").classes))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # running statistics: the plain mean over the pass below
            m.reset_running_stats()
            with torch.no_grad():
                m.weight.uniform_(0.5, 3.0)
    train = FrameDataset(cache, "train", channels=pipeline.data.channels)
    x = torch.stack([train[i][0] for i in range(len(train))])  # [N, T, C, h, w]
    model.train()
    with torch.no_grad():
        model(x)
    functional.reset_net(model)
    run_dir.mkdir(parents=True, exist_ok=True)
    payload = {"model": model.state_dict(), "pipeline": pipeline_dict(pipeline), "epoch": 1}
    save_checkpoint(payload, run_dir / "best.pt")
    write_data_identity(run_dir, data_identity(pipeline))
    return run_dir
