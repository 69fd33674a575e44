"""Spiking self-attentions as drop-in blocks of SpikingResformer's stages (docs/models.md).

One interface, :func:`make_attention`, builds the block a stage uses:

* ``"dssa"``: the paper's Dual Spike Self-Attention (``layers.DSSA``), with its firing-rate
  scale (``"rate"``, the official model) or one of the other scale modes (:class:`ScaledDSSA`).
* ``"ssa"``: Spikformer's spiking self-attention, ``LIF_0.5(0.125 * Q K^T V)`` (:class:`SSA`).
* ``"sdsa"``: the Spike-driven Transformer's attention, ``Q ⊙ LIF_0.5(Σ_tokens K ⊙ V)``
  (:class:`SDSA`).
* ``"qkta"``: QKFormer's Q-K token attention, ``LIF_0.5(Σ_channels Q) ⊙ K`` (:class:`QKTA`).

Every block maps the residual stream ``[T, B, C, H, W]`` (real values) to the same shape in
SpikingResformer's shell (shared/ATTENTION.md, section 5): an input neuron, the mechanism's
spike core, then ``BN(Conv1x1(core)) + x``. K and V (SSA, SDSA) come from the stage's
``p x p``, stride-``p`` patch convolution like DSSA's ``W``. Written from the forward passes
in ATTENTION.md; no code of the original repositories is used.

Every product and gate is a small module (:class:`SpikeMatmul`, :class:`SpikeGate`,
:class:`SpikeSum`, :class:`SpikeMaxPool`) that says how many synaptic operations it costs
(``count_sops``; ``energy.measure_energy`` calls it). A spike-input convolution only ever
receives a neuron's output; the cores built by gates (SDSA, QKTA) go through a
convolution with ``spike_input=False``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError, check_choice
from .layers import BN, DSSA, MultiStepConv2d

__all__ = [
    "ATTENTIONS",
    "SCALE_MODES",
    "make_attention",
    "ScaledDSSA",
    "SSA",
    "SDSA",
    "QKTA",
    "SpikeMatmul",
    "SpikeGate",
    "SpikeSum",
    "SpikeMaxPool",
    "check_attention",
    "state_dict_attention",
]

ATTENTIONS = ("dssa", "ssa", "sdsa", "qkta")
SCALE_MODES = ("rate", "const", "none", "inv_sqrt", "learnable")
SSA_SCALE = 0.125  # Spikformer's CIFAR and ImageNet constant (ATTENTION.md, section 2)

NeuronFactory = Callable[[], nn.Module]


def make_attention(
    kind: str,
    dim: int,
    num_heads: int,
    lenth: int,
    patch_size: int,
    neuron: NeuronFactory,
    half_neuron: NeuronFactory,
    low_memory: bool = True,
    *,
    scale: str = "rate",
    scale_const: float = 0.125,
    dvs: bool = False,
    head_dim: int = 8,
) -> nn.Module:
    """The attention block ``kind`` of one stage.

    Args:
        kind: one of ``ATTENTIONS``.
        dim, num_heads, lenth, patch_size: the stage's width, heads, token count ``(H/p)(W/p)``
            fixed at construction (DSSA's ``lenth``) and patch size.
        neuron, half_neuron: constructors of the host's neuron with threshold 1 and 0.5.
        scale, scale_const: DSSA's scale mode (``SCALE_MODES``) and its constant.
        dvs: SDSA's 3x3 max-pools (the Spike-driven Transformer's CIFAR10-DVS setting).
        head_dim: QKTA's channels per head (heads = dim / head_dim); 0 keeps ``num_heads``.
    """
    check_choice("attention", kind, ATTENTIONS)
    check_choice("attn_scale", scale, SCALE_MODES)
    if kind == "dssa":
        if scale == "rate":  # the official block, bitwise
            return DSSA(dim, num_heads, lenth, patch_size, neuron, low_memory)
        return ScaledDSSA(
            dim, num_heads, lenth, patch_size, neuron, low_memory, scale=scale, const=scale_const
        )
    if kind == "ssa":
        return SSA(dim, num_heads, patch_size, neuron, half_neuron, low_memory)
    if kind == "sdsa":
        return SDSA(dim, num_heads, patch_size, neuron, half_neuron, low_memory, dvs=dvs)
    heads = num_heads if head_dim == 0 else dim // head_dim
    if head_dim and dim % head_dim:
        raise ConfigError(f"QKTA: width {dim} is not divisible by qkta_head_dim {head_dim}")
    return QKTA(dim, heads, neuron, half_neuron, low_memory)


class ScaledDSSA(DSSA):
    """DSSA with another scale mode (ATTENTION.md, section 1); the rest is the paper's block.

    ``const``: both products times ``const``; ``none``: times 1; ``inv_sqrt``: the rate
    formula with rate 1 (``1/sqrt(d)``, ``1/sqrt(lenth)``); ``learnable``: per-head parameters
    ``scale1``, ``scale2`` initialised there (no weight decay: ``no_weight_decay``). The
    firing-rate buffers are kept and updated in every mode, so checkpoints load across the
    buffer-only modes and the rates stay observable.
    """

    def __init__(self, *args, scale: str, const: float = 0.125, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        check_choice("attn_scale", scale, SCALE_MODES)
        self.scale_mode = scale
        self.scale_const = float(const)
        d, h = self.dim // self.num_heads, self.num_heads
        if scale == "learnable":
            self.scale1 = nn.Parameter(torch.full((1, 1, h, 1, 1), d**-0.5))
            self.scale2 = nn.Parameter(torch.full((1, 1, h, 1, 1), self.lenth**-0.5))

    def _scale1(self) -> torch.Tensor | float:
        return self._mode_scale(1, self.dim // self.num_heads)

    def _scale2(self) -> torch.Tensor | float:
        return self._mode_scale(2, self.lenth)

    def _mode_scale(self, which: int, n: int) -> torch.Tensor | float:
        mode = self.scale_mode
        if mode == "rate":
            return super()._scale1() if which == 1 else super()._scale2()
        if mode == "const":
            return self.scale_const
        if mode == "none":
            return 1.0
        if mode == "inv_sqrt":
            return 1.0 / math.sqrt(n)
        return self.scale1 if which == 1 else self.scale2

    def extra_repr(self) -> str:
        return f"scale={self.scale_mode!r}" + (
            f", const={self.scale_const}" if self.scale_mode == "const" else ""
        )


def _branch(
    block: nn.Module,
    name: str,
    dim: int,
    kernel: int,
    neuron: NeuronFactory,
    low_memory: bool,
) -> None:
    """Give ``block`` the modules ``{name}_conv``, ``{name}_bn``, ``{name}_lif`` of one branch."""
    conv = MultiStepConv2d(dim, dim, kernel, kernel, low_memory=low_memory)
    setattr(block, f"{name}_conv", conv)
    setattr(block, f"{name}_bn", BN(dim, low_memory))
    setattr(block, f"{name}_lif", neuron())


def _run_branch(block: nn.Module, name: str, s: torch.Tensor) -> torch.Tensor:
    conv = getattr(block, f"{name}_conv")
    bn = getattr(block, f"{name}_bn")
    return getattr(block, f"{name}_lif")(bn(conv(s)))


class _Attention(nn.Module):
    """The shared shell: input neuron, a spike core, ``BN(Conv1x1(core)) + x``.

    ``core_spikes`` says whether the core comes straight from a neuron (then the
    projection is a spike-input convolution) or from gates of spikes (then it is not).
    """

    kind = ""
    core_spikes = True

    def __init__(self, dim: int, num_heads: int, neuron: NeuronFactory, low_memory: bool) -> None:
        super().__init__()
        if dim % num_heads:
            raise ConfigError(
                f"{self.kind.upper()}: width {dim} is not divisible by num_heads {num_heads}"
            )
        self.dim = dim
        self.num_heads = num_heads
        # which mechanism these weights belong to: a checkpoint names it (check_attention)
        self.register_buffer("attention_kind", torch.tensor(ATTENTIONS.index(self.kind)))
        self.in_lif = neuron()
        self.proj_conv = MultiStepConv2d(
            dim, dim, 1, spike_input=self.core_spikes, low_memory=low_memory
        )
        self.proj_bn = BN(dim, low_memory)

    def core(self, s: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        core = self.core(self.in_lif(x))  # [T, B, C, H, W] spikes
        return self.proj_bn(self.proj_conv(core)) + x


class _PatchAttention(_Attention):
    """The shell with Q from a 1x1 convolution on the N = HW tokens and K, V from the stage's
    ``p x p`` patch convolution on the L = (H/p)(W/p) patch tokens (SSA, SDSA).

    ``half_neuron`` (threshold 0.5) goes to :meth:`build_core`, which adds the core's modules.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        patch_size: int,
        neuron: NeuronFactory,
        half_neuron: NeuronFactory,
        low_memory: bool = True,
    ) -> None:
        super().__init__(dim, num_heads, neuron, low_memory)
        self.patch_size = patch_size
        for name, kernel in (("q", 1), ("k", patch_size), ("v", patch_size)):
            _branch(self, name, dim, kernel, neuron, low_memory)
        self.build_core(half_neuron)

    def build_core(self, half_neuron: NeuronFactory) -> None:
        """Add the modules of the spike core; subclasses implement this."""
        raise NotImplementedError


