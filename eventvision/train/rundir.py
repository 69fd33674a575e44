"""The run folder: its files, the checks before a run writes there, metrics rows, checkpoints."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..errors import CheckpointError, ConfigError, RunBusyError
from ..files import copy_atomic, hold_lock, write_atomic, write_error
from .checkpoint import CHECKPOINT_FORMAT, load_checkpoint, model_state_dict, rng_state
from .config import Pipeline, pipeline_dict, pipeline_to_toml
from .distributed import DistInfo
from .logs import RunLog, dumps_strict
from .loop import _dssa_rate_estimates
from .options import device_notes, global_batch_note

CONFIG_FILE = "pipeline.toml"
METRICS_FILE = "metrics.jsonl"
LAST_CKPT = "last.pt"
BEST_CKPT = "best.pt"
LOCK_FILE = "run.lock"  # held (flock) by the one process writing the run; it stays

logger = logging.getLogger(__name__)


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


@contextmanager
def run_lock(run_dir: Path, hold: bool = True) -> Iterator[None]:
    """Hold the run folder's lock for the ``with`` block: one writer per run folder.

    The folder is created if missing and ``run.lock`` inside it is locked with ``flock``
    (``O_NOFOLLOW``, a regular file: ``eventvision.files.hold_lock``). If the block fails before
    anything but the lock was written, the lock file (and the folder, if made here) goes again.
    ``hold=False`` (ranks other than 0) does nothing.

    Raises:
        RunBusyError: another process holds the lock; the message names its PID.
        PathError: the folder or the lock file cannot be created, or the lock file is a link.
    """
    if not hold:
        yield
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: exists and is not a folder")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(run_dir, e, "cannot create the run folder") from None
    lock = run_dir / LOCK_FILE
    fresh = not os.path.lexists(lock)

    def busy(pid: str) -> RunBusyError:
        return RunBusyError(
            f"{run_dir}: another process (PID {pid}) is writing this run folder; wait for it "
            "to finish or choose another --out"
        )

    try:
        with hold_lock(lock, busy):
            try:
                yield
            except BaseException:
                if fresh and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
                    lock.unlink()  # still held: nobody else can have taken it meanwhile
                raise
    finally:
        if created and not any(run_dir.iterdir()):
            run_dir.rmdir()


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
        if run_dir.is_dir() and any(p.name != LOCK_FILE for p in run_dir.iterdir()):
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


def write_run_config(run_dir: Path, pipeline: Pipeline) -> None:
    """Write ``pipeline.toml`` atomically, and only when its text changes (a resume)."""
    path, text = run_dir / CONFIG_FILE, pipeline_to_toml(pipeline)
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    write_atomic(path, text)


def _write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    write_atomic(run_dir / METRICS_FILE, "".join(dumps_strict(r) + "\n" for r in rows))


def repair_best(run_dir: Path, last: dict[str, Any]) -> bool:
    """Make ``best.pt`` agree with ``last.pt``'s ``best_metric`` after a kill; True if repaired.

    ``last.pt`` is written before ``best.pt``, so a kill between the two leaves ``best.pt``
    behind (or missing) exactly when the last finished epoch was the new best: ``last.pt``
    then holds the best weights, and is copied.
    """
    best_path = run_dir / BEST_CKPT
    want = float(last.get("best_metric", 0.0))
    if best_path.is_file():
        try:
            best = load_checkpoint(best_path)
        except CheckpointError:
            best = {}
        found = best.get("best_metric")
        if found is not None and float(found) >= want and best.get("epoch", 0) <= last["epoch"]:
            return False
    copy_atomic(run_dir / LAST_CKPT, best_path)
    logger.warning(
        "%s: behind %s (an interrupted save); replaced by %s (best %.2f%%, epoch %d)",
        best_path,
        LAST_CKPT,
        LAST_CKPT,
        want,
        int(last["epoch"]),
    )
    return True


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
    for note in device_notes(spec, info.device, info.distributed):
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
    """One ``metrics.jsonl`` row: losses, accuracies, lr, wall time, samples/s, DSSA rates."""
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
        "dssa_rates": _dssa_rate_estimates(model),
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
    """Everything an exact resume needs, as plain tensors and containers (the official keys too)."""
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
