"""The official SpikingResformer model code in ../shared/reference, a peer never shipped.

One place that knows where the official code lives and how to import it beside our own
``models`` name: `benchmarks/bench_models.py` and `tests/models/test_official.py` use it
(pytest puts ``benchmarks/`` on the path).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

OFFICIAL_DIR = (
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "official-spikingresformer"
)
_PACKAGE = "_official_spikingresformer"


def import_official(module: str = "spikingresformer") -> ModuleType:
    """A module of the official ``models`` package, imported under its own package name.

    The official code registers its variants in timm under the names ours have there; timm's
    registry is put back afterwards, so ``timm.create_model`` keeps building ours (call the
    official variants from the returned module).
    """
    with _timm_registry_kept(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # timm.models.registry moved
        warnings.filterwarnings("ignore", "Overwriting .* in registry", UserWarning)
        if _PACKAGE not in sys.modules:
            root = OFFICIAL_DIR / "models"
            spec = importlib.util.spec_from_file_location(
                _PACKAGE, root / "__init__.py", submodule_search_locations=[str(root)]
            )
            package = importlib.util.module_from_spec(spec)
            sys.modules[_PACKAGE] = package
            spec.loader.exec_module(package)
        return importlib.import_module(f"{_PACKAGE}.{module}")


@contextlib.contextmanager
def _timm_registry_kept() -> Iterator[None]:
    """Restore timm's model registry (its module-level dicts and sets) as it was on entry."""
    from timm.models import _registry

    tables = {
        k: v for k, v in vars(_registry).items() if isinstance(v, (dict, set)) and k[:2] != "__"
    }
    saved = {k: _snapshot(v) for k, v in tables.items()}
    try:
        yield
    finally:
        for k, v in saved.items():
            tables[k].clear()
            tables[k].update(v)


def _snapshot(table: dict | set) -> dict | set:
    """A copy of a registry table, with the sets inside it copied too (registering adds to them)."""
    if isinstance(table, set):
        return set(table)
    return {k: set(v) if isinstance(v, set) else v for k, v in table.items()}
