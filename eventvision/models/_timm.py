"""Every registered variant in timm's registry too, with a ``pretrained_cfg`` (docs/models.md).

After ``import eventvision.models``, ``timm.create_model("spikingresformer_s", num_classes=10)``
builds the same model as our ``create_model``. The entry points go through timm's
``build_model_with_cfg``, so ``pretrained=True`` loads the weights named by the variant's
``pretrained_cfg`` (``file``, ``url`` or ``state_dict``, usually given as
``pretrained_cfg_overlay``) with timm's loader: a classifier for another class count is left
out, a first conv for another channel count is adapted. ``checkpoint_path=`` loads a file
strictly, as timm does for every model.

Registering waits for timm: a variant is registered at once when ``timm.models`` is loaded, else
right after it loads (a hook on its import), so ``import eventvision.models`` does not pay for
importing timm (and torchvision) in a process that never uses them.

``url`` is empty: the official checkpoints (``checkpoint_max_acc1.pth``) are shared as a Google
Drive folder, ``origin_url``, with no direct file links. Download one and pass
``pretrained_cfg_overlay=dict(file=path)``, or set ``url`` to a direct link (a mirror) and timm
downloads and caches it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch

from ..errors import ConfigError

__all__ = ["register_with_timm", "OFFICIAL_CHECKPOINTS"]

OFFICIAL_CHECKPOINTS = "https://drive.google.com/drive/folders/1sAFHKF9QZC2P0aSoC9bdLqgW8TfLjFSC"

# timm's register_model reads the variant's default pretrained cfg from here
default_cfgs: dict[str, dict[str, Any]] = {}


def _pretrained_cfg(build: Callable[..., Any]) -> dict[str, Any]:
    """The timm ``pretrained_cfg`` of a variant: its classes, input size and layer names."""
    with torch.device("meta"):  # shapes only: no weight memory, no init cost
        cfg = build().cfg
    return {
        "url": "",
        "num_classes": cfg.num_classes,
        "input_size": (cfg.in_channels, cfg.img_size, cfg.img_size),
        "fixed_input_size": True,  # each DSSA's token count follows img_size
        "first_conv": "prologue.0",
        "classifier": "classifier",
        "origin_url": OFFICIAL_CHECKPOINTS,
        "paper_ids": "arXiv:2403.14302",
        "paper_name": "SpikingResformer: Bridging ResNet and Vision Transformer in SNNs",
        "license": "mit",
        "notes": ("T (time steps) is a model option: timm.create_model(name, T=...)",),
    }


def _entry_point(name: str, build: Callable[..., Any]) -> Callable[..., Any]:
    """timm's entry point ``name(pretrained=False, **kwargs)`` over our variant ``build``."""

    def entry(pretrained: bool = False, **kwargs: Any) -> Any:
        from timm.models import build_model_with_cfg, resolve_pretrained_cfg

        if pretrained:
            resolved = resolve_pretrained_cfg(
                name, kwargs.get("pretrained_cfg"), kwargs.get("pretrained_cfg_overlay")
            )
            if not (resolved.file or resolved.url or resolved.state_dict or resolved.hf_hub_id):
                raise ConfigError(
                    f"{name}: pretrained=True needs weights: pass "
                    "pretrained_cfg_overlay=dict(file='checkpoint_max_acc1.pth') (official "
                    f"checkpoints: {OFFICIAL_CHECKPOINTS}) or checkpoint_path="
                )
        return build_model_with_cfg(_builder(name), name, pretrained, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__module__ = __name__
    entry.__doc__ = build.__doc__
    return entry


def _builder(name: str) -> Callable[..., Any]:
    def build(in_chans: int | None = None, **overrides: Any) -> Any:
        from .registry import create_model

        if in_chans is not None:  # timm's name for the input channels
            overrides["in_channels"] = in_chans
        return create_model(name, **overrides)

    return build


_PENDING: dict[str, Callable[..., Any]] = {}


def register_with_timm(name: str, build: Callable[..., Any]) -> None:
    """Register variant ``name`` (built by ``build(**overrides)``) in timm's model registry.

    At once when ``timm.models`` is loaded, else when it loads. A name timm already knows (the
    official code registers the same six) is replaced, with timm's warning.
    """
    _PENDING[name] = build
    if "timm.models" in sys.modules:
        _register_pending()
    elif not any(isinstance(f, _AfterTimmLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterTimmLoads())


def _register_pending() -> None:
    from timm.models import register_model

    while _PENDING:
        name, build = _PENDING.popitem()
        default_cfgs[name] = _pretrained_cfg(build)
        entry = _entry_point(name, build)
        globals()[name] = entry
        register_model(entry)


class _AfterTimmLoads(importlib.abc.MetaPathFinder):
    """Finds ``timm.models`` as Python would, and registers the pending variants once it ran."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != "timm.models":
            return None
        sys.meta_path.remove(self)  # once
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            run = spec.loader.exec_module

            def exec_module(module: ModuleType) -> None:
                run(module)
                _register_pending()

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
