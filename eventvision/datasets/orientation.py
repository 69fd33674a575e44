"""Turning raw sensor coordinates upright: the orientations a ``folder`` cache can apply.

Readers return the sensor's raw addresses. jAER, the software that records DVS128 files,
counts y upwards and mirrors x relative to those addresses (it draws ``x = W - 1 - raw_x``,
``y = H - 1 - raw_y``), so raw frames of a jAER recording are rotated by 180 degrees. The
orientation step runs after reading, on the events or on the counts (see docs/preprocess.md,
"Orientation").
"""

from __future__ import annotations

import numpy as np

from ..errors import check_choice
from ..events import Sensor, make_events

__all__ = ["ORIENTATIONS", "orient_events", "raw_view"]

# name -> (flip x, flip y); "jaer" is what jAER draws: y up and x mirrored, a 180-degree turn.
_FLIPS = {
    "raw": (False, False),
    "jaer": (True, True),
    "flip-x": (True, False),
    "flip-y": (False, True),
    "rot180": (True, True),
}
ORIENTATIONS = tuple(_FLIPS)


def _flips(orientation: str) -> tuple[bool, bool]:
    check_choice("orientation", orientation, ORIENTATIONS)
    return _FLIPS[orientation]


def orient_events(events: np.ndarray, orientation: str, sensor: Sensor) -> np.ndarray:
    """The events of a ``sensor`` turned by ``orientation`` (a new array; t and p unchanged).

    Example:
        >>> from eventvision.events import make_events, DVS128
        >>> orient_events(make_events([0], [0], [5], [1]), "jaer", DVS128)[["x", "y"]].tolist()
        [(127, 122)]
    """
    flip_x, flip_y = _flips(orientation)
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    if flip_x:
        x = sensor.width - 1 - x
    if flip_y:
        y = sensor.height - 1 - y
    return make_events(events["t"], x, y, events["p"])


def raw_view(oriented: np.ndarray, orientation: str) -> np.ndarray:
    """The view of oriented counts ``[T, P, H, W]`` indexed by the raw ``[T, p, y, x]``.

    Flips map pixels one to one, so raw events counted into this view give the frames of the
    oriented events without rewriting every event.
    """
    flip_x, flip_y = _flips(orientation)
    view = oriented[:, :, ::-1] if flip_y else oriented  # [T, P, raw y, W]
    return view[..., ::-1] if flip_x else view  # [T, P, raw y, raw x]
