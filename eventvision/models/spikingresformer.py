"""SpikingResformer (Shi, Hao & Yu, CVPR 2024), faithful to the official implementation.

State-dict keys, shapes and buffers equal the official model's (``prologue.*``,
``layers.<stage>.<block>.*``, ``classifier.weight``), so its checkpoints load strictly.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import base
from torch import nn

from ..errors import ConfigError, check_choice
from .attention import ATTENTIONS, SCALE_MODES, check_attention, make_attention
from .encoding import repeat_encode
from .layers import (
    ATTENTION_BACKENDS,
    BN,
    DSSA,
    GWFFN,
    DownsampleLayer,
    MultiStepConv2d,
    SpikingMatmul,
)
from .neurons import NEURON_IMPLS, NEURON_KINDS, FusedLIF, FusedPLIF, neuron_factory
from .pool import BufferPool
from .weights import load_pretrained

__all__ = ["ResformerConfig", "SpikingResformer", "load_pretrained"]

logger = logging.getLogger(__name__)

STEMS = ("imagenet", "small")


def _as_tuple(name: str, value: Any) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise ConfigError(f"{name} must be a sequence of ints, got {value!r}") from None
    if not out or any(v < 1 for v in out):
        raise ConfigError(f"{name} must be positive ints, got {value!r}")
    return out


@dataclass(frozen=True)
class ResformerConfig:
    """Architecture of a SpikingResformer; the defaults are SpikingResformer-Ti on ImageNet.

    Args:
        planes: channels per stage.
        num_heads: DSSA heads per stage (``planes[i] % num_heads[i] == 0``).
        patch_sizes: DSSA patch size per stage.
        blocks: number of DSSA + GWFFN pairs per stage.
        group_size: channels per group of the GWFFN 3x3 conv.
        neuron: "lif" or "plif".
        stem: "imagenet" (7x7/2 conv, BN, 3x3/2 max-pool) or "small" (3x3/1 conv, BN).
        img_size: input side in pixels, or ``(height, width)``; fixes each DSSA's token count
            ``lenth`` (the model has no position embedding, so any size the stages divide works).
        T: time steps used to repeat a 4-D input (the official keyword; 5-D input brings its own).
        neuron_impl: "fused" (our autograd neuron) or "spikingjelly" (stock neurons).
        low_memory: keep spikes as bool and BN outputs instead of inputs for backward.
        cpu_kernels: with ``low_memory``, on the CPU: spike-driven convolutions and in-place
            batch norm (``models/kernels.py``), DSSA scales on the small operands and float
            attention spikes, and reused buffers (``models/pool.py``). They sum in another
            order than the official code, so in float32 a spike at its threshold can flip;
            False gives oneDNN's convolutions, torch's batch norm and the official DSSA,
            bitwise the official forward pass.
        attention: the stages' attention, one of ``"dssa"`` (the paper's), ``"ssa"``
            (Spikformer), ``"sdsa"`` (Spike-driven Transformer), ``"qkta"`` (QKFormer), as
            drop-in blocks (``models/attention.py``, docs/models.md).
        attn_scale: DSSA's scale mode: ``"rate"`` (the paper's firing-rate scale), ``"const"``,
            ``"none"``, ``"inv_sqrt"`` or ``"learnable"``.
        attn_scale_const: the constant of ``attn_scale="const"``.
        sdsa_dvs: SDSA's 3x3 max-pools (the original's CIFAR10-DVS setting).
        qkta_head_dim: QKTA's channels per head (QKFormer's 8: an OR over the 64 channels of
            a Ti head would almost always fire); 0 keeps ``num_heads``.
    """

    planes: tuple[int, ...] = (64, 192, 384)
    num_heads: tuple[int, ...] = (1, 3, 6)
    patch_sizes: tuple[int, ...] = (4, 2, 1)
    blocks: tuple[int, ...] = (1, 2, 3)
    group_size: int = 64
    neuron: Literal["lif", "plif"] = "lif"
    stem: Literal["imagenet", "small"] = "imagenet"
    img_size: int | tuple[int, int] = 224
    T: int = 4
    in_channels: int = 3
    num_classes: int = 1000
    neuron_impl: Literal["fused", "spikingjelly"] = "fused"
    low_memory: bool = True
    cpu_kernels: bool = True
    attention: str = "dssa"
    attn_scale: str = "rate"
    attn_scale_const: float = 0.125
    sdsa_dvs: bool = False
    qkta_head_dim: int = 8
    ratio: int = field(default=4, repr=False)

    def __post_init__(self) -> None:
        for name in ("planes", "num_heads", "patch_sizes", "blocks"):
            object.__setattr__(self, name, _as_tuple(name, getattr(self, name)))
        n = len(self.planes)
        lengths = {k: len(getattr(self, k)) for k in ("num_heads", "patch_sizes", "blocks")}
        if any(v != n for v in lengths.values()):
            raise ConfigError(
                f"planes, num_heads, patch_sizes and blocks need one entry per stage; got "
                f"planes={self.planes}, num_heads={self.num_heads}, "
                f"patch_sizes={self.patch_sizes}, blocks={self.blocks}"
            )
        self._check_widths()
        check_choice("neuron", self.neuron, NEURON_KINDS)
        check_choice("neuron_impl", self.neuron_impl, NEURON_IMPLS)
        check_choice("stem", self.stem, STEMS)
        for name in ("T", "in_channels", "num_classes", "group_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        self._check_img_size()
        self._check_attention()

    def _check_attention(self) -> None:
        """A known attention and scale mode; the DSSA scale options only with DSSA."""
        check_choice("attention", self.attention, ATTENTIONS)
        check_choice("attn_scale", self.attn_scale, SCALE_MODES)
        if self.attention != "dssa" and self.attn_scale != "rate":
            raise ConfigError(
                f"attn_scale {self.attn_scale!r} is a DSSA option; attention is {self.attention!r}"
            )
        if not self.attn_scale_const > 0:
            raise ConfigError(f"attn_scale_const must be > 0, got {self.attn_scale_const!r}")
        if self.qkta_head_dim < 0:
            raise ConfigError(f"qkta_head_dim must be >= 0, got {self.qkta_head_dim!r}")
        if self.attention == "qkta" and self.qkta_head_dim:
            for i, c in enumerate(self.planes):
                if c % self.qkta_head_dim:
                    raise ConfigError(
                        f"stage {i}: planes {c} is not divisible by qkta_head_dim "
                        f"{self.qkta_head_dim}"
                    )

    def _check_img_size(self) -> None:
        """``img_size`` as N or (height, width), large enough for every stage's patches."""
        if not isinstance(self.img_size, int):
            if len(self.img_size) != 2:
                raise ConfigError(f"img_size must be N or (height, width), got {self.img_size!r}")
            h, w = (int(v) for v in self.img_size)
            object.__setattr__(self, "img_size", h if h == w else (h, w))
        if min(self._img_hw()) < 1:
            raise ConfigError(f"img_size must be >= 1, got {self.img_size!r}")
        for i, (hw, p) in enumerate(zip(self.stage_shapes(), self.patch_sizes, strict=True)):
            if min(hw) < p:
                raise ConfigError(
                    f"img_size {self.img_size} with stem {self.stem!r} leaves {min(hw)} px at "
                    f"stage {i}, smaller than its patch size {p}; use a larger img_size"
                )

    def _check_widths(self) -> None:
        """Each stage's planes split into its heads and its GWFFN width into groups."""
        for i, (c, h) in enumerate(zip(self.planes, self.num_heads, strict=True)):
            if c % h:
                raise ConfigError(f"stage {i}: planes {c} is not divisible by num_heads {h}")
            if (c * self.ratio) % self.group_size:
                raise ConfigError(
                    f"stage {i}: GWFFN width {c * self.ratio} is not divisible by "
                    f"group_size {self.group_size}"
                )

    def _img_hw(self) -> tuple[int, int]:
        if isinstance(self.img_size, int):
            return (self.img_size, self.img_size)
        return (int(self.img_size[0]), int(self.img_size[1]))

    def stage_shapes(self) -> tuple[tuple[int, int], ...]:
        """Feature-map ``(height, width)`` per stage, as the official constructor computes sides."""
        h, w = self._img_hw()
        if self.stem == "imagenet":
            h, w = h // 4, w // 4
        out = []
        for i in range(len(self.planes)):
            if i:
                h, w = h // 2, w // 2
            out.append((h, w))
        return tuple(out)

    def stage_sizes(self) -> tuple[int, ...]:
        """Feature-map side per stage of a square input (the height of a non-square one)."""
        return tuple(h for h, _ in self.stage_shapes())


