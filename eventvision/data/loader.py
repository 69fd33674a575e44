"""make_loader: the one place where DataLoaders are built, seeded and reproducible.

One seeding mechanism for every transform (docs/data.md, "Loaders"): item ``i`` of epoch ``e``
is loaded with its own seed, ``sample_seed = mix(epoch_seed(seed, e), i)``. While it loads,
torch's, numpy's and Python's global generators are seeded with it (and restored afterwards in
the main process), so torchvision/timm image transforms and ``seed=None`` transforms draw from
it; transforms with a seed of their own draw from a generator of (their seed, the sample seed)
(:func:`sample_seed`). The draws thus depend on the seed, the epoch and the item only: not on
the number of workers, their order, or a resume.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..errors import ConfigError

__all__ = [
    "EpochSampler",
    "epoch_seed",
    "loader_sampler",
    "make_loader",
    "mix_seeds",
    "sample_seed",
    "set_loader_epoch",
]

_CURRENT_SAMPLE: list[int] = []  # the seed of the item being loaded in this process, if any


def mix_seeds(a: int, b: int) -> int:
    """Two seeds mixed into one (splitmix64), so that pairs do not collide trivially."""
    z = (a * 0x9E3779B97F4A7C15 + b) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


def sample_seed() -> int | None:
    """The seed of the item `make_loader` is loading in this process; None outside one."""
    return _CURRENT_SAMPLE[-1] if _CURRENT_SAMPLE else None


@contextmanager
def _seeded(seed: int, restore: bool) -> Iterator[None]:
    """Seed torch's CPU generator, numpy and random with ``seed``; put their states back if
    ``restore`` (the CPU generator alone: ``torch.manual_seed`` would reseed every CUDA
    device's too, which an item's transforms never draw from and nothing would restore)."""
    saved = (torch.get_rng_state(), np.random.get_state(), random.getstate()) if restore else None
    torch.default_generator.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    _CURRENT_SAMPLE.append(seed)
    try:
        yield
    finally:
        _CURRENT_SAMPLE.pop()
        if saved is not None:
            torch.set_rng_state(saved[0])
            np.random.set_state(saved[1])
            random.setstate(saved[2])


class _SeededItems(Dataset):
    """``dataset`` indexed by ``(pass seed, index)`` keys: each item loads under its own seed."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        from torch.utils.data import get_worker_info

        pass_seed, index = key
        # In the main process (workers=0) the caller's generators are put back afterwards.
        with _seeded(mix_seeds(pass_seed, index), restore=get_worker_info() is None):
            return self.dataset[index]

    def __getattr__(self, name: str) -> Any:
        # never forward "dataset" (not set yet while unpickling) or dunders: a Subset's
        # __getitems__ would make the DataLoader skip the per-item seeding
        if name == "dataset" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


class _Keyed(Sampler):
    """Yields ``(epoch_seed(seed, epoch), index)`` for the indices of ``inner`` (or all)."""

    def __init__(self, inner: Sampler | None, n: int, seed: int) -> None:
        self.inner, self.n, self.seed = inner, n, seed

    def __len__(self) -> int:
        return len(self.inner) if self.inner is not None else self.n  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        """As `EpochSampler.set_epoch` (a training loader only)."""
        self.inner.set_epoch(epoch)  # type: ignore[union-attr]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = getattr(self.inner, "epoch", 0)
        key = epoch_seed(self.seed, epoch)
        indices = iter(self.inner) if self.inner is not None else iter(range(self.n))
        return ((key, i) for i in indices)


def epoch_seed(seed: int, epoch: int) -> int:
    """The one seed rule: epoch ``e`` of seed ``s`` draws from ``s + e`` (docs/data.md, "Loaders").

    It seeds both the sample order and the workers' base seed. Seeds ``s`` and ``s + 1`` thus
    give the same orders one epoch apart: compare runs with seeds far apart.
    """
    return (int(seed) + int(epoch)) % 2**63


