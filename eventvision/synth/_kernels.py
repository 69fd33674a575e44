"""Numba kernels of the synthetic data generator: the DVS pixel model and the scene renderers.

Each kernel only loops; the validating wrappers live in ``pixel.py``, ``cifar10dvs.py`` and
``dvsgesture.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _crossings(a, b, r, step, polarity, t_prev, dt_us, x, y, out, n):  # pragma: no cover
    """Emit the events of pixel (x, y) whose log intensity goes linearly from ``a`` to ``b``
    over one step: each time it passes ``r + step`` (``polarity`` 1) or ``r - step`` (0), r
    moves there. ``out`` is ``(out_t, out_x, out_y, out_p)``; returns the new ``r`` and ``n``.

    Both directions run the same arithmetic: negating a difference is exact, so the OFF
    events' ``(a - r) / (a - b)`` is ``(r - a) / (b - a)`` bit for bit.
    """
    out_t, out_x, out_y, out_p = out
    sign = 1.0 if polarity else -1.0
    capacity = out_t.shape[0]
    while sign * (b - r) >= step:
        r += sign * step
        if n < capacity:
            out_t[n] = t_prev + np.int64((r - a) / (b - a) * dt_us + 0.5)
            out_x[n] = x
            out_y[n] = y
            out_p[n] = polarity
        n += 1
    return r, n


@njit(cache=True)
def _dvs_kernel(
    frames,
    t_first_us,
    dt_us,
    last,
    reference,
    threshold_on,
    threshold_off,
    out_t,
    out_x,
    out_y,
    out_p,
    n,
):  # pragma: no cover
    """Advance every pixel through ``frames`` ([K, H, W] log intensity), emitting events.

    ``last`` ([H, W] float32) holds the log intensity one step before ``frames[0]`` and
    ``reference`` ([H, W] float64) the log intensity at each pixel's last event; both are
    updated in place. Frame k is at
    ``t_first_us + k * dt_us``. Between two frames the log intensity is taken as linear, so
    the i-th threshold crossing of a step happens at the fraction of the step where the line
    reaches it, rounded to the nearest microsecond. Events go to the ``out_*`` buffers from
    index ``n`` while they fit; the return value is the count they need, so a caller whose
    buffers overflowed grows them and reruns the chunk from a saved state. (Growing inside the
    kernel makes numba refcount the buffers on every event, seven times slower.) Events of one
    step come out in pixel order, not time order.
    """
    n_frames, height, width = frames.shape
    out = (out_t, out_x, out_y, out_p)
    for k in range(n_frames):
        t_prev = t_first_us + (k - 1) * dt_us
        for y in range(height):
            row = frames[k, y]
            previous = last[y]
            changed = 0
            for x in range(width):  # branch-free, so it vectorises: most rows do not change
                changed += row[x] != previous[x]
            if changed == 0:
                continue
            for x in range(width):
                if row[x] == previous[x]:
                    continue
                a = np.float64(previous[x])
                b = np.float64(row[x])
                r = reference[y, x]
                r, n = _crossings(a, b, r, threshold_on[y, x], 1, t_prev, dt_us, x, y, out, n)
                r, n = _crossings(a, b, r, threshold_off[y, x], 0, t_prev, dt_us, x, y, out, n)
                reference[y, x] = r
                previous[x] = row[x]
    return n


@njit(cache=True)
def _shift_kernel(image, margin, dx, dy, out):  # pragma: no cover
    """Bilinearly sample ``image`` shifted by (dx[k], dy[k]) pixels into ``out[k]``.

    ``image`` is ``margin`` pixels larger than ``out[k]`` on every side; shifts must stay
    within the margin.
    """
    n_frames, height, width = out.shape
    for k in range(n_frames):
        sx = margin - dx[k]
        sy = margin - dy[k]
        ix = int(np.floor(sx))
        iy = int(np.floor(sy))
        fx = sx - ix
        fy = sy - iy
        w00 = (1 - fx) * (1 - fy)
        w01 = fx * (1 - fy)
        w10 = (1 - fx) * fy
        w11 = fx * fy
        for y in range(height):
            for x in range(width):
                out[k, y, x] = (
                    w00 * image[iy + y, ix + x]
                    + w01 * image[iy + y, ix + x + 1]
                    + w10 * image[iy + y + 1, ix + x]
                    + w11 * image[iy + y + 1, ix + x + 1]
                )


@njit(cache=True)
def _draw_capsule(
    image, ax, ay, bx, by, radius, level, stripe_amplitude, stripe_period
):  # pragma: no cover
    """Blend a capsule (segment a-b thickened by ``radius``) into ``image`` by pixel coverage.

    Inside, the log intensity is ``level`` plus stripes across the capsule (a periodic
    parabola of the distance from ``a`` along it, cheaper than a cosine), so the stripes move
    with the capsule. Each row visits only the columns near the part of the segment within
    ``radius`` of that row.
    """
    height, width = image.shape
    ux = bx - ax
    uy = by - ay
    length2 = ux * ux + uy * uy
    inverse_length2 = 1.0 / length2 if length2 > 0 else 0.0
    length = np.sqrt(length2)
    reach = radius + 0.5
    y0 = max(int(np.floor(min(ay, by) - reach)), 0)
    y1 = min(int(np.ceil(max(ay, by) + reach)) + 1, height)
    for y in range(y0, y1):
        py = y + 0.5
        s0, s1 = 0.0, 1.0
        if abs(uy) > 1e-9:  # the part of the segment within reach of this row, vertically
            s0 = (py - reach - ay) / uy
            s1 = (py + reach - ay) / uy
            if s0 > s1:
                s0, s1 = s1, s0
            s0 = max(s0, 0.0)
            s1 = min(s1, 1.0)
        xa = ax + s0 * ux
        xb = ax + s1 * ux
        x0 = max(int(np.floor(min(xa, xb) - reach)), 0)
        x1 = min(int(np.ceil(max(xa, xb) + reach)) + 1, width)
        for x in range(x0, x1):
            px = x + 0.5
            s = min(max(((px - ax) * ux + (py - ay) * uy) * inverse_length2, 0.0), 1.0)
            cx = ax + s * ux - px
            cy = ay + s * uy - py
            d2 = cx * cx + cy * cy
            if d2 >= reach * reach:
                continue
            c = min(reach - np.sqrt(d2), 1.0)
            value = level
            if stripe_amplitude != 0:
                f = s * length / stripe_period
                f -= np.floor(f)
                value += stripe_amplitude * (1.0 - 8.0 * f * (1.0 - f))
            image[y, x] = (1 - c) * image[y, x] + c * value


@njit(cache=True)
def _arms_kernel(
    static, joints, radii, arm_level, stripe_amplitude, stripe_period, out
):  # pragma: no cover
    """Draw two arms over the ``static`` log-intensity image into each ``out[k]``.

    ``joints`` is [K, 2 arms, 3 points (shoulder, elbow, hand), 2 (x, y)] in pixels and
    ``radii`` the (upper arm, forearm, hand) radii. Arms are ``arm_level`` with stripes
    across the sleeves that move with them.
    """
    for k in range(out.shape[0]):
        image = out[k]
        for y in range(static.shape[0]):  # an explicit loop copies twice as fast here
            for x in range(static.shape[1]):
                image[y, x] = static[y, x]
        for arm in range(joints.shape[1]):
            sx, sy = joints[k, arm, 0, 0], joints[k, arm, 0, 1]
            ex, ey = joints[k, arm, 1, 0], joints[k, arm, 1, 1]
            hx, hy = joints[k, arm, 2, 0], joints[k, arm, 2, 1]
            _draw_capsule(
                image, sx, sy, ex, ey, radii[0], arm_level, stripe_amplitude, stripe_period
            )
            _draw_capsule(
                image, ex, ey, hx, hy, radii[1], arm_level, stripe_amplitude, stripe_period
            )
            _draw_capsule(image, hx, hy, hx, hy, radii[2], arm_level, 0.0, 1.0)
