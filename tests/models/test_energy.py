"""SOPs, energy and firing rates against the official SOPMonitor formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from models.tiny import TINY_CONFIG, tiny_firing_model
from spikingjelly.activation_based import functional

from eventvision.models import create_model, firing_rates, measure_energy
from eventvision.models.layers import MultiStepConv2d, SpikingMatmul


def _firing_model():
    model, x = tiny_firing_model()
    for m in model.modules():  # eval BN with small variance: the untrained net fires
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.fill_(0.05)
    return model, x


def _official_sops(model, x):
    """The official SOPMonitor, written out: ones-kernel conv sums and ones @ right."""
    total, hooks = 0.0, []

    def conv_hook(mod, inp, out):
        nonlocal total
        s = inp[0].flatten(0, 1)
        total += float(
            F.conv2d(
                s,
                torch.ones_like(mod.weight),
                None,
                mod.stride,
                mod.padding,
                mod.dilation,
                mod.groups,
            ).sum()
        )

    def mm_hook(mod, inp, out):
        nonlocal total
        total += float((torch.ones_like(inp[0]) @ inp[1]).sum())

    for name, m in model.named_modules():
        if name in model.skip:
            continue
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, SpikingMatmul):
            hooks.append(m.register_forward_hook(mm_hook))
    model.eval()
    with torch.no_grad():
        model(x)
    functional.reset_net(model)
    for h in hooks:
        h.remove()
    return total / x.shape[0]


def test_sops_and_energy_follow_the_official_conventions():
    model, x = _firing_model()
    expected = _official_sops(model, x)
    report = measure_energy(model, [(x, None), (x, None)])
    assert report.images == 4
    assert expected > 0
    assert abs(report.sops - expected) <= 1e-9 * expected
    assert "prologue.0" not in report.sops_per_layer and "classifier" not in report.sops_per_layer
    assert abs(report.energy_mj - 0.9e-9 * report.sops) < 1e-15
    # first conv: 3x3, 3 -> 8 channels, 16x16 output, T = 2 steps, per image
    assert report.first_conv_macs == 2 * 8 * 16 * 16 * 3 * 9
    extra = 4.6e-9 * report.first_conv_macs
    assert abs(report.energy_with_first_conv_mj - report.energy_mj - extra) < 1e-12
    assert "SOPs per image" in report.format_table()


class _Toy(torch.nn.Module):
    """A 3x3 conv (padding 1, 2 -> 3 channels) and a spike matmul, for counts by hand."""

    skip = ()

    def __init__(self):
        super().__init__()
        self.conv = MultiStepConv2d(2, 3, 3, padding=1)
        self.mm = SpikingMatmul()

    def forward(self, s):
        return self.conv(s).sum() + self.mm(torch.ones(5, 4), s[0, 0, 0, :4, :3]).sum()


def test_sops_by_hand_on_a_tiny_layer():
    s = torch.zeros(1, 1, 2, 4, 4)  # [T, B, C, H, W]
    s[0, 0, 0, 0, 0] = 1  # a corner: 4 output positions hold it, x 3 output channels = 12
    s[0, 0, 1, 1, 1] = 1  # inside: 9 positions x 3 = 27
    s[0, 0, 0, 2, 3] = 1  # on the right edge: 6 x 3 = 18
    report = measure_energy(_Toy(), s.transpose(0, 1))  # the toy takes [B, T, ...]: B = 1
    assert report.sops_per_layer["conv"] == 12 + 27 + 18
    # the matmul's right operand s[0, 0, 0, :4, :3] holds 1 spike (the corner; (2, 3) is cut):
    # each adds a column of the 5-row left operand
    assert report.sops_per_layer["mm"] == 5
    assert report.sops == 12 + 27 + 18 + 5
    assert report.energy_mj == pytest.approx(0.9e-9 * 62)


def _attention_model(attention, **kw):
    torch.manual_seed(0)
    model = create_model("spikingresformer_cifar", **TINY_CONFIG, attention=attention, **kw)
    for m in model.modules():  # eval BN with small variance and a bias: the untrained net fires
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.fill_(0.05)
            m.bias.data.uniform_(0.5, 2.5)
    return model.eval()


def _spikes_by_hooks(model, x):
    """Every neuron's output of one eval forward, by module name."""
    seen = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.double()))
        for n, m in model.named_modules()
        if n.endswith("_lif")
    ]
    with torch.no_grad():
        model(x)
    functional.reset_net(model)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("attention", ["ssa", "sdsa", "qkta"])
