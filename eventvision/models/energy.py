"""Firing rates, synaptic operations (SOPs) and the paper's energy estimate.

Conventions (those of the official ``SOPMonitor``, PAPER.md "Energy"):

* SOPs are counted in eval mode on every conv, linear and DSSA matmul except the modules in
  ``model.skip`` (the first, real-valued conv ``prologue.0`` and the ``classifier``):
  a conv counts each input value times its fan-out (``conv2d(x, ones_like(W)).sum()``), a
  matmul with a spike right operand counts ``(ones_like(left) @ right).sum()``. SOPs are per
  image, summed over all T steps.
* Energy (the paper's number) = 0.9 pJ x SOPs. The first conv's MACs (per image, all steps)
  are reported separately, and ``energy_with_first_conv_mj`` adds 4.6 pJ per MAC for them;
  the classifier, BN and neuron updates are not counted, as in the paper.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from spikingjelly.activation_based.neuron import BaseNode
from torch import nn

from .layers import DSSA, SpikingMatmul
from .neurons import FusedLIF

__all__ = ["E_AC_PJ", "E_MAC_PJ", "EnergyReport", "measure_energy", "firing_rates"]

E_AC_PJ = 0.9  # energy per synaptic operation (accumulate), pJ
E_MAC_PJ = 4.6  # energy per multiply-accumulate, pJ


@dataclass
class EnergyReport:
    """Result of :func:`measure_energy`; all counts are per image, summed over time steps."""

    images: int
    sops: float
    sops_per_layer: dict[str, float]
    firing_rates: dict[str, float]
    dssa_rates: dict[str, dict[str, list[float]]]
    first_conv_macs: float
    energy_mj: float
    energy_with_first_conv_mj: float
    notes: str = field(
        default="energy_mj = 0.9 pJ x SOPs (paper); + 4.6 pJ x first-conv MACs in "
        "energy_with_first_conv_mj"
    )

    def format_table(self) -> str:
        """A plain-text report: totals, per-DSSA buffer vs measured rates, per-layer rates."""
        lines = [
            f"images: {self.images}",
            f"SOPs per image: {self.sops / 1e9:.4f} G",
            f"energy (0.9 pJ/SOP): {self.energy_mj:.4f} mJ",
            f"first conv MACs: {self.first_conv_macs / 1e9:.4f} G; energy incl. first conv "
            f"(4.6 pJ/MAC): {self.energy_with_first_conv_mj:.4f} mJ",
            "DSSA firing rates per head (buffer -> measured):",
        ]
        for name, r in self.dssa_rates.items():
            fx = ", ".join(
                f"{b:.3f}->{m:.3f}" for b, m in zip(r["buffer_x"], r["measured_x"], strict=True)
            )
            fa = ", ".join(
                f"{b:.3f}->{m:.3f}"
                for b, m in zip(r["buffer_attn"], r["measured_attn"], strict=True)
            )
            lines.append(f"  {name}: x [{fx}]  attn [{fa}]")
        lines.append("firing rate per neuron layer:")
        lines += [f"  {k}: {v:.4f}" for k, v in self.firing_rates.items()]
        return "\n".join(lines)


def _conv_sops(conv: nn.Conv2d, x: torch.Tensor) -> float:
    """``conv2d(x, ones_like(W)).sum()`` computed per group on channel sums (same count)."""
    x = x.flatten(0, 1) if x.dim() == 5 else x  # [T*B, C, H, W]
    g = conv.groups
    n, c, h, w = x.shape
    per_group = x.double().reshape(n, g, c // g, h, w).sum(2)  # [N, G, H, W]
    ones = torch.ones(g, 1, *conv.kernel_size, dtype=per_group.dtype, device=x.device)
    fanin = F.conv2d(per_group, ones, None, conv.stride, conv.padding, conv.dilation, g)
    return float(fanin.sum()) * (conv.out_channels // g)


def _is_neuron(m: nn.Module) -> bool:
    return isinstance(m, (FusedLIF, BaseNode))


def _batches(data) -> Iterable[torch.Tensor]:
    if isinstance(data, torch.Tensor):
        yield data
        return
    if isinstance(data, (tuple, list)) and data and isinstance(data[0], torch.Tensor):
        yield data[0]  # one (inputs, targets) batch
        return
    for batch in data:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def measure_energy(model: nn.Module, data, max_batches: int | None = None) -> EnergyReport:
    """Per-layer firing rates, SOPs and energy of ``model`` on a batch or a loader.

    Args:
        model: a SpikingResformer (any module with ``skip``, DSSA blocks and neurons works).
        data: an input batch, an ``(inputs, targets)`` pair, or an iterable of either.
        max_batches: stop after this many batches.

    Returns:
        An :class:`EnergyReport`. The model is left in eval mode with its neurons reset.
    """
    skip = set(getattr(model, "skip", ()))
    model.eval()
    functional.reset_net(model)
    sops: dict[str, float] = defaultdict(float)
    spikes: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # name -> [sum, count]
    dssa_sums: dict[str, dict[str, torch.Tensor]] = {}
    first_conv_macs = 0.0
    handles = []

    def conv_hook(name):
        def hook(mod, inp, out):
            sops[name] += _conv_sops(mod, inp[0])

        return hook

    def linear_hook(name):
        def hook(mod, inp, out):
            sops[name] += float(inp[0].double().sum()) * mod.out_features

        return hook

    def matmul_hook(name):
        def hook(mod, inp, out):
            left, right = inp
            batch = torch.broadcast_shapes(left.shape[:-2], right.shape[:-2])
            factor = math.prod(batch) / max(1, math.prod(right.shape[:-2]))
            sops[name] += float(right.double().sum()) * left.shape[-2] * factor

        return hook

    def neuron_hook(name):
        def hook(mod, inp, out):
            acc = spikes[name]
            acc[0] += float(out.double().sum())
            acc[1] += out.numel()

        return hook

    def dssa_hook(name, key, heads):
        def hook(mod, inp, out):
            r = out.reshape(*out.shape[:2], heads, -1).double()  # [T, B, heads, ...]
            acc = dssa_sums.setdefault(name, {})
            acc[key] = acc.get(key, 0) + r.sum((0, 1, 3))
            acc[key + "_n"] = acc.get(key + "_n", 0) + r[:, :, 0].numel()

        return hook

    def first_conv_hook(mod, inp, out):
        nonlocal first_conv_macs
        k = math.prod(mod.kernel_size) * mod.in_channels // mod.groups
        first_conv_macs += float(out.numel()) * k

    backends = {}
    for name, m in model.named_modules():
        if name == "prologue.0" and isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(first_conv_hook))
        if name in skip:
            continue
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook(name)))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook(name)))
        elif isinstance(m, SpikingMatmul):
            handles.append(m.register_forward_hook(matmul_hook(name)))
        elif _is_neuron(m):
            handles.append(m.register_forward_hook(neuron_hook(name)))
        if isinstance(m, DSSA):
            backends[m] = m.attention_backend
            m.attention_backend = "float"  # count the official products
            handles.append(m.activation_in.register_forward_hook(dssa_hook(name, "x", m.num_heads)))
            handles.append(
                m.activation_attn.register_forward_hook(dssa_hook(name, "attn", m.num_heads))
            )
    images = 0
    try:
        for i, x in enumerate(_batches(data)):
            if max_batches is not None and i >= max_batches:
                break
            model(x)
            functional.reset_net(model)
            images += x.shape[0]
    finally:
        for h in handles:
            h.remove()
        for m, b in backends.items():
            m.attention_backend = b
    if images == 0:
        raise ValueError("measure_energy: no batches in data")
    per_layer = {k: v / images for k, v in sops.items()}
    total = sum(per_layer.values())
    dssa_rates = {}
    for name, acc in dssa_sums.items():
        m = model.get_submodule(name)
        dssa_rates[name] = {
            "buffer_x": m.firing_rate_x.flatten().tolist(),
            "measured_x": (acc["x"] / acc["x_n"]).tolist(),
            "buffer_attn": m.firing_rate_attn.flatten().tolist(),
            "measured_attn": (acc["attn"] / acc["attn_n"]).tolist(),
        }
    macs = first_conv_macs / images
    energy = E_AC_PJ * total * 1e-9  # pJ -> mJ
    return EnergyReport(
        images=images,
        sops=total,
        sops_per_layer=per_layer,
        firing_rates={k: s / max(n, 1) for k, (s, n) in spikes.items()},
        dssa_rates=dssa_rates,
        first_conv_macs=macs,
        energy_mj=energy,
        energy_with_first_conv_mj=energy + E_MAC_PJ * macs * 1e-9,
    )


def firing_rates(model: nn.Module, data, max_batches: int | None = None) -> dict[str, float]:
    """Mean firing rate of every neuron layer on ``data`` (see :func:`measure_energy`)."""
    return measure_energy(model, data, max_batches).firing_rates
