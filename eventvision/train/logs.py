"""What a run leaves to read: ``train.log``, strict-JSON metrics, ``summary.csv``, TensorBoard.

Every epoch gives one summary line, logged at INFO on ``eventvision.train.logs`` (the command
line shows it on stderr) and appended to ``RUN/train.log`` whatever the logging setup; live
progress bars never reach the file. ``metrics.jsonl`` is strict JSON (a non-finite number is
written as ``null``), ``summary.csv`` follows timm's ``update_summary`` columns, and TensorBoard
scalars go to ``RUN/tb`` when the optional ``tensorboard`` package is installed (docs/training.md).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..files import write_atomic, write_error

__all__ = [
    "LOG_FILE",
    "SUMMARY_FILE",
    "TENSORBOARD_DIR",
    "RunLog",
    "json_safe",
    "dumps_strict",
    "format_epoch",
    "format_scores",
    "run_scores",
    "write_summary_csv",
]

logger = logging.getLogger(__name__)

LOG_FILE = "train.log"
SUMMARY_FILE = "summary.csv"
TENSORBOARD_DIR = "tb"

# metrics.jsonl key -> summary.csv column, in timm's order (epoch, train_*, eval_*, lr)
_CSV_COLUMNS = {
    "epoch": "epoch",
    "train_loss": "train_loss",
    "train_acc1": "train_top1",
    "train_acc5": "train_top5",
    "val_loss": "val_loss",
    "val_acc1": "val_top1",
    "val_acc5": "val_top5",
    "test_loss": "eval_loss",
    "test_acc1": "eval_top1",
    "test_acc5": "eval_top5",
    "ema_test_loss": "eval_ema_loss",
    "ema_test_acc1": "eval_ema_top1",
    "ema_test_acc5": "eval_ema_top5",
    "lr": "lr",
    "selected_on": "selected_on",
    "best_epoch": "best_epoch",
    "test_acc1_at_best": "test_top1_at_best",
    "test_acc1_max": "test_top1_max_paper_protocol",
}
# Columns written only when some row has them (EMA, validation, runs from before the scores).
_OPTIONAL = ("ema_", "val_", "selected_on", "best_epoch", "test_acc1_at_best", "test_acc1_max")

# metrics.jsonl key -> TensorBoard tag
_TB_TAGS = {
    "train_loss": "loss/train",
    "test_loss": "loss/test",
    "train_acc1": "top1/train",
    "test_acc1": "top1/test",
    "val_acc1": "top1/val",
    "test_acc5": "top5/test",
    "ema_test_loss": "loss/test_ema",
    "ema_test_acc1": "top1/test_ema",
    "lr": "lr",
    "train_samples_per_s": "samples_per_s/train",
    "dssa_rate_error": "dssa_rate/max_relative_error",
}


def _rate_check_scalars(row: dict[str, Any]) -> list[tuple[str, float]]:
    """TensorBoard tags of ``dssa_rate_check``: estimate and measured rate per block and head."""
    out = []
    for block, pairs in (row.get("dssa_rate_check") or {}).items():
        for key, pair in pairs.items():
            for kind in ("estimate", "measured"):
                for head, value in enumerate(pair[kind]):
                    out.append((f"dssa_rate/{block}/{key}_head{head}_{kind}", float(value)))
    return out


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity (also inside dicts and lists) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps_strict(value: Any) -> str:
    """RFC 8259 JSON text of ``value``: non-finite numbers become ``null``, never bare ``NaN``."""
    return json.dumps(json_safe(value), allow_nan=False)


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan"
    return format(value, fmt)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def run_scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The three test top-1 numbers of a run's ``metrics.jsonl`` rows (docs/training.md).

    ``test_acc1_at_best``: test top-1 at the selected epoch ``best_epoch`` (1-based), the first
    with the highest validation top-1, or test top-1 when the run has no validation split
    (``selected_on`` says which); ``test_acc1_last``: at the last epoch; ``test_acc1_max``: the
    maximum over epochs, the paper's protocol (selected on test). Empty for no rows.
    """
    rows = [r for r in rows if isinstance(r.get("test_acc1"), (int, float))]
    if not rows:
        return {}
    on_val = any(isinstance(r.get("val_acc1"), (int, float)) for r in rows)
    key = "val_acc1" if on_val else "test_acc1"
    best = rows[0]
    for r in rows[1:]:  # the first epoch with the highest score, as best.pt keeps it
        if isinstance(r.get(key), (int, float)) and r[key] > best.get(key, -math.inf):
            best = r
    return {
        "selected_on": "validation" if on_val else "test",
        "best_epoch": int(best["epoch"]) + 1,
        "test_acc1_at_best": best["test_acc1"],
        "test_acc1_last": rows[-1]["test_acc1"],
        "test_acc1_max": max(r["test_acc1"] for r in rows),
    }


