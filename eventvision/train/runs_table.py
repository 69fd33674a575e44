"""The runs table: one line per run folder under a directory (``eventvision runs DIR``)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

__all__ = ["RunSummary", "summarize_run", "list_runs", "format_runs"]


@dataclass(frozen=True)
class RunSummary:
    """What ``eventvision runs`` shows of one run folder.

    ``status`` is ``done`` (every epoch recorded), ``stopped`` (fewer; resume it with
    ``train --resume``) or ``empty`` (configured, no epoch finished yet).
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


def summarize_run(run_dir: str | os.PathLike) -> RunSummary:
    """Summarise one run folder from its ``pipeline.toml`` and ``metrics.jsonl``."""
    from .trainer import load_run_pipeline, read_metrics

    run_dir = Path(run_dir)
    pipeline = load_run_pipeline(run_dir)
    rows = read_metrics(run_dir)
    accs = [r["test_acc1"] for r in rows if isinstance(r.get("test_acc1"), (int, float))]
    done = len(rows)
    total = pipeline.train.epochs
    return RunSummary(
        path=run_dir,
        pipeline=pipeline.name,
        model=pipeline.model.name,
        epochs_done=done,
        epochs=total,
        best_acc1=max(accs) if accs else math.nan,
        last_acc1=accs[-1] if accs else math.nan,
        wall_s=sum(float(r.get("epoch_time_s") or 0.0) for r in rows),
        status="done" if done >= total else ("stopped" if done else "empty"),
    )


def list_runs(folder: str | os.PathLike) -> list[RunSummary]:
    """Every run folder (one holding ``pipeline.toml``) at any depth under ``folder``, by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder")
    return [summarize_run(p.parent) for p in sorted(folder.rglob("pipeline.toml"))]


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def format_runs(runs: list[RunSummary]) -> str:
    """The runs as an aligned text table (top-1 in percent on the held-out split)."""
    if not runs:
        return "no runs (no folder with pipeline.toml)"
    header = ("run", "recipe", "model", "epochs", "best top-1", "last top-1", "wall", "status")
    table = [header] + [
        (
            str(r.path),
            r.pipeline,
            r.model,
            f"{r.epochs_done}/{r.epochs}",
            f"{r.best_acc1:.2f}",
            f"{r.last_acc1:.2f}",
            _clock(r.wall_s),
            r.status,
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for row in table:
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
