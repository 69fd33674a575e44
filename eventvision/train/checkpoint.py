"""Checkpoints: plain dicts of tensors, written atomically, read with ``weights_only=True``.

A training checkpoint is ``{format, model, optimizer, epoch, best_metric, max_acc1, lr_scheduler,
rng, pipeline, eventvision_version}``: ``model`` is a state dict without a ``module.`` prefix,
``epoch`` the number of completed epochs, ``pipeline`` the resolved configuration as nested dicts.
The official SpikingResformer checkpoints (``{'model', 'optimizer', 'epoch', 'max_acc1',
'lr_scheduler'}``) and raw state dicts are read too.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError
from ..models._torchfile import check_torch_file

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
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(dict(payload), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint on the CPU with ``weights_only=True``; the result always has ``"model"``.

    A raw state dict (tensor values only) is returned as ``{"model": state_dict}``.

    Raises:
        CheckpointError: the file is missing, truncated, not a PyTorch file, holds anything
            other than tensors and plain containers, or has no model weights.
    """
    path = check_torch_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError and more
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise CheckpointError(
                f"{path}: holds pickled objects, not plain tensors and dicts "
                f"(refused by weights_only=True): {_first_line(e)}"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or not a PyTorch file): {_first_line(e)}"
        ) from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, expected a dict of weights")
    if "model" in obj or "state_dict" in obj:
        state = obj.get("model", obj.get("state_dict"))
        if not isinstance(state, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise CheckpointError(f"{path}: its 'model' entry is not a state dict of tensors")
        out = dict(obj)
        out["model"] = _strip_module_prefix(dict(state))
        return out
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"model": _strip_module_prefix(dict(obj))}
    raise CheckpointError(
        f"{path}: no model weights found (keys {sorted(map(str, obj))[:8]}); "
        "expected a state dict or a dict with a 'model' entry"
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def model_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` (unwrapping DistributedDataParallel), as CPU tensors."""
    inner = getattr(model, "module", model)
    return {k: v.detach().cpu().clone() for k, v in inner.state_dict().items()}


def check_state_dict(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    exclude: tuple[str, ...] = (),
) -> None:
    """Raise CheckpointError unless ``state`` has exactly the keys and shapes of ``model``.

    Keys containing one of ``exclude`` (e.g. ``"classifier"``) are ignored on both sides.
    """

    def keep(k: str) -> bool:
        return not any(x in k for x in exclude)

    ours = {k: v for k, v in getattr(model, "module", model).state_dict().items() if keep(k)}
    theirs = {k: v for k, v in state.items() if keep(k)}
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    shapes = [
        f"{k}: {tuple(theirs[k].shape)} vs {tuple(ours[k].shape)}"
        for k in ours
        if k in theirs and tuple(theirs[k].shape) != tuple(ours[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} keys missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} shapes differ (e.g. {shapes[0]}, checkpoint vs model)")
        raise CheckpointError(f"{source}: weights of another architecture: {'; '.join(parts)}")


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
