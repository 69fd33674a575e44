"""Marks a tensor's producer puts on it, so the layers' fast paths can trust their input.

The fast paths rest on two facts about their input that they cannot afford to verify
element by element on every call: that a convolution's input is binary (it keeps it as bool
for the weight gradient), and that a batch norm's input has no other reader (it normalises it
in place). The producer that knows the fact marks the tensor it returns:

- ``SPIKES``: our neurons' spikes, in {0, 1}. A view of a marked tensor counts as marked.
- ``PRIVATE``: a convolution's output that no forward hook has seen.

A mark records the tensor's version counter, which every in-place write bumps (and which a
view shares with its base), so a tensor written after it was marked is no longer marked.
A mark is a plain attribute of the Python tensor object: anything that makes a new tensor
(``detach``, ``clone``, a conversion) drops it, and the consumer falls back to its check
(layers.py).
"""

from __future__ import annotations

import torch
from torch.nn.modules import module as _nn_module

__all__ = ["PRIVATE", "SPIKES", "hooked", "mark", "marked"]

SPIKES = "_ev_spikes"
PRIVATE = "_ev_private"


def mark(t: torch.Tensor, kind: str) -> torch.Tensor:
    """Mark ``t`` (``SPIKES`` or ``PRIVATE``) at its current version; returns ``t``."""
    setattr(t, kind, t._version)
    return t


def marked(t: torch.Tensor, kind: str, views: bool = False) -> bool:
    """Whether ``t`` carries ``kind`` unwritten since; with ``views``, or its base does."""
    if getattr(t, kind, None) == t._version:
        return True
    base = t._base
    return views and base is not None and getattr(base, kind, None) == base._version


def hooked(module: torch.nn.Module, pre: bool = False) -> bool:
    """Whether a forward hook (with ``pre``, or a forward pre-hook) sees ``module``'s call."""
    if module._forward_hooks or _nn_module._global_forward_hooks:
        return True
    return pre and bool(module._forward_pre_hooks or _nn_module._global_forward_pre_hooks)
