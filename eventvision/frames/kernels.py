"""numba kernels of the frame stage: private, loop-only, writing into preallocated outputs.

Each kernel has a plain-numpy twin in ``reference.py`` that the tests compare bit for bit.
The public wrappers in ``binning.py`` and ``resize.py`` validate, allocate and call these.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__: list[str] = []


@njit(cache=True, nogil=True)
def _bin_events_kernel(events, bounds, out):  # pragma: no cover
    """Add 1 to ``out[k, p, y, x]`` for each event ``i`` with ``bounds[k] <= i < bounds[k + 1]``.

    ``events`` is a structured array with fields x, y, p (reading records, not three strided
    field views, halves the memory traffic); ``out`` may be any strided view, such as a
    transposed one. Returns -1, or the index of the first event outside ``out`` (nothing from
    it on is counted), so the caller names it without a separate validation pass.
    """
    n_bins, n_pol, height, width = out.shape
    for k in range(n_bins):
        for i in range(bounds[k], bounds[k + 1]):
            e = events[i]
            xi, yi, pi = np.intp(e.x), np.intp(e.y), np.intp(e.p)
            if xi < 0 or yi < 0 or pi < 0 or xi >= width or yi >= height or pi >= n_pol:
                return i
            out[k, pi, yi, xi] += 1
    return -1


@njit(cache=True, nogil=True)
def _resize_kernel(src, y_starts, y_weights, x_starts, x_weights, rows, out):  # pragma: no cover
    """Separable resampling of ``src [C, H, W]`` into ``out [C, h, w]``: rows first, then columns.

    ``out[c, i, j] = sum_n x_weights[j, n] * rows[i, x_starts[j] + n]`` with
    ``rows[i, :] = sum_k y_weights[i, k] * src[c, y_starts[i] + k, :]``, each sum in float64
    in tap order; ``rows`` is a ``[h, W]`` float64 scratch buffer. Every tap lies inside.
    """
    n_ch, _, width = src.shape
    h, n_ty = y_weights.shape
    w, n_tx = x_weights.shape
    acc = np.empty(w)  # one output row's sums, float64
    for c in range(n_ch):
        for i in range(h):
            s = y_starts[i]
            for col in range(width):
                rows[i, col] = 0.0
            for k in range(n_ty):
                wk = y_weights[i, k]
                for col in range(width):
                    rows[i, col] += wk * src[c, s + k, col]
        for i in range(h):  # tap-major, so the loop over j vectorises; same order per output
            for j in range(w):
                acc[j] = 0.0
            for n in range(n_tx):
                for j in range(w):
                    acc[j] += x_weights[j, n] * rows[i, x_starts[j] + n]
            for j in range(w):
                out[c, i, j] = acc[j]


@njit(cache=True, nogil=True)
def _bin_resize_kernel(
    events, bounds, counts, y_starts, y_weights, x_starts, x_weights, rows, out
):  # pragma: no cover
    """`_bin_events_kernel` then `_resize_kernel`, one bin at a time, into ``out [T, P, h, w]``.

    ``counts [1, P, H, W]`` (zeroed here per bin) holds one bin's counts while they are resized
    into ``out[k]``, so it stays in cache. Every value goes through the same sums in the same
    order as the two kernels run in turn: the result is equal bit for bit. Returns -1, or the
    index of the first event outside ``counts``.
    """
    for k in range(out.shape[0]):
        counts[:] = 0
        bad = _bin_events_kernel(events, bounds[k : k + 2], counts)
        if bad >= 0:
            return bad
        _resize_kernel(counts[0], y_starts, y_weights, x_starts, x_weights, rows, out[k])
    return -1


@njit(cache=True, nogil=True)
def _pack_events_kernel(t, x, y, p, out):  # pragma: no cover
    """Write ``out[i] = (t[i], x[i], y[i], p[i])`` into the preallocated EVENT_DTYPE ``out``.

    numpy writes the fields of the packed 13-byte records on a slow unaligned path (``copy()``
    of 220k events: 16 ms against 0.1 ms for its bytes); this loop takes about 2 ms.
    """
    for i in range(out.shape[0]):
        e = out[i]
        e.t = t[i]
        e.x = x[i]
        e.y = y[i]
        e.p = p[i]


@njit(cache=True, nogil=True)
def _decode_events_kernel(t_first, dt, x, y, p, out):  # pragma: no cover
    """Write ``out[i] = (t_first + dt[1] + ... + dt[i], x[i], y[i], p[i])`` (``dt[0]`` is 0).

    The event cache's columns back into EVENT_DTYPE records in one pass: the running sum is
    in int64, so no partial sum of the int32 steps wraps.
    """
    t = np.int64(t_first)
    for i in range(out.shape[0]):
        t += np.int64(dt[i])
        e = out[i]
        e.t = t
        e.x = x[i]
        e.y = y[i]
        e.p = p[i]


@njit(cache=True, nogil=True, inline="always")
def _put_moved(out, n, e, x, y, wrap, width, height):  # pragma: no cover
    """``out[n]`` = event ``e`` moved to ``(x, y)``; returns the next free index: n + 1, or n
    where, without ``wrap`` (which keeps every position on the sensor), it fell off."""
    if not wrap and (x < 0 or y < 0 or x >= width or y >= height):
        return n
    o = out[n]
    o.t = e.t
    o.x = x
    o.y = y
    o.p = e.p
    return n + 1


@njit(cache=True, nogil=True)
def _affine_events_kernel(events, coeffs, wrap, width, height, out):  # pragma: no cover
    """Move each event by an affine map about the sensor centre; returns how many were written.

    With ``u = x - cx``, ``v = y - cy`` (``cx = (width-1)/2``, ``cy = (height-1)/2``) and
    ``coeffs = (a, b, c, d, dx, dy)``: ``x' = rint(cx + (a*u + b*v) + dx)``,
    ``y' = rint(cy + (c*u + d*v) + dy)``, rounding half to even. With ``wrap`` positions are
    taken modulo the sensor size; otherwise events off the sensor are skipped. Kept events go
    to ``out[0:n]`` in input order, t and p unchanged.
    """
    a, b, c, d, dx, dy = coeffs[0], coeffs[1], coeffs[2], coeffs[3], coeffs[4], coeffs[5]
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    n = 0
    for i in range(events.shape[0]):
        e = events[i]
        u, v = np.float64(e.x) - cx, np.float64(e.y) - cy
        xi = np.int64(np.rint(cx + (a * u + b * v) + dx))
        yi = np.int64(np.rint(cy + (c * u + d * v) + dy))
        if wrap:
            xi, yi = xi % width, yi % height
        n = _put_moved(out, n, e, xi, yi, wrap, width, height)
    return n


@njit(cache=True, nogil=True)
def _translate_events_kernel(events, flip_x, dx, dy, wrap, width, height, out):  # pragma: no cover
    """`_affine_events_kernel` for the integer maps (flips and whole-pixel shifts), in integers.

    ``x' = x + dx`` (or, with ``flip_x``, ``width - 1 - x + dx``), ``y' = y + dy``; wrapped or
    dropped alike. The float map gives exactly these integers for a flip or an integer shift,
    so the results are equal (tested); this pass skips the float work and the rounding.
    """
    if wrap:  # then x' lies in [0, 2 width): one conditional subtraction instead of a modulo
        dx, dy = dx % width, dy % height
    n = 0
    for i in range(events.shape[0]):
        e = events[i]
        xi = np.int64(e.x)
        if flip_x:
            xi = width - 1 - xi
        xi += dx
        yi = np.int64(e.y) + dy
        if wrap:
            xi -= width if xi >= width else 0
            yi -= height if yi >= height else 0
        n = _put_moved(out, n, e, xi, yi, wrap, width, height)
    return n


@njit(cache=True, nogil=True)
def _drop_box_kernel(events, x0, y0, x1, y1, out):  # pragma: no cover
    """Copy the records outside ``x0 <= x < x1, y0 <= y < y1`` into ``out[0:n]``; returns n."""
    n = 0
    for i in range(events.shape[0]):
        e = events[i]
        x, y = np.int64(e.x), np.int64(e.y)
        o = out[n]  # written always, kept by advancing n: no data-dependent branch
        o.t = e.t
        o.x = e.x
        o.y = e.y
        o.p = e.p
        n += not (x0 <= x < x1 and y0 <= y < y1)
    return n


@njit(cache=True, nogil=True)
def _select_events_kernel(events, keep, out):  # pragma: no cover
    """Copy the records with ``keep[i]`` into ``out[0:n]`` in order; returns n."""
    n = 0
    for i in range(events.shape[0]):
        if keep[i]:
            out[n] = events[i]
            n += 1
    return n
