"""The one reader of model weights: files or dicts, ours or official (docs/models.md).

Reads a state dict from a path or a mapping (a bare state dict, our training checkpoint or the
official ``{"model": ...}`` checkpoint), strips a ``module.`` prefix key by key, leaves out keys by
prefix, checks shapes and reports missing and unexpected keys.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
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
    "load_pretrained",
    "LoadResult",
    "model_state_dict",
]

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class LoadResult:
    """What :func:`load_pretrained` did with each tensor, and why; ``str()`` says it in one line.

    Args:
        source: the file (or "state dict") read.
        model_tensors: tensors in the model's state dict.
        loaded: model keys given the checkpoint's tensor, in the model's order.
        excluded: checkpoint keys left out because the caller named them in ``exclude``.
        mismatched: ``"key: checkpoint (a, b) vs model (c, d)"`` for each shape that differs;
            the model keeps its own tensor.
        missing: model keys the checkpoint lacks; the model keeps its own tensor.
        unexpected: checkpoint keys the model lacks.
    """

    source: str
    model_tensors: int
    loaded: tuple[str, ...]
    excluded: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    unexpected: tuple[str, ...] = ()

    @property
    def missing_keys(self) -> list[str]:
        """Model keys not loaded because the checkpoint lacks them (``load_state_dict``'s name)."""
        return list(self.missing)

    @property
    def unexpected_keys(self) -> list[str]:
        """Checkpoint keys the model has no place for (``load_state_dict``'s name)."""
        return list(self.unexpected)

    @property
    def complete(self) -> bool:
        """Whether every tensor that was not excluded was loaded, and nothing was left over."""
        return not (self.mismatched or self.missing or self.unexpected)

    def problems(self) -> str:
        """The keys that were not loaded though not excluded, grouped by reason."""
        parts = []
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} shapes differ ({_few(self.mismatched)})")
        if self.missing:
            parts.append(f"{len(self.missing)} keys missing ({_few(self.missing)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({_few(self.unexpected)})")
        return "; ".join(parts)

    def __str__(self) -> str:
        text = f"{self.source}: loaded {len(self.loaded)} of {self.model_tensors} model tensors"
        if self.excluded:
            text += f"; excluded as asked: {_few(self.excluded)}"
        if not self.complete:
            text += f"; not loaded: {self.problems()}"
        return text

    __repr__ = __str__


def _few(items: tuple[str, ...], n: int = 4) -> str:
    head = ", ".join(items[:n])
    return head if len(items) <= n else f"{head}, ... {len(items) - n} more"


def load_pretrained(
    model: nn.Module,
    source: Source,
    exclude: tuple[str, ...] = (),
    strict: bool = False,
) -> LoadResult:
    """Load every tensor of ``source`` whose key and shape fit ``model``, except under ``exclude``.

    Nothing is left out unless named: ``exclude=("classifier",)`` keeps the model's own head.
    Shapes that differ, keys the checkpoint lacks and keys the model lacks are skipped and
    reported; the result says what was loaded, skipped and why, and is logged (INFO when
    complete, WARNING otherwise).

    Args:
        source: a path or a dict: a state dict, our checkpoint or the official one.
        exclude: module prefixes to leave out, e.g. ``("classifier",)`` for a new head.
        strict: raise CheckpointError instead of skipping anything that is not excluded.

    Raises:
        CheckpointError: unreadable source, no tensor that fits, or (``strict``) a skipped key.

    Example:
        >>> load_pretrained(model, "runs/x/best.pt")  # doctest: +SKIP
        runs/x/best.pt: loaded 312 of 312 model tensors
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else "state dict"
    target = getattr(model, "module", model)
    state = read_state_dict(source)
    from .attention import check_attention

    check_attention(target, state, name)  # another attention: one line naming both
    own = target.state_dict()
    kept = {k: v for k, v in state.items() if not is_excluded(k, exclude)}
    fits = {k: v for k, v in kept.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    result = LoadResult(
        source=name,
        model_tensors=len(own),
        loaded=tuple(k for k in own if k in fits),
        excluded=tuple(k for k in state if is_excluded(k, exclude)),
        mismatched=tuple(_shape_errors(own, kept)),
        missing=tuple(k for k in own if k not in state and not is_excluded(k, exclude)),
        unexpected=tuple(k for k in kept if k not in own),
    )
    if strict and not result.complete:
        raise CheckpointError(f"{name}: weights of another architecture: {result.problems()}")
    if kept and not fits:
        raise CheckpointError(f"{name}: no tensor fits the model: {result.problems()}")
    target.load_state_dict(fits, strict=False)
    logger.log(logging.INFO if result.complete else logging.WARNING, "%s", result)
    return result


def model_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` (unwrapping DistributedDataParallel), as CPU tensors."""
    inner = getattr(model, "module", model)
    return {k: v.detach().cpu().clone() for k, v in inner.state_dict().items()}
