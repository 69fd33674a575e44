"""Deterministic event-level operations: every parameter is explicit, nothing is random here.

The random transforms of `eventvision.data.event_transforms` draw their parameters and call
these. Each takes a time-sorted `EVENT_DTYPE` array and returns a new time-sorted one; none
writes into its input. Geometric ops drop the events they move off the sensor. See
docs/data.md ("Event transforms") for the rules and where they differ from tonic.
"""

from __future__ import annotations

import numpy as np

from ..events import EVENT_DTYPE, Sensor
from ..frames.kernels import (
    _affine_events_kernel,
    _drop_box_kernel,
    _pack_events_kernel,
    _select_events_kernel,
    _translate_events_kernel,
)

__all__ = [
    "flip_lr",
    "flip_polarity",
    "move_events",
    "roll_events",
    "rotate_events",
    "shear_x_events",
    "drop_box",
    "drop_time_window",
    "crop_zoom",
    "shift_time",
    "scale_time",
    "reverse_time",
    "mix_events",
    "copy_events",
]


def _check(events: np.ndarray) -> None:
    if not isinstance(events, np.ndarray) or events.dtype.names is None or events.ndim != 1:
        raise ValueError(
            f"expected a 1-D structured event array with fields t, x, y, p, got {type(events)}"
        )
    missing = {"t", "x", "y", "p"} - set(events.dtype.names)
    if missing:
        raise ValueError(f"events lack the fields {sorted(missing)}; have {events.dtype.names}")


