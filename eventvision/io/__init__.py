"""Raw event-camera file formats (torch-free)."""

from __future__ import annotations

from .aedat2 import read_aedat2 as read_aedat2
from .aedat2 import write_aedat2 as write_aedat2
from .aedat4 import iter_aedat4 as iter_aedat4
from .aedat4 import read_aedat4 as read_aedat4
from .aedat4 import read_aedat4_info as read_aedat4_info
from .aedat4 import write_aedat4 as write_aedat4
from .aedat31 import encode_packet as encode_packet
from .aedat31 import iter_aedat31 as iter_aedat31
from .aedat31 import read_aedat31 as read_aedat31
from .aedat31 import write_aedat31 as write_aedat31
from .arrays import read_h5_events as read_h5_events
from .arrays import read_npy_events as read_npy_events
from .arrays import read_npz_events as read_npz_events
from .atis import read_atis_bin as read_atis_bin
from .atis import write_atis_bin as write_atis_bin
from .datasets import CIFAR10_DVS_INFO as CIFAR10_DVS_INFO
from .datasets import DVS_GESTURE_INFO as DVS_GESTURE_INFO
from .datasets import NCALTECH101_INFO as NCALTECH101_INFO
from .datasets import NMNIST_INFO as NMNIST_INFO
from .datasets import DatasetInfo as DatasetInfo
from .labels import read_labels_csv as read_labels_csv
from .labels import read_trials as read_trials
from .labels import write_labels_csv as write_labels_csv
from .labels import write_trials as write_trials
from .recording import FORMATS as FORMATS
from .recording import EventStream as EventStream
from .recording import detect_format as detect_format
from .recording import iter_events as iter_events
from .recording import read_events as read_events

__all__ = [
    "read_events",
    "iter_events",
    "detect_format",
    "EventStream",
    "FORMATS",
    "read_npy_events",
    "read_npz_events",
    "read_h5_events",
    "read_aedat2",
    "write_aedat2",
    "read_aedat31",
    "iter_aedat31",
    "write_aedat31",
    "encode_packet",
    "read_aedat4",
    "iter_aedat4",
    "read_aedat4_info",
    "write_aedat4",
    "read_atis_bin",
    "write_atis_bin",
    "read_labels_csv",
    "write_labels_csv",
    "read_trials",
    "write_trials",
    "DatasetInfo",
    "CIFAR10_DVS_INFO",
    "DVS_GESTURE_INFO",
    "NMNIST_INFO",
    "NCALTECH101_INFO",
]
