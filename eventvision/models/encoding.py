"""Encodings that turn static inputs into time sequences for spiking networks (the model's own)."""

from __future__ import annotations

import torch

__all__ = ["repeat_encode"]


def repeat_encode(x: torch.Tensor, time_steps: int) -> torch.Tensor:
    """Direct (repetition) encoding: present the same image at every step.

    Args:
        x: images ``[B, C, H, W]`` (real values; the network's first conv sees them as is).
        time_steps: number of steps T (>= 1).

    Returns:
        ``[B, T, C, H, W]``, T identical copies of each image.

    Example:
        >>> repeat_encode(torch.zeros(2, 3, 4, 4), 5).shape
        torch.Size([2, 5, 3, 4, 4])
    """
    if x.dim() != 4:
        raise ValueError(f"expected [B, C, H, W], got {tuple(x.shape)}")
    if int(time_steps) < 1:
        raise ValueError(f"time_steps must be >= 1, got {time_steps}")
    return x.unsqueeze(1).repeat(1, int(time_steps), 1, 1, 1)  # [B, T, C, H, W]
