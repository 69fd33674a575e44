"""Checkpoints: plain dicts of tensors, written atomically, read with ``weights_only=True``.

A training checkpoint is ``{format, model, optimizer, epoch, best_metric, max_acc1, lr_scheduler,
rng, pipeline, eventvision_version}``: ``model`` is a state dict without a ``module.`` prefix,
``epoch`` the number of completed epochs, ``pipeline`` the resolved configuration as nested dicts.
The official SpikingResformer checkpoints (``{'model', 'optimizer', 'epoch', 'max_acc1',
'lr_scheduler'}``) and raw state dicts are read too, by the models' one weights reader
(``eventvision.models.weights``); this module keeps the resume payload.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from ..files import open_fresh, write_error
from ..models.weights import check_state_dict, model_state_dict, read_checkpoint

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "model_state_dict",
    "check_state_dict",
    "rng_state",
    "set_rng_state",
]

CHECKPOINT_FORMAT = "eventvision-checkpoint-v1"


def save_checkpoint(payload: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``payload`` with ``torch.save`` to a temporary file, fsync it, rename it to ``path``.

    A reader (or a crash at any moment) sees either the previous file or the complete new one.
    The temporary ``.NAME.tmp`` is created fresh (``eventvision.files.open_fresh``: a planted
    link is refused); a failed write raises PathError naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path.parent, e, "cannot create the folder") from None
    with open_fresh(path) as (_, f):
        writer = _Writer(f)
        try:
            torch.save(dict(payload), writer)
        except RuntimeError:
            if writer.error is None:
                raise
            raise writer.error from None  # torch reports a failed write as a RuntimeError
    return path


class _Writer:
    """A binary file for ``torch.save`` that keeps the ``OSError`` of a failed write."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint on the CPU with ``weights_only=True``; the result always has ``"model"``.

    The models' one weights reader (:func:`eventvision.models.weights.read_checkpoint`): a raw
    state dict is returned as ``{"model": state_dict}``, a ``module.`` prefix is stripped.

    Raises:
        CheckpointError: the file is missing, truncated, not a PyTorch file, holds anything
            other than tensors and plain containers, or has no model weights.
    """
    return read_checkpoint(Path(path))


def rng_state() -> dict[str, Any]:
    """The python, numpy and torch (CPU and CUDA) generator states as tensors and plain values."""
    version, keys, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {
            "version": version,
            "keys": torch.tensor(keys, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the generator states saved by :func:`rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(k) for k in py["keys"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (
            npy["name"],
            npy["keys"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
