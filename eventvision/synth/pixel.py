"""A simple DVS pixel model: log-intensity frames in, time-sorted events out.

Each pixel keeps the log intensity of its last event as a reference. When the log intensity
rises by the pixel's ON threshold above the reference it emits an ON event (p = 1) and moves
the reference up by that threshold, and likewise for OFF (p = 0); a change spanning several
thresholds in one step gives several events. Thresholds vary from pixel to pixel (mismatch),
and background noise adds Poisson events at a small rate per pixel. There is no refractory
period, bandwidth limit or hot pixel.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..events import empty_events, make_events
from ._kernels import _dvs_kernel

__all__ = ["simulate_dvs"]

_MIN_THRESHOLD = 0.01  # a threshold near 0 would emit without bound on any change
_INITIAL_CAPACITY = 1 << 18


def simulate_dvs(
    log_intensity: np.ndarray | Iterable[np.ndarray],
    dt_us: int,
    rng: np.random.Generator,
    *,
    t0_us: int = 0,
    threshold: float = 0.2,
    threshold_sigma: float = 0.03,
    noise_rate_hz: float = 0.1,
) -> np.ndarray:
    """Turn log-intensity frames sampled every ``dt_us`` into time-sorted DVS events.

    Args:
        log_intensity: ``[N, H, W]`` natural-log intensity, frame k at ``t0_us + k * dt_us``,
            or an iterable of ``[n, H, W]`` chunks that concatenate to it (bounded memory;
            each chunk is used up before the next is asked for, so a generator may refill one
            buffer). Frame 0 sets every pixel's reference and emits nothing.
        dt_us: microseconds between frames; event times are interpolated linearly within a
            step and rounded to the nearest microsecond.
        rng: draws the per-pixel ON and OFF thresholds (normal around ``threshold`` with
            ``threshold_sigma``, at least 0.01) and then the noise events.
        threshold: mean contrast threshold in log units.
        noise_rate_hz: background events per pixel per second, each at a uniform time in
            ``[t0_us, t_last_frame]``, pixel and polarity.

    Returns:
        EVENT_DTYPE events, ``x`` the column and ``y`` the row of the frames, sorted by time
        (stable: ties keep the order of simulation, noise last).

    Example:
        >>> ramp = np.linspace(0.0, 0.5, 6, dtype=np.float32).reshape(6, 1, 1)
        >>> ev = simulate_dvs(ramp, 1000, np.random.default_rng(0), threshold_sigma=0,
        ...                   noise_rate_hz=0)
        >>> ev["t"].tolist(), ev["p"].tolist()
        ([2000, 4000], [1, 1])
    """
    if dt_us <= 0:
        raise ValueError(f"dt_us must be positive, got {dt_us}")
    if threshold < _MIN_THRESHOLD or threshold_sigma < 0 or noise_rate_hz < 0:
        raise ValueError(
            f"need threshold >= {_MIN_THRESHOLD}, threshold_sigma >= 0 and noise_rate_hz >= 0, "
            f"got {threshold}, {threshold_sigma}, {noise_rate_hz}"
        )
    chunks = [log_intensity] if isinstance(log_intensity, np.ndarray) else log_intensity
    columns = _empty_columns(_INITIAL_CAPACITY)
    n = 0
    n_frames = 0
    shape = None
    for chunk in chunks:
        chunk = np.ascontiguousarray(chunk, dtype=np.float32)
        if chunk.ndim != 3 or (shape is not None and chunk.shape[1:] != shape):
            expected = "[N, H, W]" if shape is None else f"[N, {shape[0]}, {shape[1]}]"
            raise ValueError(f"log_intensity chunk has shape {chunk.shape}, expected {expected}")
        if len(chunk) == 0:
            continue
        if shape is None:
            shape = chunk.shape[1:]
            last = chunk[0].copy()
            reference = last.astype(np.float64)
            thresholds = rng.normal(threshold, threshold_sigma, (2, *shape))
            thresholds = np.maximum(thresholds, _MIN_THRESHOLD)  # [on/off, H, W]
            chunk = np.ascontiguousarray(chunk[1:])
            n_frames = 1
        saved = last.copy(), reference.copy()
        t_first_us = t0_us + n_frames * dt_us
        args = (chunk, t_first_us, dt_us, last, reference, thresholds[0], thresholds[1])
        needed = _dvs_kernel(*args, *columns, n)
        if needed > len(columns[0]):
            columns = _grown(columns, n, max(needed, 4 * len(columns[0])))
            last[...], reference[...] = saved
            needed = _dvs_kernel(*args, *columns, n)
        n = needed
        n_frames += len(chunk)
    if shape is None:
        return empty_events()
    t, x, y, p = (column[:n] for column in columns)
    span_us = (n_frames - 1) * dt_us
    n_noise = rng.poisson(noise_rate_hz * shape[0] * shape[1] * span_us * 1e-6)
    if n_noise:
        t = np.concatenate([t, t0_us + rng.integers(0, span_us + 1, n_noise)])
        x = np.concatenate([x, rng.integers(0, shape[1], n_noise)])
        y = np.concatenate([y, rng.integers(0, shape[0], n_noise)])
        p = np.concatenate([p, rng.integers(0, 2, n_noise)])
    order = np.argsort(t, kind="stable")
    return make_events(t[order], x[order], y[order], p[order])


def _empty_columns(capacity: int) -> tuple[np.ndarray, ...]:
    """Event buffers (t, x, y, p) for the kernel."""
    return (
        np.empty(capacity, np.int64),
        np.empty(capacity, np.uint16),
        np.empty(capacity, np.uint16),
        np.empty(capacity, np.uint8),
    )


def _grown(columns: tuple[np.ndarray, ...], n: int, capacity: int) -> tuple[np.ndarray, ...]:
    """Larger event buffers holding the first ``n`` events of ``columns``."""
    larger = _empty_columns(capacity)
    for new, old in zip(larger, columns, strict=True):
        new[:n] = old[:n]
    return larger
