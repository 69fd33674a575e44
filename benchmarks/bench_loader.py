"""Loader throughput: FrameDataset over the HDF5 cache against spikingjelly's per-sample .npz.

Run: .venv/bin/python benchmarks/bench_loader.py [--samples 32] [--epochs 3]

Both sides deliver the same samples as the paper's training input, `[B, T=16, 3, 64, 64]`
float32 batches of 8, through a plain DataLoader with 0 and 2 workers:
- spikingjelly: the frames it stores at conversion (`np.savez_compressed` of its float64
  `integrate_events_by_fixed_frames_number` output, 128x128), read per item with its
  `load_npz_frames`, then the paper's DVStransform: `[T*2, H, W]`, torchvision
  `Resize(64, antialias=True)`, back to `[T, 2, h, w]`, third channel OFF+ON appended.
- eventvision: `FrameDataset(channels=3)` over one HDF5 cache of the already resized frames
  (float32, one sample per chunk; bitshuffle-lz4 as eventvision.cache writes by default,
  lzf (the previous default) and "none" too), built by `eventvision.cache.write_cache` from
  the windows written as a CIFAR10-DVS release; both sides take its train split's samples.
The events are 150k-event windows of the real DVS128 recordings in ../shared/data/real (they
stand in for CIFAR10-DVS samples, ~100k to 400k events each). The script checks that both
sides give the same tensors before timing. Samples/s is the median over `--repeats` runs of
`--epochs` epochs, after one warm-up epoch (worker start-up excluded); ms/sample is the
mean time of `dataset[i]` over all samples (median over repeats). The contenders take turns
in every repeat, so a change in machine load hits all of them.

With `--events`: the windows are written as a CIFAR10-DVS release and built into a frame
cache (T=16, 64 px) and an event cache; three loaders with 2 workers each deliver the same
`[8, 16, 3, 64, 64]` batches: FrameDataset, EventDataset with the NDA policy (binning in the
workers), and tonic's DiskCachedDataset of the same events with its RandomFlipLR and
DropEventByArea, ToFrame(n_event_bins=16), then the paper's resize and OFF+ON channel.

With `--stages`: the same event cache, one process, the time of each stage of an
`EventDataset` item (read, each NDA op, binning, resize, third channel), and beside the read
the first event-cache layout's (one table of 13-byte records, same compression and samples).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from common import print_table
from spikingjelly.datasets.utils import integrate_events_by_fixed_frames_number, load_npz_frames
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import Resize

from eventvision.cache import CacheOptions
from eventvision.data import FrameDataset, make_loader
from eventvision.frames import bin_events, resize_frames
from eventvision.io import read_aedat2

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "dvs128-aedat2-misc"
TIME_STEPS, SENSOR_PX, SIZE_PX, EVENTS_PER_SAMPLE, BATCH = 16, 128, 64, 150_000, 8
CACHES = ("bitshuffle-lz4", "lzf", "none")  # the default first


def _windows(n_samples: int) -> list[np.ndarray]:
    """`n_samples` windows of EVENTS_PER_SAMPLE consecutive events from the real recordings."""
    streams = [read_aedat2(p) for p in sorted(REAL.glob("*.aedat"))]
    streams = [s for s in streams if len(s) > EVENTS_PER_SAMPLE]
    windows = []
    for i in range(n_samples):
        s = streams[i % len(streams)]
        start = (i // len(streams)) * 37_813 % (len(s) - EVENTS_PER_SAMPLE)
        windows.append(s[start : start + EVENTS_PER_SAMPLE])
    return windows


class SpikingjellyFrames(Dataset):
    """spikingjelly's frame files plus the paper's DVStransform (resize, third channel)."""

    def __init__(self, files: list[Path], labels: list[int]) -> None:
        self.files, self.labels = files, labels
        self.resize = Resize(SIZE_PX, antialias=True)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        x = torch.from_numpy(load_npz_frames(self.files[i]))  # [T, 2, H, W]
        t, p, h, w = x.shape
        x = self.resize(x.reshape(t * p, h, w)).reshape(t, p, SIZE_PX, SIZE_PX)  # [T, 2, h, w]
        return torch.cat([x, x.sum(1, keepdim=True)], dim=1), self.labels[i]  # [T, 3, h, w]


def _frame_caches(tmp: Path, windows: list[np.ndarray]) -> tuple[dict, list[np.ndarray]]:
    """A real frame cache per compression of the windows as a CIFAR10-DVS release (train split).

    Also returns the events of the train rows in cache order, as the cache's reader saw them
    (orientation fixed), for spikingjelly's side.
    """
    from eventvision.cache import read_sample, split_rows, write_cache
    from eventvision.datasets.cifar10dvs import cifar10dvs_fix_orientation

    raw = _cifar_release(tmp / "raw", windows)
    caches = {}
    for compression in CACHES:
        options = CacheOptions("cifar10-dvs", TIME_STEPS, size=SIZE_PX, compression=compression)
        write_cache(options, raw, tmp / f"{compression}.h5")
        caches[compression] = FrameDataset(tmp / f"{compression}.h5", "train", channels=3)
    meta = caches[CACHES[0]].meta
    sources = [read_sample(meta, int(row)).source for row in split_rows(meta, "train")[0]]
    events = [cifar10dvs_fix_orientation(read_aedat2(raw / source)) for source in sources]
    return caches, events


def _epoch_rate(loader: DataLoader, epochs: int) -> float:
    start, n = time.perf_counter(), 0
    for _ in range(epochs):
        for x, _ in loader:
            n += len(x)
    return n / (time.perf_counter() - start)


def _item_ms(ds: Dataset) -> float:
    start = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    return (time.perf_counter() - start) / len(ds) * 1e3


def _interleaved(fns: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median of each measurement, the contenders taking turns so that load drift hits all."""
    for fn in fns.values():
        fn()  # warm-up: worker start-up, page cache
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            runs[name].append(fn())
    return {name: statistics.median(values) for name, values in runs.items()}