class SSA(_PatchAttention):
    """Spikformer's attention: ``core = LIF_0.5(0.125 * Q K^T V)`` per head (ATTENTION.md, 2).

    Q, K and V come from :class:`_PatchAttention`'s branches. Binary Q, K, V make ``K^T V``
    integer counts, so it is computed first (``Q (K^T V)``, cheaper than ``(Q K^T) V`` when
    d < L); every association gives the same values.
    """

    kind = "ssa"

    def build_core(self, half_neuron: NeuronFactory) -> None:
        self.kv = SpikeMatmul("both")
        self.qkv = SpikeMatmul("right")
        self.attn_lif = half_neuron()

    def core(self, s: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = s.shape
        h, d = self.num_heads, C // self.num_heads
        q = _run_branch(self, "q", s).reshape(T, B, h, d, H * W)  # [T, B, h, d, N]
        k = _run_branch(self, "k", s).reshape(T, B, h, d, -1)  # [T, B, h, d, L]
        v = _run_branch(self, "v", s).reshape(T, B, h, d, -1)  # [T, B, h, d, L]
        vk = self.kv(v, k.transpose(-1, -2))  # [T, B, h, d, d]: (K^T V)^T, integer counts
        out = self.qkv(vk, q) * SSA_SCALE  # [T, B, h, d, N] = (Q K^T V)^T * 0.125
        return self.attn_lif(out).reshape(T, B, C, H, W)  # [T, B, C, H, W]


class SDSA(_PatchAttention):
    """Spike-driven Transformer v1 attention: ``Q ⊙ LIF_0.5(Σ_L K ⊙ V)`` (ATTENTION.md, 3).

    Without ``dvs`` the result is a per-channel gate and does not depend on the heads. With
    ``dvs`` (the original's CIFAR10-DVS setting) 3x3 max-pools act on K and V over the patch
    grid, on ``K ⊙ V`` over (tokens, channels of a head) and on ``Q ⊙ kv`` over (tokens,
    channels of a head), as the original pools the last two dimensions. The other arguments
    are :class:`SSA`'s.
    """

    kind = "sdsa"
    core_spikes = False

    def __init__(self, *args, dvs: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dvs = bool(dvs)
        if self.dvs:
            self.k_pool = SpikeMaxPool()
            self.v_pool = SpikeMaxPool()
            self.kv_pool = SpikeMaxPool()
            self.out_pool = SpikeMaxPool()

    def build_core(self, half_neuron: NeuronFactory) -> None:
        self.kv_gate = SpikeGate()
        self.kv_sum = SpikeSum()
        self.kv_lif = half_neuron()
        self.q_gate = SpikeGate()

    def core(self, s: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = s.shape
        h, d = self.num_heads, C // self.num_heads
        q = _run_branch(self, "q", s)  # [T, B, C, H, W]
        k = _run_branch(self, "k", s)  # [T, B, C, H/p, W/p]
        v = _run_branch(self, "v", s)
        if not self.dvs:
            kv = self.kv_sum(self.kv_gate(k, v).flatten(3))  # [T, B, C]
            kv = self.kv_lif(kv)
            return self.q_gate(q, kv.reshape(T, B, C, 1, 1))  # [T, B, C, H, W]
        k, v = self.k_pool(k), self.v_pool(v)
        kv = self.kv_gate(k, v).reshape(T, B, h, d, -1).transpose(-1, -2)  # [T, B, h, L, d]
        kv = self.kv_lif(self.kv_sum(self.kv_pool(kv).transpose(-1, -2)))  # [T, B, h, d]
        q = q.reshape(T, B, h, d, H * W).transpose(-1, -2)  # [T, B, h, N, d]
        out = self.out_pool(self.q_gate(q, kv.unsqueeze(-2)))  # [T, B, h, N, d]
        return out.transpose(-1, -2).reshape(T, B, C, H, W)  # [T, B, C, H, W]


class QKTA(_Attention):
    """QKFormer's Q-K token attention: ``LIF_0.5(Σ_head channels Q) ⊙ K`` (ATTENTION.md, 4).

    Q and K are 1x1 convolutions on all N tokens: the token mask picks output tokens, so no
    patch reduction applies and the stage's patch size is not used. There is no V and no scale.
    """

    kind = "qkta"
    core_spikes = False

    def __init__(
        self,
        dim: int,
        num_heads: int,
        neuron: NeuronFactory,
        half_neuron: NeuronFactory,
        low_memory: bool = True,
    ) -> None:
        super().__init__(dim, num_heads, neuron, low_memory)
        _branch(self, "q", dim, 1, neuron, low_memory)
        _branch(self, "k", dim, 1, neuron, low_memory)
        self.q_sum = SpikeSum(keepdim=True)
        self.attn_lif = half_neuron()
        self.k_gate = SpikeGate()

    def core(self, s: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = s.shape
        h, d = self.num_heads, C // self.num_heads
        q = _run_branch(self, "q", s).reshape(T, B, h, d, H * W)  # [T, B, h, d, N]
        k = _run_branch(self, "k", s).reshape(T, B, h, d, H * W)
        a = self.attn_lif(self.q_sum(q.transpose(-1, -2)).transpose(-1, -2))  # [T, B, h, 1, N]
        return self.k_gate(k, a).reshape(T, B, C, H, W)  # [T, B, C, H, W]


# -- products and gates of spikes, each with its SOP rule ------------------------------------


class SpikeMatmul(nn.Module):
    """``left @ right`` of spike operands, counted by ``spikes`` (energy.py):

    * ``"both"``: two spike matrices, an AND per pair; SOPs = the accumulates of the pairs that
      are both 1, ``(left @ right).sum()``.
    * ``"right"``: a spike ``right`` and real (or integer) ``left``: each spike adds a column of
      ``left``; SOPs = ``nnz(right) * rows(left)`` (the official DSSA rule).
    """

    def __init__(self, spikes: str) -> None:
        super().__init__()
        check_choice("spike operand", spikes, ("both", "right"))
        self.spikes = spikes

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return torch.matmul(left, right)

    def count_sops(self, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> float:
        """The synaptic operations of one call (see the class docstring)."""
        left, right = inputs
        if self.spikes == "both":
            return float(out.double().sum())
        batch = torch.broadcast_shapes(left.shape[:-2], right.shape[:-2])
        factor = math.prod(batch) / max(1, math.prod(right.shape[:-2]))
        return float(right.double().sum()) * left.shape[-2] * factor

    def extra_repr(self) -> str:
        return f"spikes={self.spikes!r}"


class SpikeGate(nn.Module):
    """``spikes * gate``, both binary: one AND per spike of ``spikes`` (the first operand).

    SOPs = ``nnz(spikes)`` times the broadcast of ``spikes`` to the output's shape.
    """

    def forward(self, spikes: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return spikes * gate

    def count_sops(self, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> float:
        """The synaptic operations of one call (see the class docstring)."""
        spikes = inputs[0]
        return float(spikes.double().sum()) * out.numel() / spikes.numel()


class SpikeSum(nn.Module):
    """Sum of spikes over the last dimension: each spike is one accumulate (SOPs = nnz)."""

    def __init__(self, keepdim: bool = False) -> None:
        super().__init__()
        self.keepdim = keepdim

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return spikes.sum(-1, keepdim=self.keepdim)

    def count_sops(self, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> float:
        """The synaptic operations of one call (see the class docstring)."""
        return float(inputs[0].double().sum())


class SpikeMaxPool(nn.Module):
    """3x3 max-pool, stride 1, padding 1, over the last two dimensions (the original ``Erode``).

    On spikes it is an OR of each 3x3 window; SOPs = each spike times its fan-out (the number
    of windows that hold it, as a convolution with a ones kernel counts).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, 1, *x.shape[-2:])  # [M, 1, A, B]
        return F.max_pool2d(flat, 3, 1, 1).reshape(x.shape)

    def count_sops(self, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> float:
        """The synaptic operations of one call (see the class docstring)."""
        x = inputs[0]
        flat = x.double().reshape(-1, 1, *x.shape[-2:])
        ones = torch.ones(1, 1, 3, 3, dtype=flat.dtype, device=flat.device)
        return float(F.conv2d(flat, ones, padding=1).sum())


# -- which attention a set of weights belongs to ------------------------------------------------


def state_dict_attention(state: Mapping[str, object]) -> str | None:
    """The attention of a SpikingResformer state dict, or None when it holds no attention block.

    DSSA's official keys (``.W.weight``) name DSSA; the other blocks carry ``attention_kind``.
    """
    for key, value in state.items():
        if key.endswith(".attention_kind") and isinstance(value, torch.Tensor):
            code = int(value)
            return ATTENTIONS[code] if 0 <= code < len(ATTENTIONS) else f"code {code}"
        if key.endswith(".W.weight"):
            return "dssa"
    return None


def check_attention(model: nn.Module, state: Mapping[str, object], source: str) -> None:
    """Raise CheckpointError when ``state`` holds another attention than ``model`` uses."""
    cfg = getattr(getattr(model, "module", model), "cfg", None)
    ours = getattr(cfg, "attention", None)
    theirs = state_dict_attention(state)
    if ours is not None and theirs is not None and ours != theirs:
        raise CheckpointError(
            f"{source}: the checkpoint's attention is {theirs!r}, the model's is {ours!r}; "
            f"build the model with attention={theirs!r}"
        )
