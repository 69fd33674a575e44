"""Multi-step LIF / PLIF neurons with the paper's defaults, fused or stock spikingjelly.

The fused neurons run the whole ``[T, ...]`` sequence inside one ``torch.autograd.Function``
that keeps only the input sequence (by reference, usually shared with the layer before) and
recomputes the membrane potential in the backward pass, instead of spikingjelly's stored
potential plus input plus float spikes. Their forward spikes and gradients equal those of
spikingjelly's ``LIFNode`` / ``ParametricLIFNode`` with the same settings (the equations in
docs/models.md: charge, fire at ``H >= v_threshold``, hard reset to ``v_reset`` with a detached
reset, ATan surrogate). They subclass spikingjelly's ``neuron.BaseNode``, so one
``spikingjelly.activation_based.functional.reset_net(model)`` resets both kinds, and
``monitor.OutputMonitor(model, neuron.BaseNode)`` records every neuron layer of either kind.

On the CPU the time loop runs in numba kernels (forward: one pass over the input; backward:
recompute H block by block, then BPTT); elsewhere in torch ops, except on CUDA, where the
fused neurons call spikingjelly's own fused multi-step kernels (which fall back to torch
ops by themselves). The numba kernels live here rather than in ``frames/kernels.py`` because
they are the neuron (deviation from the style guide, item 7).

The membrane potential carried from one call to the next is detached: gradients do not flow
across calls (the model is reset after every batch, as in the official training loop).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from numba import njit, prange
from spikingjelly.activation_based import neuron, surrogate
from torch import nn
from torch.autograd.function import once_differentiable

from ..errors import ConfigError, check_choice
from .marks import SPIKES, mark
from .pool import BufferPool, empty

__all__ = ["FusedLIF", "FusedPLIF", "make_neuron", "NEURON_KINDS", "NEURON_IMPLS"]

NEURON_KINDS = ("lif", "plif")
NEURON_IMPLS = ("fused", "spikingjelly")

# Paper defaults (docs/models.md): tau 2, threshold 1, hard reset to 0, ATan alpha 2.
_DEFAULTS = {
    "tau": 2.0,
    "decay_input": True,
    "v_threshold": 1.0,
    "v_reset": 0.0,
    "alpha": 2.0,
    "detach_reset": True,
}


def _charge(x_t, v, k, decay_input: bool, v_reset: float, divide: bool):
    """H = V + (X - (V - V_reset)) * k, written as spikingjelly writes it (bitwise equal)."""
    if decay_input:
        d = x_t - (v - v_reset)
        return v + (d / k if divide else d * k)
    d = v - v_reset
    return v - (d / k if divide else d * k) + x_t


_BLOCK = 2048  # neurons per numba work item: their T-step history stays in cache


@njit(cache=True, inline="always")
def _charge_nb(x, v, k, plif, decay_input, v_reset):  # pragma: no cover
    if decay_input:
        d = x - (v - v_reset)
        return v + (d * k if plif else d / k)
    d = v - v_reset
    return v - (d * k if plif else d / k) + x


@njit(cache=True, parallel=True)
def _forward_kernel(x, v0, k, plif, decay_input, v_th, v_reset, spikes, v_out):  # pragma: no cover
    """x, spikes: [T, N]; v0, v_out: [N]. Same float operations as spikingjelly."""
    T, N = x.shape
    one = x.dtype.type(1.0)
    zero = x.dtype.type(0.0)
    for b in prange((N + _BLOCK - 1) // _BLOCK):
        lo = b * _BLOCK
        hi = min(lo + _BLOCK, N)
        v = v0[lo:hi].copy()
        for t in range(T):
            xt = x[t, lo:hi]
            st = spikes[t, lo:hi]
            for i in range(hi - lo):
                h = _charge_nb(xt[i], v[i], k, plif, decay_input, v_reset)
                s = one if h >= v_th else zero
                st[i] = s
                v[i] = s * v_reset + (one - s) * h
        v_out[lo:hi] = v


@njit(cache=True, parallel=True)
def _backward_kernel(
    x, v0, gs, k, plif, decay_input, v_th, v_reset, alpha, detach_reset, gx, gv0, gq
):  # pragma: no cover
    """Recompute H from x and v0, then run the surrogate BPTT backwards in time.

    gx: [T, N] out; gv0: [N] out; gq: [n_blocks] out, the per-block sum of dL/dq terms.
    """
    T, N = x.shape
    one = x.dtype.type(1.0)
    zero = x.dtype.type(0.0)
    half_alpha = alpha / x.dtype.type(2.0)
    z_scale = x.dtype.type(np.pi / 2) * alpha
    for b in prange((N + _BLOCK - 1) // _BLOCK):
        lo = b * _BLOCK
        hi = min(lo + _BLOCK, N)
        m = hi - lo
        hbuf = np.empty((T, m), x.dtype)
        vbuf = np.empty((T, m), x.dtype)  # vbuf[t] = V[t-1]
        v = v0[lo:hi].copy()
        for t in range(T):
            xt = x[t, lo:hi]
            for i in range(m):
                vbuf[t, i] = v[i]
                h = _charge_nb(xt[i], v[i], k, plif, decay_input, v_reset)
                hbuf[t, i] = h
                s = one if h >= v_th else zero
                v[i] = s * v_reset + (one - s) * h
        carry = np.zeros(m, x.dtype)
        acc = zero
        for t in range(T - 1, -1, -1):
            xt = x[t, lo:hi]
            gst = gs[t, lo:hi]
            gxt = gx[t, lo:hi]
            for i in range(m):
                h = hbuf[t, i]
                z = (h - v_th) * z_scale
                sg = half_alpha / (one + z * z)
                reset_grad = zero if h >= v_th else one
                if not detach_reset:
                    reset_grad = reset_grad + (v_reset - h) * sg
                gh = gst[i] * sg + carry[i] * reset_grad
                if plif:
                    gxt[i] = gh * k if decay_input else gh
                    carry[i] = gh - gh * k
                    if decay_input:
                        acc += gh * (xt[i] - (vbuf[t, i] - v_reset))
                    else:
                        acc += gh * -(vbuf[t, i] - v_reset)
                else:
                    gxt[i] = gh / k if decay_input else gh
                    carry[i] = gh - gh / k
        gv0[lo:hi] = carry
        gq[b] = acc


def _numba_ok(x: torch.Tensor) -> bool:
    return _USE_NUMBA and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


_USE_NUMBA = True  # tests switch this off to check the torch-op path


def _torch_forward(x, v0, q, plif, decay_input, v_threshold, v_reset):
    spikes = torch.empty_like(x)
    v = v0
    for t in range(x.shape[0]):
        h = _charge(x[t], v, q, decay_input, v_reset, divide=not plif)
        s = spikes[t]
        s.copy_(h >= v_threshold)
        # spike * v_reset + (1 - spike) * h, as spikingjelly computes the hard reset
        v = s * v_reset + (1.0 - s) * h
    return spikes, v


def _torch_backward(x, v0, gs, q, plif, decay_input, v_threshold, v_reset, alpha, detach_reset):
    T = x.shape[0]
    hs = torch.empty_like(x)
    vs = torch.empty_like(x)  # V[t-1]
    v = v0
    for t in range(T):
        vs[t] = v
        h = _charge(x[t], v, q, decay_input, v_reset, divide=not plif)
        hs[t] = h
        s = (h >= v_threshold).to(x.dtype)
        v = s * v_reset + (1.0 - s) * h
    grad_x = torch.empty_like(x)
    carry = torch.zeros_like(x[0])
    grad_q = torch.zeros_like(x[0])
    z_scale = math.pi / 2 * alpha
    for t in range(T - 1, -1, -1):
        h = hs[t]
        z = (h - v_threshold) * z_scale
        sg = (alpha / 2) / (1 + z * z)
        reset_grad = 1 - (h >= v_threshold).to(x.dtype)
        if not detach_reset:
            reset_grad = reset_grad + (v_reset - h) * sg
        gh = gs[t] * sg + carry * reset_grad
        if plif:
            grad_x[t] = gh * q if decay_input else gh
            carry = gh - gh * q
            factor = x[t] - (vs[t] - v_reset) if decay_input else -(vs[t] - v_reset)
            grad_q = grad_q + gh * factor
        else:
            grad_x[t] = gh / q if decay_input else gh
            carry = gh - gh / q
    return grad_x, carry, grad_q.sum()


class _MultiStepNeuron(torch.autograd.Function):
    """Multi-step LIF/PLIF over ``x [T, ...]``; saves x and v0 only, recomputes H backward.

    ``k`` is tau for LIF (the charge divides by it) or the PLIF parameter ``w`` (the charge
    multiplies by sigmoid(w)); ``plif`` tells which.
    """

    @staticmethod
    def forward(ctx, x, v0, k, plif, decay_input, v_threshold, v_reset, alpha, detach_reset, pool):
        x = x.contiguous()
        q = k.detach().to(x.dtype).sigmoid() if plif else k
        if _numba_ok(x):
            T = x.shape[0]
            spikes = empty(pool, x.shape, x)
            v = torch.empty_like(v0)
            np_dtype = np.float32 if x.dtype == torch.float32 else np.float64
            _forward_kernel(
                x.detach().reshape(T, -1).numpy(),
                v0.detach().contiguous().reshape(-1).numpy(),
                np_dtype(float(q)),
                plif,
                decay_input,
                np_dtype(v_threshold),
                np_dtype(v_reset),
                spikes.reshape(T, -1).numpy(),
                v.reshape(-1).numpy(),
            )
        else:
            spikes, v = _torch_forward(x, v0, q, plif, decay_input, v_threshold, v_reset)
        ctx.save_for_backward(x, v0, k if plif else None)
        ctx.cfg = (plif, decay_input, v_threshold, v_reset, alpha, detach_reset, k)
        ctx.pool = pool
        ctx.mark_non_differentiable(v)
        return spikes, v

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes, grad_v):
        x, v0, w = ctx.saved_tensors
        plif, decay_input, v_threshold, v_reset, alpha, detach_reset, k = ctx.cfg
        q = w.detach().to(x.dtype).sigmoid() if plif else k
        gs = grad_spikes.contiguous()
        if _numba_ok(x) and gs.dtype == x.dtype:
            T = x.shape[0]
            n = x[0].numel()
            grad_x = empty(ctx.pool, x.shape, x)
            grad_v0 = torch.empty_like(v0)
            gq = np.zeros((n + _BLOCK - 1) // _BLOCK, dtype=x.detach().numpy().dtype)
            np_dtype = gq.dtype.type
            _backward_kernel(
                x.detach().reshape(T, -1).numpy(),
                v0.detach().contiguous().reshape(-1).numpy(),
                gs.reshape(T, -1).numpy(),
                np_dtype(float(q)),
                plif,
                decay_input,
                np_dtype(v_threshold),
                np_dtype(v_reset),
                np_dtype(alpha),
                detach_reset,
                grad_x.reshape(T, -1).numpy(),
                grad_v0.reshape(-1).numpy(),
                gq,
            )
            grad_q = torch.as_tensor(gq.sum(), dtype=x.dtype)
        else:
            grad_x, grad_v0, grad_q = _torch_backward(
                x, v0, gs, q, plif, decay_input, v_threshold, v_reset, alpha, detach_reset
            )
        grad_w = None
        if plif and ctx.needs_input_grad[2]:
            grad_w = (grad_q * q * (1 - q)).to(w.dtype)
        if not ctx.needs_input_grad[1]:
            grad_v0 = None
        return grad_x, grad_v0, grad_w, None, None, None, None, None, None, None


class FusedLIF(neuron.BaseNode):
    """Multi-step LIF neuron (input ``[T, ...]``) as one autograd function; see module doc.

    A spikingjelly ``BaseNode``: its monitors and ``functional`` tools see it. In single-step
    mode (``step_mode = "s"``, input ``[N, ...]``) it runs spikingjelly's own step function.
    """

    def __init__(
        self,
        tau: float = 2.0,
        decay_input: bool = True,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        alpha: float = 2.0,
        detach_reset: bool = True,
    ) -> None:
        if not tau > 1.0:
            raise ConfigError(f"neuron tau must be > 1, got {tau}")
        super().__init__(
            float(v_threshold),
            float(v_reset),
            surrogate.ATan(alpha=float(alpha)),
            bool(detach_reset),
            step_mode="m",
        )
        self.tau = float(tau)
        self.decay_input = decay_input
        self.alpha = float(alpha)
        self.pool: BufferPool | None = None  # the model's, with ``cpu_kernels``

    def supported_step_mode(self) -> tuple[str, ...]:
        return ("s", "m")

    def single_step_functional_forward(
        self, inputs: tuple[torch.Tensor, ...], states: tuple[object, ...], **kwargs: object
    ) -> tuple[tuple[torch.Tensor, ...], tuple[object, ...]]:
        """One step (``step_mode = "s"``), as spikingjelly's ``LIFNode`` computes it."""
        from spikingjelly.activation_based.functional import lif_step, plif_step

        step = plif_step if isinstance(self, FusedPLIF) else lif_step
        spike, v = step(
            inputs[0],
            states[0],
            self._k(),
            self.decay_input,
            self.v_threshold,
            self.v_reset,
            self.surrogate_function,
            self.detach_reset,
        )
        return (spike,), (v, *states[1:])

    def _k(self) -> torch.Tensor | float:
        return self.tau

    def _initial_v(self, x: torch.Tensor) -> torch.Tensor:
        v = self.v
        if isinstance(v, torch.Tensor) and v.shape == x.shape[1:]:
            return v.detach().to(dtype=x.dtype, device=x.device)
        return torch.full_like(x[0], self.v_reset)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Spikes ``[T, ...]`` (same dtype as the input) of the input currents ``[T, ...]``,
        marked as spikes for the layers after it (``marks.SPIKES``)."""
        if self.step_mode == "s":
            return mark(self.single_step_forward(x_seq), SPIKES)
        if x_seq.device.type == "cuda":
            return mark(self._forward_cuda(x_seq), SPIKES)
        spikes, v = _MultiStepNeuron.apply(
            x_seq,
            self._initial_v(x_seq),
            self._k(),
            isinstance(self, FusedPLIF),
            self.decay_input,
            self.v_threshold,
            self.v_reset,
            self.alpha,
            self.detach_reset,
            self.pool,
        )
        self.v = v
        return mark(spikes, SPIKES)

    def _forward_cuda(self, x_seq: torch.Tensor) -> torch.Tensor:
        """On CUDA use spikingjelly's fused kernels; it falls back to torch ops by itself."""
        from spikingjelly.activation_based.functional import lif_multi_step, plif_multi_step

        v0 = self._initial_v(x_seq).float()
        common = (
            self.decay_input,
            self.v_threshold,
            self.v_reset,
            surrogate.ATan(alpha=self.alpha),
            self.detach_reset,
            False,
        )
        if isinstance(self, FusedPLIF):
            spikes, v, _ = plif_multi_step(x_seq, v0, self.w, *common)
        else:
            spikes, v, _ = lif_multi_step(x_seq, v0, self.tau, *common)
        self.v = v.detach()
        return spikes

    def extra_repr(self) -> str:
        return f"tau={self.tau}, v_threshold={self.v_threshold}, v_reset={self.v_reset}"


