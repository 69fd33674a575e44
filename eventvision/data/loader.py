"""make_loader: the one place where DataLoaders are built, seeded and reproducible."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..errors import ConfigError

__all__ = ["EpochSampler", "epoch_seed", "make_loader", "set_loader_epoch"]


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


def _seed_worker(worker_id: int) -> None:
    # DataLoader seeds torch per worker (base seed from the loader's generator + worker id);
    # numpy and random are not, so derive theirs from it.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


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
        seed: seeds the order and the workers' torch, numpy and random generators, so the
            same seed and number of workers give the same batches, augmentations included.
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
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=bool(train),
        generator=torch.Generator().manual_seed(int(seed)),
        worker_init_fn=_seed_worker if workers > 0 else None,
        persistent_workers=workers > 0 and persistent_workers,
        multiprocessing_context=multiprocessing_context if workers > 0 else None,
    )


def set_loader_epoch(loader: DataLoader, seed: int, epoch: int) -> None:
    """Make the next pass of a training loader that of ``epoch``: its order and worker seeds."""
    loader.sampler.set_epoch(epoch)  # type: ignore[union-attr]
    assert loader.generator is not None  # make_loader always gives one
    loader.generator.manual_seed(epoch_seed(seed, epoch))
