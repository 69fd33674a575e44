"""TOML in one place: the stdlib ``tomllib`` (its backport ``tomli`` before Python 3.11)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["read_toml", "tomllib"]


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML file ``path`` as a dict; a ConfigError naming the file and ``what`` it holds."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot read {what}: {e}") from None
