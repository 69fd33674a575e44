"""Which recipe trains a frame cache when none is named (see docs/training.md, "Any cache")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..cache.options import parse_size
from ..cache.reader import read_header
from ..errors import CacheError

__all__ = ["RECIPE_FOR_DATASET", "GENERIC_RECIPE", "recipe_for_cache"]

# The shipped recipe of each registered source; a source without one trains with the generic one.
RECIPE_FOR_DATASET = {
    "cifar10-dvs": "cifar10dvs-direct",
    "dvs-gesture": "dvsgesture-direct",
    "nmnist": "nmnist-direct",
    "ncaltech101": "ncaltech101-direct",
}
GENERIC_RECIPE = "frames-direct"


def recipe_for_cache(path: str | os.PathLike) -> tuple[str, dict[str, Any]] | None:
    """``(recipe, overrides)`` for training the cache at ``path``, or None if it is no cache.

    A dataset with its own recipe gets it unchanged (a cache built with other time steps or size
    is then refused, naming both); any other cache gets the generic recipe with time steps and
    size from the cache (an event cache keeps the recipe's: the loader bins), and the classes
    always come from the cache.
    """
    try:
        header = read_header(Path(path))
    except CacheError:
        return None  # not one of ours: the data step reports what is wrong with it
    dataset = header.get("dataset")
    if dataset in RECIPE_FOR_DATASET:
        return RECIPE_FOR_DATASET[dataset], {}
    overrides: dict[str, Any] = {"data.dataset": str(dataset)}
    # An event cache holds no time steps or size (the loader bins): the recipe's own apply.
    if "time_steps" in header:
        overrides["data.time_steps"] = int(header["time_steps"])
    if "size" in header:
        size = parse_size(
            header["size"].tolist() if hasattr(header["size"], "tolist") else header["size"]
        )
        overrides["data.size"] = list(size) if isinstance(size, tuple) else size
    return GENERIC_RECIPE, overrides
