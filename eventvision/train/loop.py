"""One pass over a loader (training or evaluation) and the process group around a run."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import DataLoader

from ..errors import NonFiniteError
from .distributed import DistInfo, all_reduce_sum, close_distributed, init_distributed
from .guards import NonFiniteGuard
from .mixing import _loss, _Mixer, _topk_correct
from .options import accum_group, autocast_context, updates_per_epoch


@dataclass
class _EpochContext:
    """What ``_run_epoch`` needs besides the model and the data."""

    device: torch.device
    info: DistInfo
    amp: bool = False
    channels_last: bool = False
    optimizer: torch.optim.Optimizer | None = None
    scaler: Any = None
    mixer: _Mixer | None = None
    label_smoothing: float = 0.0
    tet: bool = False
    clip_grad: float = 0.0
    progress: bool = False
    desc: str = ""
    guard: NonFiniteGuard | None = None  # training only: stops (or skips) non-finite batches
    amp_dtype: str = "float16"
    accum_steps: int = 1
    ema: Any = None
    epoch: int = 0
    warmup_lr: Callable[[float], float] | None = None  # per-step warm-up: LR at a fractional epoch


def _run_epoch(model: nn.Module, loader: DataLoader, ctx: _EpochContext) -> dict[str, float]:
    """One pass over ``loader``: training when ``ctx.optimizer`` is set, else evaluation.

    Returns the loss, top-1 and top-5 accuracy (percent) summed over every process, the sample
    count, the wall time and samples per second.
    """
    training = ctx.optimizer is not None
    model.train(training)
    autocast = autocast_context(ctx.device, ctx.amp, ctx.amp_dtype)
    sums = np.zeros(4)  # loss * n, top-1 hits, top-5 hits, n
    start = time.perf_counter()
    bar = _progress_bar(loader, ctx)
    with torch.set_grad_enabled(training):
        for step, (x, y) in enumerate(bar):
            where = f"epoch {ctx.epoch + 1}, step {step + 1}"
            x = x.to(ctx.device, non_blocking=True)
            y = y.to(ctx.device, non_blocking=True)
            target = y
            if training and ctx.mixer is not None:
                x, target = ctx.mixer(x, y)
            try:
                with autocast:
                    out = model(x)  # [T, B, K]
                    loss = _loss(
                        out, target, ctx.label_smoothing if training else 0.0, ctx.tet and training
                    )
                if training and not (ctx.guard or NonFiniteGuard()).ok(
                    loss, "loss", where, ctx.info
                ):
                    continue  # skipped: no step, not counted
                if training and not _step(model, loss, ctx, where, step, len(loader)):
                    continue
            finally:
                # Neuron state must never leak into the next batch: the one reset of the loop.
                functional.reset_net(model)
            n = x.shape[0]
            top1, top5 = _topk_correct(out.detach().float().mean(0), target, (1, 5))
            sums += (float(loss.detach()) * n, top1, top5, n)
            if ctx.progress and hasattr(bar, "set_postfix"):
                elapsed = time.perf_counter() - start
                bar.set_postfix(
                    loss=f"{sums[0] / sums[3]:.3f}",
                    acc1=f"{100 * sums[1] / sums[3]:.1f}",
                    samples_s=f"{sums[3] / max(elapsed, 1e-9):.1f}",
                )
    seconds = time.perf_counter() - start
    loss_sum, hit1, hit5, count = all_reduce_sum(list(sums), ctx.info)
    if not math.isfinite(loss_sum):  # every rank sees the same reduced sum, so all stop
        raise NonFiniteError(f"{ctx.desc or 'evaluation'}: non-finite loss ({loss_sum})")
    count = max(count, 1.0)
    return {
        "loss": loss_sum / count,
        "acc1": 100.0 * hit1 / count,
        "acc5": 100.0 * hit5 / count,
        "samples": int(count),
        "seconds": seconds,
        "samples_per_s": count / max(seconds, 1e-9),
    }


def _step(
    model: nn.Module, loss: torch.Tensor, ctx: _EpochContext, where: str, i: int, n: int
) -> bool:
    """Backward of micro-batch ``i`` of ``n``; the optimiser steps once per accumulation group.

    Returns False when a non-finite gradient norm made the group skip its update.
    """
    assert ctx.optimizer is not None  # only called when training
    first, last, size = accum_group(i, n, ctx.accum_steps)
    if first:
        ctx.optimizer.zero_grad(set_to_none=True)
        if ctx.warmup_lr is not None:
            step = i // ctx.accum_steps
            lr = ctx.warmup_lr(ctx.epoch + step / updates_per_epoch(n, ctx.accum_steps))
            for group in ctx.optimizer.param_groups:
                group["lr"] = lr
    loss = loss / size  # the group's mean gradient, as one batch of all its samples would give
    if ctx.scaler is not None:
        ctx.scaler.scale(loss).backward()
        if not last:
            return True
        if ctx.clip_grad > 0:
            ctx.scaler.unscale_(ctx.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), ctx.clip_grad)
        ctx.scaler.step(ctx.optimizer)  # AMP skips inf/NaN gradients itself and rescales
        ctx.scaler.update()
        ctx.optimizer.zero_grad(set_to_none=True)  # a skipped micro-batch must not inherit them
    else:
        loss.backward()
        if not last:
            return True
        if ctx.clip_grad > 0:
            norm = nn.utils.clip_grad_norm_(model.parameters(), ctx.clip_grad)
            if not (ctx.guard or NonFiniteGuard()).ok(norm, "gradient norm", where, ctx.info):
                ctx.optimizer.zero_grad(set_to_none=True)
                return False
        ctx.optimizer.step()
        ctx.optimizer.zero_grad(set_to_none=True)  # a skipped micro-batch must not inherit them
    if ctx.ema is not None:
        ctx.ema.update(getattr(model, "module", model))
    return True


def _progress_bar(loader: DataLoader, ctx: _EpochContext) -> Any:
    if not (ctx.progress and ctx.info.is_main):
        return loader
    from tqdm import tqdm

    return tqdm(loader, desc=ctx.desc, leave=False, file=sys.stderr, dynamic_ncols=True)


def _dssa_rate_estimates(model: nn.Module) -> dict[str, float]:
    """The DSSA firing-rate buffers (estimated rates), averaged over heads, by buffer name."""
    inner = getattr(model, "module", model)
    return {
        name: float(buf.float().mean())
        for name, buf in inner.named_buffers()
        if "firing_rate" in name.rsplit(".", 1)[-1]
    }


@contextmanager
def _distributed(device: str) -> Iterator[DistInfo]:
    import torch.distributed as dist

    owned = not dist.is_initialized()
    info = init_distributed(device)
    try:
        yield info
    finally:
        if owned:
            close_distributed(info)
