"""Fused LIF/PLIF against spikingjelly's stock multi-step neurons."""

from __future__ import annotations

import pytest
import torch
from models.tiny import TINY_CONFIG
from spikingjelly.activation_based import functional
from spikingjelly.activation_based.neuron import LIFNode, ParametricLIFNode

from eventvision.errors import ConfigError
from eventvision.models import FusedLIF, FusedPLIF, make_neuron
from eventvision.models import neurons as neurons_mod


@pytest.fixture(params=["numba", "torch"])
def backend(request, monkeypatch):
    monkeypatch.setattr(neurons_mod, "_USE_NUMBA", request.param == "numba")
    return request.param


def _pair(kind, dtype, **overrides):
    fused = make_neuron(kind, "fused", **overrides).to(dtype)
    stock = make_neuron(kind, "spikingjelly", **overrides).to(dtype)
    return fused, stock


@pytest.mark.parametrize("kind", ["lif", "plif"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_equals_stock(kind, dtype, backend):
    torch.manual_seed(0)
    fused, stock = _pair(kind, dtype)
    x1 = (torch.randn(8, 3, 5, 7, dtype=dtype) * 1.5 + 0.7).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    s1, s2 = fused(x1), stock(x2)
    assert torch.equal(s1, s2)
    assert s1.dtype == dtype and set(s1.unique().tolist()) <= {0.0, 1.0}
    g = torch.randn_like(s1)
    (s1 * g).sum().backward()
    (s2 * g).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)
    if kind == "plif":
        torch.testing.assert_close(fused.w.grad, stock.w.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fused.v, stock.v)


def test_state_carries_across_calls_and_resets(backend):
    torch.manual_seed(1)
    fused, stock = _pair("plif", torch.float32)
    x = torch.rand(3, 10) * 1.2
    for _ in range(2):  # the second call starts from the first call's potential
        assert torch.equal(fused(x), stock(x))
    functional.reset_net(torch.nn.Sequential(fused, stock))
    assert fused.v == 0.0 and stock.v == 0.0
    assert torch.equal(fused(x), make_neuron("plif")(x))


def test_golden_lif_sequence():
    # tau 2, threshold 1, hard reset: H = V + (X - V) / 2
    lif = make_neuron("lif")
    x = torch.tensor([[1.0], [1.0], [1.0], [2.0], [0.0]])
    # H: 0.5, 0.75, 0.875, 1.4375 (spike, V=0), 0.0
    assert lif(x).flatten().tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert lif.v.item() == 0.0


def test_non_default_options_match_stock(backend):
    torch.manual_seed(2)
    opts = dict(tau=3.0, decay_input=False, v_threshold=0.5, v_reset=-0.1, detach_reset=False)
    fused, stock = _pair("lif", torch.float64, **opts)
    x1 = torch.randn(6, 20, dtype=torch.float64, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    s1, s2 = fused(x1), stock(x2)
    assert torch.equal(s1, s2)
    (g1,) = torch.autograd.grad(s1.sum(), x1)
    (g2,) = torch.autograd.grad(s2.sum(), x2)
    torch.testing.assert_close(g1, g2)


def test_plif_parameter_and_keys():
    n = make_neuron("plif")
    assert isinstance(n, FusedPLIF) and list(n.state_dict()) == ["w"] and n.w.item() == 0.0
    assert isinstance(make_neuron("lif"), FusedLIF) and list(make_neuron("lif").state_dict()) == []
    assert isinstance(make_neuron("lif", "spikingjelly"), LIFNode)
    assert isinstance(make_neuron("plif", "spikingjelly"), ParametricLIFNode)


def test_make_neuron_rejects_bad_options():
    with pytest.raises(ConfigError, match="must be one of \\['lif', 'plif'\\]"):
        make_neuron("alif")
    with pytest.raises(ConfigError, match="unknown neuron options \\['backend'\\]"):
        make_neuron("lif", backend="cupy")


@pytest.mark.parametrize("kind", ["lif", "plif"])
def test_single_step_mode_equals_spikingjellys_step_by_step(kind):
    # set_step_mode(..., "s"): one step [N, ...] per call, gradients through the steps (BPTT)
    torch.manual_seed(2)
    fused, stock = _pair(kind, torch.float32)
    functional.set_step_mode(fused, "s")
    stock.step_mode = "s"
    x1 = (torch.randn(6, 4, 5) * 1.5 + 0.7).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    s1 = torch.stack([fused(x1[t]) for t in range(6)])
    s2 = torch.stack([stock(x2[t]) for t in range(6)])
    assert torch.equal(s1, s2)
    g = torch.randn_like(s1)
    (s1 * g).sum().backward()
    (s2 * g).sum().backward()
    assert torch.equal(x1.grad, x2.grad)
    if kind == "plif":
        assert torch.equal(fused.w.grad, stock.w.grad)
    functional.reset_net(fused)
    functional.set_step_mode(fused, "m")
    assert torch.equal(fused(x1.detach()), s1)  # the same spikes as one multi-step call


@pytest.mark.parametrize("impl", ["fused", "spikingjelly"])
def test_spikingjellys_output_monitor_records_every_neuron_layer(impl):
    from spikingjelly.activation_based import monitor, neuron

    from eventvision.models import create_model

    model = create_model("spikingresformer_dvsg", **TINY_CONFIG, neuron_impl=impl)
    layers = [n for n, m in model.named_modules() if isinstance(m, (FusedLIF, LIFNode))]
    layers += [n for n, m in model.named_modules() if isinstance(m, ParametricLIFNode)]
    mon = monitor.OutputMonitor(model, neuron.BaseNode)
    assert sorted(mon.monitored_layers) == sorted(layers) and len(layers) == 38
    with torch.no_grad():
        model(torch.rand(3, 2, 3, 16, 16) * 3)
    assert len(mon.records) == len(layers)
    assert all(r.shape[:2] == (2, 3) for r in mon.records)  # [T, B, ...] of each layer
    assert all(set(r.unique().tolist()) <= {0.0, 1.0} for r in mon.records)
    rates = [float(r.mean()) for r in mon.records]  # the field's firing-rate measurement
    assert any(r > 0 for r in rates)
    mon.remove_hooks()


def test_set_step_mode_on_the_model_is_refused_in_one_line_and_changes_nothing():
    from eventvision.models import create_model

    model = create_model("spikingresformer_dvsg", **TINY_CONFIG)
    with pytest.raises(ValueError, match="multi-step only") as err:
        functional.set_step_mode(model, "s")
    assert "\n" not in str(err.value)
    assert {m.step_mode for m in model.modules() if isinstance(m, FusedLIF)} == {"m"}
    functional.set_step_mode(model, "m")
    assert model.step_mode == "m"
