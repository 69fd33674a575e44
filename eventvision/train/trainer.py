"""The training loop: ``train``, ``finetune`` and ``evaluate`` over one shared ``_run_epoch``.

It follows the official SpikingResformer ``main.py`` (PAPER.md, "Training and evaluation
semantics"): AdamW with weight decay on conv/linear weights only, cosine schedule with warmup
stepped once per epoch, loss on the time-averaged logits (TET optional), top-1/top-5 on the
time-averaged logits, ``reset_net`` after every batch, AMP and channels-last on CUDA only.

A run folder holds ``pipeline.toml`` (the resolved configuration), ``metrics.jsonl`` (one JSON
object per epoch) and the ``last.pt`` / ``best.pt`` checkpoints, all written by rank 0.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from .. import __version__
from ..errors import CheckpointError, ConfigError, NonFiniteError
from ._data import build_datasets
from .checkpoint import (
    CHECKPOINT_FORMAT,
    check_state_dict,
    load_checkpoint,
    model_state_dict,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from .config import Pipeline, pipeline_dict, pipeline_from_dict, pipeline_to_toml
from .distributed import (
    DistInfo,
    EpochSampler,
    all_reduce_sum,
    average_buffers,
    barrier,
    check_sync_bn,
    close_distributed,
    init_distributed,
    shard_indices,
    wrap_model,
)
from .guards import NonFiniteGuard
from .logs import RunLog, dumps_strict
from .options import (
    accum_group,
    autocast_context,
    global_batch_note,
    make_ema,
    make_scaler,
    updates_per_epoch,
)
from .runs import (
    absolute_data_path,
    check_same_data,
    clear_run,
    data_identity,
    remove_stale_temporaries,
    write_data_identity,
)

__all__ = [
    "RunResult",
    "EvalResult",
    "train",
    "finetune",
    "evaluate",
    "build_model",
    "lr_at_epoch",
    "param_groups",
    "read_metrics",
    "load_run_pipeline",
    "seed_everything",
]

logger = logging.getLogger(__name__)

CONFIG_FILE = "pipeline.toml"
METRICS_FILE = "metrics.jsonl"
LAST_CKPT = "last.pt"
BEST_CKPT = "best.pt"


@dataclass(frozen=True)
class RunResult:
    """What a training run ended with.

    Args:
        epochs: completed epochs in total (resumed runs count the earlier ones).
        best_acc1: best held-out top-1 accuracy in percent, over all epochs.
        final: the last ``metrics.jsonl`` row (empty if no epoch ran).
    """

    run_dir: Path
    epochs: int
    best_acc1: float
    final: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / LAST_CKPT

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / BEST_CKPT


@dataclass(frozen=True)
class EvalResult:
    """Held-out metrics: loss (plain cross-entropy), top-1/top-5 (%), firing rates, energy.

    ``firing_rates`` are measured per neuron layer when ``energy`` was asked for, otherwise the
    DSSA firing-rate buffers (the model's own running estimates).
    """

    loss: float
    acc1: float
    acc5: float
    samples: int
    seconds: float
    firing_rates: dict[str, float] = field(default_factory=dict)
    energy: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the saved ``eval-<cache-id>.json``, if saved


# --- schedule, optimiser, seeds --------------------------------------------------------------


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
    otherwise ``min_lr + (lr - min_lr)*(1 + cos(pi*e/epochs))/2`` (PAPER.md, "LR schedule").

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


# --- model -----------------------------------------------------------------------------------


def build_model(pipeline: Pipeline, num_classes: int | None = None) -> nn.Module:
    """The pipeline's registered model with the data's size, time steps and channels."""
    from ..models import create_model

    classes = pipeline.model.num_classes or num_classes
    if classes is None:
        raise ConfigError("[model] num_classes is not set and the data does not tell it")
    return create_model(
        pipeline.model.name,
        num_classes=classes,
        img_size=pipeline.data.size,
        T=pipeline.data.time_steps,
        in_channels=pipeline.data.channels,
        **pipeline.model.overrides(),
    )


def _load_backbone(model: nn.Module, path: str) -> None:
    """Initialise every weight except the classifier from a checkpoint of the same backbone."""
    from ..models import load_pretrained

    state = load_checkpoint(path)["model"]
    check_state_dict(model, state, path, exclude=("classifier",))
    result = load_pretrained(model, state, exclude=("classifier",))
    logger.info(
        "loaded backbone from %s (missing %s, unexpected %s)",
        path,
        list(result.missing_keys),
        list(result.unexpected_keys),
    )


def _freeze_backbone(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("classifier"))


# --- losses and mixing -----------------------------------------------------------------------


def _soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()


def _loss(
    out: torch.Tensor, target: torch.Tensor, label_smoothing: float, tet: bool
) -> torch.Tensor:
    """Loss of ``out`` [T, B, K] averaged over T, or (TET) the mean over T of per-step losses."""
    if target.dim() == 2:

        def criterion(logits: torch.Tensor) -> torch.Tensor:
            return _soft_cross_entropy(logits, target)

    else:

        def criterion(logits: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, target, label_smoothing=label_smoothing)

    if tet:
        return torch.stack([criterion(out[t]) for t in range(out.shape[0])]).mean()
    return criterion(out.mean(0))


class _Mixer:
    """timm's batch-mode mixup/cutmix with label smoothing (``FastCollateMixup(mode='batch')``).

    Each batch is mixed with its reverse; with probability ``switch_prob`` cutmix is used when
    both are enabled; the cutmix ratio is corrected to the pasted box's area. Draws come from
    numpy's global generator, which checkpoints save and restore.
    """

    def __init__(self, spec: Any, num_classes: int) -> None:
        self.mixup_alpha = spec.mixup_alpha
        self.cutmix_alpha = spec.cutmix_alpha
        self.prob = spec.mixup_prob
        self.switch_prob = spec.mixup_switch_prob
        self.smoothing = spec.label_smoothing
        self.num_classes = num_classes

    def _targets(self, y: torch.Tensor, lam: float) -> torch.Tensor:
        off = self.smoothing / self.num_classes
        on = 1.0 - self.smoothing + off
        one = torch.full((y.shape[0], self.num_classes), off, device=y.device)
        one.scatter_(1, y.view(-1, 1), on)
        return one * lam + one.flip(0) * (1.0 - lam)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lam, cutmix = 1.0, False
        if np.random.rand() < self.prob:
            use_cutmix = self.cutmix_alpha > 0 and (
                self.mixup_alpha <= 0 or np.random.rand() < self.switch_prob
            )
            alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
            lam, cutmix = float(np.random.beta(alpha, alpha)), use_cutmix
        if lam == 1.0:
            return x, self._targets(y, 1.0)
        if cutmix:
            h, w = x.shape[-2:]
            cut = math.sqrt(1.0 - lam)
            ch, cw = int(h * cut), int(w * cut)
            cy, cx = np.random.randint(0, h), np.random.randint(0, w)
            # timm's rand_bbox: the box spans [c - s//2, c + (s+1)//2), clipped to the image
            y1, y2 = np.clip(cy - ch // 2, 0, h), np.clip(cy + (ch + 1) // 2, 0, h)
            x1, x2 = np.clip(cx - cw // 2, 0, w), np.clip(cx + (cw + 1) // 2, 0, w)
            x = x.clone()
            x[..., y1:y2, x1:x2] = x.flip(0)[..., y1:y2, x1:x2]
            lam = 1.0 - float((y2 - y1) * (x2 - x1)) / float(h * w)
        else:
            x = x * lam + x.flip(0) * (1.0 - lam)
        return x, self._targets(y, lam)


def _topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...]) -> list[float]:
    """Correct predictions among the top-k classes of ``logits`` [B, K], for each k."""
    if target.dim() == 2:
        target = target.argmax(-1)
    kmax = min(max(ks), logits.shape[-1])
    pred = logits.topk(kmax, dim=-1).indices  # [B, kmax]
    hit = pred.eq(target.view(-1, 1))
    return [float(hit[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]


# --- one epoch -------------------------------------------------------------------------------


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


def _firing_rates(model: nn.Module) -> dict[str, float]:
    """The DSSA firing-rate buffers (estimated rates), averaged over heads, by buffer name."""
    inner = getattr(model, "module", model)
    return {
        name: float(buf.float().mean())
        for name, buf in inner.named_buffers()
        if "firing_rate" in name.rsplit(".", 1)[-1]
    }


# --- data loaders ----------------------------------------------------------------------------


def _worker_init(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _train_loader(
    dataset: Dataset, batch_size: int, workers: int, sampler: EpochSampler
) -> DataLoader:
    # Not make_loader: training needs an order that depends on (seed, epoch) only and is split
    # across ranks, so that resumed and distributed runs see exactly the same batches.
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=True,
        generator=torch.Generator(),
        worker_init_fn=_worker_init if workers > 0 else None,
    )


def _eval_loader(
    dataset: Dataset, batch_size: int, workers: int, info: DistInfo, seed: int
) -> DataLoader:
    from ..data import make_loader

    if info.distributed:
        dataset = Subset(dataset, shard_indices(len(dataset), info))  # type: ignore[arg-type]
    return make_loader(dataset, batch_size, train=False, workers=workers, seed=seed)


# --- run folder ------------------------------------------------------------------------------


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The per-epoch rows of a run's ``metrics.jsonl`` (a torn last line is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def load_run_pipeline(run_dir: str | os.PathLike) -> Pipeline:
    """The resolved pipeline saved in a run folder."""
    from .config import load_pipeline

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    return load_pipeline(path)


# Settings that change how a run executes, not what it computes: a resume may change them.
_RUNTIME_KEYS = {("data", "workers"), ("train", "device")}


def _differences(a: Pipeline, b: Pipeline) -> list[str]:
    da, db = pipeline_dict(a), pipeline_dict(b)
    out = []
    for section in ("data", "model", "train"):
        for key in da[section]:
            if (section, key) in _RUNTIME_KEYS:
                continue
            if da[section][key] != db[section][key]:
                out.append(f"{section}.{key} {da[section][key]!r} there, {db[section][key]!r} here")
    return out


def _check_run_dir(
    run_dir: Path, pipeline: Pipeline, resume: bool, overwrite: bool = False
) -> dict[str, Any] | None:
    """Validate the run folder before anything is written; return the checkpoint to resume."""
    if resume and overwrite:
        raise ConfigError(
            f"{run_dir}: --resume continues the run, --overwrite replaces it; pick one"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: exists and is not a folder")
    config = run_dir / CONFIG_FILE
    if not config.is_file():
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise ConfigError(
                f"{run_dir}: folder is not empty and holds no run ({CONFIG_FILE} missing); "
                "choose another --out"
            )
        if resume:
            raise ConfigError(f"{run_dir}: nothing to resume (no {CONFIG_FILE})")
        return None
    if overwrite:
        return None  # every check passed: the old run's files go when the new one starts
    saved = load_run_pipeline(run_dir)
    diffs = _differences(saved, replace(pipeline, name=saved.name, description=saved.description))
    if resume:  # a resume may move the data and extend the run (checked by the caller)
        diffs = [d for d in diffs if not d.startswith(("data.path ", "train.epochs "))]
    if diffs:
        raise ConfigError(
            f"{run_dir}: already holds a different run ({'; '.join(diffs[:3])}); "
            "choose another --out"
        )
    if not resume:
        done = len(read_metrics(run_dir))
        raise ConfigError(
            f"{run_dir}: already holds this run ({done}/{saved.train.epochs} epochs); "
            f"continue it with --resume {run_dir}, replace it with --overwrite, or choose "
            "another --out"
        )
    last = run_dir / LAST_CKPT
    if not last.is_file():
        raise CheckpointError(
            f"{run_dir}: nothing to resume: no {LAST_CKPT} (no epoch finished); the folder is "
            "left as it is; start the run again with --overwrite"
        )
    return load_checkpoint(last)


def _check_epochs(run_dir: Path, ckpt: dict[str, Any], epochs: int) -> None:
    done = int(ckpt["epoch"])
    if epochs < done:
        raise ConfigError(
            f"{run_dir}: {done} epochs are done; --epochs {epochs} cannot shorten the run "
            f"(give {done} or more to extend it)"
        )


def _write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    tmp = run_dir / f".{METRICS_FILE}.tmp"
    tmp.write_text("".join(dumps_strict(r) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, run_dir / METRICS_FILE)


# --- train / finetune ------------------------------------------------------------------------


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


def train(
    pipeline: Pipeline,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    progress: bool = False,
    model: nn.Module | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    skip_nonfinite: int = 0,
    overwrite: bool = False,
) -> RunResult:
    """Train ``pipeline`` into ``run_dir``; with ``resume`` continue the run saved there exactly.

    Under ``torchrun`` every process calls this; rank 0 writes the run folder.

    Args:
        pipeline: the resolved recipe (``load_pipeline``); ``pipeline.model.pretrained`` makes
            it a fine-tuning run.
        run_dir: the run folder; it must be new or empty, or hold this very run with ``resume``.
        resume: continue from ``run_dir/last.pt``: model, optimiser, scaler, epoch and RNG states.
        progress: show a progress bar on stderr (loss, accuracy, samples/s).
        model: use this module instead of ``build_model(pipeline)`` (same input/output contract).
        on_epoch: called on rank 0 with each epoch's metrics row.
        skip_nonfinite: skip up to this many batches with a non-finite loss or gradient norm
            (each logged); the next one raises NonFiniteError. 0: the first one raises.
        overwrite: replace the run saved in ``run_dir`` (its files only) instead of refusing.

    Raises:
        ConfigError, CacheError, CheckpointError: bad options, data or run folder; nothing is
            written before these checks pass.
    """
    run_dir = Path(run_dir)
    pipeline = absolute_data_path(pipeline)  # the run folder must work from any directory
    spec = pipeline.train
    with _distributed(spec.device) as info:
        check_sync_bn(spec.sync_bn, info)
        seed_everything(spec.seed)
        train_ds, test_ds, classes = build_datasets(pipeline)
        num_classes = _num_classes(pipeline, classes)
        if model is None:
            model = build_model(pipeline, num_classes)
        ckpt = _check_run_dir(run_dir, pipeline, resume, overwrite)
        identity = data_identity(pipeline)
        if ckpt is not None:
            check_same_data(run_dir, identity)
            _check_epochs(run_dir, ckpt, spec.epochs)
            check_state_dict(model, ckpt["model"], str(run_dir / LAST_CKPT))
        elif pipeline.model.pretrained:
            _load_backbone(model, pipeline.model.pretrained)
        if pipeline.model.freeze_backbone:
            _freeze_backbone(model)

        device = info.device
        cuda = device.type == "cuda"
        model.to(device)
        if cuda and spec.channels_last:
            model.to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(
            param_groups(model, spec.weight_decay), lr=spec.lr, betas=(0.9, 0.999), eps=1e-8
        )
        scaler = make_scaler(device, spec.amp, spec.amp_dtype)
        start_epoch, best, rows = 0, 0.0, []
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
        ema = make_ema(model, spec.ema_decay)
        if ckpt is not None:
            _load_ema(ema, ckpt, run_dir / LAST_CKPT)
            optimizer.load_state_dict(ckpt["optimizer"])
            if scaler is not None and ckpt.get("scaler"):
                scaler.load_state_dict(ckpt["scaler"])
            start_epoch = int(ckpt["epoch"])
            best = float(ckpt.get("best_metric", 0.0))
            rows = [r for r in read_metrics(run_dir) if r.get("epoch", 0) < start_epoch]
        seed_everything(spec.seed + info.rank)  # per-rank mixup and augmentation streams
        if ckpt is not None and "rng" in ckpt:
            states = ckpt["rng"] if isinstance(ckpt["rng"], list) else [ckpt["rng"]]
            if len(states) != info.world_size:
                raise CheckpointError(
                    f"{run_dir / LAST_CKPT}: saved by {len(states)} process(es), resumed with "
                    f"{info.world_size}; resume with the same number of processes"
                )
            set_rng_state(states[info.rank])

        sampler = EpochSampler(train_ds, spec.batch_size, spec.seed, info.rank, info.world_size)
        workers = pipeline.data.workers
        train_loader = _train_loader(train_ds, spec.batch_size, workers, sampler)
        if len(train_loader) == 0:
            raise ConfigError(
                f"{len(train_ds)} training samples make no full batch of "
                f"{spec.batch_size} x {info.world_size} processes; lower --batch-size"
            )
        test_loader = _eval_loader(test_ds, spec.batch_size, workers, info, spec.seed)

        barrier(info)  # every rank has checked the run folder before rank 0 writes to it
        if info.is_main:  # every check has passed: now the run folder may be written
            if overwrite:
                clear_run(run_dir)
            remove_stale_temporaries(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / CONFIG_FILE).write_text(pipeline_to_toml(pipeline), encoding="utf-8")
            write_data_identity(run_dir, identity)
            _write_metrics(run_dir, rows)
        log = _open_log(run_dir, pipeline, info, start_epoch)
        barrier(info)
        net = wrap_model(model, info, sync_bn=spec.sync_bn)
        ctx = _EpochContext(
            device=device,
            info=info,
            amp=spec.amp,
            channels_last=spec.channels_last,
            optimizer=optimizer,
            scaler=scaler,
            mixer=_Mixer(spec, num_classes) if spec.mixes else None,
            label_smoothing=spec.label_smoothing,
            tet=spec.tet,
            clip_grad=spec.clip_grad,
            progress=progress,
            guard=NonFiniteGuard(limit=skip_nonfinite),
            amp_dtype=spec.amp_dtype,
            accum_steps=spec.accum_steps,
            ema=ema,
        )
        eval_ctx = replace(ctx, optimizer=None, scaler=None, mixer=None, ema=None, guard=None)
        started = time.perf_counter()
        for epoch in range(start_epoch, spec.epochs):
            lr = lr_at_epoch(
                epoch, spec.lr, spec.epochs, spec.warmup_epochs, spec.warmup_lr, spec.min_lr
            )
            for group in optimizer.param_groups:
                group["lr"] = lr
            sampler.set_epoch(epoch)
            train_loader.generator.manual_seed(spec.seed * 1000 + epoch)  # worker seeds
            tick = time.perf_counter()
            warm = spec.warmup_per_iter and epoch < spec.warmup_epochs
            tr = _run_epoch(
                net,
                train_loader,
                replace(
                    ctx,
                    desc=f"epoch {epoch + 1}/{spec.epochs}",
                    epoch=epoch,
                    warmup_lr=partial(_epoch_lr, spec) if warm else None,
                ),
            )
            average_buffers(model, info)  # one model on every rank before eval and checkpoint
            if ema is not None:
                average_buffers(ema.module, info)  # its buffers followed rank-local statistics
            te = _run_epoch(model, test_loader, replace(eval_ctx, desc="eval"))
            improved = te["acc1"] > best or not (run_dir / BEST_CKPT).exists()
            best = max(best, te["acc1"])
            row = _metrics_row(epoch, lr, tr, te, best, time.perf_counter() - tick, model)
            if ema is not None:
                te_ema = _run_epoch(ema.module, test_loader, replace(eval_ctx, desc="eval EMA"))
                row.update({f"ema_test_{k}": te_ema[k] for k in ("loss", "acc1", "acc5")})
            rows.append(row)
            payload = _checkpoint_payload(pipeline, model, optimizer, scaler, epoch, lr, best, info)
            if ema is not None:
                payload["model_ema"] = model_state_dict(ema.module)
            if info.is_main:
                _write_metrics(run_dir, rows)
                save_checkpoint(payload, run_dir / LAST_CKPT)
                if improved:
                    save_checkpoint(payload, run_dir / BEST_CKPT)
                if log is not None:
                    log.epoch(row, rows, spec.epochs)
                if on_epoch is not None:
                    on_epoch(row)
            barrier(info)
        if log is not None:
            log.line(f"finished {spec.epochs} epochs, best held-out top-1 {best:.2f}%")
            log.close()
        return RunResult(
            run_dir=run_dir,
            epochs=spec.epochs,
            best_acc1=best,
            final=rows[-1] if rows else {},
            seconds=time.perf_counter() - started,
        )


def _epoch_lr(spec: Any, epoch: float) -> float:
    """The schedule's learning rate at a (possibly fractional) epoch."""
    return lr_at_epoch(epoch, spec.lr, spec.epochs, spec.warmup_epochs, spec.warmup_lr, spec.min_lr)


def _load_ema(ema: Any, ckpt: dict[str, Any], path: Path) -> None:
    """Restore a resumed run's EMA weights; refuse a checkpoint that lacks them."""
    if ema is None:
        return
    if "model_ema" not in ckpt:
        raise CheckpointError(f"{path}: holds no model_ema, though the run keeps an EMA")
    check_state_dict(ema.module, ckpt["model_ema"], f"{path} (model_ema)")
    ema.module.load_state_dict(ckpt["model_ema"])


def _open_log(run_dir: Path, pipeline: Pipeline, info: DistInfo, start_epoch: int) -> RunLog | None:
    """Rank 0's run log with its opening lines; ``None`` on other ranks or when no epoch is left."""
    spec = pipeline.train
    if not info.is_main or start_epoch >= spec.epochs:
        return None
    log = RunLog(run_dir, start_epoch=start_epoch)
    verb = f"resuming after epoch {start_epoch}" if start_epoch else "starting"
    log.line(
        f"{verb}: pipeline {pipeline.name}, model {pipeline.model.name}, data "
        f"{pipeline.data.path}, {spec.epochs} epochs, device {info.device}, "
        f"{info.world_size} process(es), batch {spec.batch_size} x {spec.accum_steps} step(s)"
    )
    note = global_batch_note(
        spec.batch_size, info.world_size, spec.accum_steps, spec.paper_global_batch
    )
    if note is not None:
        log.line(note, logging.WARNING)
    return log


def _metrics_row(
    epoch: int,
    lr: float,
    tr: dict[str, float],
    te: dict[str, float],
    best: float,
    seconds: float,
    model: nn.Module,
) -> dict[str, Any]:
    """One ``metrics.jsonl`` row: losses, accuracies, lr, wall time, samples/s, firing rates."""
    return {
        "epoch": epoch,
        "lr": lr,
        "train_loss": tr["loss"],
        "train_acc1": tr["acc1"],
        "train_acc5": tr["acc5"],
        "test_loss": te["loss"],
        "test_acc1": te["acc1"],
        "test_acc5": te["acc5"],
        "best_acc1": best,
        "epoch_time_s": seconds,
        "train_samples_per_s": tr["samples_per_s"],
        "test_samples_per_s": te["samples_per_s"],
        "firing_rates": _firing_rates(model),
    }


def _checkpoint_payload(
    pipeline: Pipeline,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any,
    epoch: int,
    lr: float,
    best: float,
    info: DistInfo,
) -> dict[str, Any]:
    """Everything an exact resume needs, as plain tensors and containers (PAPER.md's keys too)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model": model_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "epoch": epoch + 1,  # completed epochs
        "best_metric": best,
        "max_acc1": best,
        "lr_scheduler": {"epoch": epoch + 1, "lr": lr},
        "rng": _gather_rng(info),
        "pipeline": pipeline_dict(pipeline),
        "arch": pipeline.model.name,
        "eventvision_version": __version__,
    }


def _gather_rng(info: DistInfo) -> Any:
    """RNG states of every rank (a list when distributed), for an exact resume."""
    state = rng_state()
    if not info.distributed:
        return state
    import torch.distributed as dist

    states: list[Any] = [None] * info.world_size
    dist.all_gather_object(states, state)
    return states


def _num_classes(pipeline: Pipeline, classes: list[str]) -> int:
    declared = pipeline.model.num_classes
    if declared is not None and classes and declared != len(classes):
        raise ConfigError(
            f"[model] num_classes = {declared}, but the data {pipeline.data.path} has "
            f"{len(classes)} classes; set --set model.num_classes={len(classes)}"
        )
    return declared or len(classes)


def finetune(
    pipeline: Pipeline,
    checkpoint: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    freeze_backbone: bool | None = None,
    resume: bool = False,
    progress: bool = False,
    skip_nonfinite: int = 0,
    overwrite: bool = False,
) -> RunResult:
    """Fine-tune from ``checkpoint`` (ours or an official one): new classifier, the recipe's LR.

    Every weight except the classifier is loaded (and must fit the model); the classifier gets a
    fresh initialisation for the target classes. ``freeze_backbone`` trains the classifier only.
    """
    if not Path(checkpoint).is_file():
        raise CheckpointError(f"{checkpoint}: no such checkpoint file")
    model_spec = replace(pipeline.model, pretrained=str(checkpoint))
    if freeze_backbone is not None:
        model_spec = replace(model_spec, freeze_backbone=freeze_backbone)
    return train(
        replace(pipeline, model=model_spec),
        run_dir,
        resume=resume,
        progress=progress,
        skip_nonfinite=skip_nonfinite,
        overwrite=overwrite,
    )


# --- evaluate --------------------------------------------------------------------------------


def _resolve_checkpoint(path: Path) -> Path:
    if path.is_dir():
        for name in (BEST_CKPT, LAST_CKPT):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: run folder without {BEST_CKPT} or {LAST_CKPT}")
    return path


def evaluate(
    checkpoint: str | os.PathLike,
    pipeline: Pipeline | None = None,
    *,
    data: str | None = None,
    split: str = "test",
    batch_size: int | None = None,
    energy: bool = True,
    progress: bool = False,
    time_steps: int | None = None,
    size: int | None = None,
    overrides: dict[str, Any] | None = None,
    save: bool = True,
) -> EvalResult:
    """Evaluate a checkpoint (or a run folder's best one) on a split of its data.

    Args:
        checkpoint: a ``.pt`` file or a run folder.
        pipeline: the recipe; by default the one stored in the checkpoint (official
            checkpoints store none and need it).
        data: replaces ``pipeline.data.path``.
        split: "test" (held out) or "train".
        batch_size: replaces ``pipeline.train.batch_size``.
        energy: also measure per-layer firing rates, SOPs and the energy estimate.
        time_steps, size: replace ``pipeline.data.time_steps`` / ``size``.
        overrides: further ``{"section.key": value}`` pairs, as ``--set`` gives them.
        save: write the record ``eval-<cache-id>.json`` beside the checkpoint (``EvalResult.path``).
    """
    path = _resolve_checkpoint(Path(checkpoint))
    ckpt = load_checkpoint(path)
    if pipeline is None:
        if not isinstance(ckpt.get("pipeline"), dict):
            raise ConfigError(
                f"{path}: the checkpoint stores no pipeline; pass --pipeline NAME|PATH"
            )
        pipeline = pipeline_from_dict(ckpt["pipeline"], source=str(path))
    if data is not None:
        pipeline = replace(pipeline, data=replace(pipeline.data, path=str(data)))
    pipeline = _eval_overrides(pipeline, batch_size, time_steps, size, overrides)
    if split not in ("train", "test"):
        raise ConfigError(f"split {split!r}: expected train or test")
    with _distributed(pipeline.train.device) as info:
        seed_everything(pipeline.train.seed)
        train_ds, test_ds, classes = build_datasets(pipeline, augment=False)
        dataset = test_ds if split == "test" else train_ds
        model = build_model(pipeline, _num_classes(pipeline, classes))
        check_state_dict(model, ckpt["model"], str(path))
        model.load_state_dict(ckpt["model"])
        model.to(info.device)
        loader = _eval_loader(
            dataset, pipeline.train.batch_size, pipeline.data.workers, info, pipeline.train.seed
        )
        ctx = _EpochContext(device=info.device, info=info, progress=progress, desc="evaluate")
        stats = _run_epoch(model, loader, ctx)
        report: dict[str, Any] = {}
        rates = _firing_rates(model)  # the DSSA buffers: estimated rates
        if energy:
            report, rates = _energy_report(model, loader, info.device)
    result = EvalResult(
        loss=stats["loss"],
        acc1=stats["acc1"],
        acc5=stats["acc5"],
        samples=stats["samples"],
        seconds=stats["seconds"],
        firing_rates=rates,
        energy=report,
    )
    if save and info.is_main:
        from .evals import eval_record, save_eval

        saved = save_eval(eval_record(result, path, pipeline, split), path)
        result = replace(result, path=saved)
    return result


def _eval_overrides(
    pipeline: Pipeline,
    batch_size: int | None,
    time_steps: int | None,
    size: int | None,
    overrides: dict[str, Any] | None,
) -> Pipeline:
    """``pipeline`` with the evaluation's flags applied (flags win over ``overrides``)."""
    from .config import apply_overrides

    given = dict(overrides or {})
    for key, value in (
        ("train.batch_size", batch_size),
        ("data.time_steps", time_steps),
        ("data.size", size),
    ):
        if value is not None:
            given[key] = value
    return apply_overrides(pipeline, given)


def _energy_report(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[dict[str, Any], dict[str, float]]:
    """SOPs and the paper's energy estimate per image, and the measured per-layer firing rates."""
    from ..models import measure_energy

    report = measure_energy(model, (x.to(device) for x, _ in loader))
    energy = {
        "SOPs per image (G)": report.sops / 1e9,
        "energy per image (mJ, 0.9 pJ/SOP)": report.energy_mj,
        "first-conv MACs per image (G)": report.first_conv_macs / 1e9,
        "energy incl. first conv (mJ, +4.6 pJ/MAC)": report.energy_with_first_conv_mj,
    }
    return energy, dict(report.firing_rates)
