"""The layers' CPU kernels: spike-driven convolution and batch norm in place.

**Spike-driven convolution.** The input of every spiking convolution is a spike tensor, and
few of its entries are nonzero (3-4% before the grouped 3x3 convolutions of an initialised
``spikingresformer_cifar``, 3-14% elsewhere); oneDNN multiplies all of them. The forward
pass and the weight gradient here loop over the nonzero inputs only and add, for each, its
weight row into the outputs it reaches. The input gradient is dense (it meets the neuron's
surrogate, nonzero everywhere) and stays a dense product (``layers._conv_grad_input``).
The forward pass also tells whether the input was binary (a compare per nonzero input), so
the layer keeps a non-binary input as it is for an exact weight gradient.

**Batch norm.** Training-mode BN normalises a convolution's output in place (no new tensor,
no first-touch page faults), and its backward reads the output instead of a rebuilt input.

The sums are the same as torch's, taken in another order, so results equal ``F.conv2d`` and
``convolution_backward`` / ``native_batch_norm`` within float rounding, not bitwise
(docs/models.md, "Spike-driven convolution"). The convolution kernels work image by image
(``prange``) in an accumulator laid out [groups, OH, OW x O/groups] with the weights' kx taps
reversed, so the taps an input reaches along a row are one contiguous update (``_runs``);
the weight gradient sums one partial per work part in a fixed order, so a run is
deterministic for a given thread count. The kernels live here rather than
in ``frames/kernels.py`` because they are the layers (deviation from the style guide, item 7,
as for the neurons).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import njit, prange

from .pool import empty

__all__ = [
    "batch_norm_backward_from_output",
    "batch_norm_inplace",
    "cpu_kernels_ok",
    "spike_conv2d_forward",
    "spike_conv2d_grad_weight",
]

_ENABLED = True  # tests switch this off to compare with the torch ops
_REASSOC = {"reassoc", "contract"}  # vectorised sums in any order; NaN and inf still propagate


def cpu_kernels_ok(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether these kernels serve ``x`` with ``weight``: both on the CPU, float32 or float64."""
    return (
        _ENABLED
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and weight.dtype == x.dtype
        and weight.device.type == "cpu"
    )


@njit(cache=True)
def _taps(size, out_size, k, stride, pad):  # pragma: no cover
    """Per input position i: how many taps reach an output, and their (tap, output) pairs."""
    count = np.zeros(size, dtype=np.int64)
    pairs = np.empty((size, k, 2), dtype=np.int64)
    for i in range(size):
        for j in range(k):
            t = i + pad - j
            if t >= 0 and t % stride == 0 and t // stride < out_size:
                pairs[i, count[i], 0] = j
                pairs[i, count[i], 1] = t // stride
                count[i] += 1
    return count, pairs


@njit(cache=True)
def _runs(size, out_size, k, stride, pad):  # pragma: no cover
    """Per input position i along one axis, the outputs its taps reach, as runs.

    A run is (first flipped tap, first output, length): the flipped tap ``k - 1 - j`` and the
    output both rise by one along it, so with flipped weights a run is one contiguous update.
    At stride 1 all the taps of a position form one run; at larger strides each is its own.
    Returns the run count per position and the runs, [size, k, 3].
    """
    count = np.zeros(size, dtype=np.int64)
    runs = np.zeros((size, k, 3), dtype=np.int64)
    for i in range(size):
        for jf in range(k):
            t = i + pad - (k - 1 - jf)
            if t < 0 or t % stride != 0 or t // stride >= out_size:
                continue
            r = count[i] - 1
            if (
                r >= 0
                and runs[i, r, 0] + runs[i, r, 2] == jf
                and runs[i, r, 1] + runs[i, r, 2] == t // stride
            ):
                runs[i, r, 2] += 1
            else:
                runs[i, r + 1, 0] = jf
                runs[i, r + 1, 1] = t // stride
                runs[i, r + 1, 2] = 1
                count[i] += 1
    return count, runs


@njit(cache=True, inline="always")
def _transpose(src, dst):  # pragma: no cover
    """dst[j, i] = src[i, j], in 16 x 16 tiles (both sides stay in cache)."""
    J, I = dst.shape
    for j0 in range(0, J, 16):
        for i0 in range(0, I, 16):
            for j in range(j0, min(j0 + 16, J)):
                for i in range(i0, min(i0 + 16, I)):
                    dst[j, i] = src[i, j]


