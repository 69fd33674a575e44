"""Forward semantics, determinism, gradients and the plain-vs-fused equivalence."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional

from eventvision.data.encoding import repeat_encode
from eventvision.models import create_model, list_models

TINY = dict(planes=(8, 16, 32), num_heads=(1, 2, 4), group_size=8, T=2)


def _tiny(name="spikingresformer_dvsg", **kw):
    torch.manual_seed(0)
    return create_model(name, **{**TINY, "img_size": 32, "num_classes": 5, **kw})


@pytest.mark.parametrize("name", list_models())
def test_forward_shape_and_finite(name):
    model = _tiny(name)
    out = model(torch.rand(2, 2, 3, 32, 32))  # [B, T, C, H, W]
    assert out.shape == (2, 2, 5)  # [T, B, classes]
    assert torch.isfinite(out).all()


def test_four_d_input_is_repeated_over_T():
    model = _tiny(T=3)
    x = torch.rand(2, 3, 32, 32)
    out4 = model(x)
    functional.reset_net(model)
    out5 = model(repeat_encode(x, 3))
    assert out4.shape == (3, 2, 5) and torch.equal(out4, out5)


def test_five_d_input_brings_its_own_T():
    model = _tiny(T=2)
    assert model(torch.rand(1, 4, 3, 32, 32)).shape == (4, 1, 5)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 1, 2, 3, 32, 32)])
def test_bad_input_shape(shape):
    with pytest.raises(ValueError, match=r"expected \[B, T, C, H, W\] or \[B, C, H, W\], got"):
        _tiny()(torch.rand(shape))


def test_repeat_encode():
    x = torch.arange(6.0).reshape(1, 1, 2, 3)
    y = repeat_encode(x, 4)
    assert y.shape == (1, 4, 1, 2, 3) and all(torch.equal(y[:, t], x) for t in range(4))
    with pytest.raises(ValueError, match="expected \\[B, C, H, W\\]"):
        repeat_encode(torch.rand(2, 3, 4), 2)


def test_eval_reset_restores_determinism():
    model = _tiny()
    x = torch.rand(2, 2, 3, 32, 32) * 3
    model(x)  # one training batch sets the firing-rate buffers
    functional.reset_net(model)
    model.eval()
    with torch.no_grad():
        a = model(x)
        functional.reset_net(model)
        b = model(x)
    assert torch.equal(a, b)


def test_float64_forward_is_deterministic():
    model = _tiny().double()
    x = torch.rand(2, 2, 3, 32, 32, dtype=torch.float64) * 3
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    a = model(x)
    functional.reset_net(model)
    model.load_state_dict(sd)  # same buffers as before the first pass
    model.layers[0][0].init_firing_rate_x = False
    for m in model.modules():
        if hasattr(m, "init_firing_rate_x"):
            m.init_firing_rate_x = m.init_firing_rate_attn = False
    b = model(x)
    assert a.dtype == torch.float64 and torch.equal(a, b)


@pytest.mark.parametrize("name", ["spikingresformer_dvsg", "spikingresformer_ti"])
def test_gradients_reach_every_parameter(name):
    model = _tiny(name)
    x = torch.rand(4, 2, 3, 32, 32) * 4
    out = model(x)
    torch.nn.functional.cross_entropy(out.mean(0), torch.arange(4) % 5).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not dead
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_state_dict_round_trip_gives_identical_outputs(tmp_path):
    model = _tiny()
    x = torch.rand(2, 2, 3, 32, 32) * 3
    model(x)
    functional.reset_net(model)
    model.eval()
    path = tmp_path / "m.pth"
    torch.save(model.state_dict(), path)
    clone = _tiny()
    clone.load_state_dict(torch.load(path, weights_only=True), strict=True)
    clone.eval()
    with torch.no_grad():
        assert torch.equal(model(x), clone(x))


@pytest.mark.parametrize("name", ["spikingresformer_dvsg", "spikingresformer_ti"])
def test_fused_low_memory_equals_plain_spikingjelly(name):
    # (a head that never fires in the first batch gives scale 1/sqrt(0) = inf, as officially)
    size = 16 if name.endswith("dvsg") else 32
    ours = _tiny(name, img_size=size)
    plain = _tiny(name, img_size=size, neuron_impl="spikingjelly", low_memory=False)
    plain.load_state_dict(ours.state_dict(), strict=True)
    x = torch.rand(3, 2, 3, size, size) * 3
    outs, grads = [], []
    for model in (ours, plain):
        out = model(x)
        torch.nn.functional.cross_entropy(out.mean(0), torch.arange(3)).backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())
        outs.append(out)
        grads.append({n: p.grad for n, p in model.named_parameters()})
        functional.reset_net(model)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    for n, g in grads[1].items():
        scale = g.abs().max().item() + 1e-12
        torch.testing.assert_close(grads[0][n] / scale, g / scale, rtol=0, atol=1e-3, msg=n)
    for (n, b0), b1 in zip(ours.named_buffers(), plain.buffers(), strict=True):
        torch.testing.assert_close(b0, b1, msg=n)


def test_reset_classifier_and_no_weight_decay():
    model = _tiny()
    model.reset_classifier(7)
    assert model(torch.rand(1, 2, 3, 32, 32)).shape == (2, 1, 7)
    nwd = model.no_weight_decay()
    assert "layers.0.0.activation_in.w" in nwd and len(nwd) == 38
    plain = _tiny(neuron_impl="spikingjelly")
    assert plain.no_weight_decay() == nwd


def _saved_bytes(model, x):
    """Bytes kept for backward by one forward (each storage counted once)."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    functional.reset_net(model)
    del out
    return sum(storages.values())


def test_low_memory_path_keeps_less_for_backward():
    x = torch.rand(2, 2, 3, 32, 32) * 3
    compact = _saved_bytes(_tiny(cpu_kernels=False), x)
    fast = _saved_bytes(_tiny(), x)  # keeps the DSSA attention maps as float
    plain = _saved_bytes(_tiny(neuron_impl="spikingjelly", low_memory=False), x)
    assert compact < 0.5 * plain, (compact, plain)
    assert compact < fast < 0.6 * plain, (fast, plain)


def test_autocast_trains():
    model = _tiny(img_size=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.rand(2, 2, 3, 16, 16) * 3)
    out.float().mean().backward()
    assert out.dtype == torch.bfloat16
    assert all(p.grad is not None for p in model.parameters())
