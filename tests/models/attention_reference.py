"""Plain, slow references of the attention blocks, written from shared/ATTENTION.md.

A loop LIF (spikingjelly's ATan surrogate for the gradient), convolutions as einsums over
patches, batch norm from its formula. They take the weights of a block built by
``eventvision.models.attention`` and nothing else from it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import surrogate

_FIRE = surrogate.ATan(alpha=2.0)  # heaviside(H - theta) forward, the host's surrogate backward


def lif(x: torch.Tensor, theta: float = 1.0) -> torch.Tensor:
    """LIF, tau 2, decay_input, hard reset to 0 with a detached spike (ATTENTION.md, 0)."""
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = v + (x[t] - v) * 0.5
        s = _FIRE(h - theta)
        v = h * (1 - s.detach())
        out.append(s)
    return torch.stack(out)


def conv(s: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A ``p x p``, stride-``p``, unpadded convolution of ``[T, B, C, H, W]`` as an einsum."""
    p = weight.shape[-1]
    T, B, C, H, W = s.shape
    hp, wp = H // p, W // p
    patches = s[..., : hp * p, : wp * p].reshape(T, B, C, hp, p, wp, p)
    out = torch.einsum("ocij,tncyizj->tnoyz", weight, patches)  # [T, B, O, H/p, W/p]
    return out if bias is None else out + bias.reshape(1, 1, -1, 1, 1)


def bn(y: torch.Tensor, module: torch.nn.Module, training: bool) -> torch.Tensor:
    """Batch norm over T, B, H, W: batch statistics (biased variance) in training, else running."""
    b = module.bn
    if training:
        mean = y.mean((0, 1, 3, 4))
        var = y.var((0, 1, 3, 4), unbiased=False)
    else:
        mean, var = b.running_mean, b.running_var
    shape = (1, 1, -1, 1, 1)
    norm = (y - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + b.eps)
    return norm * b.weight.reshape(shape) + b.bias.reshape(shape)


def branch(block, name: str, s: torch.Tensor, training: bool) -> torch.Tensor:
    """``LIF_1(BN(conv(s)))`` with the block's ``{name}_conv`` and ``{name}_bn``."""
    y = conv(s, getattr(block, f"{name}_conv").weight)
    return lif(bn(y, getattr(block, f"{name}_bn"), training))


def shell_out(block, core: torch.Tensor, x: torch.Tensor, training: bool) -> torch.Tensor:
    """``BN(Conv1x1(core)) + x``."""
    return bn(conv(core, block.proj_conv.weight), block.proj_bn, training) + x


def maxpool_last2(x: torch.Tensor) -> torch.Tensor:
    """3x3 max over the last two dims, stride 1, padding 1 (padding never wins: -inf).

    Among equal values the first in raster order of the window takes the gradient, as in a
    max-pool layer (the original's ``MaxPool3d``).
    """
    padded = F.pad(x, (1, 1, 1, 1), value=-math.inf)
    a, b = x.shape[-2:]
    windows = [padded[..., i : i + a, j : j + b] for i in range(3) for j in range(3)]
    return torch.stack(windows).max(0).values


def ssa(block, x: torch.Tensor, training: bool) -> torch.Tensor:
    T, B, C, H, W = x.shape
    h = block.num_heads
    d = C // h
    s = lif(x)
    q = branch(block, "q", s, training).reshape(T, B, h, d, H * W)
    k = branch(block, "k", s, training).reshape(T, B, h, d, -1)
    v = branch(block, "v", s, training).reshape(T, B, h, d, -1)
    qk = torch.einsum("tbhdn,tbhdl->tbhnl", q, k)  # Q K^T, [N, L]
    qkv = torch.einsum("tbhnl,tbhel->tbhne", qk, v) * 0.125  # (Q K^T V) * c, [N, d]
    core = lif(qkv, 0.5).transpose(-1, -2).reshape(T, B, C, H, W)
    return shell_out(block, core, x, training)


