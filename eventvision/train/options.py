"""Training options around the step: precision, gradient accumulation, EMA, per-iteration warm-up.

See docs/training.md ("Training options"): ``accum_steps`` N gives the update of an N-times larger
batch (up to BatchNorm statistics, which stay per micro-batch); ``ema_decay`` keeps timm's
``ModelEmaV3`` of the weights; ``amp_dtype = "bfloat16"`` autocasts on CPU and CUDA without a
scaler, ``"float16"`` autocasts on CUDA only, with a gradient scaler.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError

__all__ = [
    "AMP_DTYPES",
    "autocast_context",
    "make_scaler",
    "make_ema",
    "accum_group",
    "updates_per_epoch",
    "global_batch_note",
    "device_notes",
]

AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def autocast_context(device: torch.device, amp: bool, amp_dtype: str) -> AbstractContextManager:
    """Autocast for ``amp``: bfloat16 on CPU or CUDA, float16 on CUDA only, else no autocast."""
    if not amp or (device.type != "cuda" and amp_dtype != "bfloat16"):
        return nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPES[amp_dtype])


def make_scaler(device: torch.device, amp: bool, amp_dtype: str) -> Any:
    """A CUDA gradient scaler for float16 autocast; bfloat16 (and fp32) need none."""
    if amp and amp_dtype == "float16" and device.type == "cuda":
        return torch.amp.GradScaler("cuda")
    return None


def make_ema(model: nn.Module, decay: float) -> Any:
    """timm's ``ModelEmaV3`` of ``model`` (an eval-mode copy), or ``None`` when ``decay`` is 0."""
    if decay <= 0:
        return None
    try:
        from timm.utils import ModelEmaV3
    except ImportError:
        raise ConfigError(
            f"[train] ema_decay = {decay} needs timm's ModelEmaV3: pip install 'timm>=1.0'"
        ) from None
    return ModelEmaV3(model, decay=decay)


def accum_group(index: int, n_batches: int, accum_steps: int) -> tuple[bool, bool, int]:
    """(first, last, size) of the accumulation group holding micro-batch ``index``.

    Groups are ``accum_steps`` consecutive batches; the epoch's last group may be shorter, and
    its gradient is then the mean over its own batches (``size``), as one smaller batch's would be.

    Example: ``accum_group(4, 5, 2) == (True, True, 1)``
    """
    start = index - index % accum_steps
    size = min(accum_steps, n_batches - start)
    return index == start, index == start + size - 1, size


def updates_per_epoch(n_batches: int, accum_steps: int) -> int:
    """Optimiser steps in an epoch of ``n_batches`` micro-batches."""
    return math.ceil(n_batches / accum_steps)


def global_batch_note(
    batch_size: int, world_size: int, accum_steps: int, paper_global_batch: int
) -> str | None:
    """A warning when the global batch differs from the paper's, with the ``--accum-steps`` fix."""
    actual = batch_size * world_size * accum_steps
    if paper_global_batch <= 0 or actual == paper_global_batch:
        return None
    per_update = batch_size * world_size
    text = (
        f"global batch {actual} ({batch_size} per process x {world_size} process(es) x "
        f"{accum_steps} accumulation step(s)) differs from the paper's {paper_global_batch}"
    )
    if paper_global_batch % per_update == 0:
        return f"{text}; --accum-steps {paper_global_batch // per_update} matches it"
    return f"{text}; choose --batch-size and --accum-steps whose product is {paper_global_batch}"


def device_notes(spec: Any, device: torch.device, distributed: bool) -> list[str]:
    """A warning for each ``[train]`` option that cannot apply on ``device``, with the fix.

    ``spec`` is the pipeline's ``TrainSpec``. Float16 autocast needs CUDA (bfloat16 works on
    the CPU); SyncBatchNorm needs several processes (distributed CPU runs refuse it outright).
    """
    notes = []
    if spec.amp and spec.amp_dtype == "float16" and device.type != "cuda":
        notes.append(
            f'[train] amp = true with amp_dtype = "float16" needs CUDA: this run on {device} '
            'trains in float32 (amp_dtype = "bfloat16" autocasts on the CPU; amp = false '
            "silences this)"
        )
    if spec.sync_bn and not distributed:
        notes.append(
            "[train] sync_bn = true has nothing to synchronise in a single process: batch "
            "statistics stay this process's (sync_bn = false silences this)"
        )
    return notes