class FusedPLIF(FusedLIF):
    """Multi-step parametric LIF: 1/tau = sigmoid(w), one learnable ``w`` per layer."""

    def __init__(self, init_tau: float = 2.0, **kwargs) -> None:
        super().__init__(tau=init_tau, **kwargs)
        self.w = nn.Parameter(torch.as_tensor(-math.log(init_tau - 1.0)))

    def _k(self) -> torch.Tensor | float:
        return self.w

    def extra_repr(self) -> str:
        return f"init_tau={self.tau}, v_threshold={self.v_threshold}, v_reset={self.v_reset}"


def make_neuron(
    kind: Literal["lif", "plif"] = "lif",
    impl: Literal["fused", "spikingjelly"] = "fused",
    **overrides,
) -> nn.Module:
    """A multi-step LIF or PLIF neuron with the paper's defaults (tau 2, ATan, detach_reset).

    Args:
        kind: "lif" or "plif" (tau is the initial tau for PLIF).
        impl: "fused" (our autograd function) or "spikingjelly" (stock ``LIFNode`` /
            ``ParametricLIFNode``); both have the same state-dict keys.
        overrides: any of tau, decay_input, v_threshold, v_reset, alpha, detach_reset.

    Example:
        >>> make_neuron("plif")(torch.zeros(2, 3)).shape
        torch.Size([2, 3])
    """
    check_choice("neuron", kind, NEURON_KINDS)
    check_choice("neuron_impl", impl, NEURON_IMPLS)
    unknown = set(overrides) - set(_DEFAULTS)
    if unknown:
        raise ConfigError(f"unknown neuron options {sorted(unknown)}; valid: {sorted(_DEFAULTS)}")
    p = {**_DEFAULTS, **overrides}
    if impl == "fused":
        if kind == "lif":
            return FusedLIF(**p)
        tau = p.pop("tau")
        return FusedPLIF(init_tau=tau, **p)
    common = dict(
        decay_input=p["decay_input"],
        v_threshold=float(p["v_threshold"]),
        v_reset=float(p["v_reset"]),
        surrogate_function=surrogate.ATan(alpha=p["alpha"]),
        detach_reset=p["detach_reset"],
        step_mode="m",
        store_v_seq=False,
    )
    if kind == "lif":
        return neuron.LIFNode(tau=float(p["tau"]), **common)
    return neuron.ParametricLIFNode(init_tau=float(p["tau"]), **common)


def neuron_factory(kind: str, impl: str = "fused", **overrides) -> Callable[[], nn.Module]:
    """A zero-argument constructor of ``make_neuron(kind, impl, **overrides)`` for the blocks."""
    make_neuron(kind, impl, **overrides)  # validate once, eagerly

    def factory() -> nn.Module:
        return make_neuron(kind, impl, **overrides)

    return factory