@njit(cache=True)
def _tap_tables(H, W, OH, OW, KH, KW, stride, pad):  # pragma: no cover
    """The tap pairs along y (``_taps``) and the tap runs along x (``_runs``) of a convolution
    of an [H, W] input into [OH, OW] with a KH x KW kernel: (ny, ty, nx, rx)."""
    ny, ty = _taps(H, OH, KH, stride[0], pad[0])
    nx, rx = _runs(W, OW, KW, stride[1], pad[1])
    return ny, ty, nx, rx


@njit(cache=True, inline="always")
def _add_taps(v, dst, src, d, y, x, ny, ty, nx, rx, opg):  # pragma: no cover
    """For the input value ``v`` at (y, x), ``dst_span += v * src_span`` over all its tap runs.

    ``dst`` and ``src`` are [rows, columns * opg] planes, one indexed by kernel tap and the
    other by output (taps and outputs as ``ty``, ``rx`` pair them, index 0 and 1): ``d`` is
    the index of ``dst``'s side, 1 for the forward pass (into the outputs, from the weights),
    0 for the weight gradient (into the weights, from the output gradient).
    """
    e = 1 - d
    for i in range(ny[y]):
        dst_row = dst[ty[y, i, d]]
        src_row = src[ty[y, i, e]]
        for r in range(nx[x]):
            da, sa, m = rx[x, r, d] * opg, rx[x, r, e] * opg, rx[x, r, 2] * opg
            a = dst_row[da : da + m]
            b = src_row[sa : sa + m]
            for o in range(m):
                a[o] += v * b[o]


