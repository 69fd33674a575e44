"""eventvision: raw event-camera recordings to training-ready frames, and SpikingResformer.

The top level exports the torch-free core only; torch code lives in ``eventvision.data``,
``eventvision.models`` and ``eventvision.train``. The readers and frame functions are imported
on first use (PEP 562), so ``import eventvision`` (and ``eventvision --version``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .events import EVENT_DTYPE as EVENT_DTYPE
from .events import Sensor as Sensor
from .events import make_events as make_events

if TYPE_CHECKING:
    from .frames import bin_events as bin_events
    from .frames import resize_frames as resize_frames
    from .io import read_aedat2 as read_aedat2
    from .io import read_aedat4 as read_aedat4
    from .io import read_aedat31 as read_aedat31
    from .io import read_atis_bin as read_atis_bin

# The one place the version is written: pyproject.toml reads it (dynamic version).
__version__ = "0.1.0"

_LAZY = {
    "read_aedat2": ".io",
    "read_aedat31": ".io",
    "read_aedat4": ".io",
    "read_atis_bin": ".io",
    "bin_events": ".frames",
    "resize_frames": ".frames",
}

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


def __getattr__(name: str) -> Any:
    """The readers and frame functions, imported when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module 'eventvision' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
