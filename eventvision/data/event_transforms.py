"""Random event transforms: structured events in, structured events out, seeded per loaded item.

Every transform is called as tonic's are, ``transform(events)``, and also takes an explicit
``numpy.random.Generator`` as ``transform(events, rng)``. Without one it draws from a private
generator: inside `make_loader`, seeded from the item's ``sample_seed`` (mixed with ``seed``
when given), so a seeded loader repeats for any number of workers; outside a loader, seeded
with ``seed``, or from fresh entropy with ``seed=None``. The deterministic steps live in
`eventvision.data.event_ops`; docs/data.md ("Event transforms") lists the rules and magnitudes.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from torch.utils.data import get_worker_info

from ..errors import ConfigError
from ..events import DVS128, Sensor
from . import event_ops as ops
from .loader import mix_seeds, sample_seed

__all__ = [
    "EventTransform",
    "Compose",
    "FlipLR",
    "PolarityFlip",
    "CropZoom",
    "SpatialJitter",
    "TimeShift",
    "TimeScale",
    "TimeReverse",
    "DropByTime",
    "DropByArea",
    "DropEvents",
    "EventDrop",
    "NDA",
    "NDA_OPS",
    "MixedSample",
    "event_mix",
    "EVENT_AUGMENTATIONS",
    "make_event_augmentation",
]


SensorLike = Sensor | tuple[int, int, int]
Range = float | tuple[float, float]


# The largest time shift: t stays far inside int64 microseconds (about 285 years).
MAX_SHIFT_US = 2**53


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _ratio_range(name: str, value: Range, lo: float, hi: float) -> tuple[float, float]:
    """``value`` (a number or a (low, high) pair) checked to lie within ``[lo, hi]``."""
    if _is_number(value):
        pair: tuple = (value, value)
    elif isinstance(value, (tuple, list)):
        pair = tuple(value)
    else:
        pair = ()
    if len(pair) != 2 or not all(_is_number(v) for v in pair) or not lo <= pair[0] <= pair[1] <= hi:
        raise ConfigError(f"{name}={value!r}: expected a number or (low, high) within [{lo}, {hi}]")
    return float(pair[0]), float(pair[1])


def _whole(name: str, value: object, lo: int, hi: int) -> int:
    """``value`` checked to be a whole number within ``[lo, hi]`` (``1e5`` is accepted)."""
    whole = isinstance(value, (int, np.integer))
    ok = _is_number(value) and (whole or (math.isfinite(value) and float(value).is_integer()))
    if not ok or not lo <= value <= hi:  # type: ignore[operator]
        raise ConfigError(f"{name}={value!r}: expected a whole number within [{lo}, {hi}]")
    return int(value)  # type: ignore[call-overload]


def _sensor(sensor: object) -> Sensor:
    """``sensor`` as a Sensor of positive whole sizes that ``uint16`` coordinates can address."""
    try:
        width, height, *rest = sensor  # type: ignore[misc]
    except (TypeError, ValueError):
        raise ConfigError(f"sensor {sensor!r}: expected (width, height, polarities)") from None
    try:
        size = (_whole("width", width, 1, 65536), _whole("height", height, 1, 65536))
        polarities = _whole("polarities", rest[0], 1, 2) if rest else 2
    except ConfigError as e:
        raise ConfigError(f"sensor {sensor!r}: {e}") from None
    return Sensor(*size, polarities)


class EventTransform:
    """Base class: validates the sensor and seed, and supplies the per-worker generator."""

    def __init__(self, sensor: SensorLike = DVS128, seed: int | None = None) -> None:
        self.sensor = _sensor(sensor)
        if self.sensor.polarities != 2:
            raise ConfigError(f"sensor {tuple(self.sensor)}: event transforms need 2 polarities")
        if seed is not None:
            seed = _whole("seed", seed, 0, 2**63 - 1)
        self.seed = seed
        self._generator: np.random.Generator | None = None
        self._generator_key: tuple[int, int | None] | None = None

    def __call__(self, events: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Transform one sample; ``rng`` (optional) supplies the randomness."""
        return self.apply(events, self._rng(rng))

    def apply(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Transform one sample drawing from ``rng``; subclasses implement this."""
        raise NotImplementedError

    def _rng(self, rng: np.random.Generator | None) -> np.random.Generator:
        if rng is not None:
            return rng
        sample = sample_seed()  # inside make_loader: the item's own seed
        worker = get_worker_info() if sample is None else None
        if worker is not None:
            sample = worker.seed  # a plain DataLoader's worker: its own seed
        key = (os.getpid(), sample)
        if self._generator is None or self._generator_key != key:
            if sample is None:
                seed = self.seed
            else:
                seed = sample if self.seed is None else mix_seeds(self.seed, sample)
            self._generator = np.random.default_rng(seed)
            self._generator_key = key
        return self._generator

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_generator"] = state["_generator_key"] = None
        return state

    def __repr__(self) -> str:
        fields = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        fields["sensor"] = tuple(self.sensor)
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


class Compose(EventTransform):
    """Apply transforms in order, all drawing from one generator (``rng``, or the own one)."""

    def __init__(self, transforms: Sequence[EventTransform], seed: int | None = None) -> None:
        sensors = sorted({tuple(t.sensor) for t in transforms if isinstance(t, EventTransform)})
        if len(sensors) > 1:
            raise ConfigError(f"Compose: the transforms disagree on the sensor: {sensors}")
        super().__init__(sensors[0] if sensors else DVS128, seed)
        self.transforms = list(transforms)

    def apply(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Run each transform on the previous one's output."""
        for transform in self.transforms:
            events = transform(events, rng)
        return events


class _WithProbability(EventTransform):
    """Apply :meth:`op` with probability ``p``, else return a copy."""

    def __init__(
        self, sensor: SensorLike = DVS128, p: float = 0.5, seed: int | None = None
    ) -> None:
        super().__init__(sensor, seed)
        self.p = _ratio_range("p", p, 0.0, 1.0)[0]

    def op(self, events: np.ndarray) -> np.ndarray:
        """The deterministic step; subclasses implement this (or name an ``ops`` function)."""
        raise NotImplementedError

    def apply(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Apply the step or copy."""
        return self.op(events) if rng.random() < self.p else ops.copy_events(events)


class FlipLR(_WithProbability):
    """Mirror left to right with probability ``p`` (tonic's RandomFlipLR)."""

    def op(self, events: np.ndarray) -> np.ndarray:
        """Mirror."""
        return ops.flip_lr(events, self.sensor)


class PolarityFlip(_WithProbability):
    """Swap ON and OFF with probability ``p`` (tonic's RandomFlipPolarity)."""

    op = staticmethod(ops.flip_polarity)


class CropZoom(EventTransform):
    """Crop a random box (side ``scale`` of the sensor, same aspect) and zoom it to full size."""

    def __init__(
        self, sensor: SensorLike = DVS128, scale: Range = (0.6, 1.0), seed: int | None = None
    ) -> None:
        super().__init__(sensor, seed)
        self.scale = _ratio_range("scale", scale, 1e-3, 1.0)

    def apply(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw the box and the per-event dither, then crop and zoom."""
        s = rng.uniform(*self.scale)
        w = max(1, round(s * self.sensor.width))
        h = max(1, round(s * self.sensor.height))
        x0 = int(rng.integers(0, self.sensor.width - w + 1))
        y0 = int(rng.integers(0, self.sensor.height - h + 1))
        dither = rng.random((len(events), 2))
        return ops.crop_zoom(events, self.sensor, (x0, y0, w, h), dither)


class SpatialJitter(EventTransform):
    """Move each event by ``round(N(0, sigma))`` pixels per axis; events pushed off drop."""

    def __init__(
        self, sensor: SensorLike = DVS128, sigma: float = 1.0, seed: int | None = None
    ) -> None:
        super().__init__(sensor, seed)
        self.sigma = _ratio_range("sigma", sigma, 0.0, float(max(self.sensor[:2])))[0]

    def apply(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw the offsets and move."""
        d = np.rint(rng.normal(0.0, self.sigma, (len(events), 2))).astype(np.int64)
        x = events["x"].astype(np.int64) + d[:, 0]
        y = events["y"].astype(np.int64) + d[:, 1]
        return ops.move_events(events, self.sensor, x, y)


class TimeShift(EventTransform):
    """Add one integer offset uniform in ``[0, max_shift_us]`` to all timestamps.

    ``max_shift_us`` is a whole number within ``[0, MAX_SHIFT_US]`` (2**53 us), else ConfigError.
    """

    def __init__(
        self, sensor: SensorLike = DVS128, max_shift_us: int = 100_000, seed: int | None = None
    ) -> None:
        super().__init__(sensor, seed)
        self.max_shift_us = _whole("max_shift_us", max_shift_us, 0, MAX_SHIFT_US)

    def apply(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw the offset and shift."""
        return ops.shift_time(events, int(rng.integers(0, self.max_shift_us + 1)))


class TimeScale(EventTransform):
    """Stretch time about the first event by a factor uniform in ``factor``."""

    def __init__(
        self, sensor: SensorLike = DVS128, factor: Range = (0.8, 1.25), seed: int | None = None
    ) -> None:
        super().__init__(sensor, seed)
        self.factor = _ratio_range("factor", factor, 1e-3, 1e3)

    def apply(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw the factor and scale."""
        return ops.scale_time(events, rng.uniform(*self.factor))


class TimeReverse(_WithProbability):
    """Play the sample backwards with probability ``p``, flipping polarity (tonic's, p flipped)."""

    op = staticmethod(ops.reverse_time)


class _Drop(EventTransform):
    """Drop a share of the sample drawn uniformly from ``ratio`` (within [0, 1]; EventDrop)."""

    default_ratio: tuple[float, float] = (0.1, 0.9)

    def __init__(
        self, sensor: SensorLike = DVS128, ratio: Range | None = None, seed: int | None = None
    ) -> None:
        super().__init__(sensor, seed)
        self.ratio = _ratio_range("ratio", self.default_ratio if ratio is None else ratio, 0.0, 1.0)

    def apply(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw the share, then what to drop."""
        return self.drop(events, rng.uniform(*self.ratio), rng)

    def drop(self, events: np.ndarray, r: float, rng: np.random.Generator) -> np.ndarray:
        """Drop share ``r``, drawing the rest from ``rng``; subclasses implement this."""
        raise NotImplementedError


class DropByTime(_Drop):
    """Drop the events of a random window covering ``ratio`` (default (0.1, 0.9)) of the
    sample's span (EventDrop)."""

    def drop(self, events: np.ndarray, r: float, rng: np.random.Generator) -> np.ndarray:
        """Draw the window inside [t_first, t_last] and drop it."""
        if len(events) == 0:
            return ops.copy_events(events)
        t_first, t_last = int(events["t"][0]), int(events["t"][-1])
        length = r * (t_last - t_first)
        start = rng.uniform(t_first, t_last - length) if t_last - length > t_first else t_first
        return ops.drop_time_window(events, int(np.ceil(start)), int(np.floor(start + length)))


class DropByArea(_Drop):
    """Drop the events in a random box of sides ``ratio`` (default (0.05, 0.25)) of the
    sensor's (EventDrop)."""

    default_ratio = (0.05, 0.25)

    def drop(self, events: np.ndarray, r: float, rng: np.random.Generator) -> np.ndarray:
        """Draw the box and drop it."""
        w, h = int(self.sensor.width * r), int(self.sensor.height * r)
        x0 = int(rng.integers(0, self.sensor.width - w + 1))
        y0 = int(rng.integers(0, self.sensor.height - h + 1))
        return ops.drop_box(events, x0, y0, x0 + w, y0 + h)


class DropEvents(_Drop):
    """Drop exactly ``round(r * N)`` events chosen at random, r uniform in ``ratio`` (default
    (0.1, 0.9); tonic's DropEvent)."""

    def drop(self, events: np.ndarray, r: float, rng: np.random.Generator) -> np.ndarray:
        """Draw the dropped events."""
        n = len(events)
        keep = np.ones(n, dtype=bool)
        keep[rng.choice(n, int(r * n + 0.5), replace=False)] = False
        return ops.copy_events(events, keep)


class EventDrop(EventTransform):
    """EventDrop (Gu et al., IJCAI 2021): one of identity, by time, by area or at random.

    Magnitudes as tonic's EventDrop: time ratio in {0.1, ..., 0.9}, area ratio in
    {0.05, ..., 0.25}, random ratio in {0.1, ..., 0.9}.
    """

    def apply(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw the kind and its magnitude, then drop."""
        kind = int(rng.integers(0, 4))
        if kind == 0:
            return ops.copy_events(events)
        if kind == 1:
            step = DropByTime(self.sensor, int(rng.integers(1, 10)) / 10.0)
        elif kind == 2:
            step = DropByArea(self.sensor, int(rng.integers(1, 6)) / 20.0)
        else:
            step = DropEvents(self.sensor, int(rng.integers(1, 10)) / 10.0)
        return step.apply(events, rng)


NDA_OPS = ("flip", "roll", "rotate", "shear", "cutout")


class NDA(EventTransform):
    """Neuromorphic data augmentation (Li et al., ECCV 2022) at event level: one op per sample.

    One op drawn uniformly from ``ops``: flip left-right; roll by integers uniform in
    ``±round(roll_fraction * side)`` with wrap-around (5/48: the official code's ±5 px at 48 px,
    ±13 at 128); rotate by an angle uniform in ``±max_angle_deg`` (30); shear along x by an angle
    uniform in ``±max_shear_deg`` (30); cutout of a ``⌊side/3⌋`` square around a uniform pixel,
    clipped at the border. ``ops=("roll", "rotate", "shear")`` is the official code's
    CIFAR10-DVS set.
    """

    def __init__(
        self,
        sensor: SensorLike = DVS128,
        seed: int | None = None,
        ops: Sequence[str] = NDA_OPS,
        roll_fraction: float = 5 / 48,
        max_angle_deg: float = 30.0,
        max_shear_deg: float = 30.0,
    ) -> None:
        super().__init__(sensor, seed)
        if isinstance(ops, str) or not isinstance(ops, Sequence):
            raise ConfigError(f"NDA ops {ops!r}: expected a non-empty subset of {NDA_OPS}")
        unknown = [op for op in ops if op not in NDA_OPS]
        if unknown or not ops:
            raise ConfigError(f"NDA ops {list(ops)!r}: expected a non-empty subset of {NDA_OPS}")
        self.ops = tuple(ops)
        self.roll_fraction = _ratio_range("roll_fraction", roll_fraction, 0.0, 1.0)[0]
        self.max_angle_deg = _ratio_range("max_angle_deg", max_angle_deg, 0.0, 180.0)[0]
        self.max_shear_deg = _ratio_range("max_shear_deg", max_shear_deg, 0.0, 80.0)[0]

    def apply(self, events: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw the op and its magnitude, then apply it."""
        op = self.ops[int(rng.integers(len(self.ops)))]
        width, height = self.sensor.width, self.sensor.height
        if op == "flip":
            return ops.flip_lr(events, self.sensor)
        if op == "roll":
            bx, by = round(self.roll_fraction * width), round(self.roll_fraction * height)
            dx, dy = int(rng.integers(-bx, bx + 1)), int(rng.integers(-by, by + 1))
            return ops.roll_events(events, self.sensor, dx, dy)
        if op == "rotate":
            return ops.rotate_events(events, self.sensor, rng.uniform(-1, 1) * self.max_angle_deg)
        if op == "shear":
            return ops.shear_x_events(events, self.sensor, rng.uniform(-1, 1) * self.max_shear_deg)
        cx, cy = int(rng.integers(width)), int(rng.integers(height))
        hx, hy = (width // 3) // 2, (height // 3) // 2
        return ops.drop_box(events, max(cx - hx, 0), max(cy - hy, 0), cx + hx, cy + hy)


class MixedSample(NamedTuple):
    """EventMix's result: the mixed events and the two labels with their weights (sum 1)."""

    events: np.ndarray
    labels: tuple[int, int]
    weights: tuple[float, float]


def event_mix(
    first: tuple[np.ndarray, int],
    second: tuple[np.ndarray, int],
    rng: np.random.Generator,
    sensor: Sensor | tuple[int, int, int] = DVS128,
) -> MixedSample:
    """EventMix: paste ``second``'s events of a random space-time box into ``first``.

    The box's volume fraction ``v`` is uniform in [0, 1]; its sides are ``v**(1/3)`` of the
    width, height and time span, at a uniform position. The label weights are the shares of
    the mixed events that came from each sample; with no events at all, ``(1 - v, v)``.
    """
    sensor = Sensor(*sensor)
    (a, label_a), (b, label_b) = first, second
    v = rng.uniform()
    side = v ** (1 / 3)
    w, h = round(side * sensor.width), round(side * sensor.height)
    x0 = int(rng.integers(0, sensor.width - w + 1))
    y0 = int(rng.integers(0, sensor.height - h + 1))
    f0 = rng.uniform(0.0, 1.0 - side)
    mixed, n_a, n_b = ops.mix_events(a, b, (x0, y0, x0 + w, y0 + h), (f0, f0 + side))
    total = n_a + n_b
    weights = (n_a / total, n_b / total) if total else (1.0 - v, v)
    return MixedSample(mixed, (int(label_a), int(label_b)), weights)


EVENT_AUGMENTATIONS: dict[str, Callable[..., EventTransform]] = {
    "nda": NDA,
    "eventdrop": EventDrop,
    "flip": FlipLR,
    "polarity-flip": PolarityFlip,
    "crop-zoom": CropZoom,
    "spatial-jitter": SpatialJitter,
    "time-shift": TimeShift,
    "time-scale": TimeScale,
    "time-reverse": TimeReverse,
    "drop-time": DropByTime,
    "drop-area": DropByArea,
    "drop-events": DropEvents,
}


def make_event_augmentation(
    name: str, sensor: Sensor | tuple[int, int, int] = DVS128, seed: int | None = None
) -> EventTransform:
    """The per-sample event augmentation called ``name`` with its documented magnitudes.

    Several names joined by ``+`` (e.g. ``"flip+eventdrop"``) compose in that order. An unknown
    name raises ConfigError suggesting close matches.

    Example:
        >>> from eventvision.events import make_events
        >>> make_event_augmentation("flip", seed=0)(make_events([0], [1], [2], [1])).shape
        (1,)
    """
    steps = []
    for part in name.split("+"):
        if part not in EVENT_AUGMENTATIONS:
            known = sorted(EVENT_AUGMENTATIONS)
            close = difflib.get_close_matches(part, known)
            hint = f"did you mean {close}? " if close else ""
            raise ConfigError(f"unknown event augmentation {part!r}; {hint}known: {known}")
        steps.append(EVENT_AUGMENTATIONS[part](sensor, seed=seed))
    return steps[0] if len(steps) == 1 else Compose(steps, seed=seed)
