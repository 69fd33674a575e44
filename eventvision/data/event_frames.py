"""EventsToFrames: one sample's events to the frames a frame cache gives for the same options."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import ConfigError, check_choice
from ..events import DVS128, Sensor
from ..frames import bin_and_resize, parse_size, size_hw

__all__ = ["EventsToFrames"]


class EventsToFrames:
    """Bin, resize and add OFF+ON: float32 ``[time_steps, channels, h, w]``, as `FrameDataset`.

    The steps are the frame cache's (`eventvision.frames.bin_events` then `resize_frames`) and
    the third channel is `FrameDataset`'s (the float32 sum OFF + ON), so for the same options
    the frames equal a cache's bit for bit. Events are taken as the datasets yield them (the
    CIFAR10-DVS orientation fixed, Gesture samples cut). An empty sample gives zero frames of
    the same shape. See docs/data.md ("Event transforms").

    Example:
        >>> from eventvision.events import make_events
        >>> EventsToFrames(4, 64)(make_events([0, 1], [3, 4], [5, 6], [0, 1])).shape
        (4, 3, 64, 64)
    """

    def __init__(
        self,
        time_steps: int,
        size: int | tuple[int, int],
        split_by: Literal["number", "time"] = "number",
        channels: Literal[2, 3] = 3,
        sensor: Sensor | tuple[int, int, int] = DVS128,
    ) -> None:
        if int(time_steps) < 1:
            raise ConfigError(f"time_steps={time_steps}: expected at least 1")
        check_choice("split_by", split_by, ("number", "time"))
        if channels not in (2, 3):
            raise ConfigError(f"channels={channels!r}: expected 2 (OFF, ON) or 3 (OFF, ON, OFF+ON)")
        self.sensor = Sensor(*sensor)
        if self.sensor.polarities != 2:
            raise ConfigError(f"sensor {tuple(self.sensor)}: EventsToFrames needs 2 polarities")
        self.time_steps = int(time_steps)
        self.size = parse_size(size)  # an int is a square, as everywhere
        self.split_by = split_by
        self.channels = int(channels)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Frames of one sample; the events are not modified."""
        pair = bin_and_resize(
            events, self.time_steps, size_hw(self.size), self.split_by, sensor=self.sensor
        )  # [T, 2, h, w], bit for bit resize_frames(bin_events(...)), as the frame cache
        if self.channels == 2:
            return pair
        out = np.empty((pair.shape[0], 3, *pair.shape[2:]), dtype=np.float32)  # [T, 3, h, w]
        out[:, :2] = pair
        np.add(pair[:, 0], pair[:, 1], out=out[:, 2])
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(time_steps={self.time_steps}, size={self.size!r}, "
            f"split_by={self.split_by!r}, channels={self.channels}, sensor={tuple(self.sensor)})"
        )
