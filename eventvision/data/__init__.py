"""PyTorch data: frame caches and static images as Datasets, the paper's augmentations, loaders.

Usage (needs a cache file)::

    from eventvision.data import FrameDataset, make_loader
    loader = make_loader(FrameDataset("cache.h5", "train"), 8, train=True, workers=2, seed=0)
"""

from __future__ import annotations

from .augment import DVSAugment as DVSAugment
from .augment import DVSAugmentParams as DVSAugmentParams
from .augment import image_transform as image_transform
from .dataset import FrameDataset as FrameDataset
from .encoding import repeat_encode as repeat_encode
from .event_dataset import EventDataset as EventDataset
from .event_frames import EventsToFrames as EventsToFrames
from .event_transforms import EVENT_AUGMENTATIONS as EVENT_AUGMENTATIONS
from .event_transforms import NDA as NDA
from .event_transforms import Compose as Compose
from .event_transforms import EventDrop as EventDrop
from .event_transforms import event_mix as event_mix
from .event_transforms import make_event_augmentation as make_event_augmentation
from .interop import ToFrames as ToFrames
from .interop import TonicTransform as TonicTransform
from .loader import EpochSampler as EpochSampler
from .loader import epoch_seed as epoch_seed
from .loader import make_loader as make_loader
from .loader import set_loader_epoch as set_loader_epoch
from .static import StaticImageDataset as StaticImageDataset

__all__ = [
    "FrameDataset",
    "EpochSampler",
    "epoch_seed",
    "make_loader",
    "set_loader_epoch",
    "DVSAugment",
    "DVSAugmentParams",
    "StaticImageDataset",
    "image_transform",
    "repeat_encode",
    "ToFrames",
    "TonicTransform",
    "EventsToFrames",
    "EventDataset",
    "EVENT_AUGMENTATIONS",
    "make_event_augmentation",
    "NDA",
    "EventDrop",
    "Compose",
    "event_mix",
]
