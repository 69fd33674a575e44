"""Plain-numpy twins of the frame kernels (`eventvision/frames/kernels.py`), written for clarity;
the tests compare them with the kernels bit for bit."""

from __future__ import annotations

import numpy as np

__all__ = [
    "bin_events_reference",
    "resize_reference",
    "pack_events_reference",
    "decode_events_reference",
    "affine_events_reference",
    "select_events_reference",
    "translate_events_reference",
    "drop_box_reference",
]


def bin_events_reference(events, bounds, out) -> int:
    """Twin of ``_bin_events_kernel``: ``np.add.at`` per bin; returns -1 or the first bad index."""
    n_bins, n_pol, height, width = out.shape
    n = int(bounds[-1])
    x, y, p = (events[name][:n].astype(np.int64) for name in ("x", "y", "p"))
    outside = (x < 0) | (y < 0) | (p < 0) | (x >= width) | (y >= height) | (p >= n_pol)
    first_bad = int(np.argmax(outside)) if outside.any() else n
    for k in range(n_bins):
        lo, hi = int(bounds[k]), min(int(bounds[k + 1]), first_bad)
        if hi > lo:
            np.add.at(out[k], (p[lo:hi], y[lo:hi], x[lo:hi]), 1)
    return first_bad if outside.any() else -1


def resize_reference(src, y_starts, y_weights, x_starts, x_weights, rows, out) -> None:
    """Twin of ``_resize_kernel``: the same float64 sums in the same tap order, vectorised."""
    for c in range(src.shape[0]):
        rows[...] = 0.0
        for k in range(y_weights.shape[1]):
            rows += y_weights[:, k, None] * src[c, y_starts + k, :]
        acc = np.zeros(out.shape[1:], dtype=np.float64)
        for n in range(x_weights.shape[1]):
            acc += x_weights[None, :, n] * rows[:, x_starts + n]
        out[c] = acc


def bin_resize_reference(
    events, bounds, counts, y_starts, y_weights, x_starts, x_weights, rows, out
) -> int:
    """Twin of ``_bin_resize_kernel``: the two twins above in turn, bin by bin."""
    for k in range(out.shape[0]):
        counts[:] = 0
        bad = bin_events_reference(events, bounds[k : k + 2], counts)
        if bad >= 0:
            return bad
        resize_reference(counts[0], y_starts, y_weights, x_starts, x_weights, rows, out[k])
    return -1


def pack_events_reference(t, x, y, p, out) -> None:
    """Twin of ``_pack_events_kernel``: field-wise assignment."""
    out["t"] = t
    out["x"] = x
    out["y"] = y
    out["p"] = p


def decode_events_reference(t_first, dt, x, y, p, out) -> None:
    """Twin of ``_decode_events_kernel``: ``t_first`` plus the int64 cumulative sum of ``dt``."""
    out["t"] = int(t_first) + np.cumsum(dt.astype(np.int64))
    out["x"] = x
    out["y"] = y
    out["p"] = p


def affine_events_reference(events, coeffs, wrap, width, height, out) -> int:
    """Twin of ``_affine_events_kernel``: the same map, vectorised."""
    a, b, c, d, dx, dy = (float(k) for k in coeffs)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    u = events["x"].astype(np.float64) - cx
    v = events["y"].astype(np.float64) - cy
    x = np.rint(cx + (a * u + b * v) + dx).astype(np.int64)
    y = np.rint(cy + (c * u + d * v) + dy).astype(np.int64)
    return _place(events, x, y, wrap, width, height, out)


def _place(events, x, y, wrap, width, height, out) -> int:
    """``events`` moved to ``x, y``: wrapped into the sensor, or those outside it dropped."""
    if wrap:
        keep = np.ones(len(events), dtype=bool)
        x, y = x % width, y % height
    else:
        keep = (x >= 0) & (y >= 0) & (x < width) & (y < height)
    n = int(keep.sum())
    out["t"][:n] = events["t"][keep]
    out["x"][:n] = x[keep]
    out["y"][:n] = y[keep]
    out["p"][:n] = events["p"][keep]
    return n


def select_events_reference(events, keep, out) -> int:
    """Twin of ``_select_events_kernel``: boolean indexing."""
    kept = events[keep]
    out[: len(kept)] = kept
    return len(kept)


def translate_events_reference(events, flip_x, dx, dy, wrap, width, height, out) -> int:
    """Twin of ``_translate_events_kernel``: the integer map, vectorised."""
    x = events["x"].astype(np.int64)
    x = (width - 1 - x if flip_x else x) + dx
    y = events["y"].astype(np.int64) + dy
    return _place(events, x, y, wrap, width, height, out)


def drop_box_reference(events, x0, y0, x1, y1, out) -> int:
    """Twin of ``_drop_box_kernel``: boolean indexing of the records outside the box."""
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    return select_events_reference(events, ~((x >= x0) & (x < x1) & (y >= y0) & (y < y1)), out)
