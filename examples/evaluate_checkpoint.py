"""Evaluate a checkpoint from Python: one call, then the same by hand for per-sample predictions.

    python examples/evaluate_checkpoint.py CHECKPOINT [CACHE]

CHECKPOINT is a run's ``best.pt`` (or the run folder); CACHE replaces the run's data.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from spikingjelly.activation_based import functional

from eventvision.data import FrameDataset, make_loader
from eventvision.train import build_model, evaluate, load_checkpoint
from eventvision.train.config import pipeline_from_dict


def main(argv: list[str] | None = None) -> tuple[float, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a run's best.pt or last.pt, or the run folder")
    parser.add_argument("cache", nargs="?", help="the frame cache to evaluate on")
    args = parser.parse_args(argv)

    # 1. One call: the recipe stored in the checkpoint, its test split, loss and top-1/top-5.
    result = evaluate(args.checkpoint, data=args.cache, energy=False, save=False)
    print(f"evaluate(): top-1 {result.acc1:.2f}% on {result.samples} samples")

    # 2. By hand: the model the run trained, its weights, the test split, argmax of mean logits.
    path = Path(args.checkpoint)
    ckpt = load_checkpoint(path / "best.pt" if path.is_dir() else path)
    pipeline = pipeline_from_dict(ckpt["pipeline"])  # the run's resolved recipe
    test = FrameDataset(args.cache or pipeline.data.path, "test", channels=pipeline.data.channels)
    model = build_model(pipeline, len(test.classes))
    model.load_state_dict(ckpt["model"])
    model.eval()
    hits = 0
    with torch.no_grad():
        for x, y in make_loader(test, batch_size=8, train=False):
            predicted = model(x).mean(0).argmax(1)  # logits [T, B, classes] -> [B]
            functional.reset_net(model)
            hits += int((predicted == y).sum())
    by_hand = 100.0 * hits / len(test)
    print(f"by hand:    top-1 {by_hand:.2f}% on {len(test)} samples")
    return result.acc1, by_hand


if __name__ == "__main__":
    main()
