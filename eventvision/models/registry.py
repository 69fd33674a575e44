"""Named SpikingResformer variants with their paper configs, timm-style, in timm's registry too.

Example:
    >>> from eventvision.models import create_model, list_models
    >>> "spikingresformer_dvsg" in list_models()
    True
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import fields, replace

from ..errors import ConfigError, UnknownModelError
from ._timm import register_with_timm
from .spikingresformer import ResformerConfig, SpikingResformer

__all__ = ["register_model", "create_model", "list_models"]

_REGISTRY: dict[str, Callable[..., SpikingResformer]] = {}
_FIELDS = tuple(f.name for f in fields(ResformerConfig))


def register_model(fn: Callable[..., SpikingResformer]) -> Callable[..., SpikingResformer]:
    """Register a variant under its function name, here and in timm's registry."""
    _REGISTRY[fn.__name__] = fn
    register_with_timm(fn.__name__, fn)
    return fn


def list_models() -> list[str]:
    """Names of the registered variants, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, *, time_steps: int | None = None, **overrides) -> SpikingResformer:
    """Build variant ``name``, replacing any ``ResformerConfig`` field given as keyword.

    ``time_steps`` is the project's name of the config's ``T`` (the official code's keyword,
    accepted too): the steps a 4-D input is repeated over.

    Example:
        >>> create_model("spikingresformer_cifar", num_classes=100).cfg.num_classes
        100
    """
    if name not in _REGISTRY:
        names = list_models()
        raise UnknownModelError(
            f"unknown model {name!r}; did you mean {difflib.get_close_matches(name, names)}? "
            f"known: {names}"
        )
    if time_steps is not None:
        if overrides.get("T", time_steps) != time_steps:
            raise ConfigError(f"time_steps={time_steps} and T={overrides['T']} disagree")
        overrides["T"] = time_steps
    unknown = sorted(set(overrides) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for {name}; valid: {sorted(_FIELDS)}")
    return _REGISTRY[name](**overrides)


def _variant(
    planes: tuple[int, ...], overrides: dict, head_dim: int = 64, **fields
) -> SpikingResformer:
    """A paper variant of widths ``planes``: ``head_dim`` channels per DSSA head (64, the DVS
    variant 32), patch sizes (4, 2, 1), blocks (1, 2, 3) and ``fields``, then ``overrides``."""
    heads = tuple(c // head_dim for c in planes)
    cfg = ResformerConfig(
        planes=planes, num_heads=heads, patch_sizes=(4, 2, 1), blocks=(1, 2, 3), **fields
    )
    return SpikingResformer(replace(cfg, **overrides))


@register_model
def spikingresformer_ti(**overrides) -> SpikingResformer:
    """SpikingResformer-Ti, ImageNet 224 px, T=4: 11,180,992 parameters."""
    return _variant((64, 192, 384), overrides)


@register_model
def spikingresformer_s(**overrides) -> SpikingResformer:
    """SpikingResformer-S, ImageNet 224 px, T=4: 17,813,824 parameters."""
    return _variant((64, 256, 512), overrides)


@register_model
def spikingresformer_m(**overrides) -> SpikingResformer:
    """SpikingResformer-M, ImageNet 224 px, T=4: 35,601,472 parameters."""
    return _variant((64, 384, 768), overrides)


@register_model
def spikingresformer_l(**overrides) -> SpikingResformer:
    """SpikingResformer-L, ImageNet 224 px, T=4: 60,375,680 parameters."""
    return _variant((128, 512, 1024), overrides)


@register_model
def spikingresformer_cifar(**overrides) -> SpikingResformer:
    """CIFAR variant: Ti widths, 3x3 stem, 10 classes, 32 px, T=4: 10,793,152 parameters."""
    return _variant((64, 192, 384), overrides, stem="small", img_size=32, num_classes=10)


@register_model
def spikingresformer_dvsg(**overrides) -> SpikingResformer:
    """DVS128 Gesture variant: 32/96/192, 3x3 stem, group 32, PLIF, 11 classes, 64 px, T=16."""
    return _variant(
        (32, 96, 192),
        overrides,
        head_dim=32,
        stem="small",
        group_size=32,
        neuron="plif",
        img_size=64,
        T=16,
        num_classes=11,
    )
