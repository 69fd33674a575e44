"""Reader throughput: eventvision against spikingjelly's and tonic's readers on the same files.

Run: .venv/bin/python benchmarks/bench_readers.py [--repeats 5]

The files are written by eventvision's writers in the original byte layouts: a CIFAR10-DVS-size
AEDAT 2.0 file (150k events) and a DVS-Gesture-size AEDAT 3.1 recording (1M events, 2048 events
a packet), plus the formats users hold: an AEDAT 4 file of 1M events (346x260, 4096 events a
packet) stored uncompressed, LZ4 and Zstd, against tonic's `read_aedat4` (the Rust `aedat`
package), and an N-Caltech101-style ATIS .bin of 1M events against tonic's `read_mnist_file`
and spikingjelly's `load_ATIS_bin`. tonic 1.7's `read_dvs_128` / `read_dvs_ibm` fail as
shipped (they unpack three header values into two), so tonic is timed through the same
functions they call, with that unpacking repaired. For the compressed AEDAT 4 files a third
contender only decompresses every event packet (the libraries both readers call): the floor
no reader of those files can go below on one core. tonic reads on one thread; our compressed
AEDAT 4 rows are timed twice in the same rounds, with ``threads=1`` (one thread, as tonic) and
with the default (``default_aedat4_threads()`` threads decompressing, named in the row).
"""

from __future__ import annotations

import argparse
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from common import interleaved_medians, print_table

from eventvision.events import Sensor, make_events
from eventvision.io import (
    read_aedat2,
    read_aedat4,
    read_aedat4_info,
    read_aedat31,
    read_atis_bin,
    write_aedat2,
    write_aedat4,
    write_aedat31,
    write_atis_bin,
)
from eventvision.io.aedat4 import default_aedat4_threads


def _events(n: int, span_us: int, seed: int = 0, width: int = 128, height: int = 128):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, span_us, n))
    x, y = rng.integers(0, width, n), rng.integers(0, height, n)
    return make_events(t, x, y, rng.integers(0, 2, n))


def _new_format_cases(tmp: Path, repeats: int) -> list[tuple]:
    """AEDAT 4 (three compressions) and ATIS rows; spikingjelly reads only the ATIS file."""
    import tonic.io
    from spikingjelly.datasets import utils

    cases = []
    events = _events(1_000_000, 10_000_000, width=346, height=260)
    for compression in ("none", "lz4", "zstd"):
        path = tmp / f"dv_{compression}.aedat4"
        write_aedat4(path, events, Sensor(346, 260), compression=compression)
        name = f"AEDAT 4 {compression}, 1M events"
        floor = None if compression == "none" else partial(_decompress_only, compression)
        ours = read_aedat4 if compression == "none" else _threaded_readers()
        cases.append((name, path, ours, floor, tonic.io.read_aedat4, repeats))
    atis = tmp / "image_0001.bin"
    write_atis_bin(atis, _events(1_000_000, 8_000_000, width=240, height=180))
    tonic_atis = partial(
        tonic.io.read_mnist_file, dtype=np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])
    )
    cases.append(
        ("ATIS .bin, 1M events", atis, read_atis_bin, utils.load_ATIS_bin, tonic_atis, repeats)
    )
    return cases


def _decompress_only(compression: str, path: Path) -> None:
    """Decompress every event packet of an AEDAT 4 file and nothing else."""
    import lz4.frame
    import zstandard

    from eventvision.io.aedat4 import PACKET_HEADER

    content = memoryview(path.read_bytes())
    pos = read_aedat4_info(path).body_offset
    decompress = lz4.frame.decompress
    if compression == "zstd":
        decompress = zstandard.ZstdDecompressor().decompress
    while pos < len(content):
        _, size = PACKET_HEADER.unpack_from(content, pos)
        decompress(content[pos + 8 : pos + 8 + size])
        pos += 8 + size


def _threaded_readers() -> dict[str, object]:
    """``read_aedat4`` on one thread and on its default thread count, by row label."""
    threads = default_aedat4_threads()
    return {
        "threads=1": partial(read_aedat4, threads=1),
        f"threads={threads} (default)": read_aedat4,
    }


def _tonic_reader(decode_shift_x: int, decode_shift_y: int, mask: int):
    import tonic.io

    def read(path):
        version, start, _ = tonic.io.read_aedat_header_from_file(str(path))
        raw = tonic.io.get_aer_events_from_file(str(path), version, start)
        addr = raw["address"]
        x, y, p = (addr >> decode_shift_x) & mask, (addr >> decode_shift_y) & mask, addr & 1
        return tonic.io.make_structured_array(x, y, raw["timeStamp"], p)

    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--only-new", action="store_true", help="only the AEDAT 4 and ATIS rows")
    args = parser.parse_args()

    from spikingjelly.datasets import cifar10_dvs, utils

    with tempfile.TemporaryDirectory() as tmp:
        aedat2 = Path(tmp) / "cifar10_cat_0.aedat"
        aedat31 = Path(tmp) / "user01_lab.aedat"
        write_aedat2(aedat2, _events(150_000, 1_300_000))
        write_aedat31(aedat31, _events(1_000_000, 6_000_000), packet_events=2048)
        cases = [
            ("AEDAT 2.0, 150k events", aedat2, read_aedat2, cifar10_dvs._load_origin_data,
             _tonic_reader(8, 1, 0x7F), args.repeats),
            ("AEDAT 3.1, 1M events", aedat31, read_aedat31, utils.load_aedat_v3,
             _tonic_reader(17, 2, 0x1FFF), max(3, args.repeats // 5)),
        ]  # fmt: skip
        if args.only_new:
            cases = []
        cases += _new_format_cases(Path(tmp), args.repeats)
        rows = []
        for name, path, ours, third, tonic_read, repeats in cases:
            variants = ours if isinstance(ours, dict) else {"": ours}
            fns = {label: partial(fn, path) for label, fn in variants.items()}
            fns["tonic"] = partial(tonic_read, path)
            if third is not None:  # spikingjelly's reader, or for AEDAT 4 the floor
                fns["third"] = partial(third, path)
            t = interleaved_medians(fns, repeats)
            for label in variants:
                t["ours"] = t[label]
                row_name = f"{name}, {label}" if label else name
                rows.append(_row(row_name, t, floor="AEDAT 4" in name))
    print_table(
        ["file", "eventvision ms", "spikingjelly ms", "tonic ms", "vs spikingjelly", "vs tonic",
         "decompress only ms (1 thread)"],
        rows,
    )  # fmt: skip


def _row(name: str, t: dict[str, float], floor: bool) -> list[str]:
    """One table row; for AEDAT 4 the third contender is the decompression floor."""
    other = t.get("third")
    sj = None if floor else other
    return [
        name,
        f"{t['ours'] * 1e3:.2f}",
        "-" if sj is None else f"{sj * 1e3:.1f}",
        f"{t['tonic'] * 1e3:.2f}",
        "-" if sj is None else f"{sj / t['ours']:.1f}x",
        f"{t['tonic'] / t['ours']:.1f}x",
        f"{other * 1e3:.2f}" if floor and other is not None else "-",
    ]


if __name__ == "__main__":
    main()
