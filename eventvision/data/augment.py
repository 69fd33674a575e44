"""The paper's augmentations: DVSAugment for event frames, timm's transforms for images.

`DVSAugment` follows the official SpikingResformer code (``DVStransform`` with ``augment``): a
horizontal flip with p=0.5, then ONE op chosen uniformly from roll, rotation and cutout, the same
op for every time step and channel of a sample. Its randomness comes from an explicit
`torch.Generator` (or a seed), so a run is reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError
from .loader import mix_seeds, sample_seed

# torchvision is imported where it is used: it takes seconds to import, and every spawned
# DataLoader worker pays that again even when it only reads frames.

__all__ = [
    "DVS_OPS",
    "DVSAugment",
    "DVSAugmentParams",
    "NORMALIZATION",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "image_transform",
]

DVS_OPS = ("roll", "rotate", "cutout")

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN = (129.3 / 255, 124.1 / 255, 112.4 / 255)
CIFAR100_STD = (68.2 / 255, 65.4 / 255, 70.4 / 255)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": (CIFAR10_MEAN, CIFAR10_STD),
    "cifar100": (CIFAR100_MEAN, CIFAR100_STD),
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
}


@dataclass(frozen=True)
class DVSAugmentParams:
    """One draw of DVSAugment; only the fields of the chosen `op` matter.

    Args:
        flip: mirror the last (width) axis first.
        op: "roll", "rotate" or "cutout".
        shift: roll offsets (rows, columns) in pixels.
        angle_deg: rotation angle, counter-clockwise.
        center: cutout centre (row, column).
    """

    flip: bool
    op: str
    shift: tuple[int, int] = (0, 0)
    angle_deg: float = 0.0
    center: tuple[int, int] = (0, 0)


def _extent(size: int) -> int:
    # The official Roll and Cutout both use a third of the side, rounded down.
    return size // 3


class DVSAugment:
    """The paper's DVS augmentation of one sample `[..., H, W]` (e.g. `[T, C, H, W]` frames).

    Horizontal flip with p=`flip_p`, then one op drawn uniformly from `ops`:
    roll by independent integers in [-⌊H/3⌋, ⌊H/3⌋] (rows) and [-⌊W/3⌋, ⌊W/3⌋] (columns),
    `torch.roll` wrap-around; rotation by an angle uniform in ±`max_angle_deg`, nearest
    neighbour, fill 0; cutout zeroing the rows [cy - ⌊H/3⌋//2, cy + ⌊H/3⌋//2) and the columns
    likewise, around a uniform pixel (cy, cx), clipped at the border (side 20 at 64 px, 42 at 128).

    Randomness: `__call__(frames, generator)` draws from `generator` when given; otherwise from
    a private generator seeded with `seed` (inside `make_loader`, with `seed` mixed with the
    item's `sample_seed`, so items and epochs differ but a seeded loader repeats for any number
    of workers); with `seed=None`, from torch's global RNG, which `make_loader` seeds per item.

    Example:
        >>> aug = DVSAugment(seed=0)
        >>> aug(torch.ones(16, 2, 64, 64)).shape
        torch.Size([16, 2, 64, 64])
    """

    def __init__(
        self,
        seed: int | None = None,
        flip_p: float = 0.5,
        max_angle_deg: float = 30.0,
        ops: Sequence[str] = DVS_OPS,
    ) -> None:
        unknown = [op for op in ops if op not in DVS_OPS]
        if unknown or not ops:
            raise ConfigError(
                f"DVSAugment ops {list(ops)!r}: expected a non-empty subset of {DVS_OPS}"
            )
        if not 0.0 <= flip_p <= 1.0:
            raise ConfigError(f"DVSAugment flip_p={flip_p}: expected a probability in [0, 1]")
        self.seed = seed
        self.flip_p = float(flip_p)
        self.max_angle_deg = float(max_angle_deg)
        self.ops = tuple(ops)
        self._generator: torch.Generator | None = None
        self._generator_key: tuple[int, int | None] | None = None

    def draw(
        self, height: int, width: int, generator: torch.Generator | None = None
    ) -> DVSAugmentParams:
        """Draw the random parameters for one `height` x `width` sample."""
        flip = bool(torch.rand((), generator=generator) < self.flip_p)
        op = self.ops[int(torch.randint(len(self.ops), (), generator=generator))]
        if op == "roll":
            dy = _randint_symmetric(_extent(height), generator)
            dx = _randint_symmetric(_extent(width), generator)
            return DVSAugmentParams(flip, op, shift=(dy, dx))
        if op == "rotate":
            u = float(torch.rand((), generator=generator, dtype=torch.float64))
            return DVSAugmentParams(flip, op, angle_deg=(2.0 * u - 1.0) * self.max_angle_deg)
        cy = int(torch.randint(height, (), generator=generator))
        cx = int(torch.randint(width, (), generator=generator))
        return DVSAugmentParams(flip, op, center=(cy, cx))

    @staticmethod
    def apply(frames: Tensor, params: DVSAugmentParams) -> Tensor:
        """Apply drawn parameters alike to every leading index of `frames` `[..., H, W]`."""
        if frames.dim() < 2:
            raise ValueError(f"expected frames [..., H, W], got {tuple(frames.shape)}")
        height, width = frames.shape[-2:]
        out = torch.flip(frames, dims=(-1,)) if params.flip else frames
        if params.op == "roll":
            return torch.roll(out, shifts=params.shift, dims=(-2, -1))
        if params.op == "rotate":
            from torchvision.transforms import InterpolationMode
            from torchvision.transforms import functional as TF

            lead = out.shape[:-2]
            flat = out.reshape(-1, 1, height, width)  # [N, 1, H, W]
            rotated = TF.rotate(
                flat, params.angle_deg, interpolation=InterpolationMode.NEAREST, fill=[0.0]
            )
            return rotated.reshape(*lead, height, width)  # [..., H, W]
        if params.op == "cutout":
            cy, cx = params.center
            half_h, half_w = _extent(height) // 2, _extent(width) // 2
            y1, y2 = max(cy - half_h, 0), min(cy + half_h, height)
            x1, x2 = max(cx - half_w, 0), min(cx + half_w, width)
            out = out.clone()
            out[..., y1:y2, x1:x2] = 0
            return out
        raise ValueError(f"unknown DVSAugment op {params.op!r}; expected one of {DVS_OPS}")

    def __call__(self, frames: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Augment one sample `[..., H, W]` with one draw shared by all frames and channels."""
        if generator is None:
            generator = self._own_generator()
        height, width = frames.shape[-2:]
        return self.apply(frames, self.draw(height, width, generator))

    def _own_generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None  # torch's global RNG: make_loader seeds it for every item
        sample = sample_seed()
        key = (os.getpid(), sample)
        if self._generator is None or self._generator_key != key:
            seed = self.seed if sample is None else mix_seeds(self.seed, sample)
            self._generator = torch.Generator().manual_seed(seed)
            self._generator_key = key
        return self._generator

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_generator"] = None
        state["_generator_key"] = None
        return state

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(seed={self.seed}, flip_p={self.flip_p}, "
            f"max_angle_deg={self.max_angle_deg}, ops={self.ops})"
        )


def _randint_symmetric(bound: int, generator: torch.Generator | None) -> int:
    return int(torch.randint(-bound, bound + 1, (), generator=generator))


# Our names for timm's auto_augment strings: "autoaugment" is AutoAugment's original policy.
_TIMM_AUTO_AUGMENT = {"none": None, "autoaugment": "original"}


def image_transform(
    train: bool,
    *,
    size: int = 32,
    normalize: str = "cifar10",
    augment: str = "rand-m7-n1-mstd0.5-inc1",
    crop_scale: Sequence[float] = (1.0, 1.0),
    crop_ratio: Sequence[float] = (1.0, 1.0),
    hflip: float = 0.5,
    color_jitter: float = 0.0,
    interpolation: str = "bicubic",
    test_crop_pct: float = 1.0,
) -> Callable:
    """The image pipeline (PIL image to float32 `[3, size, size]`): timm's `create_transform`.

    The defaults are the official CIFAR-10 training call (docs/data.md, "Image augmentation");
    the recipes pass their `[data]` values. `augment` is a timm RandAugment string
    ("rand-m7-n1-mstd0.5-inc1"), "autoaugment" (AutoAugment's original policy) or "none".

    Raises:
        ConfigError: unknown normalisation, or an augmentation string timm does not accept.
    """
    from timm.data import create_transform

    if normalize not in NORMALIZATION and normalize != "none":
        raise ConfigError(f"unknown normalisation {normalize!r}; known: {[*NORMALIZATION, 'none']}")
    mean, std = NORMALIZATION.get(normalize, ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)))
    if augment not in _TIMM_AUTO_AUGMENT and not augment.startswith("rand-"):
        raise ConfigError(
            f"augment {augment!r}: expected none, autoaugment or a timm RandAugment string "
            "like rand-m7-n1-mstd0.5-inc1"
        )
    try:
        return create_transform(
            input_size=size,
            is_training=train,
            scale=tuple(crop_scale),
            ratio=tuple(crop_ratio),
            hflip=hflip,
            vflip=0.0,
            color_jitter=color_jitter,
            auto_augment=_TIMM_AUTO_AUGMENT.get(augment, augment),
            interpolation=interpolation,
            mean=mean,
            std=std,
            crop_pct=test_crop_pct,
        )
    except (AssertionError, ValueError, KeyError, IndexError) as e:
        raise ConfigError(f"augment {augment!r}: timm refuses it: {e}") from None
