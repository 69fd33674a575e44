"""Preprocessing benchmark: eventvision against spikingjelly's and tonic's pipelines, in one run.

Usage (the numbers in docs/preprocess.md come from the full run):
    .venv/bin/python benchmarks/bench_preprocess.py                 # full: 10,000-file run
    .venv/bin/python benchmarks/bench_preprocess.py --files 1000    # quick

All pipelines read the same synthetic CIFAR10-DVS-format files (eventvision.synth, jAER AEDAT
2.0). The large run fills the CIFAR10-DVS layout with hard links to the distinct synthetic
recordings, so its reads come from the page cache (a warm, not a cold-disk, measurement).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import median_seconds

from eventvision.cache import CacheOptions, write_cache
from eventvision.datasets import cifar10dvs_fix_orientation
from eventvision.frames import bin_bounds, bin_events
from eventvision.io import CIFAR10_DVS_INFO, read_aedat2

TIME_STEPS, SIZE = 16, 64


def median_ms(fn, repeat: int) -> float:
    return 1e3 * median_seconds(fn, repeat)


def make_pool(root: Path, distinct: int) -> list[Path]:
    """``distinct`` synthetic recordings in the CIFAR10-DVS layout (kept between runs)."""
    try:
        from eventvision.synth import make_cifar10dvs
    except ImportError:  # the synth package re-exports it once it lands
        from eventvision.synth.cifar10dvs import make_cifar10dvs
    per_class = max(1, distinct // len(CIFAR10_DVS_INFO.classes))
    marker = root / f".complete-{per_class}"
    if not marker.exists():
        make_cifar10dvs(root, per_class=per_class, seed=0)
        marker.touch()
    return sorted(root.glob(CIFAR10_DVS_INFO.file_glob))


def ours_end_to_end(root: Path, out: Path, n_files: int) -> tuple[float, float]:
    """ms per sample: read + bin T=16 + resize to 64 + lzf write, one process, median of 3."""
    options = CacheOptions("cifar10-dvs", time_steps=TIME_STEPS, size=SIZE)
    runs, cpu = [], []
    for _ in range(3):
        c0 = time.process_time()
        report = write_cache(options, root, out, overwrite=True)
        runs.append(report.wall_s / n_files)
        cpu.append((time.process_time() - c0) / n_files)
    out.unlink()
    return 1e3 * statistics.median(runs), 1e3 * statistics.median(cpu)


def spikingjelly_end_to_end(files: list[Path], work: Path) -> tuple[float, float]:
    """ms per sample: aedat -> events npz -> frames npz, then load + the paper's resize."""
    import torch
    from spikingjelly.datasets import cifar10_dvs
    from spikingjelly.datasets import utils as sj
    from torchvision.transforms import Resize

    resize = Resize(SIZE, antialias=True)

    def load_events(path):
        with np.load(path) as f:
            return {k: f[k] for k in f.files}

    times, cpu = [], []
    for i, path in enumerate(files):
        events_file, frames_dir = work / f"events_{i}.npz", work / f"frames_{i}"
        frames_dir.mkdir(exist_ok=True)
        t0, c0 = time.perf_counter(), time.process_time()
        cifar10_dvs._read_aedat_save_to_np(path, events_file)
        sj.integrate_events_file_to_frames_file_by_fixed_frames_number(
            load_events, str(events_file), str(frames_dir), "number", TIME_STEPS, 128, 128
        )
        frames = sj.load_npz_frames(frames_dir / events_file.name)
        resize(torch.from_numpy(frames).reshape(-1, 128, 128))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1e3 * statistics.median(times), 1e3 * statistics.median(cpu)


def tonic_end_to_end(files: list[Path]) -> tuple[float, float]:
    """ms per sample: tonic's raw AEDAT 2.0 read (its header bug worked around) + ToFrame."""
    import tonic

    to_frame = tonic.transforms.ToFrame(sensor_size=(128, 128, 2), n_event_bins=TIME_STEPS)

    def read(path):
        # tonic.io.read_dvs_128 unpacks 2 of the 3 values this returns ("too many values").
        version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
        raw = tonic.io.get_aer_events_from_file(str(path), version, start)
        addr = raw["address"]
        return tonic.io.make_structured_array(
            (addr >> 8) & 0x7F, (addr >> 1) & 0x7F, raw["timeStamp"], addr & 1
        )

    times, cpu = [], []
    for path in files:
        t0, c0 = time.perf_counter(), time.process_time()
        to_frame(read(path))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1e3 * statistics.median(times), 1e3 * statistics.median(cpu)


def binning(path: Path) -> dict[str, float]:
    """ms for T=16 frames of one recording: ours, spikingjelly's, one np.bincount (the floor)."""
    from spikingjelly.datasets import utils as sj

    events = cifar10dvs_fix_orientation(read_aedat2(path))
    columns = {k: np.ascontiguousarray(events[k]).astype(np.int64) for k in ("t", "x", "y", "p")}
    bounds = bin_bounds(events["t"], TIME_STEPS, "number")
    bins = np.repeat(np.arange(TIME_STEPS), np.diff(bounds))
    index = ((bins * 2 + columns["p"]) * 128 + columns["y"]) * 128 + columns["x"]
    n_pixels = TIME_STEPS * 2 * 128 * 128
    return {
        "events": len(events),
        "ours": median_ms(lambda: bin_events(events, TIME_STEPS), 30),
        "spikingjelly": median_ms(
            lambda: sj.integrate_events_by_fixed_frames_number(
                columns, "number", TIME_STEPS, 128, 128
            ),
            10,
        ),
        "bincount": median_ms(lambda: np.bincount(index, minlength=n_pixels), 30),
    }


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc (Linux), in KiB."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        total += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
        stack += [int(c) for c in children]
    return total


