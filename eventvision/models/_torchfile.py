"""Recognising a PyTorch checkpoint file by its first bytes, before unpickling anything."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError

__all__ = ["check_torch_file"]

_PICKLE_PROTO = 0x80  # the first byte of a pickle (protocol 2+): torch's legacy format
_ZIP_MAGIC = b"PK\x03\x04"  # a zip archive's first local file header: torch's format


def check_torch_file(path: str | os.PathLike) -> Path:
    """``path`` as a Path when it looks like a ``torch.save`` file; CheckpointError otherwise.

    ``torch.save`` writes a zip archive (since PyTorch 1.6) or, in the legacy format, a pickle
    stream; anything else (a text file, an image, an HDF5 cache) is not a checkpoint at all.
    """
    path = Path(path)
    if not path.is_file():
        what = (
            "is a folder, expected a checkpoint file"
            if path.is_dir()
            else "no such checkpoint file"
        )
        raise CheckpointError(f"{path}: {what}")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({e.strerror})") from None
    if head[:1] == bytes([_PICKLE_PROTO]) or head == _ZIP_MAGIC:
        return path  # torch.load tells a truncated file from a whole one
    raise CheckpointError(
        f"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle; "
        f"starts with {head!r})"
    )
