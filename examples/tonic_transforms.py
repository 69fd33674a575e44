"""tonic's transforms on eventvision's events, then eventvision's frames.

    pip install 'eventvision[tonic]'
    python examples/tonic_transforms.py [EVENT_FILE]

Without EVENT_FILE it writes one synthetic CIFAR10-DVS recording to ./example-data first.
"""

from __future__ import annotations

import argparse

import numpy as np
from _data import tiny_cache

from eventvision.data import EventsToFrames, ToFrames, TonicTransform
from eventvision.data.interop import import_tonic
from eventvision.datasets import CIFAR10DVS
from eventvision.events import DVS128


def main(argv: list[str] | None = None) -> tuple[int, int]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", nargs="?", help="a CIFAR10-DVS folder (any layout)")
    args = parser.parse_args(argv)
    if args.raw is None:
        tiny_cache("example-data")
    events, label = CIFAR10DVS(args.raw or "example-data/raw", "train")[0]  # EVENT_DTYPE

    tonic = import_tonic()  # says which extra to install when tonic is missing
    sensor_size = (DVS128.width, DVS128.height, 2)  # tonic's order: width, height, polarities
    # tonic's event transforms take our structured array as it is (fields t, x, y, p);
    # TonicTransform hands them a copy and gives EVENT_DTYPE events back.
    denoise = TonicTransform("Denoise", filter_time=10_000)
    flip = TonicTransform(tonic.transforms.RandomFlipLR(sensor_size=sensor_size, p=1.0))
    kept = flip(denoise(events))
    print(f"label {label}: {len(events)} events, {len(kept)} after Denoise + RandomFlipLR")

    # eventvision's binning inside tonic's Compose, or the cache's frames (OFF, ON, OFF+ON)
    pipeline = tonic.transforms.Compose([tonic.transforms.Denoise(filter_time=10_000),
                                         ToFrames(8, "number", sensor_size, size=32)])  # fmt: skip
    frames = pipeline(events.copy())  # [8, 2, 32, 32]
    same = EventsToFrames(8, 32, channels=2)(denoise(events))
    print(f"frames {frames.shape}, equal to EventsToFrames: {np.array_equal(frames, same)}")
    return len(events), len(kept)


if __name__ == "__main__":
    main()