def large_run(pool: list[Path], root: Path, out: Path, n_files: int, workers: int) -> dict:
    """The CIFAR10-DVS layout with ``n_files`` hard links into the pool; one preprocess run."""
    per_class = n_files // len(CIFAR10_DVS_INFO.classes)
    for name in CIFAR10_DVS_INFO.classes:
        mine = [p for p in pool if p.parent.name == name]
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            link = root / name / f"cifar10_{name}_{i}.aedat"
            if not link.exists():
                os.link(mine[i % len(mine)], link)
    command = [
        str(Path(sys.executable).parent / "eventvision"), "preprocess", "cifar10-dvs", str(root),
        str(out), "--time-steps", str(TIME_STEPS), "--size", str(SIZE), "--workers", str(workers),
        "--overwrite",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree_kib = 0
    while proc.poll() is None:
        peak_tree_kib = max(peak_tree_kib, tree_rss_kib(proc.pid))
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(stdout + stderr)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = usage.ru_maxrss
    size = out.stat().st_size
    out.unlink()
    return {
        "files": per_class * len(CIFAR10_DVS_INFO.classes),
        "wall_s": wall,
        "rate": per_class * len(CIFAR10_DVS_INFO.classes) / wall,
        "peak_rss_mib": peak_kib / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_tree_rss_mib": peak_tree_kib / 1024,
        "cache_bytes": size,
        "summary": stdout.strip(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="files of the large run")
    parser.add_argument("--distinct", type=int, default=50, help="distinct synthetic recordings")
    parser.add_argument("--peer-files", type=int, default=10, help="files timed for the peers")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ev-bench")
    args = parser.parse_args()
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    pool = make_pool(work / "pool", args.distinct)
    print(f"{len(pool)} distinct recordings ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    n_events = [(p.stat().st_size - 200) // 8 for p in pool]
    # First, while this process has started no other child (peak RSS counts children only).
    big = large_run(pool, work / f"large-{args.files}", work / "large.h5", args.files, args.workers)
    print(f"large run done ({big['wall_s']:.0f} s)", flush=True)
    ours = ours_end_to_end(work / "pool", work / "e2e.h5", len(pool))
    peers = pool[:: max(1, len(pool) // args.peer_files)][: args.peer_files]
    with tempfile.TemporaryDirectory(dir=work) as scratch:
        sj = spikingjelly_end_to_end(peers, Path(scratch))
    tonic = tonic_end_to_end(peers)
    b = binning(pool[0])
    print()
    print(f"recordings: median {statistics.median(n_events):,.0f} events (synthetic CIFAR10-DVS)")
    (ours, ours_cpu), (sj, sj_cpu), (tonic, tonic_cpu) = ours, sj, tonic
    rows = [
        (
            "end to end per sample vs spikingjelly (npz conversion + resize)",
            f"{ours:.2f} ms ({ours_cpu:.2f} CPU)",
            f"{sj:.1f} ms ({sj_cpu:.1f} CPU)",
            f"{sj / ours:.0f}x ({sj_cpu / ours_cpu:.0f}x CPU)",
        ),
        (
            "end to end per sample vs tonic (raw read + ToFrame)",
            f"{ours:.2f} ms ({ours_cpu:.2f} CPU)",
            f"{tonic:.1f} ms ({tonic_cpu:.1f} CPU)",
            f"{tonic / ours:.1f}x ({tonic_cpu / ours_cpu:.1f}x CPU)",
        ),
        (
            f"binning T=16, {b['events']:,} events, vs spikingjelly",
            f"{b['ours']:.2f} ms",
            f"{b['spikingjelly']:.2f} ms",
            f"{b['spikingjelly'] / b['ours']:.1f}x",
        ),
        (
            "binning vs one np.bincount over precomputed indices (floor)",
            f"{b['ours']:.2f} ms",
            f"{b['bincount']:.2f} ms",
            f"{b['bincount'] / b['ours']:.2f} of the floor's speed",
        ),
        (
            f"{big['files']:,} files, {args.workers} workers, whole preprocess",
            f"{big['wall_s']:.1f} s, {big['rate']:.0f} samples/s",
            f"CPU {big['cpu_s']:.0f} s in all",
            f"{big['cpu_s'] / os.cpu_count():.0f} s if the {os.cpu_count()} cores were ours alone",
        ),
    ]
    print("| measurement | eventvision | peer | ratio (peer / eventvision) |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        f"\npeak RSS of the large run: {big['peak_tree_rss_mib']:.0f} MiB for the process tree "
        f"(sampled every 0.1 s), {big['peak_rss_mib']:.0f} MiB for its largest process"
    )
    per_sample = big["cache_bytes"] / big["files"] / 1024
    print(f"large cache: {big['cache_bytes'] / 2**30:.2f} GiB ({per_sample:.0f} KiB per sample)")
    print(big["summary"])
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
