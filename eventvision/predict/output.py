"""`eventvision predict`: windows of many files into a CSV or JSON table, a summary, a GIF."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, EventVisionError
from .predictor import Predictor, WindowPrediction

__all__ = ["PredictSummary", "predict_files", "OUTPUT_FORMATS"]

OUTPUT_FORMATS = {".csv": "csv", ".json": "json"}
GIF_WINDOWS = 300  # windows drawn at most: a GIF of a long recording stays small


@dataclass
class PredictSummary:
    """What a predict run did: counts, rates, where it wrote, the error it stopped at."""

    files: int = 0
    windows: int = 0
    empty: int = 0
    events: int = 0
    recording_s: float = 0.0
    wall_s: float = 0.0
    out: Path | None = None
    gif: Path | None = None
    error: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list, repr=False)
    _span: tuple[int, int] | None = field(default=None, repr=False)  # this file's events

    def add(self, w: WindowPrediction, top_k: int) -> None:
        """Count a window and keep its row."""
        self.rows.append(_row(w, top_k))
        self.windows += 1
        self.empty += w.logits is None
        self.events += w.n_events
        if w.t_last_us is not None:  # the recording: first event to last, not window ends
            self._span = (self._span[0] if self._span else w.t_start_us, w.t_last_us + 1)

    def end_file(self) -> None:
        """Add the file's recording time (first event to last)."""
        if self._span is not None:
            self.recording_s += (self._span[1] - self._span[0]) / 1e6
            self._span = None

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def realtime_factor(self) -> float:
        """Recording time over wall time (above 1: faster than real time)."""
        return self.recording_s / self.wall_s if self.wall_s > 0 else 0.0

    def line(self) -> str:
        """The one summary line the command prints."""
        return (
            f"{self.windows} windows ({self.empty} without events) of {self.files} file(s), "
            f"{self.events} events in {self.wall_s:.2f} s: {self.events_per_s:,.0f} events/s, "
            f"real-time factor {self.realtime_factor:.1f} (recording {self.recording_s:.2f} s)"
            + (f" -> {self.out}" if self.out else "")
        )


def _row(w: WindowPrediction, top_k: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "file": w.source,
        "window": w.index,
        "t_start_us": w.t_start_us,
        "t_end_us": w.t_end_us,
        "events": w.n_events,
        "status": "ok" if w.logits is not None else "no events",
    }
    top = w.top(top_k)
    for k in range(top_k):
        name, p = top[k] if k < len(top) else ("", None)
        row[f"top{k + 1}"] = name
        row[f"p{k + 1}"] = None if p is None else round(p, 6)
    return row


def _write(path: Path, rows: list[dict[str, Any]], summary: PredictSummary, meta: dict) -> None:
    """The table so far, atomically: a reader sees the previous version or this one whole."""
    if OUTPUT_FORMATS[path.suffix.lower()] == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    else:
        done = {k: v for k, v in vars(summary).items() if k in ("files", "windows", "empty")}
        body = {"complete": summary.error is None, "error": summary.error, **meta, **done}
        text = json.dumps({**body, "windows": rows}, indent=1) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output(path: str | os.PathLike) -> Path:
    """``path`` if it names a .csv or .json file (ConfigError otherwise)."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"{path}: expected a .csv or .json output file")
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, expected a .csv or .json output file")
    return path


def predict_files(
    predictor: Predictor,
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    top_k: int = 3,
    gif: str | os.PathLike | None = None,
) -> PredictSummary:
    """Predict every window of ``paths`` into ``out`` (.csv or .json), one row per window.

    The table is rewritten atomically after each file. An error stops the run: the rows so
    far are written with a last row saying what stopped it (``status`` "error: ..." in CSV,
    ``complete`` false in JSON), then the error is raised; nothing is written when it comes
    before the first window. ``gif`` draws each window's frames (summed over time) with its
    predicted class, the first ``GIF_WINDOWS`` windows.
    """
    out = check_output(out)
    if gif is not None:
        from ..frames.draw import image_format

        image_format(Path(gif))
    if top_k < 1:
        raise ConfigError(f"top_k must be positive, got {top_k}")
    top_k = min(top_k, len(predictor.classes))
    meta = {
        "checkpoint": str(predictor.checkpoint),
        "windowing": predictor.windowing.describe() if predictor.windowing else "whole files",
        "binning": predictor.binning.to_dict(),
    }
    summary = PredictSummary(out=out)
    tiles: list[Any] = []
    start = time.perf_counter()
    for path in paths:
        t0 = None  # the file's first window start: the GIF says times from it
        try:
            for w in predictor.predict_file(path, keep_frames=gif is not None):
                summary.add(w, top_k)
                t0 = w.t_start_us if t0 is None else t0
                if w.frames is not None and len(tiles) < GIF_WINDOWS:
                    tiles.append(_gif_tile(w, w.t_start_us - t0))
        except EventVisionError as e:
            summary.error = str(e)
            if summary.rows:
                error_row = dict.fromkeys(summary.rows[0], "")
                error_row.update(file=str(path), status=f"error: {e}")
                summary.rows.append(error_row)
                _write(out, summary.rows, summary, meta)
            raise
        finally:
            summary.wall_s = time.perf_counter() - start
            summary.end_file()
        summary.files += 1
        if summary.rows:
            _write(out, summary.rows, summary, meta)
    if not summary.rows:
        summary.out = None  # no events in any file: nothing to write
    if tiles:
        from ..frames.draw import save_gif

        summary.gif = save_gif(tiles, gif, frame_ms=200)  # type: ignore[arg-type]
    return summary


def _gif_tile(w: WindowPrediction, since_us: int) -> Any:
    """The window's ON/OFF counts over its whole time, labelled with its start (``since_us``
    into its file) and its top class."""
    from PIL import ImageDraw

    from ..frames.draw import frame_tiles

    counts = np.asarray(w.frames)[:, :2].sum(0, keepdims=True)  # [1, 2, h, w]
    tile = frame_tiles(np.asarray(counts), min_side=192)[0]
    top = w.top(1)
    text = f"{top[0][0]} {top[0][1]:.2f}" if top else "no events"
    draw = ImageDraw.Draw(tile)
    draw.text((3, 2), f"{since_us / 1e6:.2f}s: {text}", fill=(255, 255, 255))
    return tile
