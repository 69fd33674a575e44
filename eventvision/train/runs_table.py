"""The runs table: one line per run folder under a directory (``eventvision runs DIR``)."""

from __future__ import annotations

import fcntl
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, EventVisionError

logger = logging.getLogger(__name__)

__all__ = ["RunSummary", "summarize_run", "list_runs", "format_runs"]


@dataclass(frozen=True)
class RunSummary:
    """What ``eventvision runs`` shows of one run folder.

    ``status`` is ``done`` (every epoch recorded), ``stopped`` (fewer; resume it with
    ``train --resume``), ``empty`` (configured, no epoch finished yet), ``running`` (a process
    holds the folder's lock) or ``unreadable`` (``pipeline.toml`` cannot be read; ``error``
    says why). The three test top-1 numbers are ``eventvision.train.logs.run_scores``'s:
    ``at_best_acc1`` at the epoch selected on ``selected_on`` ("validation" or "test"),
    ``last_acc1`` and ``best_acc1`` (the maximum over epochs, the paper's protocol).
    """

    path: Path
    pipeline: str
    model: str
    epochs_done: int
    epochs: int
    best_acc1: float
    last_acc1: float
    wall_s: float
    status: str
    error: str = ""
    at_best_acc1: float = math.nan
    selected_on: str = ""


def summarize_run(run_dir: str | os.PathLike) -> RunSummary:
    """Summarise one run folder from its ``pipeline.toml`` and ``metrics.jsonl``.

    A folder whose ``pipeline.toml`` cannot be read gives status ``unreadable`` (and why).
    """
    from .logs import run_scores
    from .trainer import load_run_pipeline, read_metrics

    run_dir = Path(run_dir)
    try:
        pipeline = load_run_pipeline(run_dir)
    except (EventVisionError, OSError, UnicodeDecodeError) as e:
        nan = math.nan
        return RunSummary(run_dir, "?", "?", 0, 0, nan, nan, 0.0, "unreadable", str(e))
    rows = read_metrics(run_dir)
    scores = run_scores(rows)
    done = len(rows)
    total = pipeline.train.epochs
    return RunSummary(
        path=run_dir,
        pipeline=pipeline.name,
        model=pipeline.model.name,
        epochs_done=done,
        epochs=total,
        best_acc1=scores.get("test_acc1_max", math.nan),
        last_acc1=scores.get("test_acc1_last", math.nan),
        wall_s=sum(float(r.get("epoch_time_s") or 0.0) for r in rows),
        status=_status(run_dir, done, total),
        at_best_acc1=scores.get("test_acc1_at_best", math.nan),
        selected_on=scores.get("selected_on", ""),
    )


def _status(run_dir: Path, done: int, total: int) -> str:
    """``running`` while a process holds the run's lock, else done, stopped or empty."""
    from .rundir import LOCK_FILE

    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        fd = None
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return "running"
        finally:
            os.close(fd)
    return "done" if done >= total else ("stopped" if done else "empty")


def list_runs(folder: str | os.PathLike) -> list[RunSummary]:
    """Every run folder (one holding ``pipeline.toml``) at any depth under ``folder``, by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder")
    runs = [summarize_run(p.parent) for p in sorted(folder.rglob("pipeline.toml"))]
    for run in runs:
        if run.status == "unreadable":
            logger.warning("%s: unreadable run folder: %s", run.path, run.error)
    return runs


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_runs(runs: list[RunSummary]) -> str:
    """The runs as an aligned text table of test top-1 in percent, with a legend line.

    Columns: test top-1 at the selected epoch, at the last epoch and the maximum over epochs
    (the paper's protocol), and what the epoch was selected on ("validation" or "test").
    """
    if not runs:
        return "no runs (no folder with pipeline.toml)"
    header = ("run", "recipe", "model", "epochs", "test@selected", "test@last", "test max")
    header += ("selected on", "wall", "status")
    table = [header] + [
        (
            str(r.path),
            r.pipeline,
            r.model,
            f"{r.epochs_done}/{r.epochs}",
            "-" if r.status == "unreadable" else f"{r.at_best_acc1:.2f}",
            "-" if r.status == "unreadable" else f"{r.last_acc1:.2f}",
            "-" if r.status == "unreadable" else f"{r.best_acc1:.2f}",
            r.selected_on or "-",
            _clock(r.wall_s),
            r.status,
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for row in table:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i < 3 or i == 7 else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    lines.append(
        "test top-1 (%) at the epoch selected on validation (on test where the run has no "
        "validation split), at the last epoch, and the max over epochs (the paper's protocol, "
        "selected on test)"
    )
    return "\n".join(lines)