class SpikingResformer(nn.Module, base.StepModule):
    """SpikingResformer; input ``[B, T, C, H, W]`` or ``[B, C, H, W]``, output ``[T, B, classes]``.

    Multi-step only: spikingjelly's ``functional.set_step_mode(model, "s")`` raises and changes
    nothing (every layer takes the whole sequence), ``"m"`` is accepted.

    Example:
        >>> from eventvision.models import create_model
        >>> m = create_model("spikingresformer_dvsg", img_size=32, T=2)
        >>> m(torch.rand(1, 2, 3, 32, 32)).shape
        torch.Size([2, 1, 11])
    """

    def __init__(self, cfg: ResformerConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ResformerConfig()
        self.cfg = cfg
        self.T = cfg.T
        # the official SOP monitor skips the real-valued first conv and the head
        self.skip = ["prologue.0", "classifier"]
        lm = cfg.low_memory
        neuron = neuron_factory(cfg.neuron, cfg.neuron_impl)
        half_neuron = neuron_factory(cfg.neuron, cfg.neuron_impl, v_threshold=0.5)
        stem: list[nn.Module] = []
        if cfg.stem == "imagenet":
            stem += [
                MultiStepConv2d(cfg.in_channels, cfg.planes[0], 7, 2, 3, spike_input=False),
                BN(cfg.planes[0], lm),
                _MultiStepMaxPool(),
            ]
        else:
            stem += [
                MultiStepConv2d(cfg.in_channels, cfg.planes[0], 3, 1, 1, spike_input=False),
                BN(cfg.planes[0], lm),
            ]
        self.prologue = nn.Sequential(*stem)
        self.layers = nn.Sequential()
        for i, (planes, (h, w)) in enumerate(zip(cfg.planes, cfg.stage_shapes(), strict=True)):
            stage = nn.Sequential()
            if i:
                stage.append(DownsampleLayer(cfg.planes[i - 1], planes, neuron, lm))
            p = cfg.patch_sizes[i]
            for _ in range(cfg.blocks[i]):
                tokens = (h // p) * (w // p)  # the official (side // p) ** 2 for a square
                attn = make_attention(
                    cfg.attention,
                    planes,
                    cfg.num_heads[i],
                    tokens,
                    p,
                    neuron,
                    half_neuron,
                    lm,
                    scale=cfg.attn_scale,
                    scale_const=cfg.attn_scale_const,
                    dvs=cfg.sdsa_dvs,
                    head_dim=cfg.qkta_head_dim,
                )
                stage.append(attn)
                stage.append(GWFFN(planes, neuron, group_size=cfg.group_size, low_memory=lm))
            self.layers.append(stage)
        self.classifier = nn.Linear(cfg.planes[-1], cfg.num_classes, bias=False)
        # the layers' big outputs and gradients come from one pool of reused CPU buffers
        self.buffer_pool = BufferPool() if cfg.cpu_kernels else None
        for m in self.modules():
            if isinstance(m, (MultiStepConv2d, BN, SpikingMatmul, FusedLIF)):
                m.pool = self.buffer_pool
            if isinstance(m, MultiStepConv2d):
                m.sparse = cfg.cpu_kernels
            elif isinstance(m, BN):  # each follows a convolution whose output only it reads
                m.inplace = lm and cfg.cpu_kernels
            elif isinstance(m, DSSA):
                m.fold_scales = cfg.cpu_kernels
                m.matmul2.keep_float = cfg.cpu_kernels
        self.init_weight()

    def init_weight(self) -> None:
        """Official init: trunc_normal(std 0.02) conv/linear weights, BN weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def to_time_major(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, C, H, W]`` (or ``[B, C, H, W]``, repeated T times) to ``[T, B, C, H, W]``."""
        if x.dim() == 4:
            x = repeat_encode(x, self.T)  # [B, T, C, H, W], the first conv sees real values
        if x.dim() != 5:
            raise ValueError(f"expected [B, T, C, H, W] or [B, C, H, W], got {tuple(x.shape)}")
        return x.transpose(0, 1)  # [T, B, C, H, W]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Residual stream after the last stage, ``[T, B, C, H', W']``."""
        if self.buffer_pool is not None:
            self.buffer_pool.new_step()  # release the buffers the last step did not use
        return self.layers(self.prologue(self.to_time_major(x)))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pool and the bias-free classifier per step: ``[T, B, classes]``."""
        T, B = x.shape[:2]
        pooled = F.adaptive_avg_pool2d(x.flatten(0, 1), 1).reshape(T, B, -1)  # [T, B, C]
        return self.classifier(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-time-step logits ``[T, B, classes]``; average over dim 0 for a prediction."""
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head with a fresh ``num_classes``-way classifier (official init)."""
        self.classifier = nn.Linear(self.cfg.planes[-1], num_classes, bias=False)
        nn.init.trunc_normal_(self.classifier.weight, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """Parameter names without weight decay: PLIF ``w`` (official) and DSSA ``scale1/2``."""
        from spikingjelly.activation_based.neuron import ParametricLIFNode

        names = {
            f"{name}.w"
            for name, m in self.named_modules()
            if isinstance(m, (FusedPLIF, ParametricLIFNode))
        }
        return names | {n for n, _ in self.named_parameters() if n.endswith((".scale1", ".scale2"))}

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ):
        """``nn.Module.load_state_dict``, refusing the weights of another attention first."""
        check_attention(self, state_dict, "state dict")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def supported_step_mode(self) -> tuple[str, ...]:
        """Only ``"m"``: convolutions, BN and DSSA all take the whole sequence ``[T, B, ...]``."""
        return ("m",)

    @property
    def step_mode(self) -> str:
        """Always ``"m"`` (spikingjelly's step-mode contract)."""
        return "m"

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        if value != "m":
            raise ValueError(
                f"SpikingResformer runs multi-step only (its layers take whole sequences "
                f"[T, B, ...]), so step_mode {value!r} cannot apply; its neurons support 's' "
                f"on their own"
            )

    def set_attention_backend(self, backend: str) -> None:
        """Eval-mode second DSSA product: "float" (official), "float_reassociated", "popcount"."""
        check_choice("attention backend", backend, ATTENTION_BACKENDS)
        for m in self.modules():
            if isinstance(m, DSSA):
                m.attention_backend = backend


class _MultiStepMaxPool(nn.Module):
    """3x3/2 max-pool (padding 1) on every step of ``[T, B, C, H, W]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, B = x.shape[:2]
        out = F.max_pool2d(x.flatten(0, 1), 3, 2, 1)
        return out.reshape(T, B, *out.shape[1:])  # [T, B, C, H/2, W/2]
