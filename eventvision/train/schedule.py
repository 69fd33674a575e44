"""The learning-rate schedule, the optimiser's parameter groups and seeding (docs/training.md)."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["lr_at_epoch", "param_groups", "seed_everything", "epoch_lr"]


def lr_at_epoch(
    epoch: int,
    lr: float,
    epochs: int,
    warmup_epochs: int = 3,
    warmup_lr: float = 1e-5,
    min_lr: float = 1e-5,
) -> float:
    """Learning rate during ``epoch`` (0-based), as timm's cosine scheduler stepped per epoch.

    ``e < warmup_epochs``: ``warmup_lr + e*(lr - warmup_lr)/warmup_epochs``;
    otherwise ``min_lr + (lr - min_lr)*(1 + cos(pi*e/epochs))/2`` (docs/training.md).

    Example: ``lr_at_epoch(0, 5e-4, 300) == 1e-5``
    """
    if epoch < warmup_epochs:
        return warmup_lr + epoch * (lr - warmup_lr) / warmup_epochs
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * epoch / epochs))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups by timm's rule: no decay for tensors with ndim <= 1 or in ``no_weight_decay()``.

    That exempts BN weights and biases and the 0-dim PLIF ``w``; conv and linear weights decay.
    Frozen parameters (``requires_grad=False``) are left out.
    """
    skip = set(getattr(model, "no_weight_decay", lambda: ())())
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name in skip or name.split(".")[-1] in skip:
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": no_decay, "weight_decay": 0.0},
        {"params": decay, "weight_decay": weight_decay},
    ]


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (the official code uses 12450)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_lr(spec: Any, epoch: float) -> float:
    """The schedule's learning rate at a (possibly fractional) epoch."""
    return lr_at_epoch(epoch, spec.lr, spec.epochs, spec.warmup_epochs, spec.warmup_lr, spec.min_lr)
