"""Speed and peak memory of one SpikingResformer training step: ours vs plain spikingjelly.

One step = forward, loss (cross-entropy of the T-averaged logits, as the official loop),
backward, AdamW step, zero_grad, ``functional.reset_net``. Each configuration runs in its
own subprocess so that its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its
own. The plain path is the same network built with spikingjelly's stock ``LIFNode`` /
``ParametricLIFNode`` and plain torch layers (``neuron_impl="spikingjelly"``,
``low_memory=False``), i.e. the official code's computation.

Usage:
    python benchmarks/bench_models.py                   # both workloads, both paths
    python benchmarks/bench_models.py --workload dvsg --batch 8 --impl ours
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

WORKLOADS = {
    # name: (variant, T, img_size, default batch)
    "dvsg": ("spikingresformer_dvsg", 16, 64, 4),
    "cifar": ("spikingresformer_cifar", 4, 32, 32),
}
IMPLS = {
    "plain": {"neuron_impl": "spikingjelly", "low_memory": False},
    "ours": {"neuron_impl": "fused", "low_memory": True},
}


def _child(workload: str, impl: str, batch: int, steps: int, threads: int) -> dict:
    import torch
    from spikingjelly.activation_based import functional

    from eventvision.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    name, T, img, _ = WORKLOADS[workload]
    model = create_model(name, T=T, img_size=img, **IMPLS[impl])
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    n_classes = model.cfg.num_classes
    if workload == "dvsg":
        x = torch.rand(batch, T, 3, img, img) * 2  # [B, T, C, H, W] event-count frames
    else:
        x = torch.randn(batch, 3, img, img)  # [B, C, H, W], repeated over T by the model
    y = torch.randint(0, n_classes, (batch,))
    times, losses = [], []
    for _ in range(steps + 1):  # the first step warms up and is not timed
        t0 = time.perf_counter()
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out.mean(0), y)
        loss.backward()
        losses.append(loss.item())
        opt.step()
        opt.zero_grad(set_to_none=True)
        functional.reset_net(model)
        times.append(time.perf_counter() - t0)
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "workload": workload,
        "impl": impl,
        "batch": batch,
        "s_per_step": min(times[1:]) if steps else times[0],
        "peak_rss_gib": maxrss_kib / 2**20,
        "losses": losses,  # the first one is equal for both paths (same weights, same data)
    }


def _run(workload: str, impl: str, batch: int, steps: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", workload, impl, str(batch), str(steps)]
    cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {
            "workload": workload,
            "impl": impl,
            "batch": batch,
            "error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}",
        }
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    p.add_argument("--impl", choices=[*IMPLS, "both"], default="both")
    p.add_argument("--batch", type=int, default=None, help="default: 4 for dvsg, 32 for cifar")
    p.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", nargs=4, metavar=("WORKLOAD", "IMPL", "BATCH", "STEPS"))
    args = p.parse_args(argv)
    if args.child:
        w, impl, batch, steps = args.child
        print(json.dumps(_child(w, impl, int(batch), int(steps), args.threads)))
        return
    workloads = list(WORKLOADS) if args.workload == "all" else [args.workload]
    impls = list(IMPLS) if args.impl == "both" else [args.impl]
    rows = []
    for w in workloads:
        batch = args.batch or WORKLOADS[w][3]
        res = {impl: _run(w, impl, batch, args.steps, args.threads) for impl in impls}
        for r in res.values():
            print(json.dumps(r), flush=True)
        rows.append((w, batch, res))
    print()
    head = "| workload | batch | plain s/step | ours s/step | speed-up | plain GiB | ours GiB |"
    print(head + " memory |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w, batch, res in rows:
        pl, ou = res.get("plain", {}), res.get("ours", {})

        def fmt(r: dict, k: str) -> str:
            return f"{r[k]:.2f}" if k in r else r.get("error", "-")[:40]

        speed = mem = "-"
        if "s_per_step" in pl and "s_per_step" in ou:
            speed = f"{pl['s_per_step'] / ou['s_per_step']:.2f}x"
            mem = f"{ou['peak_rss_gib'] / pl['peak_rss_gib']:.2f}"
        print(
            f"| {w} | {batch} | {fmt(pl, 's_per_step')} | {fmt(ou, 's_per_step')} | {speed} "
            f"| {fmt(pl, 'peak_rss_gib')} | {fmt(ou, 'peak_rss_gib')} | {mem} |"
        )


if __name__ == "__main__":
    main()
