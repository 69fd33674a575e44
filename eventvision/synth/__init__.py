"""Synthetic event data in the original raw layouts (torch-free), deterministic from a seed.

A simple DVS pixel model (``simulate_dvs``) turns rendered log-intensity frames into events;
``make_cifar10dvs`` and ``make_dvs_gesture`` write CIFAR10-DVS-like and DVS128-Gesture-like
datasets that the readers and dataset classes load like the originals.
"""

from __future__ import annotations

from .atis import make_ncaltech101 as make_ncaltech101
from .atis import make_nmnist as make_nmnist
from .cifar10dvs import make_cifar10dvs as make_cifar10dvs
from .cifar10dvs import make_cifar10dvs_sample as make_cifar10dvs_sample
from .dvsgesture import LIGHTINGS as LIGHTINGS
from .dvsgesture import make_dvs_gesture as make_dvs_gesture
from .dvsgesture import make_gesture_recording as make_gesture_recording
from .pixel import simulate_dvs as simulate_dvs

__all__ = [
    "simulate_dvs",
    "make_cifar10dvs",
    "make_cifar10dvs_sample",
    "make_dvs_gesture",
    "make_gesture_recording",
    "LIGHTINGS",
    "make_nmnist",
    "make_ncaltech101",
]
