"""A tiny model shared by the model tests."""

from __future__ import annotations

import torch
from spikingjelly.activation_based import functional

from eventvision.models import create_model

# A few-channel model at 16 px and T=2: every stage and block kind, seconds to run.
TINY_CONFIG = dict(planes=(8, 16, 32), num_heads=(1, 2, 4), group_size=8, img_size=16, T=2)


def tiny_firing_model():
    """A tiny dvsg-style model after one training batch (which set its firing-rate buffers)."""
    torch.manual_seed(0)
    model = create_model("spikingresformer_dvsg", **TINY_CONFIG)
    x = torch.rand(2, 2, 3, 16, 16) * 3
    model(x)  # a training batch sets the firing-rate buffers
    functional.reset_net(model)
    return model, x
