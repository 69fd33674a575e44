"""Antialiased bilinear resize of frames, equal to torchvision ``Resize(size, antialias=True)``."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..events import DVS128, Sensor
from .binning import COUNT_DTYPE, bin_events, checked_bounds, outside_message
from .kernels import _bin_resize_kernel, _resize_kernel

__all__ = ["resize_frames", "resize_weights", "output_size", "bin_and_resize"]


def output_size(height: int, width: int, size: int | tuple[int, int]) -> tuple[int, int]:
    """The ``(h, w)`` of torchvision's Resize: an int sets the shorter edge, keeping the aspect."""
    if isinstance(size, (int, np.integer)):
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        short, long = (height, width) if height <= width else (width, height)
        new_short, new_long = int(size), int(size * long / short)
        return (new_short, new_long) if height <= width else (new_long, new_short)
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size}")
    return h, w


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
    maximum; the same size returns the frames as float32 unchanged. An int ``size`` sets the
    shorter edge, as torchvision does.

    Example:
        >>> resize_frames(np.ones((16, 2, 128, 128), np.uint32), 64).shape
        (16, 2, 64, 64)
    """
    frames = np.asarray(frames)
    if frames.ndim < 2:
        raise ValueError(f"expected frames [..., H, W], got shape {frames.shape}")
    *lead, height, width = frames.shape
    h, w = output_size(height, width, size)
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
    h, w = output_size(sensor.height, sensor.width, size)
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
