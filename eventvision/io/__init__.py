"""Raw event-camera file formats (torch-free)."""

from __future__ import annotations

from .aedat2 import read_aedat2 as read_aedat2
from .aedat2 import write_aedat2 as write_aedat2
from .aedat31 import encode_packet as encode_packet
from .aedat31 import iter_aedat31 as iter_aedat31
from .aedat31 import read_aedat31 as read_aedat31
from .aedat31 import write_aedat31 as write_aedat31
from .datasets import CIFAR10_DVS as CIFAR10_DVS
from .datasets import DATASETS as DATASETS
from .datasets import DVS_GESTURE as DVS_GESTURE
from .datasets import DatasetInfo as DatasetInfo
from .labels import read_labels_csv as read_labels_csv
from .labels import read_trials as read_trials
from .labels import write_labels_csv as write_labels_csv
from .labels import write_trials as write_trials

__all__ = [
    "read_aedat2",
    "write_aedat2",
    "read_aedat31",
    "iter_aedat31",
    "write_aedat31",
    "encode_packet",
    "read_labels_csv",
    "write_labels_csv",
    "read_trials",
    "write_trials",
    "DatasetInfo",
    "CIFAR10_DVS",
    "DVS_GESTURE",
    "DATASETS",
]
