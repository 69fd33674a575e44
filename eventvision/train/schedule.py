"""The learning-rate schedule, the optimiser's parameter groups and seeding (docs/training.md)."""

from __future__ import annotations

import functools
import random
from typing import Any

import numpy as np
import torch
from timm.optim import param_groups_weight_decay
from timm.scheduler import CosineLRScheduler
from torch import nn

__all__ = ["lr_schedule", "lr_at_epoch", "param_groups", "seed_everything", "epoch_lr"]


def lr_schedule(
    lr: float,
    epochs: int,
    warmup_epochs: int = 3,
    warmup_lr: float = 1e-5,
    min_lr: float = 1e-5,
    optimizer: torch.optim.Optimizer | None = None,
) -> CosineLRScheduler:
    """timm's ``CosineLRScheduler`` as the official code builds it, stepped in (fractional) epochs.

    Without ``optimizer`` it drives a one-parameter stand-in, read by :func:`lr_at_epoch`.
    """
    if optimizer is None:
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(()))], lr=lr)
    return CosineLRScheduler(
        optimizer,
        t_initial=epochs,
        lr_min=min_lr,
        warmup_t=warmup_epochs,
        warmup_lr_init=warmup_lr,
        warmup_prefix=False,
        t_in_epochs=True,
    )


@functools.lru_cache(maxsize=16)
def _stand_in(
    lr: float, epochs: int, warmup_epochs: int, warmup_lr: float, min_lr: float
) -> CosineLRScheduler:
    return lr_schedule(lr, epochs, warmup_epochs, warmup_lr, min_lr)


def lr_at_epoch(
    epoch: float,
    lr: float,
    epochs: int,
    warmup_epochs: int = 3,
    warmup_lr: float = 1e-5,
    min_lr: float = 1e-5,
) -> float:
    """Learning rate during ``epoch`` (0-based, may be fractional): timm's cosine schedule.

    ``e < warmup_epochs``: ``warmup_lr + e*(lr - warmup_lr)/warmup_epochs``;
    otherwise ``min_lr + (lr - min_lr)*(1 + cos(pi*e/epochs))/2`` (docs/training.md).

    Example: ``lr_at_epoch(0, 5e-4, 300) == 1e-5``
    """
    scheduler = _stand_in(lr, epochs, warmup_epochs, warmup_lr, min_lr)
    scheduler.step(epoch)
    return float(scheduler.optimizer.param_groups[0]["lr"])


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """timm's ``param_groups_weight_decay``: no decay for ndim <= 1 or ``no_weight_decay()``.

    That exempts BN weights and biases and the 0-dim PLIF ``w``; conv and linear weights decay.
    Frozen parameters (``requires_grad=False``) are left out; an empty group is left out too.
    """
    skip = tuple(getattr(model, "no_weight_decay", lambda: ())())
    return param_groups_weight_decay(model, weight_decay, no_weight_decay_list=skip)


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (the official code uses 12450)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_lr(spec: Any, epoch: float) -> float:
    """The schedule's learning rate at a (possibly fractional) epoch."""
    return lr_at_epoch(epoch, spec.lr, spec.epochs, spec.warmup_epochs, spec.warmup_lr, spec.min_lr)
