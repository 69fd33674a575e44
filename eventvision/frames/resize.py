"""Antialiased bilinear resize of frames, as torchvision ``Resize((h, w), antialias=True)``.

Sizes follow one rule everywhere in eventvision (:func:`parse_size`): an int is a square.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import ConfigError
from ..events import DVS128, Sensor
from .binning import COUNT_DTYPE, bin_events, checked_bounds, outside_message
from .kernels import _bin_resize_kernel, _resize_kernel

__all__ = ["resize_frames", "resize_weights", "parse_size", "size_hw", "bin_and_resize"]


def parse_size(value: int | str | tuple | list) -> int | tuple[int, int]:
    """``64``, ``"64"``, ``"48x64"`` or ``(48, 64)`` as ``64`` or ``(48, 64)``: the one size rule.

    An int ``N`` is a square ``N x N``; anything else is height then width (``"HxW"`` on the
    command line, ``(h, w)`` in Python), as frames are ``[..., H, W]``. A square ``HxW`` becomes
    the int, so ``64x64`` and ``64`` name the same size.

    Example:
        >>> parse_size("48x64"), parse_size((64, 64)), parse_size(64)
        ((48, 64), 64, 64)
    """
    if isinstance(value, str):
        parts = value.lower().split("x")
        if len(parts) not in (1, 2) or not all(p.strip().isdecimal() for p in parts):
            raise ConfigError(f"size must be N or HxW (e.g. 64 or 48x64), got {value!r}")
        value = tuple(int(p) for p in parts) if len(parts) == 2 else int(parts[0])
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in value
        ):
            raise ConfigError(f"size must be N or (height, width) of positive ints, got {value!r}")
        h, w = (int(v) for v in value)
        return h if h == w else (h, w)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"size must be a positive int or HxW, got {value!r}")
    return int(value)


def size_hw(size: int | str | tuple | list) -> tuple[int, int]:
    """``(h, w)`` of a size: an int is a square (see :func:`parse_size`)."""
    size = parse_size(size)
    return (size, size) if isinstance(size, int) else size


@lru_cache(maxsize=64)
def resize_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """First input index ``[n_out]`` and tap weights ``[n_out, taps]`` of aten's antialiased resize.

    Output j is centred at ``scale * (j + 0.5)`` (``scale = n_in / n_out``); the triangle filter
    is stretched by ``scale`` when shrinking, then renormalised over the taps inside the input
    (for 128 to 64: ``[1, 3, 3, 1] / 8``, ``[3, 3, 1] / 7`` at the borders).
    """
    scale = n_in / n_out
    support = scale if scale >= 1.0 else 1.0
    inv_scale = 1.0 / scale if scale >= 1.0 else 1.0
    starts = np.empty(n_out, dtype=np.int64)
    rows = []
    for j in range(n_out):
        center = scale * (j + 0.5)
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        taps = (np.arange(lo, hi) - center + 0.5) * inv_scale
        w = np.maximum(0.0, 1.0 - np.abs(taps))
        total = w.sum()
        starts[j] = lo
        rows.append(w / total if total != 0.0 else w)
    n_taps = max(len(r) for r in rows)
    weights = np.zeros((n_out, n_taps), dtype=np.float64)
    for j, r in enumerate(rows):
        # Shift the window left at the far border so every tap lies inside (zero weights pad).
        shift = max(0, int(starts[j]) + n_taps - n_in)
        starts[j] -= shift
        weights[j, shift : shift + len(r)] = r
    starts.flags.writeable = False
    weights.flags.writeable = False
    return starts, weights


def resize_frames(frames: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize ``[..., H, W]`` frames to float32 ``[..., h, w]`` as torchvision's antialiased Resize.

    Matches ``Resize(size, antialias=True)`` on the float32 frames within 1e-5 of the frame
    maximum; the same size returns the frames as float32 unchanged. An int ``size`` is a square
    ``size x size`` (torchvision's ``Resize((size, size))``; its ``Resize(int)`` would keep the
    aspect instead), as everywhere in eventvision (:func:`parse_size`).

    Example:
        >>> resize_frames(np.ones((16, 2, 128, 128), np.uint32), 64).shape
        (16, 2, 64, 64)
    """
    frames = np.asarray(frames)
    if frames.ndim < 2:
        raise ValueError(f"expected frames [..., H, W], got shape {frames.shape}")
    *lead, height, width = frames.shape
    h, w = size_hw(size)
    if (h, w) == (height, width):
        return frames.astype(np.float32, copy=False)
    if frames.dtype.kind not in "iuf":
        raise ValueError(f"expected numeric frames, got dtype {frames.dtype}")
    # Counts go in as they are (the kernel converts each value once), only made contiguous.
    src = np.ascontiguousarray(frames).reshape(-1, height, width)  # [C, H, W]
    y_starts, y_weights = resize_weights(height, h)
    x_starts, x_weights = resize_weights(width, w)
    rows = np.empty((h, width), dtype=np.float64)
    out = np.empty((src.shape[0], h, w), dtype=np.float32)  # [C, h, w]
    _resize_kernel(src, y_starts, y_weights, x_starts, x_weights, rows, out)
    return out.reshape(*lead, h, w)


def bin_and_resize(
    events: np.ndarray,
    time_steps: int,
    size: int | tuple[int, int],
    split_by: str = "number",
    *,
    sensor: Sensor = DVS128,
) -> np.ndarray:
    """``resize_frames(bin_events(events, time_steps, split_by, sensor=sensor), size)``, faster.

    One bin is counted and resized at a time, in a buffer that stays in cache, with the same
    arithmetic: the float32 ``[time_steps, P, h, w]`` result is equal bit for bit (tested). What
    `EventDataset` bins each item with (docs/data.md, "Event caches in the loader").
    """
    h, w = size_hw(size)
    if (h, w) == (sensor.height, sensor.width):
        return bin_events(events, time_steps, split_by, sensor=sensor).astype(np.float32)
    bounds = checked_bounds(events, time_steps, split_by)
    counts = np.empty((1, sensor.polarities, sensor.height, sensor.width), dtype=COUNT_DTYPE)
    y_starts, y_weights = resize_weights(sensor.height, h)
    x_starts, x_weights = resize_weights(sensor.width, w)
    rows = np.empty((h, sensor.width), dtype=np.float64)
    out = np.empty((time_steps, sensor.polarities, h, w), dtype=np.float32)
    bad = _bin_resize_kernel(
        events, bounds, counts, y_starts, y_weights, x_starts, x_weights, rows, out
    )
    if bad >= 0:
        raise ValueError(outside_message(events, bad, sensor))
    return out
