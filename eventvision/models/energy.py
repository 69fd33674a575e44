"""Firing rates, synaptic operations (SOPs) and the paper's energy estimate.

Conventions (those of the official ``SOPMonitor``; docs/models.md, "Energy"):

* SOPs are counted in eval mode on every conv, linear and DSSA matmul except the modules in
  ``model.skip`` (the first, real-valued conv ``prologue.0`` and the ``classifier``):
  a conv counts each input value times its fan-out (``conv2d(x, ones_like(W)).sum()``), a
  matmul with a spike right operand counts ``(ones_like(left) @ right).sum()``. SOPs are per
  image, summed over all T steps.
* The products and gates of the other attentions (``models/attention.py``) count themselves
  (``count_sops``), each by its stated rule: a product of two spike matrices counts the
  AND-accumulates of the pairs that are both 1 (SSA's ``K^T V``); a product with one spike
  operand counts ``nnz(spikes)`` times the other operand's fan-out (SSA's ``Q (K^T V)``, as
  DSSA's rule); a gate of two spike maps counts one AND per spike of its first operand
  (SDSA's ``K ⊙ V`` and ``Q ⊙ kv``, QKTA's ``a ⊙ K``); a sum of spikes one accumulate per
  spike (SDSA's Σ over tokens, QKTA's Σ over a head's channels); SDSA's 3x3 max-pools one OR
  per spike and window. Scalings by constants (SSA's 0.125) are folded into thresholds and
  not counted; neither are the neurons' own updates.
* Energy (the paper's number) = 0.9 pJ x SOPs. The first conv's MACs (per image, all steps)
  are reported separately, and ``energy_with_first_conv_mj`` adds 4.6 pJ per MAC for them;
  the classifier, BN and neuron updates are not counted, as in the paper.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from spikingjelly.activation_based.neuron import BaseNode
from torch import nn

from .layers import DSSA, SpikingMatmul
from .neurons import FusedLIF

__all__ = [
    "E_AC_PJ",
    "E_MAC_PJ",
    "EnergyReport",
    "measure_energy",
    "firing_rates",
    "DSSARateWatch",
    "rate_error",
]

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


def _linear_sops(linear: nn.Linear, x: torch.Tensor) -> float:
    """Each input value times its fan-out (``out_features``)."""
    return float(x.double().sum()) * linear.out_features


def _matmul_sops(left: torch.Tensor, right: torch.Tensor) -> float:
    """``(ones_like(left) @ right).sum()`` for a matmul with a spike right operand."""
    batch = torch.broadcast_shapes(left.shape[:-2], right.shape[:-2])
    factor = math.prod(batch) / max(1, math.prod(right.shape[:-2]))
    return float(right.double().sum()) * left.shape[-2] * factor


def _layer_sops(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> float:
    """The SOP count of one forward call, by module type (the one SOP counter)."""
    if hasattr(module, "count_sops"):  # the attention products and gates: their own rule
        return float(module.count_sops(inputs, out))
    if isinstance(module, nn.Conv2d):
        return _conv_sops(module, inputs[0])
    if isinstance(module, nn.Linear):
        return _linear_sops(module, inputs[0])
    if isinstance(module, SpikingMatmul):
        return _matmul_sops(*inputs)
    raise TypeError(f"no SOP rule for {type(module).__name__}")


def _counts_sops(m: nn.Module) -> bool:
    return isinstance(m, (nn.Conv2d, nn.Linear, SpikingMatmul)) or hasattr(m, "count_sops")


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


@dataclass
class _Counts:
    """What the hooks accumulate: SOPs and spikes per layer, DSSA head sums, first-conv MACs."""

    sops: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    spikes: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))
    dssa: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    first_conv_macs: float = 0.0

    def sop_hook(self, name: str):
        def hook(mod, inp, out):
            self.sops[name] += _layer_sops(mod, inp, out)

        return hook

    def neuron_hook(self, name: str):
        def hook(mod, inp, out):
            acc = self.spikes[name]  # [spike sum, value count]
            acc[0] += float(out.double().sum())
            acc[1] += out.numel()

        return hook

    def dssa_hook(self, name: str, key: str, heads: int):
        def hook(mod, inp, out):
            r = out.reshape(*out.shape[:2], heads, -1).double()  # [T, B, heads, ...]
            acc = self.dssa.setdefault(name, {})
            acc[key] = acc.get(key, 0) + r.sum((0, 1, 3))
            acc[key + "_n"] = acc.get(key + "_n", 0) + r[:, :, 0].numel()

        return hook

    def first_conv_hook(self, mod, inp, out) -> None:
        k = math.prod(mod.kernel_size) * mod.in_channels // mod.groups
        self.first_conv_macs += float(out.numel()) * k


def _module_hooks(name: str, m: nn.Module, counts: _Counts) -> list[tuple[nn.Module, Any]]:
    """The (module, hook) pairs that count ``m``: SOPs, spikes, or DSSA head rates."""
    pairs: list[tuple[nn.Module, Any]] = []
    if _counts_sops(m):
        pairs.append((m, counts.sop_hook(name)))
    elif _is_neuron(m):
        pairs.append((m, counts.neuron_hook(name)))
    if isinstance(m, DSSA):
        pairs.append((m.activation_in, counts.dssa_hook(name, "x", m.num_heads)))
        pairs.append((m.activation_attn, counts.dssa_hook(name, "attn", m.num_heads)))
    return pairs


@contextmanager
def _counting(model: nn.Module, counts: _Counts) -> Iterator[None]:
    """Hooks on every counted module (and DSSA on its float path) while inside; then removed."""
    skip = set(getattr(model, "skip", ()))
    pairs: list[tuple[nn.Module, Any]] = []
    backends: dict[nn.Module, str] = {}
    for name, m in model.named_modules():
        if name == "prologue.0" and isinstance(m, nn.Conv2d):
            pairs.append((m, counts.first_conv_hook))
        if name in skip:
            continue
        pairs += _module_hooks(name, m, counts)
        if isinstance(m, DSSA):
            backends[m] = m.attention_backend
            m.attention_backend = "float"  # count the official products
    handles = [m.register_forward_hook(hook) for m, hook in pairs]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        for m, b in backends.items():
            m.attention_backend = b


def _dssa_rates(model: nn.Module, dssa: dict[str, dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Per DSSA block and head: the firing-rate buffers beside the measured rates."""
    out = {}
    for name, acc in dssa.items():
        m = model.get_submodule(name)
        out[name] = {
            "buffer_x": m.firing_rate_x.flatten().tolist(),
            "measured_x": (acc["x"] / acc["x_n"]).tolist(),
            "buffer_attn": m.firing_rate_attn.flatten().tolist(),
            "measured_attn": (acc["attn"] / acc["attn_n"]).tolist(),
        }
    return out


