"""Facts about each supported dataset, as data (``*_INFO``).

These are facts, not a registry: the one registry of datasets is
:mod:`eventvision.datasets.registry` (``list_sources``, ``get_source``, ``open_dataset``),
whose sources hold these facts; the dataset classes (``eventvision.datasets.NMNIST``, ...)
hold them as ``info``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..events import DVS128, Sensor
from .aedat2 import read_aedat2
from .aedat31 import read_aedat31
from .atis import read_atis_bin

__all__ = [
    "DatasetInfo",
    "CIFAR10_DVS_INFO",
    "DVS_GESTURE_INFO",
    "NMNIST_INFO",
    "NCALTECH101_INFO",
]


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


CIFAR10_DVS_INFO = DatasetInfo(
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

DVS_GESTURE_INFO = DatasetInfo(
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

NMNIST_INFO = DatasetInfo(
    name="nmnist",
    sensor=Sensor(34, 34),
    classes=tuple(str(digit) for digit in range(10)),
    reader=read_atis_bin,
    file_glob="*/*.bin",
)

# The N-Caltech101 release: 100 Caltech101 object classes (no "Faces", a duplicate of
# "Faces_easy") plus the background class, in the string order of the folder names.
_CALTECH_OBJECTS = (
    "accordion airplanes anchor ant barrel bass beaver binocular bonsai brain brontosaurus "
    "buddha butterfly camera cannon car_side ceiling_fan cellphone chair chandelier cougar_body "
    "cougar_face crab crayfish crocodile crocodile_head cup dalmatian dollar_bill dolphin "
    "dragonfly electric_guitar elephant emu euphonium ewer ferry flamingo flamingo_head garfield "
    "gerenuk gramophone grand_piano hawksbill headphone hedgehog helicopter ibis inline_skate "
    "joshua_tree kangaroo ketch lamp laptop llama lobster lotus mandolin mayfly menorah metronome "
    "minaret nautilus octopus okapi pagoda panda pigeon pizza platypus pyramid revolver rhino "
    "rooster saxophone schooner scissors scorpion sea_horse snoopy soccer_ball stapler starfish "
    "stegosaurus stop_sign strawberry sunflower tick trilobite umbrella watch water_lilly "
    "wheelchair wild_cat windsor_chair wrench yin_yang"
).split()

NCALTECH101_INFO = DatasetInfo(
    name="ncaltech101",
    sensor=Sensor(240, 180),  # the largest recording; each sample is its image's size
    classes=tuple(
        sorted(("BACKGROUND_Google", "Faces_easy", "Leopards", "Motorbikes", *_CALTECH_OBJECTS))
    ),
    reader=read_atis_bin,
    file_glob="*/image_*.bin",
)
