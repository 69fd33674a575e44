"""The official SpikingResformer model code in ../shared/reference, a peer never shipped.

One place that knows where the official code lives and how to import it beside our own
``models`` name: `benchmarks/bench_models.py` and `tests/models/test_official.py` use it
(pytest puts ``benchmarks/`` on the path).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType

OFFICIAL_DIR = (
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "official-spikingresformer"
)
_PACKAGE = "_official_spikingresformer"


def import_official(module: str = "spikingresformer") -> ModuleType:
    """A module of the official ``models`` package, imported under its own package name."""
    if _PACKAGE not in sys.modules:
        root = OFFICIAL_DIR / "models"
        spec = importlib.util.spec_from_file_location(
            _PACKAGE, root / "__init__.py", submodule_search_locations=[str(root)]
        )
        package = importlib.util.module_from_spec(spec)
        sys.modules[_PACKAGE] = package
        spec.loader.exec_module(package)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # timm.models.registry moved
        return importlib.import_module(f"{_PACKAGE}.{module}")
