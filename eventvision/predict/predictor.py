"""Predictor: a trained run's model on the windows of any recording (docs/predict.md)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cache.options import parse_size, size_hw
from ..errors import ConfigError, FormatError
from ..events import Sensor
from ..io.recording import iter_events
from .binning import Binning, read_binning, run_binning
from .windows import Window, Windowing, iter_windows

__all__ = ["Predictor", "WindowPrediction", "load_run_model"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowPrediction:
    """One window of a recording and the model's answer (``logits`` None: no events in it).

    ``frames`` is the window's ``[T, C, h, w]`` input, kept only when asked (``keep_frames``);
    ``t_last_us`` is its last event's time (None: no events).
    """

    source: str
    index: int
    t_start_us: int
    t_end_us: int
    n_events: int
    logits: np.ndarray | None
    classes: tuple[str, ...]
    frames: np.ndarray | None = None
    t_last_us: int | None = None

    @property
    def probabilities(self) -> np.ndarray | None:
        """Softmax of the logits (mean over the time steps), float64 ``[classes]``."""
        if self.logits is None:
            return None
        z = self.logits.astype(np.float64)
        e = np.exp(z - z.max())
        return e / e.sum()

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable ``(class name, probability)``, most probable first."""
        p = self.probabilities
        if p is None:
            return []
        order = np.argsort(-p, kind="stable")[:k]
        return [(self.classes[i], float(p[i])) for i in order]


def load_run_model(
    run_or_checkpoint: str | os.PathLike, binning: Binning | str | os.PathLike | None = None
) -> tuple[torch.nn.Module, Binning, Path]:
    """``(model in eval mode on the CPU, binning, checkpoint path)`` of a run or checkpoint.

    A run folder gives its ``best.pt`` (else ``last.pt``); the binning comes from the run's
    ``data.json`` and its cache, unless given (a `Binning` or a JSON file of one).
    """
    from ..train.checkpoint import load_checkpoint
    from ..train.config import pipeline_from_dict
    from ..train.evaluation import resolve_checkpoint
    from ..train.model_setup import load_trained

    given = Path(run_or_checkpoint)
    if not given.exists():
        raise ConfigError(f"{given}: no such run folder or checkpoint")
    path = resolve_checkpoint(given)
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt.get("pipeline"), dict):
        raise ConfigError(f"{path}: the checkpoint stores no pipeline (which model it is)")
    pipeline = pipeline_from_dict(ckpt["pipeline"], source=str(path))
    spec = pipeline.data
    if binning is None:
        binning = run_binning(path.parent, spec.time_steps, spec.size, spec.channels)
    elif not isinstance(binning, Binning):
        binning = read_binning(binning)
    expected = (spec.time_steps, spec.channels, size_hw(parse_size(spec.size)))
    if (binning.time_steps, binning.channels, binning.size_hw) != expected:
        raise ConfigError(
            f"binning T={binning.time_steps}, {binning.channels} channels at {binning.size_hw} "
            f"does not fit the model of {path} (T={spec.time_steps}, {spec.channels} channels, "
            f"size {spec.size})"
        )
    model = load_trained(pipeline, len(binning.classes), ckpt, str(path))
    return model.eval(), binning, path


