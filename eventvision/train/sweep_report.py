"""``eventvision sweep report DIR``: one row per configuration, mean ± std over its seeds.

The rows read each point's run folder (``metrics.jsonl`` through ``run_scores``, its newest
``eval-*.json`` for SOPs and energy), so the report needs no Optuna storage.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..files import write_atomic
from .logs import run_scores
from .rundir import read_metrics
from .sweep import SEED_KEYS, SPEC_FILE, _value_text, point_name

__all__ = ["sweep_rows", "write_report"]

# result column -> (label, source)
_NUMBERS = {
    "test_acc1_at_best": "test top-1 at the selected epoch (%)",
    "test_acc1_last": "test top-1 at the last epoch (%)",
    "test_acc1_max": "max test top-1 over epochs, the paper's protocol (%)",
    "wall_s": "wall time (s)",
    "sops_g": "SOPs per image (G)",
    "energy_mj": "energy per image (mJ)",
}
_ENERGY_KEYS = {"sops_g": "SOPs per image (G)", "energy_mj": "energy per image (mJ, 0.9 pJ/SOP)"}


def _point_numbers(run_dir: Path) -> dict[str, Any]:
    """The three numbers, wall time and (if evaluated) SOPs/energy of one point's run folder."""
    rows = read_metrics(run_dir)
    out: dict[str, Any] = dict(run_scores(rows))
    out["epochs_done"] = len(rows)
    out["wall_s"] = sum(float(r.get("epoch_time_s") or 0.0) for r in rows) if rows else math.nan
    evals = sorted(run_dir.glob("eval-*.json"), key=lambda p: p.stat().st_mtime)
    energy = json.loads(evals[-1].read_text(encoding="utf-8")).get("energy", {}) if evals else {}
    for key, name in _ENERGY_KEYS.items():
        out[key] = energy.get(name, math.nan)
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return statistics.fmean(values), std


def sweep_rows(out: str | os.PathLike) -> tuple[list[str], list[dict[str, Any]]]:
    """``(configuration keys, rows)``: each row a configuration with mean and std over seeds.

    Raises:
        ConfigError: ``out`` holds no sweep (no ``sweep.json``).
    """
    import itertools

    out = Path(out)
    path = out / SPEC_FILE
    if not path.is_file():
        raise ConfigError(f"{out}: not a sweep folder (no {SPEC_FILE})")
    grid: dict[str, list[Any]] = json.loads(path.read_text(encoding="utf-8"))["grid"]
    config_keys = [k for k in grid if k not in SEED_KEYS]
    seed_keys = [k for k in grid if k in SEED_KEYS]
    rows = []
    for combo in itertools.product(*(grid[k] for k in config_keys)):
        config = dict(zip(config_keys, combo, strict=True))
        points = []
        for seeds in itertools.product(*(grid[k] for k in seed_keys)):
            point = {**config, **dict(zip(seed_keys, seeds, strict=True))}
            ordered = {k: point[k] for k in grid}  # the folder name follows the spec's order
            points.append(_point_numbers(out / point_name(ordered)))
        row: dict[str, Any] = dict(config)
        row["runs"] = sum(1 for p in points if "test_acc1_last" in p)
        row["of"] = len(points)
        row["selected_on"] = ",".join(
            sorted({p["selected_on"] for p in points if p.get("selected_on")})
        )
        for key in _NUMBERS:
            row[f"{key}_mean"], row[f"{key}_std"] = _mean_std(
                [p.get(key, math.nan) for p in points]
            )
        rows.append(row)
    return config_keys, rows


def _cell(mean: float, std: float, fmt: str) -> str:
    if not math.isfinite(mean):
        return "-"
    if not math.isfinite(std):
        return format(mean, fmt)
    return f"{format(mean, fmt)} ± {format(std, fmt)}"


def _markdown(config_keys: list[str], rows: list[dict[str, Any]], out: Path) -> str:
    """``results.md``: a table of mean ± std over seeds (sample std; one seed shows the mean)."""
    seeds = ", ".join(SEED_KEYS)
    header = [*config_keys, "runs", "selected on", *_NUMBERS.values()]
    lines = [
        f"# Sweep {out.name}",
        "",
        f"Mean ± sample standard deviation over the grid's seeds ({seeds}); `runs` counts the "
        "finished points. 'Selected epoch': best validation top-1 where the runs hold out a "
        "validation split, else best test top-1 (selected on test).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for r in rows:
        cells = [_value_text(r[k]) for k in config_keys]
        cells += [f"{r['runs']}/{r['of']}", r["selected_on"] or "-"]
        for key in _NUMBERS:
            fmt = ".2f" if key.startswith("test") else (".1f" if key == "wall_s" else ".3g")
            cells.append(_cell(r[f"{key}_mean"], r[f"{key}_std"], fmt))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _plot(config_keys: list[str], rows: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars of the three numbers per configuration, with std error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = [",".join(f"{k}={_value_text(r[k])}" for k in config_keys) or "all" for r in rows]
    keys = ["test_acc1_at_best", "test_acc1_last", "test_acc1_max"]
    names = ["at selected epoch", "at last epoch", "max over epochs (paper)"]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(rows)), 4.0))
    for i, (key, name) in enumerate(zip(keys, names, strict=True)):
        means = [r[f"{key}_mean"] for r in rows]
        stds = [0.0 if not math.isfinite(r[f"{key}_std"]) else r[f"{key}_std"] for r in rows]
        ax.bar(x + (i - 1) * 0.27, means, 0.27, yerr=stds, capsize=3, label=name)
    ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("test top-1 (%), mean ± std over seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(out: str | os.PathLike) -> list[Path]:
    """Write ``results.csv``, ``results.md`` and ``results.png`` into the sweep folder."""
    out = Path(out)
    config_keys, rows = sweep_rows(out)
    buf = io.StringIO()
    columns = list(rows[0]) if rows else config_keys
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(
            {k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
        )
    written = []
    for name, text in (
        ("results.csv", buf.getvalue()),
        ("results.md", _markdown(config_keys, rows, out)),
    ):
        written.append(write_atomic(out / name, text))
    _plot(config_keys, rows, out / "results.png")
    written.append(out / "results.png")
    return written
