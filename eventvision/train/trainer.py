"""The training loop: ``train`` and ``finetune``, in parts (docs/training.md).

It follows the official SpikingResformer ``main.py`` (docs/training.md, "Training and
evaluation semantics"): AdamW with weight decay on conv/linear weights only, cosine schedule
with warmup stepped once per epoch, loss on the time-averaged logits (TET optional), top-1/top-5
on the time-averaged logits, ``reset_net`` after every batch, AMP and channels-last on CUDA only.

The parts: ``schedule`` (learning rate, parameter groups, seeds), ``mixing`` (mixup/cutmix and
the loss), ``loop`` (one pass over a loader), ``rundir`` (the run folder: ``pipeline.toml``,
``metrics.jsonl``, ``last.pt`` / ``best.pt``, all written by rank 0), ``model_setup`` and
``evaluation`` (``evaluate``). This module wires them into a run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data import EpochSampler, make_loader, set_loader_epoch
from ..data.loader import loader_sampler
from ..errors import CheckpointError, ConfigError
from ..models.energy import DSSARateWatch, rate_error
from ._data import build_datasets, build_validation, validation_identity
from .checkpoint import check_state_dict, model_state_dict, save_checkpoint, set_rng_state
from .config import Pipeline
from .distributed import DistInfo, barrier, check_sync_bn, sync_buffers, wrap_model
from .evaluation import EvalResult, evaluate
from .guards import NonFiniteGuard
from .logs import format_scores, run_scores
from .loop import _distributed, _EpochContext, _run_epoch, _step
from .mixing import _loss, _Mixer, _topk_correct
from .model_setup import _freeze_backbone, _load_backbone, _num_classes, build_model
from .options import make_ema, make_scaler
from .rundir import (
    BEST_CKPT,
    CONFIG_FILE,
    LAST_CKPT,
    METRICS_FILE,
    _check_epochs,
    _check_run_dir,
    _checkpoint_payload,
    _metrics_row,
    _open_log,
    _write_metrics,
    load_run_pipeline,
    read_metrics,
    repair_best,
    run_lock,
    write_run_config,
)
from .runs import (
    absolute_data_path,
    check_same_data,
    clear_run,
    data_identity,
    remove_stale_temporaries,
    write_data_identity,
)
from .schedule import epoch_lr, lr_at_epoch, param_groups, seed_everything

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

# Moved to the parts; kept importable from here (tests and older callers).
_MOVED = (CONFIG_FILE, METRICS_FILE, _loss, _Mixer, _topk_correct, _step, _write_metrics)


@dataclass(frozen=True)
class RunResult:
    """What a training run ended with.

    Args:
        epochs: completed epochs in total (resumed runs count the earlier ones).
        best_acc1: the maximum test top-1 in percent over all epochs (the paper's protocol).
        final: the last ``metrics.jsonl`` row (empty if no epoch ran).
        scores: the three test top-1 numbers, labelled (``eventvision.train.logs.run_scores``).
    """

    run_dir: Path
    epochs: int
    best_acc1: float
    final: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    scores: dict[str, Any] = field(default_factory=dict)

    @property
    def last_checkpoint(self) -> Path:
        return self.run_dir / LAST_CKPT

    @property
    def best_checkpoint(self) -> Path:
        return self.run_dir / BEST_CKPT


@dataclass
class _Run:
    """A run's state between epochs: the model and its optimiser, EMA, best score and rows."""

    pipeline: Pipeline
    run_dir: Path
    info: DistInfo
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: Any
    ema: Any
    start_epoch: int = 0
    best: float = 0.0  # the selection score: best validation top-1, or test top-1 without one
    rows: list[dict[str, Any]] = field(default_factory=list)
    log: Any = None
    classes: list[str] = field(default_factory=list)


class _Loaders(NamedTuple):
    sampler: EpochSampler
    train: DataLoader
    test: DataLoader
    val: DataLoader | None = None  # [data] val_fraction: best.pt is chosen on it


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
    allow_stale: bool = False,
    allow_other_data: bool = False,
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
        allow_stale: use a frame cache whose raw sources changed since its build.
        allow_other_data: resume on another build of the cache than the run's (same options).

    Raises:
        ConfigError, CacheError, CheckpointError: bad options, data or run folder; nothing is
            written before these checks pass.
    """
    run_dir = Path(run_dir)
    pipeline = absolute_data_path(pipeline)  # the run folder must work from any directory
    spec = pipeline.train
    with _distributed(spec.device) as info, run_lock(run_dir, info.is_main):
        check_sync_bn(spec.sync_bn, info)
        seed_everything(spec.seed)
        train_ds, test_ds, classes = build_datasets(pipeline, allow_stale=allow_stale)
        val_ds = build_validation(pipeline, allow_stale=allow_stale)
        num_classes = _num_classes(pipeline, classes)
        if model is None:
            model = build_model(pipeline, num_classes)
        ckpt = _check_run_dir(run_dir, pipeline, resume, overwrite)
        identity = data_identity(pipeline)
        identity["validation"] = validation_identity(pipeline, val_ds)
        if ckpt is not None:
            check_same_data(run_dir, identity, allow_other_data)
        _init_weights(model, pipeline, run_dir, ckpt)
        run = _make_run(pipeline, run_dir, info, model, ckpt)
        run.classes = list(classes)
        _seed_ranks(run_dir, ckpt, info, spec.seed)
        loaders = _make_loaders(pipeline, train_ds, test_ds, info, val_ds)
        _start_run_folder(run, identity, overwrite)
        net = wrap_model(model, info, spec.sync_bn, spec.ddp_broadcast_buffers)
        ctx = _epoch_context(run, num_classes, progress, skip_nonfinite)
        return _fit(run, net, ctx, loaders, on_epoch)


def _init_weights(
    model: nn.Module, pipeline: Pipeline, run_dir: Path, ckpt: dict[str, Any] | None
) -> None:
    """Check a resumed run's data, epochs and weights, or load a pretrained backbone; freeze."""
    if ckpt is not None:
        _check_epochs(run_dir, ckpt, pipeline.train.epochs)
        check_state_dict(model, ckpt["model"], str(run_dir / LAST_CKPT))
    elif pipeline.model.pretrained:
        _load_backbone(model, pipeline.model.pretrained)
    if pipeline.model.freeze_backbone:
        _freeze_backbone(model)


def _make_run(
    pipeline: Pipeline, run_dir: Path, info: DistInfo, model: nn.Module, ckpt: dict[str, Any] | None
) -> _Run:
    """Model on its device, AdamW, the AMP scaler and the EMA, restored from ``ckpt`` if given."""
    spec = pipeline.train
    device = info.device
    model.to(device)
    if device.type == "cuda" and spec.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        param_groups(model, spec.weight_decay), lr=spec.lr, betas=(0.9, 0.999), eps=1e-8
    )
    scaler = make_scaler(device, spec.amp, spec.amp_dtype)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
    run = _Run(pipeline, run_dir, info, model, optimizer, scaler, make_ema(model, spec.ema_decay))
    if ckpt is not None:
        _load_ema(run.ema, ckpt, run_dir / LAST_CKPT)
        optimizer.load_state_dict(ckpt["optimizer"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        run.start_epoch = int(ckpt["epoch"])
        run.best = float(ckpt.get("best_metric", 0.0))
        run.rows = [r for r in read_metrics(run_dir) if r.get("epoch", 0) < run.start_epoch]
    return run


def _seed_ranks(run_dir: Path, ckpt: dict[str, Any] | None, info: DistInfo, seed: int) -> None:
    """Per-rank mixup and augmentation streams, or the saved ones of a resumed run."""
    seed_everything(seed + info.rank)
    if ckpt is None or "rng" not in ckpt:
        return
    states = ckpt["rng"] if isinstance(ckpt["rng"], list) else [ckpt["rng"]]
    if len(states) != info.world_size:
        raise CheckpointError(
            f"{run_dir / LAST_CKPT}: saved by {len(states)} process(es), resumed with "
            f"{info.world_size}; resume with the same number of processes"
        )
    set_rng_state(states[info.rank])


def _make_loaders(
    pipeline: Pipeline,
    train_ds: Dataset,
    test_ds: Dataset,
    info: DistInfo,
    val_ds: Dataset | None = None,
) -> _Loaders:
    """The epoch sampler and the training, test and validation loaders; refuse an empty epoch."""
    spec, workers = pipeline.train, pipeline.data.workers
    where = {"rank": info.rank, "world_size": info.world_size}
    # Every item loads under a seed of (seed, epoch, index) (make_loader): a resumed run draws
    # the same augmentations as an uninterrupted one, with any number of workers.
    train_loader = make_loader(
        train_ds, spec.batch_size, True, workers, spec.seed, persistent_workers=False, **where
    )
    if len(train_loader) == 0:
        raise ConfigError(
            f"{len(train_ds)} training samples make no full batch of "  # type: ignore[arg-type]
            f"{spec.batch_size} x {info.world_size} processes; lower --batch-size"
        )
    test_loader = make_loader(test_ds, spec.batch_size, False, workers, spec.seed, **where)
    val_loader = None
    if val_ds is not None:
        val_loader = make_loader(val_ds, spec.batch_size, False, workers, spec.seed, **where)
    sampler = loader_sampler(train_loader)
    assert isinstance(sampler, EpochSampler)
    return _Loaders(sampler, train_loader, test_loader, val_loader)


def _start_run_folder(run: _Run, identity: Any, overwrite: bool) -> None:
    """Every check has passed: rank 0 writes the run folder and opens the run log."""
    barrier(run.info)  # every rank has checked the run folder before rank 0 writes to it
    if run.info.is_main:
        if overwrite:
            clear_run(run.run_dir)
        remove_stale_temporaries(run.run_dir)
        run.run_dir.mkdir(parents=True, exist_ok=True)
        write_run_config(run.run_dir, run.pipeline)
        write_data_identity(run.run_dir, identity)
        _write_metrics(run.run_dir, run.rows)
        if run.start_epoch:  # a kill between the two checkpoint writes left best.pt behind
            repair_best(run.run_dir, {"epoch": run.start_epoch, "best_metric": run.best})
    run.log = _open_log(run.run_dir, run.pipeline, run.info, run.start_epoch)
    barrier(run.info)


def _epoch_context(
    run: _Run, num_classes: int, progress: bool, skip_nonfinite: int
) -> _EpochContext:
    """The training pass's settings from the recipe."""
    spec = run.pipeline.train
    return _EpochContext(
        device=run.info.device,
        info=run.info,
        amp=spec.amp,
        channels_last=spec.channels_last,
        optimizer=run.optimizer,
        scaler=run.scaler,
        mixer=_Mixer(spec, num_classes) if spec.mixes else None,
        label_smoothing=spec.label_smoothing,
        tet=spec.tet,
        clip_grad=spec.clip_grad,
        progress=progress,
        guard=NonFiniteGuard(limit=skip_nonfinite),
        amp_dtype=spec.amp_dtype,
        accum_steps=spec.accum_steps,
        ema=run.ema,
    )


def _fit(
    run: _Run,
    net: nn.Module,
    ctx: _EpochContext,
    loaders: _Loaders,
    on_epoch: Callable[[dict[str, Any]], None] | None,
) -> RunResult:
    """The remaining epochs, each trained, evaluated and saved; then the closing log line."""
    spec = run.pipeline.train
    started = time.perf_counter()
    for epoch in range(run.start_epoch, spec.epochs):
        row, improved, lr = _train_epoch(run, net, ctx, loaders, epoch)
        _save_epoch(run, row, epoch, lr, improved, on_epoch)
    scores = run_scores(run.rows)
    if run.log is not None:
        run.log.line(f"finished {spec.epochs} epochs: {format_scores(scores)}")
        run.log.close()
    return RunResult(
        run_dir=run.run_dir,
        epochs=spec.epochs,
        best_acc1=scores.get("test_acc1_max", 0.0),
        final=run.rows[-1] if run.rows else {},
        seconds=time.perf_counter() - started,
        scores=scores,
    )


def _train_epoch(
    run: _Run, net: nn.Module, ctx: _EpochContext, loaders: _Loaders, epoch: int
) -> tuple[dict[str, Any], bool, float]:
    """Train one epoch and evaluate it (and the EMA): its metrics row, new best, and LR."""
    spec, model = run.pipeline.train, run.model
    lr = lr_at_epoch(epoch, spec.lr, spec.epochs, spec.warmup_epochs, spec.warmup_lr, spec.min_lr)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    set_loader_epoch(loaders.train, spec.seed, epoch)  # order and worker seeds
    tick = time.perf_counter()
    warm = spec.warmup_per_iter and epoch < spec.warmup_epochs
    desc = f"epoch {epoch + 1}/{spec.epochs}"
    warmup = partial(epoch_lr, spec) if warm else None
    with DSSARateWatch(model) as rate_watch:  # the paper's check of its scale estimates
        tr = _run_epoch(net, loaders.train, replace(ctx, desc=desc, epoch=epoch, warmup_lr=warmup))
    broadcast = spec.ddp_broadcast_buffers  # one model on every rank before eval and checkpoint
    sync_buffers(model, run.info, broadcast)
    rate_check = rate_watch.result()
    if run.ema is not None:
        sync_buffers(run.ema.module, run.info, broadcast)  # they followed rank-local statistics
    eval_ctx = replace(ctx, optimizer=None, scaler=None, mixer=None, ema=None, guard=None)
    te = _run_epoch(model, loaders.test, replace(eval_ctx, desc="eval"))
    va = None
    if loaders.val is not None:
        va = _run_epoch(model, loaders.val, replace(eval_ctx, desc="validation"))
    score = (va or te)["acc1"]  # best.pt: chosen on validation where there is one
    improved = score > run.best or not (run.run_dir / BEST_CKPT).exists()
    run.best = max(run.best, score)
    row = _metrics_row(epoch, lr, tr, te, run.best, time.perf_counter() - tick, model)
    if va is not None:
        row.update({f"val_{k}": va[k] for k in ("loss", "acc1", "acc5")})
    scores = run_scores([*run.rows, row])
    row.update({k: v for k, v in scores.items() if k != "test_acc1_last"})
    row["best_acc1"] = scores["test_acc1_max"]  # as before: the maximum test top-1 so far
    if rate_check:
        row.update(dssa_rate_check=rate_check, dssa_rate_error=rate_error(rate_check))
    if run.ema is not None:
        te_ema = _run_epoch(run.ema.module, loaders.test, replace(eval_ctx, desc="eval EMA"))
        row.update({f"ema_test_{k}": te_ema[k] for k in ("loss", "acc1", "acc5")})
    run.rows.append(row)
    return row, improved, lr


def _save_epoch(
    run: _Run,
    row: dict[str, Any],
    epoch: int,
    lr: float,
    improved: bool,
    on_epoch: Callable[[dict[str, Any]], None] | None,
) -> None:
    """Rank 0 writes the metrics, ``last.pt`` (and ``best.pt``) and the log line of an epoch."""
    info = run.info
    payload = _checkpoint_payload(
        run.pipeline, run.model, run.optimizer, run.scaler, epoch, lr, run.best, info
    )
    if run.ema is not None:
        payload["model_ema"] = model_state_dict(run.ema.module)
    payload["classes"] = run.classes
    if info.is_main:
        _write_metrics(run.run_dir, run.rows)
        save_checkpoint(payload, run.run_dir / LAST_CKPT)  # first: repair_best relies on it
        if improved:
            save_checkpoint(payload, run.run_dir / BEST_CKPT)
        if run.log is not None:
            run.log.epoch(row, run.rows, run.pipeline.train.epochs)
        if on_epoch is not None:
            on_epoch(row)
    barrier(info)


def _load_ema(ema: Any, ckpt: dict[str, Any], path: Path) -> None:
    """Restore a resumed run's EMA weights; refuse a checkpoint that lacks them."""
    if ema is None:
        return
    if "model_ema" not in ckpt:
        raise CheckpointError(f"{path}: holds no model_ema, though the run keeps an EMA")
    check_state_dict(ema.module, ckpt["model_ema"], f"{path} (model_ema)")
    ema.module.load_state_dict(ckpt["model_ema"])


def finetune(
    pipeline: Pipeline,
    checkpoint: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    freeze_backbone: bool | None = None,
    **options: Any,
) -> RunResult:
    """Fine-tune from ``checkpoint`` (ours or an official one): new classifier, the recipe's LR.

    Every weight except the classifier is loaded (and must fit the model); the classifier gets a
    fresh initialisation for the target classes. ``freeze_backbone`` trains the classifier only.
    ``options`` are :func:`train`'s (``resume``, ``overwrite``, ``allow_stale``, ...).
    """
    if not Path(checkpoint).is_file():
        raise CheckpointError(f"{checkpoint}: no such checkpoint file")
    model_spec = replace(pipeline.model, pretrained=str(checkpoint))
    if freeze_backbone is not None:
        model_spec = replace(model_spec, freeze_backbone=freeze_backbone)
    return train(replace(pipeline, model=model_spec), run_dir, **options)
