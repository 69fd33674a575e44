"""Facts about each supported dataset, as data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..events import DVS128, Sensor
from .aedat2 import read_aedat2
from .aedat31 import read_aedat31

__all__ = ["DatasetInfo", "CIFAR10_DVS", "DVS_GESTURE", "DATASETS"]


@dataclass(frozen=True)
class DatasetInfo:
    """One event dataset: its name, sensor, class names, raw reader and file pattern."""

    name: str
    sensor: Sensor
    classes: tuple[str, ...]
    reader: Callable[..., np.ndarray]
    file_glob: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)


CIFAR10_DVS = DatasetInfo(
    name="cifar10-dvs",
    sensor=DVS128,
    classes=(
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
    reader=read_aedat2,
    file_glob="*/cifar10_*.aedat",
)

DVS_GESTURE = DatasetInfo(
    name="dvs-gesture",
    sensor=DVS128,
    classes=(
        "hand_clapping",
        "right_hand_wave",
        "left_hand_wave",
        "right_arm_clockwise",
        "right_arm_counter_clockwise",
        "left_arm_clockwise",
        "left_arm_counter_clockwise",
        "arm_roll",
        "air_drums",
        "air_guitar",
        "other_gestures",
    ),
    reader=read_aedat31,
    file_glob="user*_*.aedat",
)

DATASETS = {info.name: info for info in (CIFAR10_DVS, DVS_GESTURE)}