def _cells(values: dict[str, float], inverse: bool) -> list[str]:
    """Each cache's value and its speed-up over spikingjelly."""
    sj = values["spikingjelly"]
    cells = [f"{sj:.1f}" if inverse else f"{sj:.0f}"]
    for name in CACHES:
        v = values[name]
        cells += [f"{v:.2f}" if inverse else f"{v:.0f}", f"{(sj / v if inverse else v / sj):.1f}x"]
    return cells


def _cifar_release(root: Path, windows: list[np.ndarray]) -> Path:
    """The windows as a CIFAR10-DVS release (raw AEDAT 2.0 files, ten class folders)."""
    from eventvision.io.aedat2 import write_aedat2
    from eventvision.io.datasets import CIFAR10_DVS_INFO

    classes = CIFAR10_DVS_INFO.classes
    for i, events in enumerate(windows):
        folder = root / classes[i % 10]
        folder.mkdir(parents=True, exist_ok=True)
        write_aedat2(folder / f"cifar10_{classes[i % 10]}_{i // 10}.aedat", events)
    return root


class TonicEvents(Dataset):
    """The event cache's samples as tonic takes them: structured events and a label."""

    def __init__(self, samples: list[np.ndarray], labels: list[int]) -> None:
        self.samples, self.labels = samples, labels

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.samples[i], self.labels[i]