def _build(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    out = np.empty(len(t), dtype=EVENT_DTYPE)
    columns = (np.asarray(c, dtype=np.int64) for c in (t, x, y, p))
    _pack_events_kernel(*columns, out)
    return out


def copy_events(events: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """A new EVENT_DTYPE array of ``events`` (or of ``events[keep]``, a mask or indices).

    Much faster than ``events.copy()`` or ``events[mask]`` on the packed records.
    """
    _check(events)
    if keep is None:
        return _build(events["t"], events["x"], events["y"], events["p"])
    keep = np.asarray(keep)
    if keep.dtype == bool and events.dtype == EVENT_DTYPE:
        if keep.shape != events.shape:
            raise ValueError(f"mask has shape {keep.shape}, expected {events.shape}")
        out = np.empty(len(events), dtype=EVENT_DTYPE)
        return out[: _select_events_kernel(events, keep, out)]
    return _build(events["t"][keep], events["x"][keep], events["y"][keep], events["p"][keep])


def flip_lr(events: np.ndarray, sensor: Sensor) -> np.ndarray:
    """Mirror left to right: ``x -> width - 1 - x``."""
    return _affine(events, sensor, (-1.0, 0.0, 0.0, 1.0, 0.0, 0.0))


def flip_polarity(events: np.ndarray) -> np.ndarray:
    """Swap ON and OFF: ``p -> 1 - p``."""
    _check(events)
    return _build(events["t"], events["x"], events["y"], 1 - events["p"])


def move_events(
    events: np.ndarray, sensor: Sensor, x: np.ndarray, y: np.ndarray, *, wrap: bool = False
) -> np.ndarray:
    """Events at the new integer positions ``x, y`` (one per event); those off the sensor drop.

    With ``wrap`` the positions are taken modulo the sensor size instead (``torch.roll``).
    """
    _check(events)
    x = np.asarray(x, dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    if wrap:
        return _build(events["t"], x % sensor.width, y % sensor.height, events["p"])
    keep = (x >= 0) & (x < sensor.width) & (y >= 0) & (y < sensor.height)
    return _build(events["t"][keep], x[keep], y[keep], events["p"][keep])


def roll_events(events: np.ndarray, sensor: Sensor, dx: int, dy: int) -> np.ndarray:
    """Shift by ``(dx, dy)`` pixels with wrap-around, as ``torch.roll`` on the frames."""
    return _affine(events, sensor, (1.0, 0.0, 0.0, 1.0, float(int(dx)), float(int(dy))), wrap=True)


def rotate_events(events: np.ndarray, sensor: Sensor, angle_deg: float) -> np.ndarray:
    """Rotate counter-clockwise (as displayed, y down) about the sensor centre, nearest pixel.

    With ``u = x - cx``, ``v = y - cy``: ``x' = cx + (u cos a + v sin a)``,
    ``y' = cy + (-u sin a + v cos a)``, rounded half to even; events leaving the sensor drop.
    90 degrees equals ``np.rot90`` on the frames.
    """
    a = np.deg2rad(angle_deg)
    cos, sin = float(np.cos(a)), float(np.sin(a))
    return _affine(events, sensor, (cos, sin, -sin, cos, 0.0, 0.0))


def shear_x_events(events: np.ndarray, sensor: Sensor, angle_deg: float) -> np.ndarray:
    """Shear along x about the centre row: ``x' = cx + (u + tan(angle) v)``, nearest pixel."""
    k = float(np.tan(np.deg2rad(angle_deg)))
    return _affine(events, sensor, (1.0, k, 0.0, 1.0, 0.0, 0.0))


def _affine(
    events: np.ndarray, sensor: Sensor, coeffs: tuple[float, ...], *, wrap: bool = False
) -> np.ndarray:
    """The affine map of `_affine_events_kernel` (one pass over the records)."""
    _check(events)
    if events.dtype != EVENT_DTYPE:
        events = copy_events(events)
    out = np.empty(len(events), dtype=EVENT_DTYPE)
    a, b, c, d, dx, dy = coeffs
    if a in (1.0, -1.0) and (b, c, d) == (0.0, 0.0, 1.0) and dx == int(dx) and dy == int(dy):
        # A flip or an integer shift: the float map gives exactly these integers.
        flip_x, size = a == -1.0, (sensor.width, sensor.height)
        n = _translate_events_kernel(events, flip_x, int(dx), int(dy), wrap, *size, out)
        return out[:n]
    n = _affine_events_kernel(
        events, np.asarray(coeffs, np.float64), wrap, sensor.width, sensor.height, out
    )
    return out[:n]


def drop_box(events: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Drop the events with ``x0 <= x < x1`` and ``y0 <= y < y1`` (cutout, EventDrop by area)."""
    _check(events)
    if events.dtype != EVENT_DTYPE:
        events = copy_events(events)
    out = np.empty(len(events), dtype=EVENT_DTYPE)
    return out[: _drop_box_kernel(events, int(x0), int(y0), int(x1), int(y1), out)]


def drop_time_window(events: np.ndarray, t0_us: int, t1_us: int) -> np.ndarray:
    """Drop the events with ``t0_us <= t <= t1_us`` (EventDrop by time; both ends included)."""
    _check(events)
    t = events["t"]
    return copy_events(events, (t < t0_us) | (t > t1_us))


def crop_zoom(
    events: np.ndarray,
    sensor: Sensor,
    box: tuple[int, int, int, int],
    dither: np.ndarray,
) -> np.ndarray:
    """Keep the events inside ``box = (x0, y0, w, h)`` and stretch it over the whole sensor.

    ``x' = floor((x - x0 + dither_x) * width / w)`` (y alike), where ``dither`` ``[N, 2]`` holds
    one value in [0, 1) per event and axis: a pixel of the box covers ``width / w`` output
    pixels, and the dither spreads its events over all of them instead of only the first.
    """
    _check(events)
    x0, y0, w, h = (int(v) for v in box)
    x = events["x"].astype(np.int64) - x0
    y = events["y"].astype(np.int64) - y0
    keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    dither = np.asarray(dither, dtype=np.float64)
    if dither.shape != (len(events), 2):
        raise ValueError(f"dither has shape {dither.shape}, expected ({len(events)}, 2)")
    xs = np.floor((x[keep] + dither[keep, 0]) * (sensor.width / w)).astype(np.int64)
    ys = np.floor((y[keep] + dither[keep, 1]) * (sensor.height / h)).astype(np.int64)
    xs, ys = np.minimum(xs, sensor.width - 1), np.minimum(ys, sensor.height - 1)
    return _build(events["t"][keep], xs, ys, events["p"][keep])


def shift_time(events: np.ndarray, offset_us: int) -> np.ndarray:
    """Add ``offset_us`` to every timestamp; a result before 0 raises ValueError."""
    _check(events)
    t = events["t"].astype(np.int64) + int(offset_us)
    if len(t) and t[0] < 0:
        raise ValueError(f"time shift {offset_us} us moves the first event to {t[0]} us, before 0")
    return _build(t, events["x"], events["y"], events["p"])


def scale_time(events: np.ndarray, factor: float) -> np.ndarray:
    """Stretch time about the first event: ``t' = t0 + floor((t - t0) * factor)``, factor > 0."""
    _check(events)
    if not factor > 0:
        raise ValueError(f"time scale factor {factor}: expected a positive number")
    if len(events) == 0:
        return copy_events(events)
    t = events["t"].astype(np.int64)
    t = t[0] + np.floor((t - t[0]) * float(factor)).astype(np.int64)
    return _build(t, events["x"], events["y"], events["p"])


def reverse_time(events: np.ndarray) -> np.ndarray:
    """Play the sample backwards: ``t' = t_last - t`` in reversed order, and ``p' = 1 - p``.

    A brightness increase seen backwards is a decrease, so reversal flips polarity too.
    """
    _check(events)
    rev = events[::-1]
    t_last = int(events["t"][-1]) if len(events) else 0
    return _build(t_last - rev["t"].astype(np.int64), rev["x"], rev["y"], 1 - rev["p"])


def mix_events(
    a: np.ndarray, b: np.ndarray, box: tuple[int, int, int, int], window: tuple[float, float]
) -> tuple[np.ndarray, int, int]:
    """Replace the events of ``a`` inside a space-time box by those of ``b`` inside it.

    ``box = (x0, y0, x1, y1)`` (half-open pixels); ``window = (f0, f1)`` are fractions of each
    sample's own time span (``t0 + f * (t_last - t0)``, both ends included). ``b``'s events in the
    box are moved onto ``a``'s span linearly (floor). Returns the mixed, time-sorted events and
    how many came from ``a`` and from ``b``.
    """
    _check(a)
    _check(b)
    in_a = _in_box(a, box, window)
    in_b = _in_box(b, box, window)
    kept_a, taken_b = copy_events(a, ~in_a), copy_events(b, in_b)
    t_b = taken_b["t"].astype(np.int64)
    if len(a) and len(b):
        span_a = int(a["t"][-1]) - int(a["t"][0])
        span_b = max(int(b["t"][-1]) - int(b["t"][0]), 1)
        t_b = int(a["t"][0]) + (t_b - int(b["t"][0])) * span_a // span_b
    moved_b = _build(t_b, taken_b["x"], taken_b["y"], taken_b["p"])
    mixed = np.concatenate([kept_a, moved_b])
    order = np.argsort(mixed["t"], kind="stable")
    return copy_events(mixed, order), len(kept_a), len(moved_b)


def _in_box(
    events: np.ndarray, box: tuple[int, int, int, int], window: tuple[float, float]
) -> np.ndarray:
    if len(events) == 0:
        return np.zeros(0, dtype=bool)
    x0, y0, x1, y1 = box
    t = events["t"].astype(np.int64)
    t0, span = int(t[0]), int(t[-1]) - int(t[0])
    w0, w1 = t0 + window[0] * span, t0 + window[1] * span
    x, y = events["x"], events["y"]
    return (x >= x0) & (x < x1) & (y >= y0) & (y < y1) & (t >= w0) & (t <= w1)
