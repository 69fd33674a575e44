"""make_loader: the one place where DataLoaders are built, seeded and reproducible."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import ConfigError

__all__ = ["make_loader"]


class _SeededShuffle(Sampler[int]):
    """A new permutation each epoch, a function of (seed, epoch) alone.

    DataLoader's own RandomSampler shares its generator with the worker seeds, whose draws
    differ between 0 workers and persistent workers; this keeps the order the same for both.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use the order of `epoch` (for a resumed run)."""
        self.epoch = int(epoch)

    def __iter__(self):
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
        self.epoch += 1
        yield from torch.randperm(self.n, generator=generator).tolist()


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
    multiprocessing_context: str | None = None,
) -> DataLoader:
    """A DataLoader with a seeded order: shuffled and dropping the last partial batch when `train`.

    Args:
        dataset: any map-style dataset, e.g. `FrameDataset` or `StaticImageDataset`.
        batch_size: samples per batch.
        train: shuffle, a new permutation each epoch drawn from (seed, epoch) only
            (`loader.sampler.set_epoch(e)` resumes at epoch e), and drop the last incomplete
            batch; otherwise keep the dataset order and every sample.
        workers: worker processes; above 0 they are persistent across epochs.
        seed: seeds the order and the workers' torch, numpy and random generators, so the
            same seed and number of workers give the same batches, augmentations included.
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
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=_SeededShuffle(len(dataset), int(seed)) if train else None,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=bool(train),
        generator=generator,
        worker_init_fn=_seed_worker if workers > 0 else None,
        persistent_workers=workers > 0,
        multiprocessing_context=multiprocessing_context if workers > 0 else None,
    )
