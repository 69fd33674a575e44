"""tonic interop: eventvision's frame conversion as a tonic transform.

tonic events are structured numpy arrays with the fields t, x, y, p, as eventvision's are, so a
tonic dataset's events go through `eventvision.frames.bin_events` as they are. `ToFrames` wraps
that binning (and the paper's resize) for `tonic.transforms.Compose`. Where tonic's own
`ToFrame` differs: by number it drops the `N mod T` remainder, by time it drops the events at
or after `t_0 + T*dt` (always the last one); eventvision puts both in the last frame, as
spikingjelly does (see docs/data.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import ConfigError
from ..events import DVS128, Sensor
from ..frames import bin_events, resize_frames

__all__ = ["ToFrames"]


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
        if self.split_by not in ("number", "time"):
            raise ConfigError(f"split_by={self.split_by!r}: expected 'number' or 'time'")

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Bin (and resize) one sample's events; the input array is not modified."""
        counts = bin_events(events, self.time_steps, self.split_by, sensor=self.sensor)
        if self.size is None:
            return counts.astype(np.float32)  # [T, 2, H, W]
        return resize_frames(counts, self.size)  # [T, 2, h, w]
