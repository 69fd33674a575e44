"""Refusals that keep a run honest: non-finite losses and gradient norms stop training.

A NaN or infinite loss (or gradient norm, when clipping) raises ``NonFiniteError`` naming the
epoch and the step, unless the run allows skipping up to N such batches, each one logged
(docs/training.md, "Non-finite values"). Under torchrun the ranks agree on every decision, so
they skip or stop together instead of waiting on each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..errors import NonFiniteError
from .distributed import DistInfo

__all__ = ["NonFiniteGuard"]

logger = logging.getLogger(__name__)

_HINT = (
    "lower --lr, set --clip-grad, or pass --skip-nonfinite N to skip up to N such batches; "
    "the last good checkpoint is kept"
)


@dataclass
class NonFiniteGuard:
    """Counts skipped batches against ``limit`` over the whole run."""

    limit: int = 0
    skipped: int = 0

    def ok(self, value: torch.Tensor, what: str, where: str, info: DistInfo) -> bool:
        """True when ``value`` is finite on every rank; False to skip the batch.

        Args:
            value: a scalar tensor (the loss or the gradient norm).
            what: its name in messages, e.g. "loss".
            where: the position in messages, e.g. "epoch 3, step 17".

        Raises:
            NonFiniteError: non-finite on some rank and no skip left.
        """
        bad = torch.tensor(0.0 if bool(torch.isfinite(value.detach()).all()) else 1.0)
        if info.distributed:
            import torch.distributed as dist

            if info.device.type == "cuda":
                bad = bad.to(info.device)
            dist.all_reduce(bad, op=dist.ReduceOp.SUM)
        if float(bad) == 0.0:
            return True
        shown = float(value.detach().float().reshape(-1)[0]) if value.numel() else float("nan")
        if self.skipped >= self.limit:
            raise NonFiniteError(
                f"{where}: non-finite {what} ({shown}) on {int(float(bad))} process(es); {_HINT}"
            )
        self.skipped += 1
        logger.warning(
            "%s: non-finite %s (%s), batch skipped (%d of at most %d)",
            where,
            what,
            shown,
            self.skipped,
            self.limit,
        )
        return False
