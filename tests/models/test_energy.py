"""SOPs, energy and firing rates against the official SOPMonitor formulas."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from models.tiny import tiny_firing_model
from spikingjelly.activation_based import functional

from eventvision.models import firing_rates, measure_energy
from eventvision.models.layers import SpikingMatmul


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


def test_paper_energy_convention():
    # SpikingResformer-Ti: 2.73 G SOPs -> 2.46 mJ (0.9 pJ per SOP)
    assert round(0.9e-9 * 2.73e9, 2) == 2.46


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
