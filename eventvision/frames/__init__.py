"""Event streams to frames: time binning and antialiased resize (torch-free)."""

from __future__ import annotations

from .binning import COUNT_DTYPE as COUNT_DTYPE
from .binning import bin_bounds as bin_bounds
from .binning import bin_events as bin_events
from .resize import bin_and_resize as bin_and_resize
from .resize import output_size as output_size
from .resize import resize_frames as resize_frames
from .resize import resize_weights as resize_weights

__all__ = [
    "bin_events",
    "bin_bounds",
    "COUNT_DTYPE",
    "resize_frames",
    "bin_and_resize",
    "resize_weights",
    "output_size",
]
