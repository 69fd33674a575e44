"""Spike-by-spike matrix products as bit-packed AND + popcount, with no float multiply.

For binary ``A [M, K]`` and ``B [K, N]``, ``(A @ B)[m, n] = popcount(rowbits(A, m) AND
colbits(B, n))``: each row of A and each column of B is packed into 64-bit words along K,
and one output is the sum of ``popcount(a_word & b_word)`` over the ``ceil(K / 64)`` words.
The counts are exact integers, so they equal torch's float matmul of the same 0/1 matrices
exactly (float32 sums of ones are exact below 2**24).

In SpikingResformer's DSSA the second product ``y2 @ attn`` has a real left operand
``y2 = BN(W2 * im2col(s))``; re-associated as ``(a * W2) @ (U @ attn) + b * colsum(attn)``
its core ``U @ attn`` is a product of two spike matrices (``DSSA.attention_backend``).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange, types
from numba.extending import intrinsic

__all__ = ["pack_bits", "and_popcount_matmul", "spike_matmul"]


@intrinsic
def _ctpop(typingctx, x):  # pragma: no cover - compiled by numba
    """LLVM ``ctpop`` on a uint64 (the CPU's popcnt instruction)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True, parallel=True)
def _and_popcount_kernel(a, b, out):  # pragma: no cover
    """a: [G, M, W] uint64, b: [G, N, W] uint64 -> out[g, m, n] = sum popcount(a & b)."""
    G, M, W = a.shape
    N = b.shape[1]
    for gm in prange(G * M):
        g = gm // M
        m = gm % M
        for n in range(N):
            acc = np.uint64(0)
            for w in range(W):
                acc += _ctpop(a[g, m, w] & b[g, n, w])
            out[g, m, n] = acc


def pack_bits(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """Pack the last axis of a binary array into little-endian uint64 words.

    Returns:
        ``[..., ceil(K / 64)]`` uint64; bit ``k % 64`` of word ``k // 64`` is ``x[..., k] != 0``.
    """
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    packed = np.packbits(arr != 0, axis=-1, bitorder="little")  # [..., ceil(K/8)] uint8
    pad = (-packed.shape[-1]) % 8
    if pad:
        packed = np.concatenate([packed, np.zeros((*packed.shape[:-1], pad), np.uint8)], axis=-1)
    return np.ascontiguousarray(packed).view(np.uint64)


def and_popcount_matmul(a_bits: np.ndarray, b_bits: np.ndarray) -> np.ndarray:
    """AND + popcount counts ``[G, M, N]`` (int64) of packed rows and packed columns.

    Args:
        a_bits: ``[G, M, W]`` uint64, rows of the left matrix packed along K.
        b_bits: ``[G, N, W]`` uint64, columns of the right matrix packed along K.
    """
    if a_bits.ndim != 3 or b_bits.ndim != 3:
        raise ValueError(f"expected [G, M, W] and [G, N, W], got {a_bits.shape}, {b_bits.shape}")
    if a_bits.shape[0] != b_bits.shape[0] or a_bits.shape[2] != b_bits.shape[2]:
        raise ValueError(f"packed shapes do not match: {a_bits.shape} vs {b_bits.shape}")
    out = np.empty((a_bits.shape[0], a_bits.shape[1], b_bits.shape[1]), np.int64)
    _and_popcount_kernel(
        np.ascontiguousarray(a_bits, np.uint64), np.ascontiguousarray(b_bits, np.uint64), out
    )
    return out


def spike_matmul(left: torch.Tensor, right: torch.Tensor, check: bool = True) -> torch.Tensor:
    """``left @ right`` for 0/1 tensors ``[..., M, K]`` and ``[..., K, N]`` by AND + popcount.

    Batch dimensions broadcast as in ``torch.matmul``. The result has ``left``'s dtype and
    device and is bitwise equal to ``torch.matmul(left, right)``.

    Example:
        >>> a = torch.tensor([[1.0, 0.0, 1.0]]); b = torch.tensor([[1.0], [1.0], [1.0]])
        >>> spike_matmul(a, b)
        tensor([[2.]])
    """
    if left.dim() < 2 or right.dim() < 2 or left.shape[-1] != right.shape[-2]:
        raise ValueError(
            f"expected [..., M, K] @ [..., K, N], got {tuple(left.shape)} @ {tuple(right.shape)}"
        )
    if check:
        for name, t in (("left", left), ("right", right)):
            if not bool(((t == 0) | (t == 1)).all()):
                raise ValueError(f"spike_matmul: {name} operand is not binary (0/1)")
    batch = torch.broadcast_shapes(left.shape[:-2], right.shape[:-2])
    M, N = left.shape[-2], right.shape[-1]
    a = pack_bits(left)  # [..., M, W]
    b = pack_bits(right.transpose(-1, -2))  # [..., N, W]: columns of right
    W = a.shape[-1]
    a = np.broadcast_to(a, (*batch, M, W)).reshape(-1, M, W)
    b = np.broadcast_to(b, (*batch, N, W)).reshape(-1, N, W)
    counts = and_popcount_matmul(a, b)  # [G, M, N]
    out = torch.from_numpy(counts).to(dtype=left.dtype, device=left.device)
    return out.reshape(*batch, M, N)
