"""Hostile event files of a few kilobytes that claim gigabytes, or point outside the data.

Each builder writes one crafted file shaped as in issue 22's audit and returns its path. They
import only numpy, h5py, the compressors and ``eventvision.io`` (no torch), so a test can read
the file in a subprocess under a memory cap.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import h5py
import lz4.frame
import numpy as np
import zstandard

from eventvision.events import EVENT_DTYPE, Sensor
from eventvision.io.aedat4 import (
    _COMPRESSION_CODES,
    AEDAT4_MAGIC,
    PACKET_HEADER,
    _event_packet,
    _info_xml,
    _io_header,
)

SENSOR = Sensor(40, 30)
TIB = 1 << 40
MIB = 1 << 20


def _aedat4(path: Path, compression: str, blobs: list[bytes]) -> Path:
    """An AEDAT 4 file of one event stream whose packets are the given (compressed) blobs."""
    with open(path, "wb") as f:
        f.write(AEDAT4_MAGIC)
        f.write(_io_header(_COMPRESSION_CODES[compression], _info_xml(SENSOR, compression, "x")))
        for blob in blobs:
            f.write(PACKET_HEADER.pack(0, len(blob)) + blob)
    return path


def zstd_frame_claiming(size: int) -> bytes:
    """A Zstd frame whose header declares ``size`` bytes of content, holding none."""
    descriptor = 0xC0  # 8-byte frame content size, a window descriptor follows
    header = struct.pack("<IBBQ", 0xFD2FB528, descriptor, 0x00, size)
    return header + bytes([0x01, 0x00, 0x00])  # one empty raw block, the last


def lz4_frame_claiming(size: int) -> bytes:
    """An LZ4 frame whose header declares ``size`` bytes of content, holding none."""
    compressor = lz4.frame.LZ4FrameCompressor()
    return compressor.begin(source_size=size) + b"\0\0\0\0"  # the header, then the end mark


def zstd_zeros(nbytes: int, *, declare: bool = False) -> bytes:
    """A Zstd frame of ``nbytes`` zeros, compressed a MiB at a time (a few KB in all)."""
    cobj = zstandard.ZstdCompressor(level=1, write_content_size=declare).compressobj(
        size=nbytes if declare else -1
    )
    chunk = bytes(MIB)
    parts = [cobj.compress(chunk) for _ in range(nbytes // MIB)]
    return b"".join(parts) + cobj.flush()


def aedat4_claiming_tib(path: Path, compression: str = "zstd") -> Path:
    """AEDAT 4 with one packet whose compression frame claims 1 TiB (audit: 583 bytes)."""
    frame = zstd_frame_claiming(TIB) if compression == "zstd" else lz4_frame_claiming(TIB)
    return _aedat4(path, compression, [frame])


def aedat4_header_claiming(path: Path, size: int = (1 << 31) - 1) -> Path:
    """AEDAT 4 whose IOHeader size prefix claims ``size`` bytes, in a file of 20 bytes."""
    path.write_bytes(AEDAT4_MAGIC + struct.pack("<I", size) + b"\0\0")
    return path


def aedat4_packet_bomb(path: Path, nbytes: int = 640 * MIB) -> Path:
    """AEDAT 4 with one Zstd packet of ``nbytes`` zeros, no size declared (audit: 8.8 KB)."""
    return _aedat4(path, "zstd", [zstd_zeros(nbytes)])


def aedat4_pool_bomb(path: Path, packets: int = 160, nbytes: int = 60 * MIB) -> Path:
    """AEDAT 4 of many Zstd packets of ``nbytes`` zeros each, each under the packet limit.

    Over 256 KiB compressed in all, so that ``read_aedat4`` decompresses on its thread pool
    (audit: 317 KB reaching 2.26 GB on two threads).
    """
    return _aedat4(path, "zstd", [zstd_zeros(nbytes, declare=True)] * packets)


def aedat4_events_bomb(path: Path, packets: int = 40, events: int = 4_000_000) -> Path:
    """AEDAT 4 of valid Zstd packets of ``events`` equal events each (64 MB, about 2 KB packed).

    Each packet is under the packet limit, and every event is valid: only the whole file's
    expansion gives it away.
    """
    blob = zstandard.ZstdCompressor(level=1).compress(_event_packet(np.zeros(events, EVENT_DTYPE)))
    return _aedat4(path, "zstd", [blob] * packets)


def npy_claiming(path: Path, rows: int = 1 << 40) -> Path:
    """A structured ``.npy`` whose header claims ``rows`` events and holds none."""
    dtype = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f,
            {
                "descr": np.lib.format.dtype_to_descr(dtype),
                "fortran_order": False,
                "shape": (rows,),
            },
        )
    return path


def npz_bomb(path: Path, rows: int = 8 << 20) -> Path:
    """A spikingjelly ``.npz`` of ``rows`` zero events, deflated to about 1/1000."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for key, dtype in (("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")):
            with archive.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(
                    f, {"descr": dtype, "fortran_order": False, "shape": (rows,)}
                )
                chunk = bytes(MIB)
                left = rows * np.dtype(dtype).itemsize
                while left > 0:
                    f.write(chunk[: min(left, MIB)])
                    left -= MIB
    return path