class TonicFrames:
    """tonic's ToFrame (16 event-count bins) then the paper's resize and OFF+ON channel."""

    def __init__(self) -> None:
        import tonic.transforms as tt

        sensor = (SENSOR_PX, SENSOR_PX, 2)
        self.to_frame = tt.ToFrame(sensor, n_event_bins=TIME_STEPS)
        self.resize = Resize(SIZE_PX, antialias=True)

    def __call__(self, events: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(self.to_frame(events).astype(np.float32))  # [T, 2, H, W]
        t, p, h, w = x.shape
        x = self.resize(x.reshape(t * p, h, w)).reshape(t, p, SIZE_PX, SIZE_PX)  # [T, 2, h, w]
        return torch.cat([x, x.sum(1, keepdim=True)], dim=1)  # [T, 3, h, w]


def _tonic_dataset(samples: list[np.ndarray], labels: list[int], cache: Path) -> Dataset:
    """tonic's DiskCachedDataset of the events, then per sample one NDA-like op and ToFrame.

    tonic has no NDA policy; its nearest per-sample steps are a left-right flip and a random
    area drop (NDA's flip and cutout), composed as tonic documents.
    """
    import tonic
    import tonic.transforms as tt

    sensor = (SENSOR_PX, SENSOR_PX, 2)
    augment = tt.Compose(
        [tt.RandomFlipLR(sensor, p=0.5), tt.DropEventByArea(sensor, area_ratio=(0.05, 0.3))]
    )
    return tonic.DiskCachedDataset(
        TonicEvents(samples, labels), str(cache), transform=tt.Compose([augment, TonicFrames()])
    )


def events_main(args: argparse.Namespace) -> None:
    """EventDataset + NDA vs the frame cache vs tonic's DiskCachedDataset, 2 workers each."""
    from eventvision.cache import CacheOptions, write_cache
    from eventvision.data import EventDataset, make_event_augmentation

    windows = _windows(args.samples)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raw = _cifar_release(tmp / "raw", windows)
        frames_h5, events_h5 = tmp / "frames.h5", tmp / "events.h5"
        write_cache(CacheOptions("cifar10-dvs", TIME_STEPS, size=SIZE_PX), raw, frames_h5)
        write_cache(CacheOptions("cifar10-dvs", store="events"), raw, events_h5)
        plain = EventDataset(events_h5, "train", TIME_STEPS, SIZE_PX)
        frames = FrameDataset(frames_h5, "train")
        for i in (0, len(plain) - 1):  # the same samples, bit for bit, before timing
            assert torch.equal(plain[i][0], frames[i][0])
        nda = make_event_augmentation("nda", plain.sensor, seed=0)
        ours = EventDataset(events_h5, "train", TIME_STEPS, SIZE_PX, event_transform=nda)
        samples = [ours.events(i) for i in range(len(ours))]
        tonic_ds = _tonic_dataset(samples, ours.targets.tolist(), tmp / "tonic")
        datasets = {"frame cache": frames, "event cache + NDA": ours, "tonic": tonic_ds}
        item_ms = _interleaved(
            {name: (lambda ds=ds: _item_ms(ds)) for name, ds in datasets.items()}, args.repeats
        )
        loaders = {
            name: DataLoader(ds, BATCH, num_workers=2, persistent_workers=True)
            for name, ds in datasets.items()
        }
        rates = _interleaved(
            {name: (lambda lo=lo: _epoch_rate(lo, args.epochs)) for name, lo in loaders.items()},
            args.repeats,
        )
    n_mean = sum(map(len, samples)) / len(samples)
    print(
        f"{len(ours)} train samples, {n_mean:,.0f} events each on average, T={TIME_STEPS}, "
        f"{SENSOR_PX}->{SIZE_PX} px, 3 channels, batch {BATCH}, 2 workers"
    )
    ours_rate = rates["event cache + NDA"]
    rows = [
        [name, f"{item_ms[name]:.2f}", f"{rate:.0f}", f"{ours_rate / rate:.2f}x"]
        for name, rate in rates.items()
    ]
    print_table(["loader", "dataset[i] ms", "samples/s (2 workers)", "event cache vs it"], rows)


def _first_layout_table(events_h5: Path, out: Path) -> tuple[h5py.Dataset, np.ndarray]:
    """The event cache's events as the first layout stored them: one table of 13-byte records."""
    from eventvision.cache.reader import EventCacheReader

    reader = EventCacheReader(events_h5)
    records = np.concatenate([reader.read(i) for i in range(len(reader))])
    kwargs = CacheOptions("cifar10-dvs", store="events").h5_compression()
    f = h5py.File(out, "w")
    f.create_dataset("events", data=records, chunks=(1 << 15,), **kwargs)  # its chunk size
    return f["events"], reader.offsets


def stages_main(args: argparse.Namespace) -> None:
    """One EventDataset item's stages, single process, and the first layout's read beside."""
    from eventvision.cache import CacheOptions, write_cache
    from eventvision.data import EventDataset
    from eventvision.data import event_ops as ops
    from eventvision.data.dataset import finish_item

    windows = _windows(args.samples)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        events_h5 = tmp / "events.h5"
        write_cache(
            CacheOptions("cifar10-dvs", store="events"),
            _cifar_release(tmp / "raw", windows),
            events_h5,
        )
        ds = EventDataset(events_h5, "train", TIME_STEPS, SIZE_PX)
        table, offsets = _first_layout_table(events_h5, tmp / "first.h5")
        rows, sensor = ds._rows, ds.sensor  # the split's rows of the cache
        samples = [ds.events(i) for i in range(len(ds))]
        counts = [bin_events(e, TIME_STEPS, sensor=sensor) for e in samples]
        resized = [torch.from_numpy(resize_frames(c, SIZE_PX)) for c in counts]
        spans = [(offsets[r], offsets[r + 1]) for r in rows]
        stages = {
            "read, first layout (13-byte records)": lambda i: table[spans[i][0] : spans[i][1]],
            "read, columns (EventCacheReader)": lambda i: ds.events(i),
            "NDA flip": lambda i: ops.flip_lr(samples[i], sensor),
            "NDA roll (13, -7)": lambda i: ops.roll_events(samples[i], sensor, 13, -7),
            "NDA rotate 20 deg": lambda i: ops.rotate_events(samples[i], sensor, 20.0),
            "NDA shear 20 deg": lambda i: ops.shear_x_events(samples[i], sensor, 20.0),
            "NDA cutout 42 px": lambda i: ops.drop_box(samples[i], 40, 40, 82, 82),
            "bin T=16": lambda i: bin_events(samples[i], TIME_STEPS, sensor=sensor),
            "resize 128->64": lambda i: resize_frames(counts[i], SIZE_PX),
            "third channel (OFF+ON)": lambda i: finish_item(ds, resized[i], i),
            "whole item, no NDA": lambda i: ds[i],
        }  # fmt: skip

        def per_item(fn: Callable[[int], object]) -> Callable[[], float]:
            def run() -> float:
                start = time.perf_counter()
                for i in range(len(ds)):
                    fn(i)
                return (time.perf_counter() - start) / len(ds) * 1e3

            return run

        ms = _interleaved({name: per_item(fn) for name, fn in stages.items()}, args.repeats)
        table.file.close()
    print(f"{len(ds)} train samples, {sum(map(len, samples)) / len(samples):,.0f} events each")
    print_table(["stage (one process)", "ms/sample"], [[k, f"{v:.3f}"] for k, v in ms.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--events", action="store_true", help="EventDataset + NDA vs frame cache vs tonic"
    )
    parser.add_argument(
        "--stages", action="store_true", help="one EventDataset item's stages, one process"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # per-sample work, as in DataLoader workers
    if args.events:
        events_main(args)
        return
    if args.stages:
        stages_main(args)
        return

    windows = _windows(args.samples)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        caches, events = _frame_caches(tmp, windows)
        labels = caches[CACHES[0]].targets
        files = []
        for i, ev in enumerate(events):
            sj_events = {k: ev[k].astype(np.int64) for k in ("t", "x", "y", "p")}
            sj = integrate_events_by_fixed_frames_number(
                sj_events, "number", TIME_STEPS, SENSOR_PX, SENSOR_PX
            )  # [T, 2, H, W] float64, as spikingjelly stores it
            np.savez_compressed(tmp / f"{i}.npz", frames=sj)
            files.append(tmp / f"{i}.npz")
            counts = bin_events(ev, TIME_STEPS, "number")
            np.testing.assert_array_equal(counts, sj)  # same binning

        sj_ds = SpikingjellyFrames(files, labels.tolist())
        for i in (0, len(files) - 1):
            ref, ours = sj_ds[i][0], caches[CACHES[0]][i][0]
            torch.testing.assert_close(ours, ref, rtol=0, atol=1e-5 * float(ref.abs().max()))

        sj_bytes = sum(f.stat().st_size for f in files) / len(files)
        datasets = {"spikingjelly": sj_ds, **caches}
        item_ms = _interleaved(
            {name: (lambda ds=ds: _item_ms(ds)) for name, ds in datasets.items()}, args.repeats
        )
        rows = [["dataset[i], no loader (ms/sample)", *_cells(item_ms, inverse=True)]]
        for workers in (0, 2):
            loaders = {"spikingjelly": DataLoader(sj_ds, BATCH, num_workers=workers,
                                                  persistent_workers=workers > 0)}  # fmt: skip
            for name, ds in caches.items():
                loaders[name] = make_loader(ds, BATCH, train=False, workers=workers)
            rates = _interleaved(
                {
                    name: (lambda lo=lo: _epoch_rate(lo, args.epochs))
                    for name, lo in loaders.items()
                },
                args.repeats,
            )
            rows.append(
                [f"DataLoader, {workers} workers (samples/s)", *_cells(rates, inverse=False)]
            )
        cache_bytes = {c: (tmp / f"{c}.h5").stat().st_size / args.samples for c in caches}

    print(
        f"{len(files)} samples (the train split of {args.samples}) of {EVENTS_PER_SAMPLE} events, "
        f"T={TIME_STEPS}, "
        f"{SENSOR_PX}->{SIZE_PX} px, 3 channels, batch {BATCH}; bytes/sample: spikingjelly npz "
        f"{sj_bytes / 1e3:.0f} kB, "
        + ", ".join(f"cache {c} {b / 1e3:.0f} kB" for c, b in cache_bytes.items())
    )
    print_table(
        ["measure", "spikingjelly npz + resize"]
        + [h for c in CACHES for h in (f"cache {c}", "ratio")],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
