"""The one reader of model weights: files or dicts, ours or official (docs/models.md).

Reads a state dict from a path or a mapping (a bare state dict, our training checkpoint or the
official ``{"model": ...}`` checkpoint), strips a ``module.`` prefix key by key, leaves out keys by
prefix, checks shapes and reports missing and unexpected keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ._torchfile import check_torch_file

__all__ = [
    "read_checkpoint",
    "read_state_dict",
    "strip_prefix",
    "exclude_keys",
    "is_excluded",
    "check_state_dict",
    "load_weights",
    "model_state_dict",
]

Source = str | os.PathLike | Mapping[str, Any]


def read_checkpoint(source: Source) -> dict[str, Any]:
    """The checkpoint dict of ``source`` with its state dict, ``module.``-stripped, as ``"model"``.

    A bare state dict becomes ``{"model": state_dict}``; ``"state_dict"`` is read as ``"model"``.

    Raises:
        CheckpointError: missing, truncated or not a PyTorch file, pickled objects, or no weights.
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else "state dict"
    obj = _torch_load(source) if isinstance(source, (str, os.PathLike)) else source
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{name}: holds a {type(obj).__name__}, expected a dict of weights")
    if "model" in obj or "state_dict" in obj:
        state = obj.get("model", obj.get("state_dict"))
        if not _is_state_dict(state):
            raise CheckpointError(f"{name}: its 'model' entry is not a state dict of tensors")
        return {**obj, "model": strip_prefix(state)}
    if obj and _is_state_dict(obj):
        return {"model": strip_prefix(obj)}
    raise CheckpointError(
        f"{name}: no model weights found (keys {sorted(map(str, obj))[:8]}); "
        "expected a state dict or a dict with a 'model' entry"
    )


def read_state_dict(source: Source) -> dict[str, torch.Tensor]:
    """The state dict in ``source`` (see :func:`read_checkpoint`), without a ``module.`` prefix."""
    return read_checkpoint(source)["model"]


def _torch_load(path: str | os.PathLike) -> Any:
    path = check_torch_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError and more
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise CheckpointError(
                f"{path}: holds pickled objects, not plain tensors and dicts "
                f"(refused by weights_only=True): {_first_line(e)}"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or not a PyTorch file): {_first_line(e)}"
        ) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and all(isinstance(v, torch.Tensor) for v in obj.values())


def strip_prefix(state: Mapping[str, Any], prefix: str = "module.") -> dict[str, Any]:
    """``state`` with ``prefix`` removed from each key that starts with it (DDP's ``module.``)."""
    return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state.items()}


def is_excluded(key: str, exclude: tuple[str, ...]) -> bool:
    """Whether ``key`` is, or lies under, one of the module prefixes ``exclude``.

    ``"classifier"`` matches ``classifier`` and ``classifier.weight`` but not ``classifier2.w``;
    a prefix ending in ``.`` (``"1."``) matches every key starting with it.
    """
    for prefix in exclude:
        if key == prefix or key.startswith(prefix if prefix.endswith(".") else prefix + "."):
            return True
    return False


def exclude_keys(state: Mapping[str, Any], exclude: tuple[str, ...]) -> dict[str, Any]:
    """``state`` without the keys :func:`is_excluded` by ``exclude``."""
    return {k: v for k, v in state.items() if not is_excluded(k, exclude)}


def _shape_errors(own: Mapping[str, Any], state: Mapping[str, Any]) -> list[str]:
    return [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]


def check_state_dict(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str,
    exclude: tuple[str, ...] = (),
) -> None:
    """Raise CheckpointError unless ``state`` has exactly the keys and shapes of ``model``.

    Keys under one of the prefixes ``exclude`` (e.g. ``"classifier"``) are ignored on both sides.
    """
    from .attention import check_attention

    check_attention(model, state, source)  # one line naming both, before the key lists
    ours = exclude_keys(getattr(model, "module", model).state_dict(), exclude)
    theirs = exclude_keys(state, exclude)
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    shapes = _shape_errors(ours, theirs)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} keys missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            parts.append(f"{len(shapes)} shapes differ (e.g. {shapes[0]})")
        raise CheckpointError(f"{source}: weights of another architecture: {'; '.join(parts)}")


def load_weights(
    model: nn.Module,
    source: Source,
    exclude: tuple[str, ...] = (),
    strict: bool = False,
) -> nn.modules.module._IncompatibleKeys:
    """Load the weights of ``source`` into ``model``, leaving out keys under ``exclude``.

    Shape mismatches always raise CheckpointError; missing and unexpected keys (excluded keys
    not counted) raise with ``strict``, else they are returned for the caller to report.
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else "state dict"
    target = getattr(model, "module", model)
    state = exclude_keys(read_state_dict(source), exclude)
    if strict:
        check_state_dict(target, state, name, exclude)
    bad = _shape_errors(target.state_dict(), state)
    if bad:
        raise CheckpointError(f"{name}: checkpoint does not fit the model: " + "; ".join(bad))
    result = target.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not is_excluded(k, exclude)]
    return nn.modules.module._IncompatibleKeys(missing, list(result.unexpected_keys))


def model_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` (unwrapping DistributedDataParallel), as CPU tensors."""
    inner = getattr(model, "module", model)
    return {k: v.detach().cpu().clone() for k, v in inner.state_dict().items()}