def format_scores(scores: dict[str, Any]) -> str:
    """The three numbers of :func:`run_scores`, each labelled, on one line."""
    if not scores:
        return "no epoch evaluated"
    where = scores["selected_on"]
    at = "best validation" if where == "validation" else "best test, no validation split"
    return (
        f"test top-1 at {at} (epoch {scores['best_epoch']}): "
        f"{_num(scores['test_acc1_at_best'], '.2f')}%; at the last epoch: "
        f"{_num(scores['test_acc1_last'], '.2f')}%; max over epochs (the paper's protocol, "
        f"selected on test): {_num(scores['test_acc1_max'], '.2f')}%"
    )


def format_epoch(row: dict[str, Any], epochs: int, elapsed_s: float) -> str:
    """The one summary line of an epoch, e.g. ``epoch 2/10 train loss 1.2 top-1 40.0% ...``."""
    text = (
        f"epoch {row['epoch'] + 1}/{epochs}"
        f"  train loss {_num(row['train_loss'], '.4f')} top-1 {_num(row['train_acc1'], '.2f')}%"
    )
    if "val_acc1" in row:
        text += f"  val loss {_num(row['val_loss'], '.4f')} top-1 {_num(row['val_acc1'], '.2f')}%"
    text += f"  test loss {_num(row['test_loss'], '.4f')} top-1 {_num(row['test_acc1'], '.2f')}%"
    if "ema_test_acc1" in row:
        text += f" (EMA {_num(row['ema_test_acc1'], '.2f')}%)"
    return text + (
        f"  lr {_num(row['lr'], '.2e')}"
        f"  {_num(row['train_samples_per_s'], '.1f')} samples/s"
        f"  elapsed {_clock(elapsed_s)}"
    )


def write_summary_csv(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> Path:
    """Write ``rows`` (``metrics.jsonl`` rows) as timm's ``summary.csv``, atomically.

    Columns: ``epoch, train_loss, train_top1, train_top5``, ``val_*`` with a validation split,
    ``eval_loss, eval_top1, eval_top5`` (the test split), the EMA model's ``eval_ema_*`` when it
    was evaluated, ``lr``, then the selection so far: ``selected_on``, ``best_epoch``,
    ``test_top1_at_best`` and ``test_top1_max_paper_protocol`` (:func:`run_scores`); a missing
    or non-finite value is an empty cell. timm's ``update_summary`` cannot write the validation
    and selection columns, so the rows are written here, and a test pins the common columns to
    timm's output. The whole file is rewritten (a resumed run drops the rows after its
    checkpoint) into a temporary file that replaces it.
    """
    rows = list(rows)
    keys = [k for k in _CSV_COLUMNS if not k.startswith(_OPTIONAL) or any(k in r for r in rows)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_CSV_COLUMNS[k] for k in keys])
    for r in rows:
        writer.writerow(["" if json_safe(r.get(k)) is None else r[k] for k in keys])
    return write_atomic(path, buf.getvalue())


def _summary_writer(log_dir: Path, purge_step: int) -> Any:
    """TensorBoard's ``SummaryWriter``, or ``None`` when the ``tensorboard`` package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step or None)


class RunLog:
    """The human-readable side of a run folder: ``train.log``, ``summary.csv``, TensorBoard.

    Only rank 0 makes one. ``tensorboard=False`` turns the scalars off even where the package is
    installed; where it is missing a run says so once and carries on without them.
    """

    def __init__(self, run_dir: Path, start_epoch: int = 0, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.started = time.perf_counter()
        self._tb = None
        if tensorboard:
            self._tb = _summary_writer(self.run_dir / TENSORBOARD_DIR, start_epoch)
            if self._tb is None:
                self.line(
                    "TensorBoard scalars off: the tensorboard package is not installed "
                    "(pip install 'eventvision[tensorboard]')"
                )

    @property
    def tensorboard(self) -> bool:
        """Whether TensorBoard scalars are being written."""
        return self._tb is not None

    def line(self, text: str, level: int = logging.INFO) -> None:
        """Log ``text`` and append it, time-stamped, to ``train.log``."""
        logger.log(level, text)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        path = self.run_dir / LOG_FILE
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"{stamp} {text}\n")
        except OSError as e:
            raise write_error(path, e) from None

    def epoch(self, row: dict[str, Any], rows: list[dict[str, Any]], epochs: int) -> None:
        """Record one finished epoch: its summary line, ``summary.csv`` and the scalars."""
        self.line(format_epoch(row, epochs, time.perf_counter() - self.started))
        write_summary_csv(self.run_dir / SUMMARY_FILE, rows)
        if self._tb is not None:
            for key, tag in _TB_TAGS.items():
                value = json_safe(row.get(key))
                if isinstance(value, (int, float)):
                    self._tb.add_scalar(tag, value, row["epoch"] + 1)
            for tag, value in _rate_check_scalars(row):
                self._tb.add_scalar(tag, value, row["epoch"] + 1)
            self._tb.flush()

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None
