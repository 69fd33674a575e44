"""The layers' CPU kernels against plain-numpy twins and torch's own convolution and BN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eventvision.models import create_model
from eventvision.models import kernels as kernels_mod
from eventvision.models.kernels import (
    batch_norm_backward_from_output,
    spike_conv2d_forward,
    spike_conv2d_grad_weight,
)
from eventvision.models.layers import BN, MultiStepConv2d

# (channels in, out, kernel, stride, padding, groups, height, width): the model's convolutions
# (1x1, grouped 3x3, patchify 4x4/4 and 2x2/2, downsampling 3x3/2) and odd sizes
CONVS = [
    (8, 12, 1, 1, 0, 1, 6, 5),
    (8, 8, 3, 1, 1, 2, 7, 6),
    (6, 10, 4, 4, 0, 1, 8, 12),
    (6, 4, 2, 2, 0, 1, 6, 6),
    (4, 6, 3, 2, 1, 1, 7, 9),
    (6, 9, 3, 1, 0, 3, 5, 5),
]


def _out_size(size, k, stride, pad):
    return (size + 2 * pad - k) // stride + 1


def _twin_taps(s, k, stride, pad, out_hw):
    """For each nonzero input and tap: (n, c, ky, kx, oy, ox, value), with np.nonzero."""
    n, c, y, x = np.nonzero(s)
    for ky in range(k):
        for kx in range(k):
            ty, tx = y + pad - ky, x + pad - kx
            ok = (ty >= 0) & (tx >= 0) & (ty % stride == 0) & (tx % stride == 0)
            ok &= (ty // stride < out_hw[0]) & (tx // stride < out_hw[1])
            yield n[ok], c[ok], ky, kx, ty[ok] // stride, tx[ok] // stride, s[n, c, y, x][ok]


def _twin_forward(s, w, stride, pad, groups):
    """conv2d by scattering each nonzero input's weights (np.add.at), in float64."""
    N, C, H, W = s.shape
    O, cpg, k, _ = w.shape
    opg = O // groups
    out_hw = (_out_size(H, k, stride, pad), _out_size(W, k, stride, pad))
    out = np.zeros((N, O, *out_hw))
    for n, c, ky, kx, oy, ox, v in _twin_taps(s, k, stride, pad, out_hw):
        for o in range(opg):
            oc = (c // cpg) * opg + o
            np.add.at(out, (n, oc, oy, ox), v * w[oc, c % cpg, ky, kx])
    return out


def _twin_grad_weight(s, gout, w_shape, stride, pad, groups):
    """The weight gradient by the same scatter: gw[o, c, ky, kx] += s * gout[n, o, oy, ox]."""
    O, cpg, k, _ = w_shape
    opg = O // groups
    gw = np.zeros(w_shape)
    for n, c, ky, kx, oy, ox, v in _twin_taps(s, k, stride, pad, gout.shape[2:]):
        for o in range(opg):
            oc = (c // cpg) * opg + o
            np.add.at(gw, (oc, c % cpg, ky, kx), v * gout[n, oc, oy, ox])
    return gw


def _spikes(shape, density, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < density).to(dtype)


@pytest.mark.parametrize("conv", CONVS)
@pytest.mark.parametrize("density", [0.0, 0.15, 1.0])
def test_forward_equals_twin_and_conv2d(conv, density):
    cin, cout, k, stride, pad, groups, h, w = conv
    s = _spikes((3, cin, h, w), density, seed=1)
    weight = torch.randn(cout, cin // groups, k, k, dtype=torch.float64)
    mask = torch.empty(s.shape, dtype=torch.bool)
    out, binary = spike_conv2d_forward(s, weight, (stride, stride), (pad, pad), groups, mask=mask)
    assert binary
    assert torch.equal(mask, s != 0)
    twin = _twin_forward(s.numpy(), weight.numpy(), stride, pad, groups)
    np.testing.assert_allclose(out.numpy(), twin, rtol=1e-12, atol=1e-12)
    ref = F.conv2d(s, weight, None, stride, pad, 1, groups)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("conv", CONVS)
def test_grad_weight_equals_twin_and_convolution_backward(conv):
    cin, cout, k, stride, pad, groups, h, w = conv
    s = _spikes((5, cin, h, w), 0.2, seed=2)
    weight = torch.randn(cout, cin // groups, k, k, dtype=torch.float64)
    gout = torch.randn(F.conv2d(s, weight, None, stride, pad, 1, groups).shape, dtype=s.dtype)
    gw = spike_conv2d_grad_weight(
        s.bool(), gout, weight.shape, (stride, stride), (pad, pad), groups
    )
    twin = _twin_grad_weight(s.numpy(), gout.numpy(), tuple(weight.shape), stride, pad, groups)
    np.testing.assert_allclose(gw.numpy(), twin, rtol=1e-12, atol=1e-12)
    ref = torch.ops.aten.convolution_backward(
        gout, s, weight, None, (stride,) * 2, (pad,) * 2, (1, 1), False, (0, 0), groups,
        (False, True, False),
    )[1]  # fmt: skip
    torch.testing.assert_close(gw, ref, rtol=1e-12, atol=1e-12)


def test_forward_weighs_values_other_than_one():
    # the kernel skips zeros and multiplies the rest: exact for any sparse input
    s = _spikes((2, 4, 5, 5), 0.3, seed=3) * torch.randn(2, 4, 5, 5, dtype=torch.float64)
    weight = torch.randn(6, 2, 3, 3, dtype=torch.float64)
    out, binary = spike_conv2d_forward(s, weight, (1, 1), (1, 1), 2)
    assert not binary
    torch.testing.assert_close(out, F.conv2d(s, weight, None, 1, 1, 1, 2))


def test_one_spike_lands_on_its_taps():
    s = torch.zeros(1, 1, 4, 4)
    s[0, 0, 1, 2] = 1.0
    weight = torch.arange(9.0).reshape(1, 1, 3, 3)
    out = spike_conv2d_forward(s, weight, (1, 1), (1, 1), 1)[0][0, 0]
    # output (oy, ox) receives w[ky, kx] with oy = 1 + 1 - ky, ox = 2 + 1 - kx
    expected = torch.zeros(4, 4)
    expected[0:3, 1:4] = torch.arange(9.0).reshape(3, 3).flip(0, 1)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("conv", CONVS)
def test_multistep_conv_sparse_equals_dense(conv, monkeypatch):
    cin, cout, k, stride, pad, groups, h, w = conv
    layer = MultiStepConv2d(cin, cout, k, stride, pad, groups=groups).double()
    results = []
    for enabled in (True, False):
        monkeypatch.setattr(kernels_mod, "_ENABLED", enabled)
        s = _spikes((2, 3, cin, h, w), 0.2, seed=4).requires_grad_()
        layer.zero_grad()
        out = layer(s)
        out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(5)).double())
        results.append((out.detach(), s.grad, layer.weight.grad.clone()))
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bn_backward_from_output_equals_torch(dtype):
    torch.manual_seed(6)
    x = (torch.randn(6, 5, 7, 3, dtype=dtype) * 2 + 0.5).requires_grad_()
    weight = (torch.rand(5, dtype=dtype) + 0.5).requires_grad_()
    bias = torch.randn(5, dtype=dtype).requires_grad_()
    out = F.batch_norm(x, None, None, weight, bias, training=True, eps=1e-5)
    g = torch.randn_like(out)
    out.backward(g)
    invstd = torch.rsqrt(x.detach().var((0, 2, 3), unbiased=False) + 1e-5)
    grads = batch_norm_backward_from_output(g, out.detach(), weight, bias, invstd)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    for got, want in zip(grads, (x.grad, weight.grad, bias.grad), strict=True):
        torch.testing.assert_close(got, want, **tol)


def test_bn_layer_uses_the_input_when_a_weight_is_near_zero(monkeypatch):
    # rebuilding x_hat from the output divides by gamma: near 0 the layer keeps its input
    bn = BN(3).double()
    bn.bn.weight.data[1] = 1e-6
    x = torch.randn(2, 4, 3, 5, 5, dtype=torch.float64)
    grads = []
    for enabled in (True, False):
        monkeypatch.setattr(kernels_mod, "_ENABLED", enabled)
        xx = x.clone().requires_grad_()
        bn.zero_grad()
        bn(xx).pow(2).sum().backward()
        grads.append((xx.grad, bn.bn.weight.grad.clone()))
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want)


def test_model_step_sparse_equals_dense_in_float64():
    # the CPU fast path (kernels, DSSA scales on the small operands, float attention maps
    # kept) changes the order of the sums only: in float64 no spike flips
    x = torch.rand(2, 2, 3, 32, 32, dtype=torch.float64) * 2
    results = []
    for enabled in (True, False):
        torch.manual_seed(0)
        model = create_model("spikingresformer_dvsg", img_size=32, T=2, cpu_kernels=enabled)
        model = model.double()
        model.train()
        out = model(x)
        out.mean(0).logsumexp(1).sum().backward()
        grads = [p.grad for p in model.parameters()]
        results.append((out.detach(), grads))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-10, atol=1e-10)
    for got, want in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)


