"""SpikingResformer building blocks: multi-step conv/BN, DSSA, GWFFN, downsampling.

Every block takes and returns ``[T, B, C, H, W]``. Module and buffer names follow the
official implementation (docs/models.md), so its state dicts load strictly.

Memory: with ``low_memory=True`` (the default) the layers that consume spikes keep them for
the backward pass as ``torch.bool`` (1 byte instead of 4), and batch norm keeps its output
(which the next neuron keeps anyway) instead of its input. Forward values are the same as
with plain torch ops; gradients agree within float rounding.

Speed: on the CPU, spiking convolutions are spike-driven, batch norm runs in place
(``kernels``; ``MultiStepConv2d.sparse``, ``BN.inplace``), DSSA scales its small operands
(``DSSA.fold_scales``) and keeps its attention spikes in float (``SpikingMatmul.keep_float``),
and the big outputs and gradients come from reused buffers (``pool``), all set by the model's
``cpu_kernels``. Their sums run in another order than oneDNN's: equal within float rounding.

Safety: a fast path never gives a wrong gradient without an error. A spiking convolution or
product given values other than 0 and 1 keeps them as they are (exact, without the bool
saving); batch norm runs in place only on a convolution's output that nothing it can see
reads (``marks``); every custom backward is ``once_differentiable``, so a double backward
raises instead of dropping the second-order terms.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from ..errors import ConfigError
from .kernels import (
    batch_norm_backward_from_output,
    batch_norm_inplace,
    cpu_kernels_ok,
    spike_conv2d_forward,
    spike_conv2d_grad_weight,
)
from .marks import PRIVATE, SPIKES, hooked, mark, marked
from .pool import BufferPool, empty

__all__ = [
    "BN",
    "MultiStepConv2d",
    "SpikingMatmul",
    "DSSA",
    "GWFFN",
    "DownsampleLayer",
    "ATTENTION_BACKENDS",
]

ATTENTION_BACKENDS = ("float", "float_reassociated", "popcount")

NeuronFactory = Callable[[], nn.Module]


def _compact(x: torch.Tensor) -> bool:
    """Use the compact-saving autograd functions: training graph, no autocast (mixed dtypes)."""
    return torch.is_grad_enabled() and not torch.is_autocast_enabled(x.device.type)


class _StepsAsBatch:
    """Mixin: ``forward`` runs ``forward_batch`` on all steps of ``x`` [T, B, ...] at once."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        out = self.forward_batch(x.flatten(0, 1))  # [T*B, C, H, W]
        return out.reshape(T, B, *out.shape[1:])  # [T, B, C', H', W']

    def forward_batch(self, flat: torch.Tensor) -> torch.Tensor:
        """The layer on a batch of T * B images; subclasses implement this."""
        raise NotImplementedError


def _is_binary(s: torch.Tensor) -> bool:
    """Whether every value of ``s`` is 0 or 1: trusted from our neurons' mark (``marks``),
    else checked (one pass over ``s``)."""
    if marked(s, SPIKES, views=True):
        return True
    return bool(((s == 0) | (s == 1)).all())


