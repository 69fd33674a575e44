"""AND + popcount vs torch float matmul for the spike-by-spike DSSA product of each variant.

The product is ``U @ attn`` per head and image-step (see ``eventvision.models.popcount``):
``U`` is the binary im2col of the DSSA input, ``[C * p * p, L]``, and ``attn`` the attention
spikes, ``[L, H * W]``. Both operands are random 0/1 at the given density. The popcount time
is reported with and without bit packing; the float time is ``torch.matmul`` on float32.

Usage:
    python benchmarks/bench_popcount.py [--density 0.1] [--batch 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np
import torch

from eventvision.models import create_model, list_models
from eventvision.models.layers import DSSA
from eventvision.models.popcount import and_popcount_matmul, pack_bits


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--density", type=float, default=0.1, help="fraction of ones in each operand")
    p.add_argument("--batch", type=int, default=1, help="image-steps (T * B) per call")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    print("| variant | block | heads | U [K, L] | attn [L, N] | float ms | popcount ms |", end="")
    print(" incl. pack ms |")
    print("| --- | --- | ---: | --- | --- | ---: | ---: | ---: |")
    for name in list_models():
        with torch.device("meta"):
            model = create_model(name)
        side = model.cfg.stage_sizes()
        seen = set()
        for block, m in model.named_modules():
            if not isinstance(m, DSSA):
                continue
            stage = int(block.split(".")[1])
            k, n = m.dim * m.patch_size**2, side[stage] ** 2
            key = (m.num_heads, k, m.lenth, n)
            if key in seen:
                continue
            seen.add(key)
            u = (torch.rand(args.batch, 1, k, m.lenth, generator=g) < args.density).float()
            a = torch.rand(args.batch, m.num_heads, m.lenth, n, generator=g) < args.density
            a = a.float()
            t_float = _best(lambda u=u, a=a: torch.matmul(u, a), args.repeats)
            ub = pack_bits(u)  # [batch, 1, K, W]
            words = ub.shape[-1]
            ub = np.broadcast_to(ub, (args.batch, m.num_heads, k, words)).reshape(-1, k, words)
            ab = pack_bits(a.transpose(-1, -2)).reshape(-1, n, words)
            and_popcount_matmul(ub[:1], ab[:1])  # compile / load the kernel
            t_pop = _best(lambda ub=ub, ab=ab: and_popcount_matmul(ub, ab), args.repeats)

            t_pack = _best(lambda u=u, a=a: (pack_bits(u), pack_bits(a.transpose(-1, -2))), 1)
            print(
                f"| {name} | {block} | {m.num_heads} | [{k}, {m.lenth}] | [{m.lenth}, {n}] "
                f"| {t_float * 1e3:.2f} | {t_pop * 1e3:.2f} | {(t_pop + t_pack) * 1e3:.2f} |"
            )


if __name__ == "__main__":
    main()
