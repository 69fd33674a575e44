"""Repetition encoding, re-exported: it belongs to the model (docs/models.md)."""

from __future__ import annotations

from ..models.encoding import repeat_encode as repeat_encode

__all__ = ["repeat_encode"]