@torch.no_grad()
def measure_energy(model: nn.Module, data, max_batches: int | None = None) -> EnergyReport:
    """Per-layer firing rates, SOPs and energy of ``model`` on a batch or a loader.

    Args:
        model: a SpikingResformer, of any attention (any module with ``skip`` and neurons works).
        data: an input batch, an ``(inputs, targets)`` pair, or an iterable of either.
        max_batches: stop after this many batches.

    Returns:
        An :class:`EnergyReport`. The model is left in eval mode with its neurons reset.
    """
    model.eval()
    functional.reset_net(model)
    counts = _Counts()
    images = 0
    with _counting(model, counts):
        for i, x in enumerate(_batches(data)):
            if max_batches is not None and i >= max_batches:
                break
            model(x)
            functional.reset_net(model)
            images += x.shape[0]
    if images == 0:
        raise ValueError("measure_energy: no batches in data")
    per_layer = {k: v / images for k, v in counts.sops.items()}
    total = sum(per_layer.values())
    macs = counts.first_conv_macs / images
    energy = E_AC_PJ * total * 1e-9  # pJ -> mJ
    return EnergyReport(
        images=images,
        sops=total,
        sops_per_layer=per_layer,
        firing_rates={k: s / max(n, 1) for k, (s, n) in counts.spikes.items()},
        dssa_rates=_dssa_rates(model, counts.dssa),
        first_conv_macs=macs,
        energy_mj=energy,
        energy_with_first_conv_mj=energy + E_MAC_PJ * macs * 1e-9,
    )


def firing_rates(model: nn.Module, data, max_batches: int | None = None) -> dict[str, float]:
    """Mean firing rate of every neuron layer on ``data`` (see :func:`measure_energy`)."""
    return measure_energy(model, data, max_batches).firing_rates


class DSSARateWatch:
    """Per DSSA block (rate scale) and head: the firing rates measured over a run of batches.

    Use as a context manager around a training epoch; :meth:`result` then gives, per block,
    the running estimates the scales divide by (the buffers ``firing_rate_x`` and
    ``firing_rate_attn`` at the end) beside the rates of the same spikes measured over every
    batch seen (spike sum / element count, per head).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = getattr(model, "module", model)
        self.counts = _Counts()
        self._handles: list[Any] = []

    def blocks(self) -> dict[str, DSSA]:
        """The DSSA blocks whose scales use the firing-rate estimates."""
        return {
            name: m
            for name, m in self.model.named_modules()
            if isinstance(m, DSSA) and getattr(m, "scale_mode", "rate") == "rate"
        }

    def __enter__(self) -> DSSARateWatch:
        for name, m in self.blocks().items():
            for key, neuron in (("x", m.activation_in), ("attn", m.activation_attn)):
                hook = self._hook(name, key, m.num_heads)
                self._handles.append(neuron.register_forward_hook(hook))
        return self

    def _hook(self, name: str, key: str, heads: int):
        """Count spikes per head: a float32 sum (exact below 2**24 spikes per head and batch)."""

        def hook(mod, inp, out):
            r = out.detach().reshape(*out.shape[:2], heads, -1)  # [T, B, heads, ...]
            acc = self.counts.dssa.setdefault(name, {})
            count = r.sum((0, 1, 3)).double()  # stays on its device: no sync
            acc[key] = acc.get(key, 0) + count
            acc[key + "_n"] = acc.get(key + "_n", 0) + r[:, :, 0].numel()

        return hook

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def result(self) -> dict[str, dict[str, dict[str, list[float]]]]:
        """``{block: {"x" | "attn": {"estimate": [per head], "measured": [per head]}}}``."""
        rates = _dssa_rates(self.model, self.counts.dssa)
        return {
            name: {
                key: {"estimate": r[f"buffer_{key}"], "measured": r[f"measured_{key}"]}
                for key in ("x", "attn")
            }
            for name, r in rates.items()
        }


def rate_error(check: dict[str, dict[str, dict[str, list[float]]]]) -> float:
    """The largest ``|estimate - measured| / measured`` over blocks, heads and both rates."""
    errors = [
        abs(e - m) / m
        for block in check.values()
        for pair in block.values()
        for e, m in zip(pair["estimate"], pair["measured"], strict=True)
        if m > 0
    ]
    return max(errors, default=float("nan"))
