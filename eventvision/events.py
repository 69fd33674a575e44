"""Events as a numpy structured array: the one representation used everywhere.

The field names are tonic's, so tonic transforms accept eventvision events unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "EVENT_DTYPE",
    "Sensor",
    "DVS128",
    "OFF_RGB",
    "ON_RGB",
    "make_events",
    "empty_events",
    "check_events",
]

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])


class Sensor(NamedTuple):
    """Sensor geometry: frames are `[T, polarities, height, width]`."""

    width: int
    height: int
    polarities: int = 2


DVS128 = Sensor(128, 128, 2)

# The colours every drawing of frames gives OFF and ON: blue and orange, which stay apart for
# colour-blind readers (`eventvision show`, the plots of a run).
OFF_RGB = (40, 120, 255)
ON_RGB = (255, 150, 0)


def make_events(t, x, y, p) -> np.ndarray:
    """Build an `EVENT_DTYPE` array from four equally long 1-D sequences (t in microseconds)."""
    t = np.asarray(t)
    n = t.shape[0]
    for name, col in (("x", x), ("y", y), ("p", p)):
        if np.shape(col) != (n,):
            raise ValueError(f"{name} has shape {np.shape(col)}, expected ({n},) like t")
    events = np.empty(n, dtype=EVENT_DTYPE)
    events["t"] = t
    events["x"] = x
    events["y"] = y
    events["p"] = p
    return events


def empty_events() -> np.ndarray:
    """An empty event array."""
    return np.empty(0, dtype=EVENT_DTYPE)


def check_events(events: np.ndarray, sensor: Sensor = DVS128) -> None:
    """Raise ValueError unless `events` is a time-sorted EVENT_DTYPE array inside `sensor`."""
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise ValueError(f"expected a structured array with fields t, x, y, p, got {type(events)}")
    missing = {"t", "x", "y", "p"} - set(events.dtype.names)
    if missing:
        raise ValueError(f"events lack the fields {sorted(missing)}; have {events.dtype.names}")
    if events.ndim != 1:
        raise ValueError(f"events must be 1-D, got shape {events.shape}")
    if len(events) == 0:
        return
    t = events["t"]
    if np.any(t[1:] < t[:-1]):
        i = int(np.argmax(t[1:] < t[:-1]))
        raise ValueError(f"events are not time-sorted: t[{i + 1}]={t[i + 1]} < t[{i}]={t[i]}")
    for name, bound in (("x", sensor.width), ("y", sensor.height), ("p", sensor.polarities)):
        col = events[name]
        if col.min() < 0 or col.max() >= bound:
            raise ValueError(
                f"events field {name} spans {col.min()}..{col.max()}, outside 0..{bound - 1}"
            )
