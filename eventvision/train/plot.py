"""Pictures of a run: training curves from ``metrics.jsonl``, and a grid of sample frames.

Drawn with matplotlib's object API on an Agg canvas, so no display and no global backend
switch are needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..events import OFF_RGB, ON_RGB

__all__ = ["plot_curves", "plot_frames", "plot_runs"]

_OFF_RGB = np.array(OFF_RGB, dtype=np.float32) / 255
_ON_RGB = np.array(ON_RGB, dtype=np.float32) / 255


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
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


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
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def plot_frames(
    frames: np.ndarray, out: str | os.PathLike, titles: list[str] | None = None
) -> Path:
    """Draw samples ``[N, T, 2, H, W]`` as rows of T frames, OFF events blue and ON orange."""
    frames = np.asarray(frames, dtype=np.float32)
    if frames.ndim != 5 or frames.shape[2] != 2:
        raise ValueError(f"expected frames [N, T, 2, H, W], got {frames.shape}")
    n, time_steps = frames.shape[:2]
    fig = _figure(1.2 * time_steps + 1.5, 1.3 * n + 0.4)
    axes = np.atleast_2d(fig.subplots(n, time_steps, squeeze=False))
    for i in range(n):
        scale = max(float(np.percentile(frames[i], 99.5)), 1e-6)
        for t in range(time_steps):
            off, on = np.clip(frames[i, t] / scale, 0, 1)  # [H, W] each
            rgb = np.clip(off[..., None] * _OFF_RGB + on[..., None] * _ON_RGB, 0, 1)  # [H, W, 3]
            ax = axes[i, t]
            ax.imshow(rgb, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"t={t}", fontsize=8)
        if titles:
            axes[i, 0].set_ylabel(titles[i], fontsize=8)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