def sdsa(block, x: torch.Tensor, training: bool) -> torch.Tensor:
    T, B, C, H, W = x.shape
    h = block.num_heads
    d = C // h
    s = lif(x)
    q = branch(block, "q", s, training)
    k = branch(block, "k", s, training)
    v = branch(block, "v", s, training)
    if block.dvs:
        k, v = maxpool_last2(k), maxpool_last2(v)
    q = q.reshape(T, B, h, d, H * W).transpose(-1, -2)  # [T, B, h, N, d]
    kv = (k * v).reshape(T, B, h, d, -1).transpose(-1, -2)  # [T, B, h, L, d]
    if block.dvs:
        kv = maxpool_last2(kv)
    kv = lif(kv.sum(-2, keepdim=True), 0.5)  # [T, B, h, 1, d]
    out = q * kv
    if block.dvs:
        out = maxpool_last2(out)
    core = out.transpose(-1, -2).reshape(T, B, C, H, W)
    return shell_out(block, core, x, training)


def qkta(block, x: torch.Tensor, training: bool) -> torch.Tensor:
    T, B, C, H, W = x.shape
    h = block.num_heads
    d = C // h
    s = lif(x)
    q = branch(block, "q", s, training).reshape(T, B, h, d, H * W)
    k = branch(block, "k", s, training).reshape(T, B, h, d, H * W)
    a = lif(q.sum(3, keepdim=True), 0.5)  # [T, B, h, 1, N]
    core = (a * k).reshape(T, B, C, H, W)
    return shell_out(block, core, x, training)


def _rate(buffer: torch.Tensor, spikes: torch.Tensor, training: bool, fresh: bool) -> torch.Tensor:
    """The firing-rate buffer after this batch: the first batch sets it, then the 0.999 EMA."""
    if not training:
        return buffer
    r = spikes.detach().mean((0, 1, 3, 4), keepdim=True)
    if fresh and torch.all(buffer == 0):
        buffer = r
    return buffer * 0.999 + r * (1 - 0.999)


def _scale(block, which: int, buffer: torch.Tensor, n: int) -> torch.Tensor | float:
    mode = getattr(block, "scale_mode", "rate")
    if mode == "rate":
        return torch.where(buffer > 0, 1 / torch.sqrt(buffer * n), torch.zeros_like(buffer))
    if mode == "const":
        return block.scale_const
    if mode == "none":
        return 1.0
    if mode == "inv_sqrt":
        return 1 / math.sqrt(n)
    return block.scale1 if which == 1 else block.scale2


def dssa(block, x: torch.Tensor, training: bool) -> torch.Tensor:
    """DSSA (ATTENTION.md, 1) with the block's scale mode, from a block that saw no batch."""
    T, B, C, H, W = x.shape
    h = block.num_heads
    d = C // h
    s = lif(x)
    y = bn(conv(s, block.W.weight), block.norm, training).reshape(T, B, h, 2 * d, -1)
    y1, y2 = y[:, :, :, :d], y[:, :, :, d:]  # [T, B, h, d, L]
    sh = s.reshape(T, B, h, d, H * W)
    fresh = not block.init_firing_rate_x
    rate_x = _rate(block.firing_rate_x, sh, training, fresh)
    attn = torch.einsum("tbhdl,tbhdn->tbhln", y1, sh) * _scale(block, 1, rate_x, d)
    attn = lif(attn)  # [T, B, h, L, N]
    rate_attn = _rate(block.firing_rate_attn, attn, training, fresh)
    out = torch.einsum("tbhdl,tbhln->tbhdn", y2, attn) * _scale(block, 2, rate_attn, block.lenth)
    out = lif(out.reshape(T, B, C, H, W))
    return bn(conv(out, block.Wproj.weight), block.norm_proj, training) + x


REFERENCES = {"dssa": dssa, "ssa": ssa, "sdsa": sdsa, "qkta": qkta}
