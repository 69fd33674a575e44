"""Cutting a time-ordered event stream into windows, in bounded memory (torch-free)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError
from ..events import EVENT_DTYPE

__all__ = ["Windowing", "Window", "iter_windows"]


@dataclass(frozen=True)
class Windowing:
    """How a recording is cut: ``window_us`` of time or ``window_events`` events per window.

    Args:
        window_us: window length in microseconds; windows start at the first event's time and
            every ``stride_us`` after it (default: ``window_us``, back to back).
        window_events: events per window; without ``stride_us`` the windows are consecutive
            blocks (the last may hold fewer), with it each window holds the first
            ``window_events`` events from its start time on.
        stride_us: microseconds between window starts.
    """

    window_us: int | None = None
    window_events: int | None = None
    stride_us: int | None = None

    def __post_init__(self) -> None:
        if (self.window_us is None) == (self.window_events is None):
            raise ConfigError("give one of window_ms (a duration) or window_events (a count)")
        for name in ("window_us", "window_events", "stride_us"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) < 1):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
            if value is not None:
                object.__setattr__(self, name, int(value))

    @property
    def stride(self) -> int | None:
        """Microseconds between window starts (None: consecutive blocks of events)."""
        return self.stride_us if self.stride_us is not None else self.window_us

    def describe(self) -> str:
        """``"500 ms windows every 250 ms"`` or ``"windows of 20000 events"``."""
        if self.window_us is not None:
            text = f"{self.window_us / 1000:g} ms windows"
        else:
            text = f"windows of {self.window_events} events"
        return text + (f" every {self.stride / 1000:g} ms" if self.stride_us is not None else "")


class Window(NamedTuple):
    """One window: its index, ``[t_start_us, t_end_us)`` and its events (maybe none)."""

    index: int
    t_start_us: int
    t_end_us: int
    events: np.ndarray


def iter_windows(chunks: Iterable[np.ndarray], windowing: Windowing) -> Iterator[Window]:
    """The windows of a stream of time-ordered event chunks, each as soon as it is complete.

    Only the events of the windows not yet complete are held, so memory does not grow with
    the stream. Time windows run from the first event's time to the last event's, and a
    window without events is yielded too (with an empty array). An error raised by ``chunks``
    (a truncated file) comes after every window completed before it.
    """
    if windowing.window_us is None and windowing.stride_us is None:
        yield from _event_blocks(chunks, int(windowing.window_events))  # type: ignore[arg-type]
        return
    stride = int(windowing.stride)  # type: ignore[arg-type]
    held = np.empty(0, EVENT_DTYPE)
    start: int | None = None
    index = 0
    for chunk in chunks:
        if not len(chunk):
            continue
        if start is None:
            start = int(chunk["t"][0])
        held = np.concatenate([held, chunk]) if len(held) else chunk
        while True:
            window = _window_at(held, start, windowing, final=False)
            if window is None:
                break
            yield Window(index, *window)
            index, start = index + 1, start + stride
            held = held[np.searchsorted(held["t"], start, side="left") :]
    if start is None:
        return
    t_last = int(held["t"][-1]) if len(held) else start - 1
    while start <= t_last:
        yield Window(index, *_window_at(held, start, windowing, final=True))  # type: ignore[misc]
        index, start = index + 1, start + stride
        held = held[np.searchsorted(held["t"], start, side="left") :]


def _window_at(
    held: np.ndarray, start: int, windowing: Windowing, final: bool
) -> tuple[int, int, np.ndarray] | None:
    """The window starting at ``start`` if the held events complete it (or ``final``)."""
    t = held["t"]
    lo = int(np.searchsorted(t, start, side="left"))
    if windowing.window_us is not None:
        end = start + windowing.window_us
        if not final and (not len(t) or t[-1] < end):
            return None  # a later event may still fall inside
        hi = int(np.searchsorted(t, end, side="left"))
        return start, end, held[lo:hi]
    n = int(windowing.window_events)  # type: ignore[arg-type]
    if not final and len(t) - lo < n:
        return None
    events = held[lo : lo + n]
    end = int(events["t"][-1]) + 1 if len(events) else start + int(windowing.stride)  # type: ignore[arg-type]
    return start, end, events


def _event_blocks(chunks: Iterable[np.ndarray], n: int) -> Iterator[Window]:
    """Consecutive blocks of ``n`` events; ``[t_start, t_end)`` spans each block's events."""
    held = np.empty(0, EVENT_DTYPE)
    index = 0
    for chunk in chunks:
        held = np.concatenate([held, chunk]) if len(held) else chunk
        while len(held) >= n:
            block, held = held[:n], held[n:]
            yield Window(index, int(block["t"][0]), int(block["t"][-1]) + 1, block)
            index += 1
    if len(held):
        yield Window(index, int(held["t"][0]), int(held["t"][-1]) + 1, held)
