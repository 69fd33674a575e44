"""Dataset layouts, splits and cutting of the original releases (torch-free)."""

from __future__ import annotations

from ..errors import DatasetError
from .atis import NMNIST as NMNIST
from .atis import NCaltech101 as NCaltech101
from .cifar10dvs import CIFAR10DVS as CIFAR10DVS
from .cifar10dvs import SPLIT_PROTOCOLS as SPLIT_PROTOCOLS
from .cifar10dvs import cifar10dvs_fix_orientation as cifar10dvs_fix_orientation
from .dvsgesture import DVSGesture as DVSGesture
from .dvsgesture import GestureSample as GestureSample
from .dvsgesture import cut_recording as cut_recording

__all__ = [
    "CIFAR10DVS",
    "SPLIT_PROTOCOLS",
    "cifar10dvs_fix_orientation",
    "DVSGesture",
    "GestureSample",
    "cut_recording",
    "NMNIST",
    "NCaltech101",
    "open_dataset",
]

_DATASET_CLASSES = {
    "cifar10-dvs": CIFAR10DVS,
    "dvs-gesture": DVSGesture,
    "nmnist": NMNIST,
    "ncaltech101": NCaltech101,
}


def open_dataset(name: str, root, split: str = "train", **kwargs):
    """Open a raw dataset by its name (``cifar10-dvs`` or ``dvs-gesture``)."""
    if name not in _DATASET_CLASSES:
        raise DatasetError(f"unknown dataset {name!r}; known: {sorted(_DATASET_CLASSES)}")
    return _DATASET_CLASSES[name](root, split, **kwargs)