class Predictor:
    """A trained model on the windows of recordings in any format the project reads.

    Each window is oriented, binned and resized exactly as the run's cache was built (the
    source's orientation fix, then `EventsToFrames`, bit for bit the cache's frames), and
    classified by the model in eval mode, its neurons reset after every batch.

    Args:
        run_or_checkpoint: a run folder (its best checkpoint) or a checkpoint inside one.
        device: where the model runs.
        binning: a `Binning` or a JSON file of one, for a checkpoint without its run's records.
        windowing: how recordings are cut; default: a whole file is one window when the run's
            samples were whole files, otherwise it must be given.
        batch_size: windows per forward pass.
        resize_sensor: bin a recording from another sensor on its own sensor and resize it to
            the run's size, instead of refusing it.

    Example:
        >>> p = Predictor("runs/gesture", windowing=Windowing(window_us=500_000))  # doctest: +SKIP
        >>> [w.top(1) for w in p.predict_file("user01_led.aedat")]  # doctest: +SKIP
    """

    def __init__(
        self,
        run_or_checkpoint: str | os.PathLike,
        device: str | torch.device = "cpu",
        *,
        binning: Binning | str | os.PathLike | None = None,
        windowing: Windowing | None = None,
        batch_size: int = 8,
        resize_sensor: bool = False,
    ) -> None:
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.model, self.binning, self.checkpoint = load_run_model(run_or_checkpoint, binning)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.windowing = windowing
        self.batch_size = int(batch_size)
        self.resize_sensor = resize_sensor
        self.classes = self.binning.classes

    def logits(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """Logits ``[B, classes]`` (mean over time steps) of frames ``[B, T, C, h, w]``."""
        from spikingjelly.activation_based import functional

        x = torch.as_tensor(frames, dtype=torch.float32).to(self.device)
        try:
            with torch.no_grad():
                out = self.model(x)  # [T, B, classes]
        finally:
            functional.reset_net(self.model)
        return out.float().mean(0).cpu().numpy()

    def predict_events(
        self, events: np.ndarray, sensor: Sensor | None = None, source: str = "<events>"
    ) -> list[WindowPrediction]:
        """The windows of one time-sorted event array (already oriented as the run's data).

        With no windowing (given or default) the whole array is one window, like a sample.
        """
        windows = self._windows([events], source)
        return list(self._predict(windows, self.binning.to_frames(sensor), source))

    def predict_file(
        self, path: str | os.PathLike, *, keep_frames: bool = False, **read_opts: Any
    ) -> Iterator[WindowPrediction]:
        """The windows of a recording, in order, as soon as each batch is classified.

        AEDAT 4 and 3.1 files stream packet by packet (bounded memory); a truncated file gives
        its good windows, then raises FormatError naming the file.

        Raises:
            FormatError: unknown format, unreadable or truncated file, events outside the sensor.
            ConfigError: the file's sensor differs from the run's (and not ``resize_sensor``).
        """
        stream = iter_events(path, **read_opts)
        sensor = self._sensor_for(stream.sensor, stream.path)
        chunks = (self.binning.orient(c) for c in stream)
        windows = self._windows(chunks, str(stream.path))
        yield from self._predict(windows, self.binning.to_frames(sensor), str(path), keep_frames)

    def _sensor_for(self, file_sensor: Sensor | None, path: Path) -> Sensor:
        run = self.binning.sensor
        if file_sensor is None or file_sensor[:2] == run[:2]:
            return run
        if self.resize_sensor:
            logger.info("%s: binned on its %dx%d sensor, resized", path, *file_sensor[:2])
            return Sensor(file_sensor.width, file_sensor.height, run.polarities)
        raise ConfigError(
            f"{path}: sensor {file_sensor.width}x{file_sensor.height} differs from the run's "
            f"{run.width}x{run.height}; pass --resize-sensor to bin it on its own sensor and "
            f"resize to {self.binning.size_hw[0]}x{self.binning.size_hw[1]}"
        )

    def _windows(self, chunks: Iterable[np.ndarray], source: str) -> Iterator[Window]:
        windowing = self.windowing
        if windowing is not None:
            return iter_windows(chunks, windowing)
        if not self.binning.whole_files:
            raise ConfigError(
                f"{source}: the run's samples were cut from recordings; give a window "
                "(--window-ms or --window-events)"
            )
        return _whole(chunks)

    def _predict(
        self, windows: Iterator[Window], to_frames: Any, source: str, keep: bool = False
    ) -> Iterator[WindowPrediction]:
        batch: list[tuple[Window, np.ndarray | None]] = []
        filled = 0  # windows of the batch with frames (the empty ones ride along)
        while True:
            window, error = _next_window(windows, source)
            if window is not None:
                frames = _frames(to_frames, window, source)
                batch.append((window, frames))
                filled += frames is not None
            if batch and (window is None or filled >= self.batch_size):
                yield from self._classify(batch, source, keep)  # good windows before an error
                batch, filled = [], 0
            if error is not None:
                raise error
            if window is None:
                return

    def _classify(
        self, batch: list[tuple[Window, np.ndarray | None]], source: str, keep: bool
    ) -> Iterator[WindowPrediction]:
        stacked = [f for _, f in batch if f is not None]
        logits = iter(self.logits(np.stack(stacked)) if stacked else [])  # [B, classes]
        for w, f in batch:
            yield WindowPrediction(
                source,
                w.index,
                w.t_start_us,
                w.t_end_us,
                len(w.events),
                None if f is None else next(logits),
                self.classes,
                f if keep else None,
                int(w.events["t"][-1]) if len(w.events) else None,
            )


def _whole(chunks: Iterable[np.ndarray]) -> Iterator[Window]:
    """The whole stream as one window, as a sample kept as one file."""
    events = [c for c in chunks if len(c)]
    if not events:
        return
    whole = np.concatenate(events)
    yield Window(0, int(whole["t"][0]), int(whole["t"][-1]) + 1, whole)


def _next_window(windows: Iterator[Window], source: str) -> tuple[Window | None, Exception | None]:
    """``(next window or None at the end, the reader's error named with the file)``."""
    try:
        return next(windows), None
    except StopIteration:
        return None, None
    except (ValueError, OSError) as e:
        if isinstance(e, FormatError) and source in str(e):
            return None, e
        return None, FormatError(f"{source}: {e}")


def _frames(to_frames: Any, window: Window, source: str) -> np.ndarray | None:
    if not len(window.events):
        return None
    try:
        return to_frames(window.events)
    except ValueError as e:
        raise FormatError(f"{source}: window {window.index}: {e}") from None
