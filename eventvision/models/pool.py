"""Reused CPU buffers for the layers' big outputs and gradients.

A fresh tensor of a few hundred MB costs its first-touch page faults: about 0.25 s per GB
inside a training step on the development machine, where a ``spikingresformer_dvsg`` step
(T=16, batch 4) allocates and touches about 10 GB. glibc maps every block of over 32 MB
anew and unmaps it on free, so the same sizes are faulted in again on every step.

A model built with ``cpu_kernels`` gives its layers one ``BufferPool``. The layers take the
tensors they fill completely (spikes, input and output gradients, convolution outputs,
attention maps) from it, and the pool hands a tensor out again only once nothing refers to
it any more: no Python reference but its own, no other C++ owner (autograd's saved
tensors), no other tensor on its storage (views, and numpy arrays from ``.numpy()``), no
reference to its storage object. A tensor not
handed out between two ``new_step()`` calls (the model calls it at every forward) is
released, so buffers of shapes that stop being used (a training batch size, before
evaluation) do not stay.
"""

from __future__ import annotations

import sys
import threading

import torch

__all__ = ["BufferPool", "empty"]


def _refs(entry: list) -> tuple[int, int, int, int]:
    """References to ``entry[0]``: in Python, in C++, to its storage, to its storage object."""
    t = entry[0]
    storage = t.untyped_storage()
    owners = torch._C._storage_Use_Count(storage._cdata)
    return sys.getrefcount(t), t._use_count(), owners, sys.getrefcount(storage)


def _alias(flat: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """A contiguous tensor of ``shape`` on the storage of ``flat``: not a view (no ``_base``),
    so layers may write into it in place as into any fresh tensor."""
    return torch.empty(0, dtype=flat.dtype).set_(flat.untyped_storage(), 0, shape)


# The counts of a tensor only a pool entry holds, measured as ``_refs`` measures them (each
# count includes the measurement's own references).
_ALONE = _refs([torch.empty(1)])


class BufferPool:
    """CPU tensors handed out again once nothing refers to them (module doc)."""

    MIN_BYTES = 1 << 20  # smaller tensors come from the heap, where glibc reuses them anyway

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[list] = []  # [tensor, handed out since the last new_step]

    def empty(self, shape, dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised CPU tensor of ``shape`` and ``dtype``, reused where one is free.

        Its contents are arbitrary: callers overwrite every element.
        """
        shape = torch.Size(shape)
        n = shape.numel()
        if n * dtype.itemsize < self.MIN_BYTES:
            return torch.empty(shape, dtype=dtype)
        with self._lock:
            for entry in self._entries:
                if entry[0].numel() == n and entry[0].dtype == dtype and _refs(entry) == _ALONE:
                    entry[1] = True
                    return _alias(entry[0], shape)
            t = torch.empty(n, dtype=dtype)
            self._entries.append([t, True])
            return _alias(t, shape)

    def new_step(self) -> None:
        """Release the tensors not handed out since the last call."""
        with self._lock:
            self._entries = [[t, False] for t, used in self._entries if used]

    @property
    def nbytes(self) -> int:
        """Bytes the pool holds, in use or not."""
        return sum(t.numel() * t.element_size() for t, _ in self._entries)

    def __deepcopy__(self, memo) -> BufferPool:
        return BufferPool()  # a copied model (an EMA, say) starts with its own, empty pool

    def __reduce__(self):
        return (BufferPool, ())


def empty(pool: BufferPool | None, shape, like: torch.Tensor) -> torch.Tensor:
    """``like.new_empty(shape)``, from ``pool`` when there is one and ``like`` is on the CPU."""
    if pool is None or like.device.type != "cpu":
        return like.new_empty(shape)
    return pool.empty(shape, like.dtype)
