"""One SpikingResformer training step, side by side: the official model code vs ours.

One step = forward, loss (cross-entropy of the T-averaged logits, as the official loop),
backward, AdamW step, zero_grad, ``functional.reset_net``. Contenders:

- ``official``: the official model code, imported from
  ``../shared/reference/official-spikingresformer`` (skipped with a note when absent);
  spikingjelly 2.0 runs its LIF/PLIF as compiled custom ops on the CPU.
- ``ours``: ``create_model(...)`` with its defaults (fused neurons, low-memory layers,
  spike-driven convolutions and in-place batch norm on the CPU).
- ``ours-dense`` (optional): the same with ``cpu_kernels=False`` (oneDNN's convolutions,
  torch's batch norm): its forward pass is bitwise the official one.
- ``plain`` (optional): our network with spikingjelly's stock neurons and plain torch layers
  (``neuron_impl="spikingjelly", low_memory=False``).

Every contender is built after ``torch.manual_seed(0)`` (the two codes create their
parameters in the same order, so they start from the same weights) and sees the same data,
so the first-step losses printed in the table are equal, up to float32 spikes that flip at
their threshold where our kernels sum in another order (``ours-dense`` prints the official
loss to the last digit). Each run is its own subprocess, so its peak memory is its own:
``ru_maxrss`` on the CPU, ``torch.cuda.max_memory_allocated`` on CUDA. The time of a run is
the median of its steps after ``--warmup`` warm-up steps (first-touch allocation,
numba/oneDNN set-up); CPU seconds per step (``time.process_time``, all threads) are reported
beside the wall time, as on a shared machine they vary less with the load. Contenders take
turns in every one of ``--rounds`` rounds, so a change in machine load hits all alike; the
table reports the median over rounds and the largest peak memory.

Firing rates: an initialised network fires at 3-7%, a trained one more, and the spike-driven
kernels gain most where few inputs fire. ``--density D`` raises the rate to D: every batch
norm bias of both contenders is shifted by the same delta, found by bisection on our model
(a copy, forward only, on the first 8 samples) so that its SOP-weighted spike density (the
official SOP count divided by the count with every input 1, first convolution and classifier
excluded, as in docs/energy) is D. ``--density trained`` is 0.179: the paper's
``spikingresformer_ti`` on ImageNet (2.73 G SOPs over T=4 steps, against 3.81 G per step at
density 1). Each run reports the firing rate of its neurons per stage on the first step.

Allocator: ``--mmap-threshold N`` sets glibc's ``MALLOC_MMAP_THRESHOLD_`` for every contender
alike (2147483647 keeps big blocks on the heap: no fresh page faults per step for anyone).

Usage:
    python benchmarks/bench_models.py                            # both workloads, official vs ours
    python benchmarks/bench_models.py --density trained --steps 2 --warmup 1
    python benchmarks/bench_models.py --workload cifar --impls official,ours,plain --rounds 2
    python benchmarks/bench_models.py --device cuda --batch 64   # on a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from official import OFFICIAL_DIR, import_official

WORKLOADS = {
    # name: (variant, T, img_size, classes, default batch)
    "cifar": ("spikingresformer_cifar", 4, 32, 10, 32),
    "dvsg": ("spikingresformer_dvsg", 16, 64, 11, 4),
}
OURS = {
    "ours": {},
    "ours-dense": {"cpu_kernels": False},
    "plain": {"neuron_impl": "spikingjelly", "low_memory": False},
}
IMPLS = ("official", *OURS)


def _build(workload: str, impl: str):
    """The model of ``impl`` for ``workload``, built right after ``torch.manual_seed(0)``."""
    import torch

    name, T, img, classes, _ = WORKLOADS[workload]
    torch.manual_seed(0)
    if impl == "official":
        return getattr(import_official(), name)(T=T, img_size=img, num_classes=classes)
    from eventvision.models import create_model

    return create_model(name, T=T, img_size=img, num_classes=classes, **OURS[impl])


def _data(workload: str, batch: int, device: str):
    """The same inputs and labels for every contender, from their own generator."""
    import torch

    _, T, img, classes, _ = WORKLOADS[workload]
    g = torch.Generator().manual_seed(1)
    if workload == "dvsg":
        x = torch.rand(batch, T, 3, img, img, generator=g) * 2  # [B, T, C, H, W] counts
    else:
        x = torch.randn(batch, 3, img, img, generator=g)  # [B, C, H, W], repeated over T
    y = torch.randint(0, classes, (batch,), generator=g)
    return x.to(device), y.to(device)


TRAINED_DENSITY = 0.179  # 2.73 G SOPs / 4 steps / 3.809 G dense SOPs per step (ti, 224 px)


def _shift_bn_bias(model, delta: float) -> None:
    """Add ``delta`` to the bias of every batch norm (the same in both codes)."""
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.bias.add_(delta)


def _sop_density(model, x) -> float:
    """SOPs over SOPs at density 1, first convolution and classifier excluded (docs/energy)."""
    import torch

    from eventvision.models.energy import _counts_sops, _layer_sops

    sops, dense, handles = [0.0], [0.0], []

    def hook(module, inputs, out):
        sops[0] += _layer_sops(module, inputs, out)
        dense[0] += _layer_sops(module, tuple(torch.ones_like(i) for i in inputs), out)

    for name, m in model.named_modules():
        if _counts_sops(m) and name not in ("prologue.0", "classifier"):
            handles.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return sops[0] / dense[0]


def _calibrate(workload: str, density: float | None, batch: int) -> tuple[float, float]:
    """The BN bias shift that gives our model ``density`` on the workload's data (None: no
    shift), and the density it gives (bisection on a copy, forward only)."""
    import torch
    from spikingjelly.activation_based import functional

    torch.set_num_threads(1)
    x = _data(workload, min(batch, 8), "cpu")[0]

    def at(delta: float) -> float:
        model = _build(workload, "ours").train()
        _shift_bn_bias(model, delta)
        got = _sop_density(model, x)
        functional.reset_net(model)
        return got

    if density is None:
        return 0.0, at(0.0)
    lo, hi = 0.0, 4.0
    for _ in range(7):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if at(mid) < density else (lo, mid)
    delta = (lo + hi) / 2
    return delta, at(delta)


def _stage_rates(model):
    """Forward hooks that record each neuron's firing rate, summed per stage; and handles."""
    from eventvision.models.energy import _is_neuron

    rates: dict[str, list[float]] = {}
    handles = []
    for name, m in model.named_modules():
        if _is_neuron(m):
            stage = ".".join(name.split(".")[:2])  # prologue, layers.0, layers.1, ...

            def hook(module, inputs, out, stage=stage):
                rates.setdefault(stage, []).append(float(out.detach().float().mean()))

            handles.append(m.register_forward_hook(hook))
    return rates, handles