def test_inference_forward_is_sparse_and_equal(monkeypatch):
    layer = MultiStepConv2d(8, 8, 3, padding=1, groups=2).double().eval()
    s = _spikes((2, 3, 8, 6, 6), 0.1, seed=7)
    calls = []
    monkeypatch.setattr(kernels_mod, "_forward_kernel", _spy(kernels_mod._forward_kernel, calls))
    with torch.no_grad():
        out = layer(s)
    assert calls, "the no-grad forward pass did not take the spike-driven kernel"
    torch.testing.assert_close(
        out.flatten(0, 1), F.conv2d(s.flatten(0, 1), layer.weight, None, 1, 1, 1, 2)
    )


def _spy(fn, calls):
    def wrapped(*args):
        calls.append(1)
        return fn(*args)

    return wrapped


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bn_in_place_after_a_conv_equals_torch(dtype, monkeypatch):
    torch.manual_seed(12)
    conv = MultiStepConv2d(4, 6, 3, padding=1).to(dtype)
    bn = BN(6, inplace=True).to(dtype)
    bn.bn.weight.data.uniform_(0.5, 1.5)
    bn.bn.bias.data.uniform_(-1, 1)
    s = _spikes((3, 2, 4, 6, 5), 0.3, seed=13, dtype=dtype)
    g = torch.randn(3, 2, 6, 6, 5, dtype=dtype)
    results = []
    for enabled in (True, False):
        monkeypatch.setattr(kernels_mod, "_ENABLED", enabled)
        bn.bn.reset_running_stats()
        conv.zero_grad()
        bn.zero_grad()
        x = s.clone().requires_grad_()
        out = bn(conv(x))
        out.backward(g)
        stats = (bn.bn.running_mean.clone(), bn.bn.running_var.clone())
        results.append((out.detach(), x.grad, conv.weight.grad, bn.bn.weight.grad, *stats))
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}
    for got, want in zip(*results, strict=True):
        torch.testing.assert_close(got, want, **tol)


@pytest.mark.parametrize("inplace", [False, True])
def test_bn_never_overwrites_a_leaf_or_an_input_it_was_not_given(inplace):
    bn = BN(3, inplace=inplace)
    leaf = torch.randn(2, 2, 3, 4, 4, requires_grad=True)
    kept = leaf.detach().clone()
    bn(leaf).sum().backward()  # a leaf: never in place
    assert torch.equal(leaf.detach(), kept)
    # not a leaf, shaped like a convolution's [T*B, C, H, W] output seen as [T, B, ...], but
    # not a convolution's output: never in place
    x = (leaf.flatten(0, 1) * 2).reshape(leaf.shape)
    before = x.detach().clone()
    bn(x)
    assert torch.equal(x.detach(), before)
    # a convolution's output that nothing else reads: in place when the layer is told so
    conv = MultiStepConv2d(2, 3, 1)
    y = conv(_spikes((2, 2, 2, 4, 4), 0.5, seed=14, dtype=torch.float32))
    before = y.detach().clone()
    bn(y)
    assert torch.equal(y.detach(), before) != inplace
