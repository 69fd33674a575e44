"""eventvision: raw event-camera recordings to training-ready frames, and SpikingResformer.

The top level exports the torch-free core only; torch code lives in ``eventvision.data``,
``eventvision.models`` and ``eventvision.train``.
"""

from __future__ import annotations

from .events import EVENT_DTYPE as EVENT_DTYPE
from .events import Sensor as Sensor
from .events import make_events as make_events
from .frames import bin_events as bin_events
from .frames import resize_frames as resize_frames
from .io import read_aedat2 as read_aedat2
from .io import read_aedat4 as read_aedat4
from .io import read_aedat31 as read_aedat31
from .io import read_atis_bin as read_atis_bin

__version__ = "0.1.0"

__all__ = [
    "EVENT_DTYPE",
    "Sensor",
    "make_events",
    "read_aedat2",
    "read_aedat31",
    "read_aedat4",
    "read_atis_bin",
    "bin_events",
    "resize_frames",
    "__version__",
]
