"""Named recipes (``*.toml``): the paper's training setups and the quickstart's.

Load one with ``eventvision.train.load_pipeline(name)`` or ``--pipeline NAME`` on the CLI;
``eventvision recipes`` lists them (:func:`describe_recipes`, torch-free).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .._toml import tomllib

__all__ = ["describe_recipes", "recipe_names"]


def _files() -> list[Path]:
    return sorted(Path(str(resources.files(__name__))).glob("*.toml"))


def recipe_names() -> list[str]:
    """The names of the shipped recipes, sorted."""
    return [path.stem for path in _files()]


def describe_recipes() -> dict[str, str]:
    """``{name: description}`` of every shipped recipe, sorted by name."""
    return {
        path.stem: tomllib.loads(path.read_text(encoding="utf-8")).get("description", "")
        for path in _files()
    }