class EpochSampler(Sampler[int]):
    """A shuffled order drawn from ``epoch_seed(seed, epoch)``, split across ranks.

    Every epoch's permutation depends only on (seed, epoch), so a resumed run sees the same
    batches as an uninterrupted one, and N processes with batch B see together exactly the
    samples one process with batch N*B sees. The tail that does not fill a global batch is
    dropped, as the official DVS loaders do (``drop_last=True``). Each pass advances the epoch;
    ``set_epoch(e)`` chooses it (a resumed run).
    """

    def __init__(
        self, dataset: Dataset, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        self.n = len(dataset)  # type: ignore[arg-type]
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.global_batch = batch_size * world_size

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation the next iteration yields."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return (self.n // self.global_batch) * self.batch_size

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        self.epoch += 1
        order = torch.randperm(self.n, generator=g).tolist()
        used = (self.n // self.global_batch) * self.global_batch
        # global batch k holds order[k*G:(k+1)*G]; this rank takes every world_size-th of it
        return iter(order[self.rank : used : self.world_size])


def make_loader(
    dataset: Dataset,
    batch_size: int,
    train: bool,
    workers: int = 0,
    seed: int = 0,
    *,
    rank: int = 0,
    world_size: int = 1,
    persistent_workers: bool = True,
    multiprocessing_context: str | None = None,
) -> DataLoader:
    """A DataLoader with a seeded order: shuffled and dropping the last partial batch when `train`.

    Args:
        dataset: any map-style dataset, e.g. `FrameDataset` or `StaticImageDataset`.
        batch_size: samples per batch.
        train: shuffle with `EpochSampler`, a new permutation each epoch drawn from
            `epoch_seed(seed, epoch)` only (`set_loader_epoch(loader, e)` resumes at epoch e),
            split across ranks, dropping the tail that fills no global batch; otherwise keep
            the dataset order and every sample (this rank's share: every world_size-th one).
        workers: worker processes; above 0 they are persistent across epochs unless
            `persistent_workers` is False (then `set_loader_epoch` reseeds them every epoch).
        seed: seeds the order and every item's randomness (`sample_seed`): the same seed
            gives the same batches, augmentations included, for any number of workers.
        rank, world_size: this process's place among the distributed processes.
        multiprocessing_context: "fork", "spawn" or "forkserver"; None is the platform default.

    Returns:
        a DataLoader with pinned memory when CUDA is available.

    Example:
        >>> loader = make_loader(list(zip(range(10), range(10))), 4, train=True, seed=1)
        >>> len(loader)
        2
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r}: expected a positive integer")
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"workers={workers!r}: expected an integer >= 0")
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank={rank!r}, world_size={world_size!r}: expected 0 <= rank < size")
    sampler = EpochSampler(dataset, batch_size, seed, rank, world_size) if train else None
    if not train and world_size > 1:
        dataset = Subset(dataset, range(rank, len(dataset), world_size))  # type: ignore[arg-type]
    return DataLoader(
        _SeededItems(dataset),
        batch_size=batch_size,
        sampler=_Keyed(sampler, len(dataset), int(seed)),  # type: ignore[arg-type]
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=bool(train),
        generator=torch.Generator().manual_seed(int(seed)),
        persistent_workers=workers > 0 and persistent_workers,
        multiprocessing_context=multiprocessing_context if workers > 0 else None,
    )


def loader_sampler(loader: DataLoader) -> Sampler | None:
    """The `EpochSampler` of a training loader from `make_loader` (None for evaluation)."""
    sampler = loader.sampler
    return sampler.inner if isinstance(sampler, _Keyed) else sampler


def set_loader_epoch(loader: DataLoader, seed: int, epoch: int) -> None:
    """Make the next pass of a training loader that of ``epoch``: its order and item seeds."""
    loader_sampler(loader).set_epoch(epoch)  # type: ignore[union-attr]
    assert loader.generator is not None  # make_loader always gives one
    loader.generator.manual_seed(epoch_seed(seed, epoch))
