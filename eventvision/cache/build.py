"""Computing the frames of a block of samples: what each worker process does."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from ..datasets import cut_recording
from ..errors import EventVisionError
from ..frames import COUNT_DTYPE, bin_events, resize_frames
from ..io.arrays import check_in_sensor
from .events import write_event_samples
from .layout import create_h5, create_layout
from .options import CacheOptions, PlannedSample

__all__ = ["sample_frames", "BlockResult", "compute_block"]

# A bad source is one whose reading or binning fails on its content, not a bug of ours.
_BAD_SOURCE_ERRORS = (EventVisionError, OSError, ValueError)


def sample_frames(events: np.ndarray, options: CacheOptions) -> np.ndarray:
    """The cached frames of one sample: binned into T frames, then resized, float32 [T, 2, h, w]."""
    counts = bin_events(events, options.time_steps, options.split_by, sensor=options.info.sensor)
    return resize_frames(counts, options.size_hw)


def _oriented_frames(raw: np.ndarray, options: CacheOptions) -> np.ndarray:
    """``sample_frames`` of the oriented events, counting the raw events into the source's view.

    The source's ``orient_counts`` maps pixels one to one and leaves event order alone, so
    the counts come out equal to binning the oriented events; the tests check the equality.
    """
    sensor = options.info.sensor
    oriented = np.zeros((options.time_steps, *sensor[::-1]), dtype=COUNT_DTYPE)  # [T, P, H, W]
    raw_view = options.source.orient_counts(oriented)  # [T, raw p, raw y, raw x]
    bin_events(raw, options.time_steps, options.split_by, sensor=sensor, out=raw_view)
    return resize_frames(oriented, options.size_hw)


def _file_sample(path: Path, options: CacheOptions) -> tuple[np.ndarray, int]:
    """What a cache stores of a sample kept as one file (its frames, or its oriented events)."""
    events = options.source.read(path)
    source = options.source
    if options.store == "events":
        oriented = events if source.orient_events is None else source.orient_events(events)
        return check_in_sensor(oriented, options.info.sensor, path), len(events)
    if source.orient_counts is not None:
        return _oriented_frames(events, options), len(events)
    return sample_frames(events, options), len(events)


def _write_stored(
    f: h5py.File, options: CacheOptions, stored: list[np.ndarray], sources: list[str]
) -> None:
    """Write the samples' frames (or events, ragged) into a part file's layout."""
    if options.store == "events":
        write_event_samples(f, stored, sources)
    else:
        f["frames"][...] = np.stack(stored)  # [N, T, 2, h, w]


class BlockResult(NamedTuple):
    """What a worker did with one block; the frames themselves went into the part file."""

    block: int
    n_samples: int  # samples written
    n_events: int  # events binned, over the samples written
    bad: list[tuple[int, str, str]]  # (sample index, source, reason)


def compute_block(
    options: CacheOptions,
    raw_root: str,
    block: int,
    samples: list[tuple[int, PlannedSample]],
    part: str | None,
    skip_bad: bool,
) -> BlockResult:
    """Read, bin and resize the samples of one block and write them to the part file ``part``.

    The part (a small cache with an ``index`` dataset) is written to ``<part>.tmp`` and renamed
    into place when whole. With a bad source and not ``skip_bad``, nothing is written, so a
    later run computes the block again.
    """
    root = Path(raw_root)
    stored: list[np.ndarray] = []  # per sample: frames [T, 2, h, w] or events (options.store)
    index, n_events, bad = [], [], []
    recording: tuple[str, np.ndarray | None, str] | None = None
    for index_i, sample in samples:
        try:
            if sample.row < 0:  # one file per sample
                sample_data, n = _file_sample(root / sample.source, options)
                stored.append(sample_data)
            else:
                if recording is None or recording[0] != sample.source:
                    recording = None  # one recording in memory at a time
                    try:
                        recording = (sample.source, options.source.read(root / sample.source), "")
                    except _BAD_SOURCE_ERRORS as e:
                        recording = (sample.source, None, _reason(e, sample.source))
                if recording[1] is None:
                    bad.append((index_i, sample.source, recording[2]))
                    continue
                events = cut_recording(recording[1], sample.start_us, sample.end_us)
                n = len(events)
                if options.store == "events":  # as binning checks them for frames
                    stored.append(
                        check_in_sensor(events, options.info.sensor, root / sample.source)
                    )
                else:
                    stored.append(sample_frames(events, options))
        except _BAD_SOURCE_ERRORS as e:
            bad.append((index_i, sample.source, _reason(e, sample.source)))
            continue
        index.append(index_i)
        n_events.append(n)
    recording = None
    if part is not None and (skip_bad or not bad):
        by_index = dict(samples)
        kept = [by_index[i] for i in index]
        tmp = part + ".tmp"
        with create_h5(tmp) as f:  # removed on any error: no half-written part stays behind
            create_layout(f, options, len(kept), with_index=True)
            if kept:
                _write_stored(f, options, stored, [s.source for s in kept])
                f["labels"][...] = [s.label for s in kept]
                f["split"][...] = [s.split for s in kept]
                f["source"][...] = [s.source for s in kept]
                f["row"][...] = [s.row for s in kept]
                f["n_events"][...] = n_events
                f["index"][...] = index
            skipped = [[src, by_index[i].row, why] for i, src, why in bad]
            f.attrs["skipped"] = json.dumps(skipped)
        os.replace(tmp, part)
    return BlockResult(block, len(index), int(sum(n_events)), bad)


def _reason(error: Exception, source: str) -> str:
    text = str(error) or type(error).__name__
    return text if source in text else f"{source}: {text}"
