"""The layers' fast paths give exact gradients or raise: never a silent wrong number.

Each case runs on both paths of a spiking convolution: the spike-driven kernels
(``kernels._ENABLED``, where batch norm also runs in place) and oneDNN / torch's ops.
The truths are plain ``torch.nn.functional`` ops on the same inputs, in float64.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from eventvision.models import kernels as kernels_mod
from eventvision.models.layers import BN, MultiStepConv2d, SpikingMatmul
from eventvision.models.neurons import make_neuron

PATHS = {"kernels": True, "onednn": False}
# (channels in, out, kernel, stride, padding, groups): 1x1, grouped 3x3, patchify, downsampling
CONVS = [(4, 6, 1, 1, 0, 1), (4, 4, 3, 1, 1, 2), (4, 6, 2, 2, 0, 1), (4, 6, 3, 2, 1, 1)]


@pytest.fixture(params=PATHS.values(), ids=PATHS.keys())
def path(request, monkeypatch):
    monkeypatch.setattr(kernels_mod, "_ENABLED", request.param)
    return request.param


def _real(shape, seed, density=0.3):
    """Sparse real values: zeros, and nonzeros that are not 1."""
    g = torch.Generator().manual_seed(seed)
    keep = torch.rand(shape, generator=g, dtype=torch.float64) < density
    return torch.randn(shape, generator=g, dtype=torch.float64) * 3 * keep


def _conv(cin, cout, k, stride, pad, groups, sparse=True):
    torch.manual_seed(0)
    conv = MultiStepConv2d(cin, cout, k, stride, pad, groups=groups, sparse=sparse)
    return conv.double()


@pytest.mark.parametrize("conf", CONVS)
def test_a_spike_conv_given_real_values_has_the_exact_gradients(conf, path):
    conv = _conv(*conf)
    x = _real((2, 3, 4, 6, 6), seed=1).requires_grad_()  # [T, B, C, H, W]
    out = conv(x)
    g = torch.randn(out.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    out.backward(g)
    x_ref = x.detach().flatten(0, 1).requires_grad_()
    w_ref = conv.weight.detach().clone().requires_grad_()
    stride, pad, groups = conf[3], conf[4], conf[5]
    ref = F.conv2d(x_ref, w_ref, None, stride, pad, 1, groups)
    ref.backward(g.flatten(0, 1))
    torch.testing.assert_close(out.detach().flatten(0, 1), ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(conv.weight.grad, w_ref.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(x.grad.flatten(0, 1), x_ref.grad, rtol=1e-12, atol=1e-12)


def test_our_spikes_are_marked_and_a_write_removes_the_mark(path):
    # the oneDNN path trusts the mark; one value written after it must not be trusted
    neuron = make_neuron("lif")
    conv = _conv(4, 6, 3, 1, 1, 1)
    s = neuron(torch.rand(2, 3, 4, 6, 6, dtype=torch.float64) * 4)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    s = s.detach()  # a new tensor: no mark, the value check decides
    with torch.no_grad():
        s[0, 0, 0, 0, 0] = 2.5
    s.requires_grad_()
    out = conv(s)
    g = torch.randn_like(out)
    out.backward(g)
    w = conv.weight.detach().clone().requires_grad_()
    F.conv2d(s.detach().flatten(0, 1), w, None, 1, 1).backward(g.flatten(0, 1))
    torch.testing.assert_close(conv.weight.grad, w.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("keep_float", [False, True])
def test_a_spiking_matmul_given_real_values_has_the_exact_gradients(keep_float):
    mm = SpikingMatmul()
    mm.keep_float = keep_float
    left = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    right = _real((2, 5, 4), seed=3).requires_grad_()
    out = mm(left, right)
    out.backward(torch.ones_like(out))
    l2, r2 = left.detach().requires_grad_(), right.detach().requires_grad_()
    torch.matmul(l2, r2).backward(torch.ones_like(out))
    torch.testing.assert_close(left.grad, l2.grad)
    torch.testing.assert_close(right.grad, r2.grad)


def _conv_bn(cin=4, cout=6, hw=6):
    conv = _conv(cin, cout, 3, 1, 1, 1)
    bn = BN(cout, inplace=True).double()
    bn.bn.weight.data.uniform_(0.5, 1.5)
    bn.bn.bias.data.uniform_(-1, 1)
    s = (torch.rand(2, 2, cin, hw, hw, dtype=torch.float64) < 0.3).double().requires_grad_()
    return conv, bn, s


def _reference_bn(bn: BN, x: torch.Tensor) -> torch.Tensor:
    T, B = x.shape[:2]
    out = F.batch_norm(
        x.flatten(0, 1), None, None, bn.bn.weight, bn.bn.bias, training=True, eps=bn.bn.eps
    )
    return out.reshape(T, B, *out.shape[1:])


def _grads(conv, bn, s, out, g):
    conv.zero_grad()
    bn.zero_grad()
    s.grad = None
    out.backward(g)
    return [s.grad.clone(), conv.weight.grad.clone(), bn.bn.weight.grad.clone()]


def _reference_grads(conv, bn, s, g, between=lambda y: y):
    y = F.conv2d(s.flatten(0, 1), conv.weight, None, 1, 1)
    out = _reference_bn(bn, between(y.reshape(*s.shape[:2], *y.shape[1:])))
    return _grads(conv, bn, s, out, g)


def _assert_all_close(got, want):
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_in_place_bn_leaves_the_output_a_conv_hook_kept(path):
    conv, bn, s = _conv_bn()
    kept = []
    conv.register_forward_hook(lambda m, args, out: kept.append((out, out.detach().clone())))
    out = bn(conv(s))
    (seen, snapshot) = kept[0]
    assert torch.equal(seen.detach(), snapshot)
    torch.testing.assert_close(out, _reference_bn(bn, snapshot))
    g = torch.randn_like(out)
    _assert_all_close(_grads(conv, bn, s, out, g), _reference_grads(conv, bn, s, g))


def test_in_place_bn_leaves_the_input_its_own_pre_hook_kept(path):
    conv, bn, s = _conv_bn()
    kept = []
    bn.register_forward_pre_hook(lambda m, args: kept.append((args[0], args[0].detach().clone())))
    bn(conv(s))
    assert torch.equal(kept[0][0].detach(), kept[0][1])


def test_in_place_bn_of_a_same_shape_transposed_view(path):
    conv, bn, s = _conv_bn(hw=6)
    y = conv(s)  # [T, B, C, H, W] with H == W
    x = y.transpose(-1, -2)  # the same shape, other strides, on the conv's output
    out = bn(x)
    want = _reference_bn(bn, x.detach().clone())
    torch.testing.assert_close(out, want)
    g = torch.randn_like(out)
    between = lambda y: y.transpose(-1, -2)  # noqa: E731
    _assert_all_close(_grads(conv, bn, s, out, g), _reference_grads(conv, bn, s, g, between))


def test_in_place_bn_of_a_non_contiguous_or_written_conv_output(path):
    conv, bn, s = _conv_bn(hw=6)
    y = conv(s)
    x = y[:, :, :, 1:5]  # a slice: another shape and offset
    before = y.detach().clone()
    bn2 = BN(6, inplace=True).double()
    torch.testing.assert_close(bn2(x), _reference_bn(bn2, x.detach()))
    assert torch.equal(y.detach(), before)


def _double_backward(make_out, leaves):
    """A gradient penalty: the gradient's norm, differentiated once more."""
    out = make_out()
    grads = torch.autograd.grad(out.pow(2).sum(), leaves, create_graph=True)
    penalty = sum(g.pow(2).sum() for g in grads)
    penalty.backward()


