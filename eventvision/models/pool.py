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
reference to its storage object, and a storage never moved into shared memory (a tensor sent
through a ``torch.multiprocessing`` queue is moved there in place, and another process may
read it: such a buffer leaves the pool for good). A tensor not
handed out between two ``new_step()`` calls (the model calls it at every forward) is
released, so buffers of shapes that stop being used (a training batch size, before
evaluation) do not stay; ``clear()`` releases them all. One lock guards the pool, so
threads may share it.

Those counts come from torch internals (``torch._C._storage_Use_Count``,
``Tensor._use_count``) and the handed-out tensors are ``set_`` aliases of the pool's
(which share no version counter with it, so autograd could not catch a misjudged reuse).
The first pool of a process runs ``self_test()``, which checks that each kind of reference
above still counts; if a torch release changes them it raises ``ConfigError`` (one line) rather
than let the pool misjudge.
"""

from __future__ import annotations

import sys
import threading

import torch

from ..errors import ConfigError

__all__ = ["BufferPool", "empty", "self_test"]


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
# count includes the measurement's own references); set by ``self_test``.
_ALONE: tuple[int, int, int, int] | None = None


def _saved(t: torch.Tensor) -> torch.Tensor:
    w = torch.ones(1, requires_grad=True)
    return t * w  # mul keeps t for w's gradient


_HOLDERS = {
    "a reference": lambda t: t,
    "a view": lambda t: t[0],
    "a numpy array": lambda t: t.numpy(),
    "its storage object": lambda t: t.untyped_storage(),
    "autograd's saved tensors": _saved,
}


def self_test() -> None:
    """Check that the torch internals the pool relies on still count every reference.

    Raises ``ConfigError`` (one line) naming what changed; run by the first ``BufferPool``.
    """
    global _ALONE
    try:
        alone = _refs([torch.empty(1)])
        entry = [torch.empty(4)]
        alone_now = _refs(entry)
        for name, holder in _HOLDERS.items():
            alias = _alias(entry[0], torch.Size((2, 2)))
            if alias.data_ptr() != entry[0].data_ptr() or alias._base is not None:
                raise ConfigError("Tensor.set_ no longer aliases a storage")
            kept = holder(alias)
            del alias
            if _refs(entry) == alone_now:
                raise ConfigError(f"a buffer held by {name} counts as free")
            del kept
            if _refs(entry) != alone_now:
                raise ConfigError(f"a buffer released by {name} still counts as held")
    except (AttributeError, TypeError, RuntimeError, ConfigError) as e:
        raise ConfigError(
            f"BufferPool self-test failed on torch {torch.__version__}: "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}; "
            "build the model with cpu_kernels=False"
        ) from None
    _ALONE = alone


class BufferPool:
    """CPU tensors handed out again once nothing refers to them (module doc)."""

    MIN_BYTES = 1 << 20  # smaller tensors come from the heap, where glibc reuses them anyway

    def __init__(self) -> None:
        if _ALONE is None:
            with torch.device("cpu"):  # whatever the default (timm builds models on "meta")
                self_test()
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
            if any(t.is_shared() for t, _ in self._entries):  # another process may read it
                self._entries = [e for e in self._entries if not e[0].is_shared()]
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

    def clear(self) -> None:
        """Release every buffer (those still in use stay with their users, not the pool)."""
        with self._lock:
            self._entries = []

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
