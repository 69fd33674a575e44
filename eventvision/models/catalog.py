"""A table of the registered variants: parameters, default input size, T and classes.

``attention`` builds every variant with another attention block (``models/attention.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from .registry import _REGISTRY, create_model, list_models

__all__ = ["describe_models", "format_models"]


def describe_models(attention: str = "dssa") -> list[dict[str, Any]]:
    """One dict per registered variant: name, parameters, img_size, T, num_classes, summary.

    The models are built on PyTorch's ``meta`` device, so no weight memory is allocated.
    """
    out = []
    for name in list_models():
        with torch.device("meta"):
            model = create_model(name, attention=attention)
        cfg = model.cfg
        doc = (_REGISTRY[name].__doc__ or "").strip()
        out.append(
            {
                "name": name,
                "parameters": sum(p.numel() for p in model.parameters()),
                "img_size": cfg.img_size,
                "T": cfg.T,
                "num_classes": cfg.num_classes,
                "attention": cfg.attention,
                "summary": doc.splitlines()[0].split(":")[0] if doc else "",
            }
        )
    return out


def format_models(attention: str = "dssa") -> str:
    """``describe_models(attention)`` as an aligned text table."""
    rows = describe_models(attention)
    lines = [f"{'model':<26}{'parameters':>12}{'input':>9}{'T':>4}{'classes':>9}  description"]
    for r in rows:
        lines.append(
            f"{r['name']:<26}{r['parameters']:>12,}{r['img_size']:>6} px{r['T']:>4}"
            f"{r['num_classes']:>9}  {r['summary']}"
        )
    if attention != "dssa":
        lines.append(f"(every variant built with attention={attention!r})")
    return "\n".join(lines)
