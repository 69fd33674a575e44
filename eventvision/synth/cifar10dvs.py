"""Synthetic CIFAR10-DVS: one class-specific textured shape per class, moved on a small loop.

The CIFAR10-DVS authors showed each CIFAR-10 image on a monitor and moved it along a small
repeated closed loop (their "RCLS" motion) in front of a DVS128 for about 1.3 s. Here each
class is a distinct silhouette with its own texture, drawn over low-contrast clutter; the
whole picture moves along a small square loop and goes through the pixel model. Every sample
varies position, size, rotation, mirror image, polarity of the object, contrast, texture
phase, clutter and loop speed, so the classes overlap enough not to be trivial (a nearest
centroid on 16x16 event-count images gets about half right, chance being a tenth).

Speed: about 0.12 s of CPU per 1.3 s file (~217k events, ~1.8M events/s) on one core of the
2-core dev VM, writing included.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..datasets.layouts import write_spikingjelly_npz
from ..events import make_events
from ..io import CIFAR10_DVS_INFO, write_aedat2, write_aedat4
from ._kernels import _shift_kernel
from .pixel import simulate_dvs

__all__ = ["make_cifar10dvs", "make_cifar10dvs_sample"]

DURATION_US = 1_300_000
DT_US = 1000
_TAG = 0xC1FA  # separates this generator's random streams from the gesture generator's
_MARGIN = 8  # pixels of picture beyond the sensor on each side, room for the loop
_CHUNK_FRAMES = 128
_TIMESTAMP_LIMIT = 1 << 32  # AEDAT 2.0 stores uint32 microseconds
_EVENT_RANGE = (100_000, 400_000)  # events in a real recording of DURATION_US
_TARGET_EVENTS = (170_000, 250_000)
# events ~ 3.86 * potential * gain ** 1.85 (threshold 0.2), fitted on 30 samples at 3 gains
# each; the fit's log residual is 0.22, so about 3 % of samples need their one correction
_EVENTS_PER_POTENTIAL = 3.86
_GAIN_EXPONENT = 1.85


def make_cifar10dvs(
    root: str | os.PathLike,
    per_class: int,
    seed: int,
    *,
    duration_us: int = DURATION_US,
    layout: str = "original",
) -> list[Path]:
    """Write a synthetic CIFAR10-DVS: ``<root>/<class>/cifar10_<class>_<i>.aedat``, jAER AEDAT 2.0.

    Each file depends only on ``(seed, class, i)``, so a smaller ``per_class`` writes the
    first files of a larger one. Events are stored in raw sensor coordinates, so the
    CIFAR10-DVS reader's orientation fix shows them upright. ``layout="tonic"`` writes the
    same raw events as ``<root>/CIFAR10DVS/<class>/*.aedat4`` (Zstd packets),
    ``"spikingjelly"`` writes them upright as ``<root>/events_np/<class>/*.npz``, as
    spikingjelly converts the release.

    Returns:
        the written paths, class by class.
    """
    if per_class < 0:
        raise ValueError(f"per_class must be >= 0, got {per_class}")
    if layout not in _WRITERS:
        raise ValueError(f"layout must be one of {sorted(_WRITERS)}, got {layout!r}")
    below, suffix, write = _WRITERS[layout]
    root = Path(root) / below
    paths = []
    for label, name in enumerate(CIFAR10_DVS_INFO.classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            events = make_cifar10dvs_sample(label, index, seed, duration_us=duration_us)
            path = folder / f"cifar10_{name}_{index}{suffix}"
            write(path, events)
            paths.append(path)
    return paths


def _write_original(path: Path, events: np.ndarray) -> None:
    write_aedat2(path, _to_raw_orientation(events))


def _write_tonic(path: Path, events: np.ndarray) -> None:
    write_aedat4(path, _to_raw_orientation(events), CIFAR10_DVS_INFO.sensor, compression="zstd")


def _write_spikingjelly(path: Path, events: np.ndarray) -> None:
    write_spikingjelly_npz(path, events, big_endian_t=True)


_WRITERS: dict[str, tuple[str, str, Callable[[Path, np.ndarray], None]]] = {
    "original": ("", ".aedat", _write_original),
    "tonic": ("CIFAR10DVS", ".aedat4", _write_tonic),
    "spikingjelly": ("events_np", ".npz", _write_spikingjelly),
}


def _to_raw_orientation(events: np.ndarray) -> np.ndarray:
    """Upright events to the raw DVS128 coordinates a CIFAR10-DVS file stores.

    The original recordings hold the sensor transposed, flipped and with inverted polarity
    relative to the upright image; spikingjelly (and eventvision's dataset) undo it with
    ``x = 127 - raw_y, y = 127 - raw_x, p = 1 - raw_p``. This is the inverse.
    """
    last = CIFAR10_DVS_INFO.sensor.width - 1
    return make_events(events["t"], last - events["y"], last - events["x"], 1 - events["p"])


def make_cifar10dvs_sample(
    label: int,
    index: int,
    seed: int,
    *,
    duration_us: int = DURATION_US,
    dt_us: int = DT_US,
) -> np.ndarray:
    """Events of one synthetic CIFAR10-DVS recording, upright (x column, y row from the top).

    Deterministic in ``(label, index, seed)``. Timestamps start at a random offset below
    2**32 - duration (as uint32 jAER clocks do, often above 2**31).

    Example:
        >>> events = make_cifar10dvs_sample(3, 0, seed=0, duration_us=50_000)
        >>> bool(events["t"][-1] - events["t"][0] <= 50_000)
        True
    """
    n_classes = CIFAR10_DVS_INFO.num_classes
    if not 0 <= label < n_classes:
        raise ValueError(f"label must be in 0..{n_classes - 1}, got {label}")
    if index < 0 or seed < 0:
        raise ValueError(f"index and seed must be >= 0, got {index} and {seed}")
    if duration_us < dt_us or dt_us <= 0:
        raise ValueError(f"need 0 < dt_us <= duration_us, got {dt_us} and {duration_us}")
    rng = np.random.default_rng([seed, _TAG, label, index])
    n_frames = duration_us // dt_us + 1
    side_px, period_s = rng.uniform(2.5, 5.0), rng.uniform(0.25, 0.45)
    dx, dy = _loop_path(n_frames, dt_us, side_px, period_s, rng)
    picture = _render_picture(label, rng)
    # Real recordings hold 100k to 400k events; aim inside by scaling the picture's contrast
    # from a cheap prediction, then correct once from the simulated count if still outside.
    target = rng.uniform(*_TARGET_EVENTS) * duration_us / DURATION_US
    lo, hi = (bound * duration_us / DURATION_US for bound in _EVENT_RANGE)
    potential = _event_potential(picture, side_px, duration_us * 1e-6 / period_s)
    gain = (target / max(_EVENTS_PER_POTENTIAL * potential, 1.0)) ** (1 / _GAIN_EXPONENT)
    t0_us = int(rng.integers(0, _TIMESTAMP_LIMIT - duration_us - 1))
    noise_rate_hz = float(rng.uniform(0.05, 0.3))
    pixel_seed = rng.integers(0, 1 << 63)
    for _ in range(2):
        events = simulate_dvs(
            _frames(_with_contrast(picture, gain), dx, dy),
            dt_us,
            np.random.default_rng(pixel_seed),
            t0_us=t0_us,
            noise_rate_hz=noise_rate_hz,
        )
        if lo <= len(events) <= hi:
            break
        gain *= (target / max(len(events), 1)) ** (1 / _GAIN_EXPONENT)
    return events


def _event_potential(picture: np.ndarray, side_px: float, loops: float) -> float:
    """Summed log-intensity gradient on the sensor times the path length: events ~ this / C."""
    inner = slice(_MARGIN, -_MARGIN)
    gradient = np.abs(np.diff(picture, axis=1))[inner, inner].sum()
    gradient += np.abs(np.diff(picture, axis=0))[inner, inner].sum()
    return float(gradient * side_px * loops)


def _with_contrast(picture: np.ndarray, gain: float) -> np.ndarray:
    """The picture with its log-intensity deviations from the mean scaled by ``gain``."""
    mean = picture.mean()
    return (mean + gain * (picture - mean)).astype(np.float32)


def _frames(picture: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> Iterator[np.ndarray]:
    """The moving picture as ``[n, H, W]`` float32 chunks, refilling one buffer."""
    size = picture.shape[0] - 2 * _MARGIN
    buffer = np.empty((_CHUNK_FRAMES, size, size), np.float32)  # [n, H, W]
    for start in range(0, len(dx), _CHUNK_FRAMES):
        out = buffer[: min(_CHUNK_FRAMES, len(dx) - start)]
        _shift_kernel(
            picture, _MARGIN, dx[start : start + len(out)], dy[start : start + len(out)], out
        )
        yield out


def _loop_path(n_frames: int, dt_us: int, side_px: float, period_s: float, rng):
    """Per-frame (dx, dy) in pixels around a square of ``side_px`` at constant speed."""
    phase = rng.uniform(0, 1)
    direction = rng.choice([-1.0, 1.0])
    corners = side_px * np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], float) - side_px / 2
    s = (phase + direction * np.arange(n_frames) * dt_us * 1e-6 / period_s) % 1.0 * 4
    i = np.minimum(s.astype(np.int64), 3)
    f = (s - i)[:, None]
    xy = corners[i] * (1 - f) + corners[i + 1] * f
    return np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])


# --- Pictures -------------------------------------------------------------------------------
# Shapes are signed distances (negative inside) in object units, where 1 unit is the object
# "radius" (about 36 px); textures are functions of the same coordinates, so they move with it.


def _sd_ellipse(u, v, cu, cv, a, b):
    return (np.hypot((u - cu) / a, (v - cv) / b) - 1) * min(a, b)


def _sd_box(u, v, cu, cv, half_w, half_h):
    qu = np.abs(u - cu) - half_w
    qv = np.abs(v - cv) - half_h
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    return outside + np.minimum(np.maximum(qu, qv), 0)


def _sd_disc(u, v, cu, cv, r):
    return np.hypot(u - cu, v - cv) - r


def _sd_segment(u, v, a, b, r):
    (au, av), (bu, bv) = a, b
    du, dv = bu - au, bv - av
    s = np.clip(((u - au) * du + (v - av) * dv) / (du * du + dv * dv), 0, 1)
    return np.hypot(u - au - s * du, v - av - s * dv) - r


def _sd_triangle(u, v, points):
    """Convex triangle as the largest signed distance to its three edge lines."""
    pts = np.asarray(points, float)
    (au, av), (bu, bv) = pts[1] - pts[0], pts[2] - pts[0]
    if au * bv - av * bu < 0:
        pts = pts[::-1]
    d = None
    for k in range(3):
        (au, av), (bu, bv) = pts[k], pts[(k + 1) % 3]
        nu, nv = bv - av, -(bu - au)
        norm = np.hypot(nu, nv)
        edge = ((u - au) * nu + (v - av) * nv) / norm
        d = edge if d is None else np.maximum(d, edge)
    return d


def _union(*sds):
    return np.minimum.reduce(sds)


def _stripes(u, v, angle, period, phase):
    return np.cos(2 * np.pi * ((u * np.cos(angle) + v * np.sin(angle)) / period + phase))


def _checker(u, v, period, phase):
    return np.cos(np.pi * (u / period + phase)) * np.cos(np.pi * (v / period + phase))


def _dots(u, v, period, phase):
    cu = (u / period + phase) % 1 - 0.5
    cv = (v / period + phase) % 1 - 0.5
    return np.clip((0.3 - np.hypot(cu, cv)) * 8, -1, 1)


def _airplane(u, v, ph):
    shape = _union(
        _sd_ellipse(u, v, 0, 0, 0.95, 0.16),
        _sd_triangle(u, v, [(0.25, 0), (-0.25, -0.85), (-0.25, 0.85)]),
        _sd_triangle(u, v, [(-0.65, 0), (-0.92, -0.35), (-0.92, 0.35)]),
    )
    return shape, 0.15 * _stripes(u, v, 0, 0.5, ph), None


def _automobile(u, v, ph):
    shape = _union(_sd_box(u, v, 0, 0.05, 0.9, 0.26), _sd_box(u, v, -0.05, -0.33, 0.48, 0.2))
    wheels = _union(_sd_disc(u, v, -0.55, 0.35, 0.2), _sd_disc(u, v, 0.55, 0.35, 0.2))
    return shape, 0.35 * _stripes(u, v, np.pi / 2, 0.22, ph), wheels


def _bird(u, v, ph):
    shape = _union(
        _sd_ellipse(u, v, 0, 0.05, 0.5, 0.28),
        _sd_disc(u, v, 0.5, -0.22, 0.2),
        _sd_triangle(u, v, [(-0.35, 0.05), (-0.9, -0.2), (-0.85, 0.3)]),
    )
    return shape, 0.6 * _stripes(u, v, np.pi / 4, 0.16, ph), _sd_disc(u, v, 0.55, -0.27, 0.05)


def _cat(u, v, ph):
    shape = _union(
        _sd_disc(u, v, 0, 0.1, 0.6),
        _sd_triangle(u, v, [(-0.55, -0.15), (-0.15, -0.45), (-0.5, -0.85)]),
        _sd_triangle(u, v, [(0.55, -0.15), (0.15, -0.45), (0.5, -0.85)]),
    )
    eyes = _union(_sd_ellipse(u, v, -0.22, 0, 0.1, 0.14), _sd_ellipse(u, v, 0.22, 0, 0.1, 0.14))
    return shape, 0.4 * np.cos(2 * np.pi * (np.hypot(u, v - 0.1) / 0.25 + ph)), eyes


def _deer(u, v, ph):
    parts = [_sd_ellipse(u, v, 0, 0.05, 0.6, 0.25)]
    parts += [_sd_segment(u, v, (lu, 0.1), (lu, 0.85), 0.05) for lu in (-0.45, -0.3, 0.3, 0.45)]
    parts += [_sd_segment(u, v, (0.5, -0.05), (0.65, -0.45), 0.09)]
    parts += [_sd_segment(u, v, (0.65, -0.45), (0.45 + 0.2 * k, -0.9), 0.035) for k in range(3)]
    return _union(*parts), 0.5 * _stripes(u, v, 0, 0.2, ph), None


def _dog(u, v, ph):
    shape = _union(
        _sd_ellipse(u, v, -0.1, 0.15, 0.7, 0.4),
        _sd_disc(u, v, 0.6, -0.3, 0.3),
        _sd_ellipse(u, v, 0.42, -0.2, 0.1, 0.3),
    )
    return shape, 0.7 * _dots(u, v, 0.3, ph), None


def _frog(u, v, ph):
    shape = _union(
        _sd_ellipse(u, v, 0, 0.2, 0.85, 0.45),
        _sd_disc(u, v, -0.4, -0.3, 0.2),
        _sd_disc(u, v, 0.4, -0.3, 0.2),
    )
    eyes = _union(_sd_disc(u, v, -0.4, -0.32, 0.08), _sd_disc(u, v, 0.4, -0.32, 0.08))
    return shape, 0.6 * _checker(u, v, 0.25, ph), eyes


def _horse(u, v, ph):
    parts = [
        _sd_ellipse(u, v, -0.05, 0, 0.65, 0.27),
        _sd_segment(u, v, (0.5, -0.05), (0.75, -0.6), 0.13),
        _sd_ellipse(u, v, 0.85, -0.62, 0.22, 0.1),
        _sd_segment(u, v, (-0.65, -0.05), (-0.9, 0.4), 0.05),
    ]
    parts += [_sd_segment(u, v, (lu, 0.1), (lu, 0.9), 0.07) for lu in (-0.5, -0.3, 0.3, 0.48)]
    return _union(*parts), 0.1 * _stripes(u, v, 0.3, 0.6, ph), None


def _ship(u, v, ph):
    hull = np.maximum(
        _sd_box(u, v, 0, 0.3, 0.95, 0.17),
        _sd_triangle(u, v, [(-1.4, 0.1), (1.4, 0.1), (0, 2.5)]),
    )
    shape = _union(
        hull, _sd_box(u, v, -0.1, -0.03, 0.45, 0.17), _sd_segment(u, v, (0, -0.2), (0, -0.85), 0.04)
    )
    water = 0.5 - v
    return shape, 0.3 * _stripes(u, v, np.pi / 2, 0.3, ph), water


def _truck(u, v, ph):
    shape = _union(_sd_box(u, v, -0.25, -0.05, 0.62, 0.42), _sd_box(u, v, 0.68, 0.1, 0.24, 0.27))
    wheels = _union(
        _sd_disc(u, v, -0.6, 0.42, 0.16),
        _sd_disc(u, v, -0.2, 0.42, 0.16),
        _sd_disc(u, v, 0.65, 0.42, 0.16),
    )
    return shape, 0.5 * _stripes(u, v, 0, 0.14, ph), wheels


_CLASSES: tuple[Callable, ...] = (
    _airplane,
    _automobile,
    _bird,
    _cat,
    _deer,
    _dog,
    _frog,
    _horse,
    _ship,
    _truck,
)


def _coverage(sd_px: np.ndarray) -> np.ndarray:
    """Antialiased coverage of a pixel by a shape from its signed distance in pixels."""
    return np.clip(0.5 - sd_px, 0.0, 1.0)


def _render_picture(label: int, rng: np.random.Generator) -> np.ndarray:
    """The sample's static log-intensity picture, ``_MARGIN`` larger than the sensor each side."""
    size = CIFAR10_DVS_INFO.sensor.width + 2 * _MARGIN
    yy, xx = np.mgrid[0:size, 0:size] + 0.5 - size / 2  # [H, W] pixel centres from the middle
    radius = 36.0 * rng.uniform(0.8, 1.15)
    cx, cy = rng.normal(0, 6, 2).clip(-12, 12)
    angle = rng.uniform(-0.25, 0.25)
    mirror = rng.choice([-1.0, 1.0])
    u = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / radius * mirror
    v = (-(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)) / radius

    background = rng.uniform(-1.6, -0.6)
    picture = np.full((size, size), background)
    for _ in range(4):  # clutter: soft blobs of either sign
        bx, by = rng.uniform(-size / 2, size / 2, 2)
        width = rng.uniform(8, 30)
        picture += rng.uniform(-0.5, 0.5) * np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / width**2)
    for _ in range(2):  # clutter: gratings, which make events all over the sensor as in real data
        angle, period = rng.uniform(0, np.pi), rng.uniform(8, 20)
        picture += rng.uniform(0.05, 0.2) * _stripes(xx, yy, angle, period, rng.uniform(0, 1))

    shape, texture, detail = _CLASSES[label](u, v, rng.uniform(0, 1))
    contrast = rng.uniform(0.7, 1.4) * rng.choice([-1.0, 1.0])
    inside = _coverage(shape * radius)
    picture = (1 - inside) * picture + inside * (background + contrast + texture * abs(contrast))
    if detail is not None:
        marks = _coverage(detail * radius)
        picture = (1 - marks) * picture + marks * (background - 0.6 * contrast)
    return picture.astype(np.float32)
