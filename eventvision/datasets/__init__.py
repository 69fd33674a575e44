"""Dataset layouts, splits and cutting of the original releases (torch-free).

The one registry of datasets is :mod:`eventvision.datasets.registry`: ``list_sources()``
names every source, ``open_dataset(name, root, split)`` opens the raw dataset of one.
"""

from __future__ import annotations

from .atis import NMNIST as NMNIST
from .atis import NCaltech101 as NCaltech101
from .cifar10dvs import CIFAR10DVS as CIFAR10DVS
from .cifar10dvs import SPLIT_PROTOCOLS as SPLIT_PROTOCOLS
from .cifar10dvs import cifar10dvs_fix_orientation as cifar10dvs_fix_orientation
from .dvsgesture import DVSGesture as DVSGesture
from .dvsgesture import GestureSample as GestureSample
from .dvsgesture import cut_recording as cut_recording
from .orientation import ORIENTATIONS as ORIENTATIONS
from .orientation import orient_events as orient_events
from .registry import list_sources as list_sources
from .registry import open_dataset as open_dataset

__all__ = [
    "CIFAR10DVS",
    "SPLIT_PROTOCOLS",
    "cifar10dvs_fix_orientation",
    "DVSGesture",
    "GestureSample",
    "cut_recording",
    "NMNIST",
    "NCaltech101",
    "ORIENTATIONS",
    "orient_events",
    "list_sources",
    "open_dataset",
]
