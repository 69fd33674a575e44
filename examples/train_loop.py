"""A custom PyTorch training loop over a frame cache (FrameDataset), without eventvision.train.

    python examples/train_loop.py [CACHE] [--steps N]

Without CACHE it builds a tiny synthetic CIFAR10-DVS cache in ./example-data first.
"""

from __future__ import annotations

import argparse

import torch
from _data import tiny_cache
from spikingjelly.activation_based import functional

from eventvision.data import FrameDataset, make_loader
from eventvision.models import create_model


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "cache", nargs="?", help="an HDF5 frame cache from `eventvision preprocess`"
    )
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    cache = args.cache or tiny_cache("example-data")

    train = FrameDataset(cache, "train")  # items: float32 [T, 3, H, W] (OFF, ON, OFF+ON), label
    frames, _ = train[0]
    time_steps, channels, height, width = frames.shape
    model = create_model(
        "spikingresformer_ti",
        num_classes=len(train.classes),
        img_size=(height, width),
        time_steps=time_steps,
        in_channels=channels,
        planes=(8, 16, 32),  # a tiny model, so the example runs in seconds on a CPU
        num_heads=(1, 1, 2),
        blocks=(1, 1, 1),
        group_size=8,
        stem="imagenet",
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    loader = make_loader(train, batch_size=4, train=True, seed=0)  # seeded order

    model.train()
    step, loss = 0, torch.tensor(float("nan"))
    while step < args.steps:
        for x, y in loader:  # x: [B, T, C, H, W]
            logits = model(x).mean(0)  # per-time-step logits [T, B, classes], averaged over T
            loss = torch.nn.functional.cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            functional.reset_net(model)  # spiking neurons keep state: reset after every batch
            step += 1
            print(f"step {step}: loss {loss.item():.4f}")
            if step == args.steps:
                break
    return float(loss.item())


if __name__ == "__main__":
    main()
