"""Ablation: a small SpikingResformer on synthetic DVS Gesture, frame cache vs event cache + NDA.

Run: .venv/bin/python benchmarks/ablation_event_nda.py [--epochs 6] [--users 4] [--out DIR]

Both runs use one synthetic DVS Gesture release (`eventvision synth dvs-gesture`, gestures
scaled to ``--scale`` of their length), the same small model, seed, T=4 and 32 px:
- frames: a frame cache (`preprocess`, T=4, 32 px), no augmentation;
- events + NDA: an event cache (`preprocess --store events`), binned to T=4, 32 px in the
  loader, with the NDA policy (`--augment nda`).
They run one after the other on the CPU and print each best and final held-out top-1.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from eventvision.cache import CacheOptions, write_cache
from eventvision.synth import make_dvs_gesture
from eventvision.train import load_pipeline, train

SMALL_MODEL = {
    "model.planes": [32, 64, 128],
    "model.num_heads": [1, 2, 4],
    "model.blocks": [1, 1, 1],
    "model.group_size": 32,
    "model.stem": "imagenet",
}


def _run(data: Path, augment: str, args: argparse.Namespace, out: Path) -> tuple[float, float]:
    """Train one arm; ``(best, final)`` held-out top-1 in percent."""
    overrides = {
        **SMALL_MODEL,
        "data.path": str(data),
        "data.time_steps": 4,
        "data.size": 32,
        "data.augment": augment,
        "train.epochs": args.epochs,
        "train.batch_size": 16,
        "train.lr": 2e-3,
        "train.warmup_epochs": 1,
        "train.amp": False,
        "train.seed": args.seed,
        "train.device": "cpu",
    }
    result = train(load_pipeline("dvsgesture-direct", overrides), out)
    return result.best_acc1, float(result.final.get("test_acc1", float("nan")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="Keep the runs here.")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out = args.out or root / "runs"
        make_dvs_gesture(root / "raw", users=args.users, seed=args.seed, scale=args.scale)
        frames, events = root / "frames.h5", root / "events.h5"
        report = write_cache(CacheOptions("dvs-gesture", 4, size=32), root / "raw", frames)
        write_cache(CacheOptions("dvs-gesture", store="events"), root / "raw", events)
        print(f"synthetic DVS Gesture: {report.samples} samples")
        rows = []
        for name, data, augment in (("frames", frames, "none"), ("events + NDA", events, "nda")):
            start = time.perf_counter()
            best, final = _run(data, augment, args, out / name.replace(" + ", "-"))
            rows.append((name, best, final, time.perf_counter() - start))
    for name, best, final, seconds in rows:
        print(f"{name:<14} best top-1 {best:5.1f}%  final {final:5.1f}%  ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