def test_attention_sops_equal_counts_from_the_neurons_spikes(attention):
    model = _attention_model(attention)
    x = torch.rand(2, 3, 16, 16) * 3
    spikes = _spikes_by_hooks(model, x)
    report = measure_energy(model, x)
    n = x.shape[0]
    block = "layers.1.1"  # stage 1: 8x8 map, patch 2, 2 heads (QKTA: 16 / 8 = 2 heads)
    q, k = spikes[f"{block}.q_lif"], spikes[f"{block}.k_lif"]
    T, B, C, H, W = q.shape
    sops = report.sops_per_layer
    if attention == "ssa":
        v = spikes[f"{block}.v_lif"]
        h, d = 2, C // 2
        kh, vh = k.reshape(T, B, h, d, -1), v.reshape(T, B, h, d, -1)
        pairs = torch.einsum("tbhjl,tbhel->", kh, vh)  # AND-accumulates: both spikes are 1
        assert sops[f"{block}.kv"] == pytest.approx(float(pairs) / n)
        assert sops[f"{block}.qkv"] == pytest.approx(float(q.sum()) * d / n)  # a row per spike
        assert float(pairs) > 0 and float(q.sum()) > 0
    elif attention == "sdsa":
        v = spikes[f"{block}.v_lif"]
        assert sops[f"{block}.kv_gate"] == pytest.approx(float(k.sum()) / n)  # an AND per spike
        assert sops[f"{block}.kv_sum"] == pytest.approx(float((k * v).sum()) / n)
        assert sops[f"{block}.q_gate"] == pytest.approx(float(q.sum()) / n)
        assert float((k * v).sum()) > 0
    else:
        assert sops[f"{block}.q_sum"] == pytest.approx(float(q.sum()) / n)  # an add per spike
        assert sops[f"{block}.k_gate"] == pytest.approx(float(k.sum()) / n)
        assert float(q.sum()) > 0
    # the projection's input is the core: its SOPs are the core's spikes times C (1x1 conv)
    a = spikes.get(f"{block}.attn_lif")
    if attention == "ssa":
        core = a
    elif attention == "sdsa":
        core = q * spikes[f"{block}.kv_lif"].reshape(T, B, C, 1, 1)
    else:
        core = k.reshape(T, B, 2, C // 2, H * W) * a
    assert sops[f"{block}.proj_conv"] == pytest.approx(float(core.sum()) * C / n)
    assert float(core.sum()) > 0


def test_sdsa_pools_count_one_or_per_spike_and_window():
    model = _attention_model("sdsa", sdsa_dvs=True)
    x = torch.rand(2, 3, 16, 16) * 3
    spikes = _spikes_by_hooks(model, x)
    report = measure_energy(model, x)
    k = spikes["layers.0.0.k_lif"]  # [T, B, C, 4, 4]: 16 px, patch 4
    rows = torch.tensor([2.0, 3.0, 3.0, 2.0], dtype=torch.float64)  # windows holding a cell
    windows = rows.reshape(4, 1) * rows.reshape(1, 4)
    expected = float((k * windows).sum()) / x.shape[0]
    assert expected > 0
    assert report.sops_per_layer["layers.0.0.k_pool"] == pytest.approx(expected)


def test_firing_rates_and_dssa_rates_are_measured():
    model, x = _firing_model()
    seen = {}
    dssa = model.layers[1][1]
    h = dssa.activation_in.register_forward_hook(lambda m, i, o: seen.setdefault("s", o))
    report = measure_energy(model, x)
    h.remove()
    rates = report.dssa_rates["layers.1.1"]
    s = seen["s"].reshape(2, 2, 2, -1)  # [T, B, heads, C/heads * H * W]
    torch.testing.assert_close(
        torch.tensor(rates["measured_x"], dtype=torch.float64), s.mean((0, 1, 3)).double()
    )
    assert rates["buffer_x"] == dssa.firing_rate_x.flatten().tolist()
    assert report.firing_rates["layers.1.1.activation_in"] == float(seen["s"].double().mean())
    assert len(report.firing_rates) == 38 and any(v > 0 for v in report.firing_rates.values())
    assert firing_rates(model, x) == report.firing_rates