class _SpikeConv2d(torch.autograd.Function):
    """conv2d whose binary input is saved as bool for the weight gradient.

    With ``sparse`` the forward pass and the weight gradient are spike-driven
    (``kernels``) and the input gradient is ``_conv_grad_input``'s; otherwise all three
    are oneDNN's, as in plain torch. An input with values other than 0 and 1 is saved as it
    is, so the weight gradient is exact for any input: the spike-driven kernel tells on the
    way (a compare per nonzero input), the oneDNN path trusts our neurons' mark or checks.
    """

    @staticmethod
    def forward(ctx, s, weight, stride, padding, groups, sparse, pool):
        ctx.conf = (stride, padding, groups, s.dtype, sparse)
        ctx.pool = pool
        if sparse:
            s_bool = torch.empty(s.shape, dtype=torch.bool)
            out, binary = spike_conv2d_forward(s, weight, stride, padding, groups, s_bool, pool)
        else:
            binary = _is_binary(s)
            s_bool = s.to(torch.bool) if binary else None
            out = F.conv2d(s, weight, None, stride, padding, 1, groups)
        ctx.save_for_backward(s_bool if binary else s, weight)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        s_saved, weight = ctx.saved_tensors
        stride, padding, groups, dtype, sparse = ctx.conf
        need_s, need_w = ctx.needs_input_grad[:2]
        if sparse:
            grad_s = grad_w = None
            if need_s:
                conf = ctx.conf[:3]
                grad_s = _conv_grad_input(grad_out, weight, s_saved.shape, conf, ctx.pool)
            if need_w:
                grad_w = spike_conv2d_grad_weight(
                    s_saved, grad_out, weight.shape, stride, padding, groups
                )
            return grad_s, grad_w, None, None, None, None, None
        mask = (need_s, need_w, False)
        grad_s, grad_w, _ = _onednn_backward(grad_out, s_saved.to(dtype), weight, ctx.conf, mask)
        return grad_s, grad_w, None, None, None, None, None


def _onednn_backward(grad_out, s, weight, conf, mask):
    """``convolution_backward`` of ``conv2d(s, weight)`` (``conf``: stride, padding, groups)."""
    stride, padding, groups = conf[:3]
    return torch.ops.aten.convolution_backward(
        grad_out, s, weight, None, stride, padding, (1, 1), False, (0, 0), groups, mask
    )


def _conv_grad_input(grad_out, weight, in_shape, conf, pool=None) -> torch.Tensor:
    """The input gradient of ``conv2d``; a 1x1 convolution's is one matrix product per image.

    For 1x1 kernels ``weight.T @ grad_out[n]`` takes half the time of oneDNN's backward-data
    pass (which reorders to its blocked layout and back); the rest go to oneDNN, with an
    uninitialised tensor standing for the input, whose shape is all it reads (its pages are
    never touched; an expanded scalar would be copied out to full size first).
    """
    stride, padding, groups = conf
    O, C, KH, KW = weight.shape
    N, O, OH, OW = grad_out.shape
    if (KH, KW) == (1, 1) and tuple(stride) == (1, 1) and tuple(padding) == (0, 0) and groups == 1:
        g = grad_out.reshape(N, O, OH * OW)  # [N, O, HW]
        w_t = weight.reshape(O, C).t()  # [C, O]
        grad = empty(pool, (N, C, OH * OW), grad_out)
        for n in range(N):  # one product per image: no copies around a folded matmul
            torch.mm(w_t, g[n], out=grad[n])
        return grad.reshape(in_shape)  # [N, C, H, W]
    shape_only = grad_out.new_empty(in_shape)
    return _onednn_backward(grad_out, shape_only, weight, conf, (True, False, False))[0]


def _matmul(left: torch.Tensor, right: torch.Tensor, pool) -> torch.Tensor:
    """``torch.matmul(left, right)`` into a tensor from ``pool`` (``pool.empty``)."""
    batch = torch.broadcast_shapes(left.shape[:-2], right.shape[:-2])
    out = empty(pool, (*batch, left.shape[-2], right.shape[-1]), left)
    return torch.matmul(left, right, out=out)


class _SpikeRightMatmul(torch.autograd.Function):
    """``left @ right`` with a binary ``right``, saved as bool unless ``keep_float`` (or
    unless it has values other than 0 and 1: then as it is, so the gradient stays exact)."""

    @staticmethod
    def forward(ctx, left, right, keep_float, pool):
        keep = keep_float or not _is_binary(right)
        ctx.save_for_backward(left, right if keep else right.to(torch.bool))
        ctx.dtype = right.dtype
        ctx.pool = pool
        return _matmul(left, right, pool)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        left, right = ctx.saved_tensors
        grad_left = grad_right = None
        if ctx.needs_input_grad[0]:
            grad_left = _matmul(grad_out, right.to(ctx.dtype).transpose(-1, -2), ctx.pool)
        if ctx.needs_input_grad[1]:
            grad_right = _matmul(left.transpose(-1, -2), grad_out, ctx.pool)
        return grad_left, grad_right, None, None


