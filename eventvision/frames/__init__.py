"""Event streams to frames: time binning and antialiased resize (torch-free)."""

from __future__ import annotations

from .binning import COUNT_DTYPE as COUNT_DTYPE
from .binning import bin_bounds as bin_bounds
from .binning import bin_events as bin_events
from .resize import bin_and_resize as bin_and_resize
from .resize import parse_size as parse_size
from .resize import resize_frames as resize_frames
from .resize import resize_weights as resize_weights
from .resize import size_hw as size_hw

__all__ = [
    "bin_events",
    "bin_bounds",
    "COUNT_DTYPE",
    "resize_frames",
    "bin_and_resize",
    "resize_weights",
    "parse_size",
    "size_hw",
]
