"""Mixing (timm's mixup/cutmix) with label smoothing, the loss and top-k hits (docs/training.md)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError


def _soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """timm's ``SoftTargetCrossEntropy``: batch mean of ``-sum(target * log_softmax(logits))``."""
    from timm.loss import SoftTargetCrossEntropy

    return SoftTargetCrossEntropy()(logits, target)


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
    """timm's ``Mixup`` in batch mode (mixup or cutmix with label smoothing) on frames or images.

    Each batch is mixed with its reverse; with probability ``switch_prob`` cutmix is used when
    both are enabled; the cutmix ratio is corrected to the pasted box's area. Draws come from
    numpy's global generator, which checkpoints save and restore. The one thing added: timm's
    cutmix indexes the box as ``x[:, :, y, x]``, so a frame batch ``[B, T, C, H, W]`` is mixed as
    ``[B, T*C, H, W]`` (one box for every step and channel); the input is never written to.
    """

    def __init__(self, spec: Any, num_classes: int) -> None:
        from timm.data import Mixup

        self.num_classes = num_classes
        self.smoothing = spec.label_smoothing
        self.mixup = Mixup(
            mixup_alpha=spec.mixup_alpha,
            cutmix_alpha=spec.cutmix_alpha,
            prob=spec.mixup_prob,
            switch_prob=spec.mixup_switch_prob,
            mode="batch",
            label_smoothing=spec.label_smoothing,
            num_classes=num_classes,
        )

    def _targets(self, y: torch.Tensor, lam: float) -> torch.Tensor:
        """Smoothed one-hot targets of ``y`` mixed with the batch's reverse by ``lam``."""
        from timm.data.mixup import mixup_target

        return mixup_target(y, self.num_classes, lam, self.smoothing)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[0] % 2:
            raise ConfigError(
                f"mixup/cutmix pair each sample with the batch's reverse and need an even batch, "
                f"got {x.shape[0]} samples"
            )
        mixed = x.flatten(1, -3).clone()  # [B, T*C, H, W] (or [B, C, H, W]); timm mixes in place
        mixed, target = self.mixup(mixed, y)
        return mixed.view(x.shape), target


def _topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: tuple[int, ...]) -> list[float]:
    """Correct predictions among the top-k classes of ``logits`` [B, K], for each k.

    timm's ``accuracy`` gives the percentage of the batch; the counts (summed over batches and
    processes for the epoch's mean) are that times the batch size, rounded to whole samples.
    Soft (mixed) targets count their largest class.
    """
    from timm.utils import accuracy

    if target.dim() == 2:
        target = target.argmax(-1)
    n = target.shape[0]
    return [float(round(float(acc) * n / 100.0)) for acc in accuracy(logits, target, topk=ks)]
