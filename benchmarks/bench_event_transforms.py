"""Event augmentation + binning per sample: eventvision against tonic, on the same events.

Run: .venv/bin/python benchmarks/bench_event_transforms.py [--samples 4] [--repeats 5]

Per CIFAR10-DVS-size sample (synthetic CIFAR10-DVS recordings, ~170k-250k events), one item
of a training loader's work, single process:
- eventvision: `NDA` (one of flip, roll, rotate, shear, cutout at event level) then
  `EventsToFrames(16, 64)` (numba binning by number, antialiased resize, OFF+ON channel),
  float32 `[16, 3, 64, 64]`; also `EventDrop` then the same binning, and the binning alone.
- tonic: its nearest per-sample pipeline, `RandomFlipLR(p=0.5)`, `DropEventByArea(0.3)`,
  `Downsample(spatial_factor=0.5)` to 64 px, `ToFrame((64, 64, 2), n_time_bins=16)`; also its
  `EventDrop` with the same downsampling and `ToFrame`, and `Downsample` + `ToFrame` alone.
  tonic has no roll, rotation or shear; its frames are int counts at 64 px from halved event
  coordinates (not an antialiased resize) and lack the third channel, so it does less work.
The contenders take turns within every repeat (`benchmarks/common.py`), median ms per sample.
"""

from __future__ import annotations

import argparse

import numpy as np
import tonic
from common import interleaved_medians, print_table

from eventvision.data import NDA, EventDrop, EventsToFrames
from eventvision.events import DVS128
from eventvision.synth.cifar10dvs import make_cifar10dvs_sample


def _samples(n: int) -> list[np.ndarray]:
    return [make_cifar10dvs_sample(label=i % 10, index=i, seed=0) for i in range(n)]


def _per_sample(fn, samples: list[np.ndarray]):
    def run() -> None:
        for events in samples:
            fn(events)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    samples = _samples(args.samples)
    sizes = [len(s) for s in samples]
    to_frames = EventsToFrames(16, 64)
    nda, drop = NDA(DVS128, seed=0), EventDrop(DVS128, seed=0)
    T = tonic.transforms
    down = T.Downsample(spatial_factor=0.5)
    tonic_frame = T.ToFrame(sensor_size=(64, 64, 2), n_time_bins=16)
    tonic_flip = T.Compose(
        [T.RandomFlipLR((128, 128, 2), p=0.5), T.DropEventByArea((128, 128, 2), 0.3), down]
    )
    tonic_drop = T.Compose([T.EventDrop((128, 128, 2)), down])
    # tonic's transforms write into their input: give them copies, and time the copy too.
    fns = {
        "eventvision NDA + EventsToFrames": _per_sample(lambda e: to_frames(nda(e)), samples),
        "tonic flip+area drop + ToFrame": _per_sample(
            lambda e: tonic_frame(tonic_flip(e.copy())), samples
        ),
        "eventvision EventDrop + EventsToFrames": _per_sample(
            lambda e: to_frames(drop(e)), samples
        ),
        "tonic EventDrop + ToFrame": _per_sample(
            lambda e: tonic_frame(tonic_drop(e.copy())), samples
        ),
        "eventvision EventsToFrames": _per_sample(to_frames, samples),
        "tonic Downsample + ToFrame": _per_sample(lambda e: tonic_frame(down(e.copy())), samples),
    }
    medians = interleaved_medians(fns, repeats=args.repeats)
    ms = {name: 1000 * s / len(samples) for name, s in medians.items()}
    names = list(fns)
    rows = []
    for i in range(0, len(names), 2):
        ours, theirs = names[i], names[i + 1]
        rows.append(
            [ours, f"{ms[ours]:.2f}", theirs, f"{ms[theirs]:.2f}", f"{ms[theirs] / ms[ours]:.1f}x"]
        )
    print(f"{len(samples)} samples, {min(sizes)}-{max(sizes)} events, median of {args.repeats}")
    print_table(["eventvision", "ms/sample", "tonic", "ms/sample", "speed-up"], rows)


if __name__ == "__main__":
    main()