class _BatchNormSaveOutput(torch.autograd.Function):
    """Training-mode batch norm that saves its output and rebuilds the input when needed.

    With ``inplace`` on the CPU it normalises its input in place and takes its gradients from
    the output in one kernel (``kernels``); otherwise torch's ops, as in ``nn.BatchNorm2d``.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, inplace, pool):
        # x = (out - beta) / gamma / invstd + mean loses precision when gamma is ~0
        save_out = bool((weight.detach().abs() > 1e-3).all())
        tracked = running_mean is not None
        if inplace and save_out and tracked and x.is_contiguous() and cpu_kernels_ok(x, weight):
            # the input (a convolution's output, which nothing else keeps) becomes the output
            mean, var = batch_norm_inplace(x, weight, bias, eps)
            invstd = torch.rsqrt(var + eps)
            n = x.numel() // x.shape[1]
            with torch.no_grad():
                running_mean.lerp_(mean.to(running_mean.dtype), momentum)
                running_var.lerp_((var * (n / max(n - 1, 1))).to(running_var.dtype), momentum)
            ctx.mark_dirty(x)
            out = x
        else:
            out, mean, invstd = torch.ops.aten.native_batch_norm(
                x, weight, bias, running_mean, running_var, True, momentum, eps
            )
        ctx.save_for_backward(out if save_out else x, weight, bias, mean, invstd)
        ctx.conf = (save_out, eps, out is x)
        ctx.pool = pool
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        saved, weight, bias, mean, invstd = ctx.saved_tensors
        save_out, eps, inplace = ctx.conf
        if inplace:  # the CPU kernels' forward: their backward, from the output
            grads = batch_norm_backward_from_output(grad_out, saved, weight, bias, invstd, ctx.pool)
            return (*grads, None, None, None, None, None, None)
        if save_out:
            # one pass: x = out * (1 / (gamma * invstd)) + (mean - beta / (gamma * invstd))
            scale = 1.0 / (weight.detach() * invstd)
            shift = mean - bias.detach() * scale
            x = torch.addcmul(shift.view(1, -1, 1, 1), saved, scale.view(1, -1, 1, 1))
        else:
            x = saved
        grad_x, grad_w, grad_b = torch.ops.aten.native_batch_norm_backward(
            grad_out, x, weight, None, None, mean, invstd, True, eps, list(ctx.needs_input_grad[:3])
        )
        return grad_x, grad_w, grad_b, None, None, None, None, None, None


class BN(_StepsAsBatch, nn.Module):
    """BatchNorm2d over ``[T, B, C, H, W]`` with statistics pooled over T, B, H and W.

    ``inplace=True`` lets the low-memory training path normalise its input in place on the
    CPU (no new tensor), where the input is a ``MultiStepConv2d``'s output that nothing else
    reads: ``_private`` checks what the layer can see (hooks, views, strides, the producer);
    a plain Python reference kept by the caller it cannot see, so set ``inplace`` only
    where the code around it keeps none (the model sets it on every BN of its blocks).
    """

    def __init__(self, num_features: int, low_memory: bool = True, inplace: bool = False) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, eps=1e-5, momentum=0.1)
        self.low_memory = low_memory
        self.inplace = inplace
        self.pool: BufferPool | None = None  # the model's, with ``cpu_kernels``

    def forward_batch(self, flat: torch.Tensor) -> torch.Tensor:
        """Normalise [T*B, C, H, W]."""
        bn = self.bn
        # SyncBatchNorm (sync_bn on CUDA) pools statistics over ranks in its own forward, so the
        # low-memory path, which computes rank-local statistics, steps aside for it.
        sync = isinstance(bn, nn.SyncBatchNorm)
        if self.low_memory and bn.training and not sync and _compact(flat):
            bn.num_batches_tracked.add_(1)
            base = flat if flat._base is None else flat._base
            inplace = self.inplace and self._private(flat, base)
            out = _BatchNormSaveOutput.apply(
                base if inplace else flat,
                bn.weight,
                bn.bias,
                bn.running_mean,
                bn.running_var,
                bn.momentum,
                bn.eps,
                inplace,
                self.pool,
            )
        else:
            out = bn(flat)
        return out

    def _private(self, flat: torch.Tensor, base: torch.Tensor) -> bool:
        """Whether ``flat`` may be normalised in place: it is, laid out the same, the whole of
        a convolution's output that no hook has seen (``marks.PRIVATE``), not a leaf, and no
        hook of this layer sees its input (in place, a hook would see the output instead).

        In place works on ``base`` itself rather than a view (autograd would copy a view's
        gradients). Anything else is normalised out of place: the same numbers, a new tensor.
        """
        return (
            marked(base, PRIVATE)
            and base.grad_fn is not None
            and base.shape == flat.shape
            and base.stride() == flat.stride()
            and base.storage_offset() == flat.storage_offset()
            and not hooked(self, pre=True)
        )


class MultiStepConv2d(_StepsAsBatch, nn.Conv2d):
    """Bias-free conv2d applied to every step of ``[T, B, C, H, W]``.

    With ``spike_input=True`` and ``low_memory`` the (binary) input is kept as bool, and with
    ``sparse`` as well (the default) the CPU forward pass and weight gradient are spike-driven.
    An input with other values is kept as it is: the gradients are exact for any input
    (``_SpikeConv2d``). Its output, unless a forward hook sees it, is marked for the batch
    norm after it (``marks.PRIVATE``).
    """

    def __init__(
        self,
        *args,
        spike_input: bool = True,
        low_memory: bool = True,
        sparse: bool = True,
        **kwargs,
    ):
        super().__init__(*args, bias=False, **kwargs)
        self.spike_input = spike_input
        self.low_memory = low_memory
        self.sparse = sparse
        self.pool: BufferPool | None = None  # the model's, with ``cpu_kernels``

    def forward_batch(self, flat: torch.Tensor) -> torch.Tensor:
        """Convolve [T*B, C, H, W]."""
        spikes = self.spike_input and self.low_memory
        sparse = spikes and self.sparse and cpu_kernels_ok(flat, self.weight)
        if spikes and _compact(flat):
            args = (self.stride, self.padding, self.groups, sparse, self.pool)
            out = _SpikeConv2d.apply(flat, self.weight, *args)
        elif sparse and not torch.is_grad_enabled():
            conf = (self.stride, self.padding, self.groups)
            out = spike_conv2d_forward(flat, self.weight, *conf, pool=self.pool)[0]
        else:
            out = F.conv2d(flat, self.weight, None, self.stride, self.padding, 1, self.groups)
        if not hooked(self):  # a batch norm after it may normalise it in place
            mark(out, PRIVATE)
        return out


class SpikingMatmul(nn.Module):
    """``left @ right`` where ``right`` is a spike tensor (a hook point for SOP counting)."""

    def __init__(self, low_memory: bool = True) -> None:
        super().__init__()
        self.low_memory = low_memory
        self.keep_float = False  # keep ``right`` as it comes, not as bool: no copies
        self.pool: BufferPool | None = None  # the model's, with ``cpu_kernels``

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        if self.low_memory and _compact(right):
            keep = self.keep_float and right.device.type == "cpu"
            return _SpikeRightMatmul.apply(left, right, keep, self.pool)
        if self.pool is not None and _inference(left, right):
            return _matmul(left, right, self.pool)  # the same product, in a reused buffer
        return torch.matmul(left, right)


def _inference(left: torch.Tensor, right: torch.Tensor) -> bool:
    """Whether a product may go into a pooled buffer: no autograd, no autocast, one dtype."""
    return (
        not torch.is_grad_enabled()
        and not torch.is_autocast_enabled(left.device.type)
        and left.dtype == right.dtype
    )


def _rate_scale(rate: torch.Tensor, n: int) -> torch.Tensor:
    """DSSA's ``1 / sqrt(rate * n)``, and 0 for a head whose firing rate is 0.

    A zero rate means the spikes of the product it scales are all zero, so the product is 0 and
    its limit is 0; the official code divides by zero there, and ``0 * inf`` makes a silent
    head (common in small models and at small input sizes) turn the loss into NaN.
    """
    return torch.where(rate > 0, torch.rsqrt(rate * n), torch.zeros_like(rate))


class DSSA(nn.Module):
    """Dual Spike Self-Attention with per-head firing-rate scaling (docs/models.md).

    ``lenth`` (the official spelling, kept for the constants) is the number of tokens
    ``(img_size_at_stage // patch_size) ** 2`` fixed at construction; it scales the second
    product whatever the actual input size.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        lenth: int,
        patch_size: int,
        neuron: NeuronFactory,
        low_memory: bool = True,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"DSSA dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.lenth = lenth
        self.patch_size = patch_size
        self.register_buffer("firing_rate_x", torch.zeros(1, 1, num_heads, 1, 1))
        self.register_buffer("firing_rate_attn", torch.zeros(1, 1, num_heads, 1, 1))
        # plain attributes, not saved: a loaded non-zero buffer is never re-initialised
        self.init_firing_rate_x = False
        self.init_firing_rate_attn = False
        self.momentum = 0.999
        self.attention_backend = "float"
        # scales applied to the small operand of each product: equal within float rounding
        self.fold_scales = False

        self.activation_in = neuron()
        self.W = MultiStepConv2d(dim, dim * 2, patch_size, patch_size, low_memory=low_memory)
        self.norm = BN(dim * 2, low_memory)
        self.matmul1 = SpikingMatmul(low_memory)
        self.matmul2 = SpikingMatmul(low_memory)
        self.activation_attn = neuron()
        self.activation_out = neuron()
        self.Wproj = MultiStepConv2d(dim, dim, 1, low_memory=low_memory)
        self.norm_proj = BN(dim, low_memory)

    def _update_rate(self, name: str, spikes: torch.Tensor) -> None:
        rate = spikes.detach().mean((0, 1, 3, 4), keepdim=True)  # [1, 1, heads, 1, 1]
        flag = "init_" + name
        buf = getattr(self, name)
        if not getattr(self, flag) and torch.all(buf == 0):
            buf = rate
        setattr(self, flag, True)
        setattr(self, name, buf * self.momentum + rate * (1 - self.momentum))

    def _scale1(self) -> torch.Tensor | float:
        """The first product's multiplier: the paper's ``1 / sqrt(rate_x * d)`` (``attention``)."""
        return _rate_scale(self.firing_rate_x, self.dim // self.num_heads)

    def _scale2(self) -> torch.Tensor | float:
        """The second product's multiplier: the paper's ``1 / sqrt(rate_attn * lenth)``."""
        return _rate_scale(self.firing_rate_attn, self.lenth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B, C, H, W = x.shape
        heads = self.num_heads
        s = self.activation_in(x)
        y = self.norm(self.W(s))  # [T, B, 2C, H/p, W/p]
        y = y.reshape(T, B, heads, 2 * C // heads, -1)  # [T, B, heads, 2C/heads, L]
        y1, y2 = y[:, :, :, : C // heads], y[:, :, :, C // heads :]
        s_heads = s.reshape(T, B, heads, C // heads, H * W)  # [T, B, heads, C/heads, HW]

        if self.training:
            self._update_rate("firing_rate_x", s_heads)
        scale1 = self._scale1()
        if self.fold_scales:  # scale the small operand, not the [L, HW] attention map
            attn = self.matmul1((y1 * scale1).transpose(-1, -2), s_heads)
        else:
            attn = self.matmul1(y1.transpose(-1, -2), s_heads) * scale1  # [T, B, heads, L, HW]
        attn = self.activation_attn(attn)

        if self.training:
            self._update_rate("firing_rate_attn", attn)
        scale2 = self._scale2()
        if self.attention_backend != "float" and not self.training:
            out = self._reassociated_product(s, attn) * scale2
        elif self.fold_scales:
            out = self.matmul2(y2 * scale2, attn)
        else:
            out = self.matmul2(y2, attn) * scale2  # [T, B, heads, C/heads, HW]
        out = out.reshape(T, B, C, H, W)
        out = self.activation_out(out)
        return self.norm_proj(self.Wproj(out)) + x

    def _reassociated_product(self, s: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """``y2 @ attn`` in eval as ``(a * W2) @ (U @ attn) + b * colsum(attn)``.

        ``U`` is the binary im2col of the input spikes, so ``U @ attn`` is a product of two
        spike matrices: exact integer counts, computed as bit-packed AND + popcount when
        ``attention_backend == "popcount"`` and as a float matmul otherwise (the two are
        bitwise equal). Equal to the official association within float rounding.
        """
        from .popcount import spike_matmul

        T, B, C, H, W = s.shape
        heads, p = self.num_heads, self.patch_size
        bn = self.norm.bn
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # eval BN as an affine map
        b = bn.bias - bn.running_mean * a
        w = self.W.weight.reshape(heads, 2 * C // heads, C * p * p)[:, C // heads :]
        a = a.reshape(heads, 2 * C // heads)[:, C // heads :]
        b = b.reshape(heads, 2 * C // heads)[:, C // heads :]
        u = F.unfold(s.flatten(0, 1), p, stride=p)  # [T*B, C*p*p, L]
        u = u.unsqueeze(1).expand(-1, heads, -1, -1)  # [T*B, heads, C*p*p, L]
        attn_flat = attn.flatten(0, 1)  # [T*B, heads, L, HW]
        if self.attention_backend == "popcount":
            counts = spike_matmul(u, attn_flat)  # [T*B, heads, C*p*p, HW]
        else:
            counts = torch.matmul(u, attn_flat)
        out = torch.matmul(a.unsqueeze(-1) * w, counts)  # [T*B, heads, C/heads, HW]
        out = out + b.unsqueeze(-1) * attn_flat.sum(-2, keepdim=True)
        return out.reshape(T, B, heads, C // heads, H * W)


class GWFFN(nn.Module):
    """Group-wise spiking feed-forward: 1x1 up, grouped 3x3 (+ skip), 1x1 down (+ skip)."""

    def __init__(
        self,
        in_channels: int,
        neuron: NeuronFactory,
        num_conv: int = 1,
        ratio: int = 4,
        group_size: int = 64,
        low_memory: bool = True,
    ) -> None:
        super().__init__()
        inner = in_channels * ratio
        if inner % group_size:
            raise ConfigError(
                f"GWFFN inner width {inner} (= {ratio} x {in_channels}) is not divisible by "
                f"group_size {group_size}"
            )
        lm = low_memory
        self.up = nn.Sequential(
            neuron(), MultiStepConv2d(in_channels, inner, 1, low_memory=lm), BN(inner, lm)
        )
        self.conv = nn.ModuleList(
            nn.Sequential(
                neuron(),
                MultiStepConv2d(
                    inner, inner, 3, padding=1, groups=inner // group_size, low_memory=lm
                ),
                BN(inner, lm),
            )
            for _ in range(num_conv)
        )
        self.down = nn.Sequential(
            neuron(), MultiStepConv2d(inner, in_channels, 1, low_memory=lm), BN(in_channels, lm)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.up(x)
        b = a
        for m in self.conv:
            b = m(b)
        return self.down(b + a) + x


class DownsampleLayer(nn.Module):
    """Neuron, 3x3 conv with stride 2, BN; no shortcut."""

    def __init__(
        self, in_channels: int, out_channels: int, neuron: NeuronFactory, low_memory: bool = True
    ) -> None:
        super().__init__()
        self.conv = MultiStepConv2d(
            in_channels, out_channels, 3, stride=2, padding=1, low_memory=low_memory
        )
        self.norm = BN(out_channels, low_memory)
        self.activation = neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(self.activation(x)))