def npz_entry_claiming(path: Path, rows: int = 1 << 40) -> Path:
    """A ``.npz`` whose entries are tiny but whose npy headers claim ``rows`` each."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, dtype in (("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")):
            with archive.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array_header_1_0(
                    f, {"descr": dtype, "fortran_order": False, "shape": (rows,)}
                )
    return path


def h5_unallocated(path: Path, rows: int = 20_000_000) -> Path:
    """An ``.h5`` whose datasets t, x, y, p claim ``rows`` rows never written (about 2 KB)."""
    with h5py.File(path, "w") as f:
        for key, dtype in (("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")):
            f.create_dataset(key, shape=(rows,), dtype=dtype)
    return path


def _h5_with(path: Path, events: np.ndarray, replace: str, make) -> Path:
    """An ``.h5`` of ``events`` as columns, column ``replace`` made by ``make(file, name)``."""
    with h5py.File(path, "w") as f:
        for key in "txyp":
            if key == replace:
                make(f, key)
            else:
                f[key] = events[key]
    return path


def h5_group_column(path: Path, events: np.ndarray) -> Path:
    """Column x is a group."""
    return _h5_with(path, events, "x", lambda f, k: f.create_group(k))


def h5_bytes_column(path: Path, events: np.ndarray) -> Path:
    """Column x holds byte strings."""
    return _h5_with(path, events, "x", lambda f, k: f.create_dataset(k, data=[b"1"] * len(events)))


def h5_external_storage(path: Path, events: np.ndarray, target: Path) -> Path:
    """Column x keeps its raw data in ``target``, a file outside the data (audit: 3)."""
    n = len(events)

    def make(f, k):
        f.create_dataset(k, shape=(n,), dtype="<u2", external=[(str(target), 0, 2 * n)])

    return _h5_with(path, events, "x", make)


def h5_external_link(path: Path, events: np.ndarray, target: Path) -> Path:
    """Column x is an external link into the HDF5 file ``target``."""
    return _h5_with(
        path, events, "x", lambda f, k: f.__setitem__(k, h5py.ExternalLink(target, "x"))
    )


def h5_soft_link(path: Path, events: np.ndarray) -> Path:
    """Column x is a soft link to column y."""
    return _h5_with(path, events, "x", lambda f, k: f.__setitem__(k, h5py.SoftLink("/y")))


def h5_virtual(path: Path, events: np.ndarray, target: Path) -> Path:
    """Column x is a virtual dataset mapping dataset x of the HDF5 file ``target``."""

    def make(f, k):
        layout = h5py.VirtualLayout(shape=(len(events),), dtype="<u2")
        layout[:] = h5py.VirtualSource(str(target), "x", shape=(len(events),))
        f.create_virtual_dataset(k, layout)

    return _h5_with(path, events, "x", make)
