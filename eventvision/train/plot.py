"""Pictures of runs: training curves from ``metrics.jsonl`` (frames: `eventvision.frames.draw`).

Drawn with matplotlib's object API on an Agg canvas, so no display and no global backend
switch are needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["plot_curves", "plot_runs", "plot_rate_check"]


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_curves(run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Draw loss, top-1 accuracy and learning rate per epoch of a run folder into a PNG.

    Raises:
        ConfigError: ``run_dir`` has no ``metrics.jsonl`` rows yet.
    """
    from .trainer import read_metrics

    rows = read_metrics(run_dir)
    if not rows:
        raise ConfigError(f"{run_dir}: no metrics.jsonl rows to plot (is it a run folder?)")
    epochs = [r["epoch"] + 1 for r in rows]
    fig = _figure(12, 3.6)
    axes = fig.subplots(1, 3)
    for key, label in (("train_loss", "train"), ("test_loss", "test")):
        axes[0].plot(epochs, [r[key] for r in rows], marker=".", label=label)
    axes[0].set(title="loss", xlabel="epoch")
    for key, label in (("train_acc1", "train"), ("test_acc1", "test (held out)")):
        axes[1].plot(epochs, [r[key] for r in rows], marker=".", label=label)
    axes[1].set(title="top-1 accuracy (%)", xlabel="epoch", ylim=(0, 100))
    axes[2].plot(epochs, [r["lr"] for r in rows], marker=".")
    axes[2].set(title="learning rate", xlabel="epoch")
    for ax in axes[:2]:
        ax.legend()
        ax.grid(alpha=0.3)
    axes[2].grid(alpha=0.3)
    fig.suptitle(f"{Path(run_dir).name}: {len(rows)} epochs")
    return _save(fig, out)


_LABELS = {
    "train_loss": "train loss",
    "test_loss": "held-out loss",
    "train_acc1": "train top-1 accuracy (%)",
    "test_acc1": "held-out top-1 accuracy (%)",
    "test_acc5": "held-out top-5 accuracy (%)",
    "ema_test_acc1": "EMA held-out top-1 accuracy (%)",
    "lr": "learning rate",
}


def _run_series(run_dir: Path, metric: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of ``metric`` in a run; refuses a run without rows or without the metric."""
    from .trainer import read_metrics

    rows = read_metrics(run_dir)
    if not rows:
        raise ConfigError(f"{run_dir}: no metrics.jsonl rows to plot (is it a run folder?)")
    if not any(metric in r for r in rows):
        scalars = sorted(k for k, v in rows[-1].items() if isinstance(v, (int, float)))
        raise ConfigError(f"{run_dir}: no metric {metric!r} in metrics.jsonl; known: {scalars}")
    pairs = [(r["epoch"] + 1, r.get(metric)) for r in rows]
    return [e for e, _ in pairs], [float("nan") if v is None else float(v) for _, v in pairs]


def _legend_names(run_dirs: list[Path]) -> list[str]:
    """Short distinct labels: folder names, or full paths where two names coincide."""
    names = [p.name or str(p) for p in run_dirs]
    return names if len(set(names)) == len(names) else [str(p) for p in run_dirs]


def plot_runs(
    run_dirs: list[str | os.PathLike] | tuple, metric: str, out: str | os.PathLike
) -> Path:
    """Overlay ``metric`` (a ``metrics.jsonl`` column) per epoch of several runs, with a legend.

    Raises:
        ConfigError: a run folder has no rows, or no column ``metric``; nothing is written then.
    """
    paths = [Path(p) for p in run_dirs]
    series = [_run_series(p, metric) for p in paths]
    fig = _figure(7, 4.2)
    ax = fig.subplots()
    for (epochs, values), name in zip(series, _legend_names(paths), strict=True):
        ax.plot(epochs, values, marker=".", label=name)
    ax.set(xlabel="epoch", ylabel=_LABELS.get(metric, metric))
    ax.set_title(f"{_LABELS.get(metric, metric)}: {len(paths)} run(s)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out)


def plot_rate_check(run_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Draw DSSA's firing-rate estimates against the rates measured each epoch, per layer.

    One panel per DSSA block: per head, the running estimate its scale divides by (solid) and
    the rate measured over the epoch's training batches (dashed), for the input spikes ``x``
    and the attention map ``attn`` (``metrics.jsonl`` key ``dssa_rate_check``).

    Raises:
        ConfigError: the run has no rows, or recorded no check (no DSSA with the rate scale).
    """
    from .trainer import read_metrics

    rows = [r for r in read_metrics(run_dir) if r.get("dssa_rate_check")]
    if not rows:
        raise ConfigError(
            f"{run_dir}: no dssa_rate_check in metrics.jsonl (recorded by DSSA with "
            "attn_scale = rate during training)"
        )
    epochs = [r["epoch"] + 1 for r in rows]
    blocks = list(rows[-1]["dssa_rate_check"])
    cols = min(3, len(blocks))
    nrows = -(-len(blocks) // cols)
    fig = _figure(4.2 * cols, 3.2 * nrows)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, block in zip(axes, blocks, strict=False):
        for key, color in (("x", "tab:blue"), ("attn", "tab:orange")):
            heads = len(rows[-1]["dssa_rate_check"][block][key]["estimate"])
            for head in range(heads):
                for kind, style in (("estimate", "-"), ("measured", "--")):
                    values = [r["dssa_rate_check"][block][key][kind][head] for r in rows]
                    label = f"{key} {kind}" if head == 0 else None
                    ax.plot(epochs, values, style, color=color, marker=".", label=label)
        ax.set(title=block, xlabel="epoch", ylabel="firing rate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(blocks) :]:
        ax.set_visible(False)
    fig.suptitle(f"{Path(run_dir).name}: DSSA rate estimates (solid) vs measured (dashed)")
    return _save(fig, out)


def _save(fig, out: str | os.PathLike) -> Path:
    """Lay out ``fig`` and write it to ``out`` (its folder made if missing)."""
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
