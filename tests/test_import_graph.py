"""Import graph: io -> datasets -> frames -> cache -> data -> train -> predict, models beside."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "eventvision"
BASE = {"events", "errors", "files", "_toml", "__version__"}  # leaves every stage may use
LAYER = {"io": 1, "datasets": 2, "synth": 3, "frames": 3, "cache": 4, "data": 5, "train": 6}
LAYER["predict"] = 7  # a trained run on recordings, and its export
MODELS_USERS = {"data", "train", "predict"}  # data re-exports repeat_encode; train builds models


def _package_of(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ["eventvision", *parts[:-1]]


def _targets(path: Path) -> set[str]:
    """The eventvision subpackages (or top-level modules) that ``path`` imports."""
    package, out = _package_of(path), set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = base + (node.module.split(".") if node.module else [])
            else:
                name = (node.module or "").split(".")
            if name[0] == "eventvision":
                out.add(name[1] if len(name) > 1 else node.names[0].name)
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("eventvision.")}
    return out


def _allowed(source: str, target: str) -> bool:
    if target == source or target in BASE:
        return True
    if source == "models":
        return False
    if target == "models":
        return source in MODELS_USERS
    return source in LAYER and target in LAYER and LAYER[target] < LAYER[source]


def test_imports_flow_one_way():
    stages = [p for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    assert {p.name for p in stages} == set(LAYER) | {"models"}  # a new stage needs a place
    wrong = [
        f"{path.relative_to(ROOT)} imports eventvision.{target}"
        for stage in stages
        for path in sorted(stage.rglob("*.py"))
        for target in sorted(_targets(path))
        if not _allowed(stage.name, target)
    ]
    assert wrong == []


def test_the_rule_catches_a_backward_import():
    assert not _allowed("cache", "data") and not _allowed("models", "data")
    assert not _allowed("io", "frames") and _allowed("train", "cache")


@pytest.mark.parametrize(
    "modules",
    [
        "eventvision, eventvision.io, eventvision.datasets, eventvision.frames",
        "eventvision.cache, eventvision.synth",
    ],
)
def test_torch_free_packages_stay_torch_free(modules):
    code = f"import sys, {modules}; assert 'torch' not in sys.modules, 'torch loaded'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_model_does_not_load_the_data_stage():
    code = (
        "import sys, eventvision.models; "
        "bad = [m for m in sys.modules if m.startswith('eventvision.data') or m == 'h5py']; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _sibling_imports(path: Path) -> set[str]:
    """The modules of its own package that ``path`` imports anywhere (also inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module} if node.module else {a.name for a in node.names}
    return out


@pytest.mark.parametrize("stage", ["cache", "predict"])
def test_no_import_circle_inside_a_stage(stage):
    """No two modules of a stage import each other, even lazily (events.py and reader.py did)."""
    modules = {p.stem: _sibling_imports(p) for p in (ROOT / stage).glob("*.py")}
    seen: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, f"import circle: {' -> '.join((*trail, name))}"
        if seen.get(name):
            return
        for target in sorted(modules.get(name, ())):
            if target in modules:
                visit(target, (*trail, name))
        seen[name] = 1

    for name in modules:
        visit(name, ())