def test_double_backward_through_a_spike_conv_raises(path):
    conv = _conv(4, 6, 3, 1, 1, 1)
    s = (torch.rand(2, 2, 4, 6, 6, dtype=torch.float64) < 0.3).double().requires_grad_()
    with pytest.raises(RuntimeError, match="once_differentiable"):
        _double_backward(lambda: conv(s), [conv.weight])


def test_double_backward_through_conv_and_bn_raises(path):
    conv, bn, s = _conv_bn()
    with pytest.raises(RuntimeError, match="once_differentiable"):
        _double_backward(lambda: bn(conv(s)), [conv.weight, bn.bn.weight])


def test_double_backward_through_bn_out_of_place_raises(path):
    bn = BN(3).double()
    x = torch.randn(2, 2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        _double_backward(lambda: bn(x * 1), [bn.bn.weight])


def test_double_backward_through_a_neuron_and_a_spiking_matmul_raises():
    neuron = make_neuron("plif")
    x = torch.rand(2, 3, 4, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        _double_backward(lambda: neuron(x * 4) * x, [x])
    mm = SpikingMatmul()
    left = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    right = (torch.rand(2, 5, 4, dtype=torch.float64) < 0.5).double().requires_grad_()
    with pytest.raises(RuntimeError, match="once_differentiable"):
        _double_backward(lambda: mm(left, right), [left])


def test_in_place_bn_after_the_real_valued_stem_conv(monkeypatch):
    # the stem's convolution (spike_input=False) feeds its BN alone: normalised in place
    monkeypatch.setattr(kernels_mod, "_ENABLED", True)
    conv = MultiStepConv2d(3, 4, 3, 1, 1, spike_input=False).double()
    bn = BN(4, inplace=True).double()
    x = torch.randn(2, 2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    y = conv(x)
    out = bn(y)
    assert out.data_ptr() == y.data_ptr()
    torch.testing.assert_close(out, _reference_bn(bn, F.conv2d(x.flatten(0, 1), conv.weight,
        None, 1, 1).reshape(y.shape)))  # fmt: skip
