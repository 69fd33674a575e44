"""Distributed training under ``torchrun``: process group, DDP wrapping, samplers and reductions.

``torchrun --nproc-per-node N -m eventvision.cli.main train ...`` (or ``eventvision`` as the
entry point) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR``/``MASTER_PORT``;
without them everything runs in one process. The backend is NCCL on CUDA and gloo on the CPU.
Only rank 0 writes logs, metrics and checkpoints.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..data.loader import EpochSampler as EpochSampler
from ..errors import ConfigError

__all__ = [
    "DistInfo",
    "init_distributed",
    "close_distributed",
    "wrap_model",
    "check_sync_bn",
    "average_buffers",
    "sync_buffers",
    "all_reduce_sum",
    "barrier",
    "EpochSampler",
    "shard_indices",
]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: rank, world size, local rank and the device it uses."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Whether this process logs and writes files (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def _pick_device(device: str, local_rank: int) -> torch.device:
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda") or device == "auto":
        if not torch.cuda.is_available():
            if device == "auto":
                return torch.device("cpu")
            raise ConfigError(f"device {device!r} requested but CUDA is not available")
        if device.startswith("cuda:"):
            return torch.device(device)
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    raise ConfigError(f"unknown device {device!r}; expected auto, cpu, cuda or cuda:N")


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when ``WORLD_SIZE > 1``; pick this process's device."""
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = _pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def close_distributed(info: DistInfo) -> None:
    """Leave the process group (a no-op in single-process runs)."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(
    model: nn.Module, info: DistInfo, sync_bn: bool = False, broadcast_buffers: bool = False
) -> nn.Module:
    """DistributedDataParallel around ``model`` when distributed (SyncBN on CUDA if asked).

    ``broadcast_buffers``: DDP copies rank 0's buffers to every rank at each forward; off by
    default, where :func:`sync_buffers` averages the rank-local buffers at each epoch's end.
    """
    if not info.distributed:
        return model
    if sync_bn and info.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=ids, broadcast_buffers=broadcast_buffers
    )


def check_sync_bn(sync_bn: bool, info: DistInfo) -> None:
    """Refuse ``sync_bn`` where it cannot synchronise: several processes on the CPU (gloo)."""
    if sync_bn and info.distributed and info.device.type != "cuda":
        raise ConfigError(
            "[train] sync_bn = true needs CUDA (SyncBatchNorm is NCCL-only); "
            "set --set train.sync_bn=false to train with per-process batch statistics"
        )


def _is_shared_buffer(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf in ("running_mean", "running_var") or leaf.startswith("firing_rate")


@torch.no_grad()
def average_buffers(model: nn.Module, info: DistInfo) -> int:
    """Average BN running statistics and DSSA firing-rate buffers over all ranks, in place.

    What timm's ``distribute_bn(reduce=True)`` does for BN, extended to the DSSA buffers, so
    every rank evaluates and checkpoints one model (docs/training.md). Returns the number of
    buffers averaged (0 in single-process runs).
    """
    if not info.distributed:
        return 0
    inner = getattr(model, "module", model)
    buffers = [b for n, b in inner.named_buffers() if _is_shared_buffer(n)]
    if not buffers:
        return 0
    flat = torch.cat([b.detach().reshape(-1).double() for b in buffers])  # one collective
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= info.world_size
    offset = 0
    for b in buffers:
        b.copy_(flat[offset : offset + b.numel()].view_as(b).to(b.dtype))
        offset += b.numel()
    return len(buffers)


@torch.no_grad()
def sync_buffers(model: nn.Module, info: DistInfo, broadcast: bool = False) -> int:
    """One set of BN and DSSA buffers on every rank: averaged, or rank 0's with ``broadcast``.

    The one place buffers are made equal across ranks (``[train] ddp_broadcast_buffers``,
    docs/training.md); returns the number of buffers (0 in single-process runs).
    """
    if not broadcast:
        return average_buffers(model, info)
    if not info.distributed:
        return 0
    inner = getattr(model, "module", model)
    buffers = [b for n, b in inner.named_buffers() if _is_shared_buffer(n)]
    for b in buffers:
        dist.broadcast(b, src=0)
    return len(buffers)


def all_reduce_sum(values: Sequence[float], info: DistInfo) -> list[float]:
    """Sum a few numbers over all processes (identity in single-process runs)."""
    if not info.distributed:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if info.device.type == "cuda":
        t = t.to(info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.cpu()]


def barrier(info: DistInfo) -> None:
    """Wait for every process (a no-op in single-process runs)."""
    if info.distributed:
        dist.barrier()


def shard_indices(n: int, info: DistInfo) -> list[int]:
    """This rank's share of ``range(n)`` for evaluation: every sample exactly once overall."""
    return list(range(info.rank, n, info.world_size))