@njit(cache=True, parallel=True)
def _forward_kernel(s, wt, stride, pad, groups, out, mask, odd):  # pragma: no cover
    """out[n, o, oy, ox] = sum over nonzero s[n, c, y, x] of s * w[o, c, ky, kx].

    ``s`` [N, C, H, W]; ``wt`` [C, KH, KW * O/groups], the weights each input channel feeds,
    kx taps flipped (``_flipped_weight``); ``out`` [N, O, OH, OW], ``mask`` (``s != 0``,
    uint8) [N, C, H, W] and ``odd`` [N] (1 where image n has a value other than 0 and 1, a
    compare per nonzero input) are overwritten. An image's accumulator is
    [groups, OH, OW * O/groups], so each run of taps (``_runs``) adds one contiguous span.
    """
    N, C, H, W = s.shape
    _, O, OH, OW = out.shape
    OPG, cpg = O // groups, C // groups
    ny, ty, nx, rx = _tap_tables(H, W, OH, OW, wt.shape[1], wt.shape[2] // OPG, stride, pad)
    for n in prange(N):
        acc = np.zeros((groups, OH, OW * OPG), dtype=out.dtype)
        odd[n] = 0
        for c in range(C):
            acc_g = acc[c // cpg]
            w_c = wt[c]
            for y in range(H):
                for x in range(W):
                    v = s[n, c, y, x]
                    mask[n, c, y, x] = v != 0
                    if v == 0:
                        continue
                    if v != 1:
                        odd[n] = 1
                    _add_taps(v, acc_g, w_c, 1, y, x, ny, ty, nx, rx, OPG)
        for g in range(groups):
            dst = out[n, g * OPG : (g + 1) * OPG].reshape(OPG, OH * OW)
            _transpose(acc[g].reshape(OH * OW, OPG), dst)


@njit(cache=True, parallel=True)
def _grad_weight_kernel(s, gout, stride, pad, groups, gw_parts):  # pragma: no cover
    """gw_parts[k] = the gradient of the flipped weight (laid out as ``wt`` above) summed over
    the k-th share of the images.

    ``s`` [N, C, H, W] (bool as uint8, or float); ``gout`` [N, O, OH, OW]; ``gw_parts``
    [P, C, KH, KW * O/groups], zeros on entry.
    """
    N, C, H, W = s.shape
    P, _, KH, KWO = gw_parts.shape
    _, O, OH, OW = gout.shape
    OPG, cpg = O // groups, C // groups
    ny, ty, nx, rx = _tap_tables(H, W, OH, OW, KH, KWO // OPG, stride, pad)
    for k in prange(P):
        gw = gw_parts[k]
        g = np.empty((groups, OH, OW * OPG), dtype=gout.dtype)  # gout[n], laid out as acc
        for n in range(k * N // P, (k + 1) * N // P):
            for j in range(groups):
                src = gout[n, j * OPG : (j + 1) * OPG].reshape(OPG, OH * OW)
                _transpose(src, g[j].reshape(OH * OW, OPG))
            for c in range(C):
                g_g = g[c // cpg]
                gw_c = gw[c]
                for y in range(H):
                    for x in range(W):
                        v = s[n, c, y, x]
                        if v == 0:
                            continue
                        _add_taps(v, gw_c, g_g, 0, y, x, ny, ty, nx, rx, OPG)


def _parts(n: int) -> int:
    """Work parts for ``n`` images: one per numba thread."""
    return max(1, min(n, numba.get_num_threads()))


def _flipped_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """[O, C/g, KH, KW] -> [C, KH, KW * O/g]: the weights one input channel feeds, contiguous,
    with the kx taps reversed (so they run the way the outputs they reach rise)."""
    O, cpg, KH, KW = weight.shape
    w = weight.detach().reshape(groups, O // groups, cpg, KH, KW).flip(-1)
    return w.permute(0, 2, 3, 4, 1).reshape(groups * cpg, KH, KW * (O // groups)).contiguous()


def spike_conv2d_forward(
    s, weight, stride, padding, groups, mask=None, pool=None
) -> tuple[torch.Tensor, bool]:
    """``F.conv2d(s, weight, None, stride, padding, 1, groups)`` for a sparse CPU ``s``, and
    whether ``s`` is binary (all its values 0 or 1).

    Exact for any values (zeros are skipped), fast when few are nonzero. ``mask``, a bool
    tensor of the shape of ``s``, receives ``s != 0`` on the way. The output comes from
    ``pool`` when one is given (``pool.BufferPool``).
    """
    N, _, H, W = s.shape
    O, _, KH, KW = weight.shape
    OH = (H + 2 * padding[0] - KH) // stride[0] + 1
    OW = (W + 2 * padding[1] - KW) // stride[1] + 1
    out = empty(pool, (N, O, OH, OW), weight)
    if mask is None:
        mask = torch.empty(s.shape, dtype=torch.bool)
    odd = np.empty(N, dtype=np.uint8)
    _forward_kernel(
        s.detach().contiguous().numpy(),
        _flipped_weight(weight, groups).numpy(),
        tuple(stride),
        tuple(padding),
        groups,
        out.numpy(),
        mask.view(torch.uint8).numpy(),
        odd,
    )
    return out, not odd.any()


def spike_conv2d_grad_weight(s, grad_out, weight_shape, stride, padding, groups) -> torch.Tensor:
    """The weight gradient of that convolution, from ``s`` (bool or float) and ``grad_out``."""
    N, C = s.shape[:2]
    O, cpg, KH, KW = weight_shape
    dtype = grad_out.detach().numpy().dtype
    parts = np.zeros((_parts(N), C, KH, KW * (O // groups)), dtype=dtype)
    src = s.detach().contiguous()
    _grad_weight_kernel(
        src.view(torch.uint8).numpy() if src.dtype == torch.bool else src.numpy(),
        grad_out.detach().contiguous().numpy(),
        tuple(stride),
        tuple(padding),
        groups,
        parts,
    )
    gw = torch.from_numpy(parts.sum(axis=0))  # [C, KH, KW (flipped) * O/g]
    gw = gw.reshape(groups, cpg, KH, KW, O // groups).flip(3)  # [g, C/g, KH, KW, O/g]
    return gw.permute(0, 4, 1, 2, 3).reshape(O, cpg, KH, KW).contiguous()  # [O, C/g, KH, KW]


@njit(cache=True, parallel=True, fastmath=_REASSOC)
def _bn_forward_kernel(x, weight, bias, eps, mean, var):  # pragma: no cover
    """Training-mode batch norm of ``x`` [N, C, P] in place; ``mean``, ``var`` [C] (biased).

    Two passes for the statistics (mean, then squared deviations; rows of P values summed in
    float32 lanes, rows in float64), one to normalise as torch does:
    x * (weight * invstd) + (bias - mean * weight * invstd).
    """
    N, C, P = x.shape
    M = N * P
    for c in prange(C):
        total = 0.0
        for n in range(N):
            row = x[n, c]
            acc = row[0] * 0
            for p in range(P):
                acc += row[p]
            total += acc
        m = total / M
        m32 = x.dtype.type(m)
        total = 0.0
        for n in range(N):
            row = x[n, c]
            acc = row[0] * 0
            for p in range(P):
                d = row[p] - m32
                acc += d * d
            total += acc
        v = total / M
        mean[c] = m
        var[c] = v
        alpha = weight[c] * (1 / np.sqrt(v + eps))
        beta = bias[c] - m * alpha
        a32, b32 = x.dtype.type(alpha), x.dtype.type(beta)
        for n in range(N):
            row = x[n, c]
            for p in range(P):
                row[p] = row[p] * a32 + b32


def batch_norm_inplace(x, weight, bias, eps) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise a contiguous [N, C, H, W] ``x`` in place with its batch statistics.

    Returns the batch ``mean`` and biased ``var`` per channel (float64 sums, in x's dtype).
    """
    N, C = x.shape[:2]
    mean = torch.empty(C, dtype=x.dtype)
    var = torch.empty(C, dtype=x.dtype)
    _bn_forward_kernel(
        x.detach().reshape(N, C, -1).numpy(),
        weight.detach().numpy(),
        bias.detach().numpy(),
        float(eps),
        mean.numpy(),
        var.numpy(),
    )
    return mean, var


@njit(cache=True, parallel=True, fastmath=_REASSOC)
def _bn_backward_kernel(g, y, weight, bias, invstd, gx, gw, gb):  # pragma: no cover
    """Training-mode batch-norm gradients from the output ``y`` (not the input).

    ``g``, ``y``, ``gx`` [N, C, P]; ``weight``, ``bias``, ``invstd`` [C]; ``gw``, ``gb`` [C]
    are overwritten. With x_hat = (y - bias) / weight and M = N * P:
    gb = sum(g), gw = sum(g * x_hat), gx = weight * invstd * (g - gb / M - x_hat * gw / M).
    Each row of P values is summed in float32 lanes (in any order), rows in float64.
    """
    N, C, P = g.shape
    M = N * P
    for c in prange(C):
        w, b = weight[c], bias[c]
        inv_w = 1 / w
        sg = 0.0
        sgx = 0.0
        for n in range(N):
            rg = g[n, c]
            ry = y[n, c]
            row_g = rg[0] * 0
            row_gx = rg[0] * 0
            for p in range(P):
                row_g += rg[p]
                row_gx += rg[p] * ((ry[p] - b) * inv_w)
            sg += row_g
            sgx += row_gx
        gb[c] = sg
        gw[c] = sgx
        k = w * invstd[c]
        mg = sg / M
        mgx = sgx / M
        for n in range(N):
            rg = g[n, c]
            ry = y[n, c]
            rx = gx[n, c]
            for p in range(P):
                rx[p] = k * (rg[p] - mg - ((ry[p] - b) * inv_w) * mgx)


def batch_norm_backward_from_output(grad_out, out, weight, bias, invstd, pool=None):
    """``(grad_x, grad_weight, grad_bias)`` of training-mode batch norm over [N, C, H, W].

    Reads the output ``out`` where torch's backward reads the input (``weight`` must have no
    zero), and needs no rebuilt input: two passes instead of three.
    """
    N, C = out.shape[:2]
    g = grad_out.detach().contiguous()
    gx = empty(pool, g.shape, g)
    gw = torch.empty(C, dtype=out.dtype)
    gb = torch.empty(C, dtype=out.dtype)
    _bn_backward_kernel(
        g.reshape(N, C, -1).numpy(),
        out.detach().reshape(N, C, -1).numpy(),
        weight.detach().numpy(),
        bias.detach().numpy(),
        invstd.detach().numpy(),
        gx.reshape(N, C, -1).numpy(),
        gw.numpy(),
        gb.numpy(),
    )
    return gx, gw, gb