def _child(workload: str, impl: str, batch: int, steps: int, warmup: int, args) -> dict:
    import torch
    from spikingjelly.activation_based import functional

    torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    model = _build(workload, impl).to(args.device)
    _shift_bn_bias(model, args.bias_shift)
    model.train()
    rates, handles = _stage_rates(model)  # the first step's firing rates per stage
    if cuda and args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    x, y = _data(workload, batch, args.device)
    times, cpu_times, losses = [], [], []
    for _ in range(warmup + steps):
        if cuda:
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast(args.device, enabled=args.amp):
            out = model(x)
            loss = torch.nn.functional.cross_entropy(out.float().mean(0), y)
        for h in handles:  # measured on the first forward pass only
            h.remove()
        handles = []
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        functional.reset_net(model)
        losses.append(loss.item())  # synchronises on CUDA
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    if cuda:
        peak_gib = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {
        "workload": workload,
        "impl": impl,
        "batch": batch,
        "s_per_step": statistics.median(times[warmup:]),
        "step_times": times,
        "cpu_s_per_step": statistics.median(cpu_times[warmup:]),
        "peak_gib": peak_gib,
        "losses": losses,
        "stage_rates": {k: sum(v) / len(v) for k, v in rates.items()},
    }


def _run(workload: str, impl: str, batch: int, args) -> dict:
    cmd = [sys.executable, __file__, "--child", workload, impl, str(batch)]
    cmd += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    cmd += ["--threads", str(args.threads), "--device", args.device]
    cmd += ["--amp"] * args.amp + ["--channels-last"] * args.channels_last
    cmd += ["--bias-shift", repr(args.bias_shift)]
    env = dict(os.environ)
    if args.mmap_threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        err = f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
        return {"workload": workload, "impl": impl, "batch": batch, "error": err}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict]) -> dict:
    """Median seconds over rounds, largest peak memory, the first-step loss of the first run."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {"error": runs[-1]["error"]}
    return {
        "s_per_step": statistics.median(r["s_per_step"] for r in ok),
        "cpu_s": statistics.median(r["cpu_s_per_step"] for r in ok),
        "peak_gib": max(r["peak_gib"] for r in ok),
        "loss0": ok[0]["losses"][0],
        "rates": ok[0]["stage_rates"],
    }


def _print_table(rows: list[tuple[str, int, str, dict[str, dict]]]) -> None:
    print()
    head = "| workload | batch | density | firing rate per stage | impl | first loss | s/step |"
    print(head + " CPU s/step | peak GiB | speed vs official | CPU time vs official |", end="")
    print(" memory vs official |")
    print("| --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for w, batch, density, res in rows:
        ref = res.get("official", {})
        for impl, r in res.items():
            if "error" in r:
                print(f"| {w} | {batch} | {density} | | {impl} | {r['error'][:60]} | | | | |")
                continue
            stages = " / ".join(f"{100 * v:.1f}" for k, v in r["rates"].items())
            speed = cpu = mem = "-"
            if "s_per_step" in ref:
                speed = f"{ref['s_per_step'] / r['s_per_step']:.2f}x"
                cpu = f"{ref['cpu_s'] / r['cpu_s']:.2f}x"
                mem = f"{r['peak_gib'] / ref['peak_gib']:.2f}x"
            print(
                f"| {w} | {batch} | {density} | {stages} % | {impl} | {r['loss0']:.6f} "
                f"| {r['s_per_step']:.2f} "
                f"| {r['cpu_s']:.2f} | {r['peak_gib']:.2f} | {speed} | {cpu} | {mem} |"
            )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workload", choices=[*WORKLOADS, "all"], default="all")
    p.add_argument("--impls", default="official,ours", help=f"comma list of {IMPLS}")
    p.add_argument("--batch", type=int, default=None, help="default: 32 for cifar, 4 for dvsg")
    p.add_argument("--steps", type=int, default=3, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per run")
    p.add_argument("--rounds", type=int, default=1, help="runs per contender, taking turns")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--amp", action="store_true", help="autocast (bfloat16 on cpu, float16 on cuda)")
    p.add_argument("--channels-last", action="store_true", help="cuda: channels-last model")
    p.add_argument(
        "--density",
        default=None,
        help=f"SOP-weighted spike density to run at, or 'trained' ({TRAINED_DENSITY})",
    )
    p.add_argument("--mmap-threshold", type=int, default=None, help="MALLOC_MMAP_THRESHOLD_")
    p.add_argument("--bias-shift", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--child", nargs=3, metavar=("WORKLOAD", "IMPL", "BATCH"))
    args = p.parse_args(argv)
    bad = sorted(set(args.impls.split(",")) - set(IMPLS))
    if bad:
        p.error(f"unknown impl(s) {bad}; valid: {list(IMPLS)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.child:
        w, impl, batch = args.child
        print(json.dumps(_child(w, impl, int(batch), args.steps, args.warmup, args)))
        return
    impls = args.impls.split(",")
    if "official" in impls and not (OFFICIAL_DIR / "models").is_dir():
        print(f"note: {OFFICIAL_DIR} not found; skipping the official model", file=sys.stderr)
        impls.remove("official")
    workloads = list(WORKLOADS) if args.workload == "all" else [args.workload]
    rows = []
    for w in workloads:
        batch = args.batch or WORKLOADS[w][4]
        target = None
        if args.density is not None:
            target = TRAINED_DENSITY if args.density == "trained" else float(args.density)
        args.bias_shift, got = _calibrate(w, target, batch)
        density = f"{100 * got:.1f}% (BN bias +{args.bias_shift:.3f})"
        print(f"{w}: BN bias shift {args.bias_shift:.4f} gives density {got:.4f}", flush=True)
        runs: dict[str, list[dict]] = {impl: [] for impl in impls}
        for k in range(args.rounds):
            order = impls if k % 2 == 0 else impls[::-1]
            for impl in order:
                r = _run(w, impl, batch, args)
                print(json.dumps(r), flush=True)
                runs[impl].append(r)
        rows.append((w, batch, density, {impl: _summary(rs) for impl, rs in runs.items()}))
    _print_table(rows)


if __name__ == "__main__":
    main()
