"""tonic interop: eventvision's frame conversion as a tonic transform, tonic's on our events.

tonic is an optional extra (``pip install 'eventvision[tonic]'``): nothing here imports it
until a tonic transform is asked for by name (:func:`import_tonic` says which extra to install).

tonic events are structured numpy arrays with the fields t, x, y, p, as eventvision's are, so a
tonic dataset's events go through `eventvision.frames.bin_events` as they are. `ToFrames` wraps
that binning (and the paper's resize) for `tonic.transforms.Compose`. Where tonic's own
`ToFrame` differs: by number it drops the `N mod T` remainder, by time it drops the events at
or after `t_0 + T*dt` (always the last one); eventvision puts both in the last frame, as
spikingjelly does (see docs/data.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np

from ..errors import ConfigError, check_choice
from ..events import DVS128, Sensor, make_events
from ..frames import bin_events, resize_frames

__all__ = ["ToFrames", "TonicTransform", "import_tonic"]

TONIC_EXTRA = "pip install 'eventvision[tonic]'"


def import_tonic() -> ModuleType:
    """The ``tonic`` module; ConfigError naming the extra to install when it is absent."""
    try:
        return importlib.import_module("tonic")
    except ImportError:
        raise ConfigError(
            f"tonic is not installed; it is an optional extra (GPL-3.0): {TONIC_EXTRA}"
        ) from None


class TonicTransform:
    """A tonic event transform on eventvision events: a copy goes in, ``EVENT_DTYPE`` comes out.

    ``transform`` is a tonic transform object, or the name of one in ``tonic.transforms``
    built with ``kwargs`` (tonic is then imported). tonic's transforms may write into their
    input (``events["p"] = ...``), so they get a copy; their output is sorted by time and
    converted back to ``EVENT_DTYPE``, so it goes on into `EventsToFrames` or `ToFrames`.

    Example:
        >>> denoise = TonicTransform("Denoise", filter_time=10_000)  # doctest: +SKIP
    """

    def __init__(self, transform: Any, **kwargs: Any) -> None:
        if isinstance(transform, str):
            tonic = import_tonic()
            if not hasattr(tonic.transforms, transform):
                raise ConfigError(f"tonic.transforms has no {transform!r}")
            transform = getattr(tonic.transforms, transform)(**kwargs)
        elif kwargs:
            raise ConfigError("keyword arguments go with a transform name, not an object")
        self.transform = transform

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """The transformed events, sorted by time; ``events`` is not modified."""
        out = self.transform(events.copy())
        names = getattr(getattr(out, "dtype", None), "names", None) or ()
        if not isinstance(out, np.ndarray) or not {"t", "x", "y", "p"} <= set(names):
            raise ConfigError(
                f"{self.transform!r} gave {type(out).__name__}, not events with fields "
                "t, x, y, p; put frame transforms after the event ones"
            )
        order = np.argsort(out["t"], kind="stable")
        return make_events(out["t"][order], out["x"][order], out["y"][order], out["p"][order])

    def __repr__(self) -> str:
        return f"TonicTransform({self.transform!r})"


@dataclass(frozen=True)
class ToFrames:
    """A tonic-compatible transform: events to float32 frames `[time_steps, 2, H, W]` (or `h, w`).

    Args:
        time_steps: number of frames T.
        split_by: "number" (the paper's) or "time"; see `eventvision.frames.bin_bounds`.
        sensor: an `eventvision.Sensor` or tonic's `sensor_size` tuple (width, height, polarities).
        size: None keeps the sensor size; ``N`` (a square ``N x N``, as everywhere in
            eventvision) or ``(h, w)`` resizes with the paper's antialiased bilinear filter
            (torchvision ``Resize((h, w), antialias=True)``), as `EventsToFrames` does.

    Example:
        >>> import tonic
        >>> t = tonic.transforms.Compose([ToFrames(16, "number", (128, 128, 2), size=64)])
    """

    time_steps: int
    split_by: Literal["number", "time"] = "number"
    sensor: Sensor | tuple[int, int, int] = DVS128
    size: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        sensor = Sensor(*self.sensor)
        if sensor.polarities != 2:
            raise ConfigError(f"sensor {tuple(sensor)}: ToFrames needs 2 polarities (OFF, ON)")
        object.__setattr__(self, "sensor", sensor)
        if self.time_steps < 1:
            raise ConfigError(f"time_steps={self.time_steps}: expected at least 1")
        check_choice("split_by", self.split_by, ("number", "time"))

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Bin (and resize) one sample's events; the input array is not modified."""
        counts = bin_events(events, self.time_steps, self.split_by, sensor=self.sensor)
        if self.size is None:
            return counts.astype(np.float32)  # [T, 2, H, W]
        return resize_frames(counts, self.size)  # [T, 2, h, w]
