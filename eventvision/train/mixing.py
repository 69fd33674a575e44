"""Mixing (mixup/cutmix) with label smoothing, the loss and top-k hits (docs/training.md)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


def _soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()


def _loss(
    out: torch.Tensor, target: torch.Tensor, label_smoothing: float, tet: bool
) -> torch.Tensor:
    """Loss of ``out`` [T, B, K] averaged over T, or (TET) the mean over T of per-step losses."""
    if target.dim() == 2:

        def criterion(logits: torch.Tensor) -> torch.Tensor:
            return _soft_cross_entropy(logits, target)

    else:

        def criterion(logits: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, target, label_smoothing=label_smoothing)

    if tet:
        return torch.stack([criterion(out[t]) for t in range(out.shape[0])]).mean()
    return criterion(out.mean(0))


class _Mixer:
    """timm's batch-mode mixup/cutmix with label smoothing (``FastCollateMixup(mode='batch')``).

    Each batch is mixed with its reverse; with probability ``switch_prob`` cutmix is used when
    both are enabled; the cutmix ratio is corrected to the pasted box's area. Draws come from
    numpy's global generator, which checkpoints save and restore.
    """

    def __init__(self, spec: Any, num_classes: int) -> None:
        self.mixup_alpha = spec.mixup_alpha
        self.cutmix_alpha = spec.cutmix_alpha
        self.prob = spec.mixup_prob
        self.switch_prob = spec.mixup_switch_prob
        self.smoothing = spec.label_smoothing
        self.num_classes = num_classes

    def _targets(self, y: torch.Tensor, lam: float) -> torch.Tensor:
        off = self.smoothing / self.num_classes
        on = 1.0 - self.smoothing + off
        one = torch.full((y.shape[0], self.num_classes), off, device=y.device)
        one.scatter_(1, y.view(-1, 1), on)
        return one * lam + one.flip(0) * (1.0 - lam)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lam, cutmix = 1.0, False
        if np.random.rand() < self.prob:
            use_cutmix = self.cutmix_alpha > 0 and (
                self.mixup_alpha <= 0 or np.random.rand() < self.switch_prob
            )
            alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
            lam, cutmix = float(np.random.beta(alpha, alpha)), use_cutmix
        if lam == 1.0:
            return x, self._targets(y, 1.0)
        if cutmix:
            h, w = x.shape[-2:]
            cut = math.sqrt(1.0 - lam)
            ch, cw = int(h * cut), int(w * cut)
            cy, cx = np.random.randint(0, h), np.random.randint(0, w)
            # timm's rand_bbox: the box spans [c - s//2, c + (s+1)//2), clipped to the image
            y1, y2 = np.clip(cy - ch // 2, 0, h), np.clip(cy + (ch + 1) // 2, 0, h)
            x1, x2 = np.clip(cx - cw // 2, 0, w), np.clip(cx + (cw + 1) // 2, 0, w)
            x = x.clone()
            x[..., y1:y2, x1:x2] = x.flip(0)[..., y1:y2, x1:x2]
            lam = 1.0 - float((y2 - y1) * (x2 - x1)) / float(h * w)
        else:
            x = x * lam + x.flip(0) * (1.0 - lam)
        return x, self._targets(y, lam)


def _topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...]) -> list[float]:
    """Correct predictions among the top-k classes of ``logits`` [B, K], for each k."""
    if target.dim() == 2:
        target = target.argmax(-1)
    kmax = min(max(ks), logits.shape[-1])
    pred = logits.topk(kmax, dim=-1).indices  # [B, kmax]
    hit = pred.eq(target.view(-1, 1))
    return [float(hit[:, : min(k, kmax)].any(dim=1).sum()) for k in ks]
