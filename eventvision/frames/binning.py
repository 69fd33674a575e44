"""Time binning of an event stream into ``[T, 2, H, W]`` count frames (docs/preprocess.md)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import check_choice
from ..events import DVS128, Sensor
from .kernels import _bin_events_kernel

__all__ = ["bin_events", "bin_bounds", "COUNT_DTYPE", "SPLIT_BY"]

COUNT_DTYPE = np.dtype(np.uint32)  # a pixel would need 2**32 events in one bin to wrap
SPLIT_BY = ("number", "time")


def bin_bounds(t_us: np.ndarray, time_steps: int, split_by: str) -> np.ndarray:
    """The ``T + 1`` event-index bounds of ``T = time_steps`` bins: bin k is ``bounds[k:k+2]``.

    By number: ``d = N // T``, bin k holds events ``[k*d, (k+1)*d)`` and the last bin also
    the ``N mod T`` remaining ones (so with ``N < T`` all land in the last bin), as
    spikingjelly. By time: ``dt = (t_last - t_0) // T`` (integer us), bin k holds
    ``t_0 + k*dt <= t < t_0 + (k+1)*dt`` and the last bin also every later event (always the
    last one); an empty window gives an empty bin where spikingjelly raises IndexError.
    """
    check_choice("split_by", split_by, SPLIT_BY)
    if time_steps < 1:
        raise ValueError(f"time_steps must be at least 1, got {time_steps}")
    n = len(t_us)
    bounds = np.empty(time_steps + 1, dtype=np.int64)
    bounds[-1] = n
    if split_by == "number" or n == 0:
        bounds[:-1] = np.arange(time_steps, dtype=np.int64) * (n // time_steps)
    else:
        t0 = int(t_us[0])
        dt = (int(t_us[-1]) - t0) // time_steps
        edges = t0 + np.arange(time_steps, dtype=np.int64) * dt
        bounds[:-1] = np.searchsorted(t_us, edges, side="left")
    return bounds


def checked_bounds(events: np.ndarray, time_steps: int, split_by: str) -> np.ndarray:
    """`bin_bounds` of a validated structured event array (ValueError saying what is wrong)."""
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise ValueError(
            f"expected a structured event array with fields t, x, y, p, got {type(events)}"
        )
    missing = {"t", "x", "y", "p"} - set(events.dtype.names)
    if missing:
        raise ValueError(f"events lack the fields {sorted(missing)}; have {events.dtype.names}")
    if events.ndim != 1:
        raise ValueError(f"events must be 1-D, got shape {events.shape}")
    t = events["t"]
    if split_by == "time" and len(t) > 1 and np.any(t[1:] < t[:-1]):
        i = int(np.argmax(t[1:] < t[:-1]))
        raise ValueError(f"events are not time-sorted: t[{i + 1}]={t[i + 1]} < t[{i}]={t[i]}")
    return bin_bounds(t, time_steps, split_by)


def bin_events(
    events: np.ndarray,
    time_steps: int,
    split_by: Literal["number", "time"] = "number",
    *,
    sensor: Sensor = DVS128,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Count time-sorted events into ``[time_steps, 2, H, W]`` frames (channel 0 OFF, 1 ON).

    Each event adds 1 to ``frame[k, p, y, x]``; the bin k of each event follows
    :func:`bin_bounds`. Counts are uint32, so hot pixels never wrap; an empty stream gives
    zeros of the same shape and dtype.

    Args:
        out: an integer ``[time_steps, P, H, W]`` array (any strides, e.g. a transposed view) that
            the counts are added to, instead of a new zeroed uint32 array; it is returned.

    Example:
        >>> from eventvision.events import make_events
        >>> bin_events(make_events([0, 5, 9], [1, 2, 3], [0, 0, 0], [1, 0, 1]), 2).sum()
        np.uint64(3)
    """
    bounds = checked_bounds(events, time_steps, split_by)
    shape = (time_steps, sensor.polarities, sensor.height, sensor.width)
    if out is None:
        out = np.zeros(shape, dtype=COUNT_DTYPE)
    elif out.shape != shape or out.dtype.kind not in "iu":
        raise ValueError(
            f"out must be an integer array of shape {shape}, got {out.dtype} {out.shape}"
        )
    bad = _bin_events_kernel(events, bounds, out)
    if bad >= 0:
        raise ValueError(outside_message(events, bad, sensor))
    return out


def outside_message(events: np.ndarray, i: int, sensor: Sensor) -> str:
    e = events[i]
    return (
        f"event {i} (x={e['x']}, y={e['y']}, p={e['p']}) lies outside the sensor "
        f"{sensor.height}x{sensor.width} (HxW) with {sensor.polarities} polarities"
    )
