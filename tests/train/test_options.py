"""Gradient accumulation, EMA, bf16 autocast, per-step warm-up and the global-batch check."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from eventvision.train import lr_at_epoch
from eventvision.train.config import TrainSpec
from eventvision.train.distributed import DistInfo
from eventvision.train.options import (
    accum_group,
    autocast_context,
    device_notes,
    global_batch_note,
    make_ema,
    make_scaler,
)
from eventvision.train.trainer import _EpochContext, _run_epoch

CPU = torch.device("cpu")


class _Linear(nn.Module):
    """A BN-free model with the trainer's contract: [B, T, C, H, W] in, [T, B, K] out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(2 * 2 * 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(2)).transpose(0, 1)  # [T, B, K]


def _data(n: int = 20) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.randn(n, 2, 2, 2, 2, generator=g), torch.arange(n) % 3)


def _train_once(batch: int, accum: int, ema_decay: float = 0.0, warmup=None, opt=None):
    model = _Linear()
    optimizer = (opt or torch.optim.AdamW)(model.parameters(), lr=0.1)
    ema = make_ema(model, ema_decay)
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=CPU)
    ctx = _EpochContext(
        device=CPU, info=info, optimizer=optimizer, accum_steps=accum, ema=ema, warmup_lr=warmup
    )
    _run_epoch(model, DataLoader(_data(), batch_size=batch), ctx)
    return model, ema, optimizer


def test_accumulation_groups_by_hand():
    assert [accum_group(i, 5, 2) for i in range(5)] == [
        (True, False, 2),
        (False, True, 2),
        (True, False, 2),
        (False, True, 2),
        (True, True, 1),
    ]
    assert all(accum_group(i, 3, 1) == (True, True, 1) for i in range(3))


def test_accumulated_steps_equal_one_larger_batch():
    # 20 samples: batches of 4 in groups of 2 (the last group one batch) == batches 8, 8, 4
    small, _, _ = _train_once(batch=4, accum=2)
    large, _, _ = _train_once(batch=8, accum=1)
    plain, _, _ = _train_once(batch=4, accum=1)
    for a, b, c in zip(small.parameters(), large.parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert not torch.allclose(a, c)  # five steps are not three


def test_ema_follows_timms_update_rule_after_every_step():
    decay = 0.6
    model, ema, _ = _train_once(batch=8, accum=1, ema_decay=decay, opt=torch.optim.SGD)
    # replay the same three SGD steps by hand and average as ModelEmaV3 documents
    ref = _Linear()
    avg = copy.deepcopy(ref)
    opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for x, y in DataLoader(_data(), batch_size=8):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(x).mean(0), y).backward()
        opt.step()
        with torch.no_grad():
            for e, p in zip(avg.parameters(), ref.parameters(), strict=True):
                e.mul_(decay).add_(p, alpha=1 - decay)
    for e, p in zip(ema.module.parameters(), avg.parameters(), strict=True):
        torch.testing.assert_close(e, p)
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert make_ema(model, 0.0) is None


def test_per_step_warmup_raises_the_lr_every_optimiser_step():
    seen = []

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    def schedule(epoch: float) -> float:
        return lr_at_epoch(epoch, 1e-2, 10, warmup_epochs=1, warmup_lr=1e-4)

    _train_once(batch=4, accum=2, warmup=schedule, opt=Spy)  # 3 steps in the epoch
    assert seen == pytest.approx([schedule(0.0), schedule(1 / 3), schedule(2 / 3)])
    assert seen[0] == pytest.approx(1e-4) and seen[0] < seen[1] < seen[2] < 1e-2


def test_bf16_autocasts_on_cpu_and_fp16_needs_cuda():
    a = torch.randn(4, 4)
    with autocast_context(CPU, True, "bfloat16"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast_context(CPU, True, "float16"):
        assert (a @ a).dtype == torch.float32  # fp16 autocast is CUDA-only
    with autocast_context(CPU, False, "bfloat16"):
        assert (a @ a).dtype == torch.float32
    assert make_scaler(CPU, True, "float16") is None
    assert make_scaler(torch.device("cuda"), True, "bfloat16") is None


def test_global_batch_note():
    assert global_batch_note(32, 8, 1, 256) is None
    assert global_batch_note(32, 1, 1, 0) is None
    note = global_batch_note(32, 1, 1, 256)
    assert "global batch 32" in note and "paper's 256" in note and "--accum-steps 8" in note
    assert "product is 256" in global_batch_note(48, 1, 1, 256)


def test_an_option_that_cannot_apply_on_the_device_is_named():
    cuda = torch.device("cuda", 0)
    (amp,) = device_notes(TrainSpec(amp=True), CPU, distributed=False)
    assert amp.startswith('[train] amp = true with amp_dtype = "float16" needs CUDA')
    assert "on cpu trains in float32" in amp and "\n" not in amp
    assert autocast_context(CPU, True, "float16").__class__.__name__ == "nullcontext"  # the fact
    assert device_notes(TrainSpec(amp=True), cuda, distributed=False) == []
    assert device_notes(TrainSpec(amp=True, amp_dtype="bfloat16"), CPU, distributed=False) == []
    assert device_notes(TrainSpec(amp=False), CPU, distributed=False) == []
    (sync,) = device_notes(TrainSpec(amp=False, sync_bn=True), cuda, distributed=False)
    assert sync.startswith("[train] sync_bn = true has nothing to synchronise")
    assert device_notes(TrainSpec(amp=False, sync_bn=True), cuda, distributed=True) == []
