"""CUDA paths: fused neurons through spikingjelly's kernels, AMP, channels-last, SyncBN.

Marked ``gpu`` and skipped without CUDA. The neuron test also runs the CUDA code path's
logic on the CPU (spikingjelly's multi-step functions fall back to torch ops there).
"""

from __future__ import annotations

import os

import pytest
import torch
from models.tiny import TINY_CONFIG
from spikingjelly.activation_based import functional

from eventvision.models import create_model, make_neuron

CUDA = torch.cuda.is_available()
gpu = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="needs CUDA")]
TINY = TINY_CONFIG


def _tiny(**kw):
    torch.manual_seed(0)
    return create_model("spikingresformer_dvsg", **{**TINY, "num_classes": 5, **kw})


def _step(model, x, y):
    """Output and parameter gradients of one training forward/backward, then reset."""
    out = model(x)
    torch.nn.functional.cross_entropy(out.float().mean(0), y).backward()
    functional.reset_net(model)
    grads = {n: p.grad.detach().float().cpu() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    return out.detach().float().cpu(), grads


def _batch(device: str):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 2, 3, 16, 16, generator=g) * 3  # [B, T, C, H, W]
    return x.to(device), torch.randint(0, 5, (2,), generator=g).to(device)


def _assert_steps_close(a, b, rtol: float, atol: float) -> None:
    torch.testing.assert_close(a[0], b[0], rtol=rtol, atol=atol)
    for name, grad in a[1].items():
        torch.testing.assert_close(grad, b[1][name], rtol=rtol, atol=atol, msg=name)


@pytest.mark.parametrize("kind", ["lif", "plif"])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=gpu)])
def test_cuda_neuron_path_equals_stock(kind, device):
    torch.manual_seed(0)
    fused = make_neuron(kind).to(device)
    stock = make_neuron(kind, "spikingjelly").to(device)
    x1 = (torch.randn(6, 3, 5, 7, device=device) * 1.5 + 0.7).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    s1 = fused._forward_cuda(x1) if device == "cpu" else fused(x1)
    s2 = stock(x2)
    assert torch.equal(s1, s2)
    g = torch.randn_like(s1)
    (s1 * g).sum().backward()
    (s2 * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)
    if kind == "plif":
        torch.testing.assert_close(fused.w.grad, stock.w.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fused.v, stock.v)


@pytest.mark.parametrize("neuron_impl", ["fused", "spikingjelly"])
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_cuda_step_equals_cpu_step(neuron_impl):
    x, y = _batch("cpu")
    cpu = _step(_tiny(neuron_impl=neuron_impl).train(), x, y)
    xc, yc = _batch("cuda")
    cuda = _step(_tiny(neuron_impl=neuron_impl).cuda().train(), xc, yc)
    _assert_steps_close(cuda, cpu, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_channels_last_equals_contiguous():
    x, y = _batch("cuda")
    ref = _step(_tiny().cuda().train(), x, y)
    model = _tiny().cuda().to(memory_format=torch.channels_last).train()
    _assert_steps_close(_step(model, x, y), ref, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_amp_step_is_finite_and_near_float32():
    x, y = _batch("cuda")
    ref_out, _ = _step(_tiny().cuda().train(), x, y)
    model = _tiny().cuda().train()
    with torch.autocast("cuda", dtype=torch.float16):
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out.float().mean(0), y)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # float16 can flip a spike near the threshold; the logits stay close on average
    assert (out.float().cpu() - ref_out).abs().mean() < 0.05 * ref_out.abs().mean() + 1e-3


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA")
def test_sync_batchnorm_on_one_rank_equals_batchnorm(tmp_path):
    import torch.distributed as dist

    x, y = _batch("cuda")
    ref = _step(_tiny(low_memory=False).cuda().train(), x, y)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("nccl", store=store, rank=0, world_size=1)
    try:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(_tiny(low_memory=False)).cuda()
        assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
        _assert_steps_close(_step(model.train(), x, y), ref, rtol=1e-3, atol=1e-4)
    finally:
        dist.destroy_process_group()
