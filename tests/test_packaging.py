"""Packaging: one version, a licence, typed, tonic an extra, the changelog."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import eventvision

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _names(requirements: list[str]) -> set[str]:
    return {r.split(";")[0].split(">")[0].split("=")[0].split("<")[0].strip() for r in requirements}


def test_the_version_is_written_once():
    project = PROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    dynamic = PROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "eventvision.__version__"}
    assert eventvision.__version__.count(".") == 2
    assert f"## {eventvision.__version__}" in (ROOT / "CHANGELOG.md").read_text() or (
        "## Unreleased" in (ROOT / "CHANGELOG.md").read_text()
    )


def test_licence_file_matches_the_metadata():
    assert PROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_typed_package_ships_py_typed():
    assert (ROOT / "eventvision" / "py.typed").is_file()
    assert "py.typed" in PROJECT["tool"]["setuptools"]["package-data"]["eventvision"]


def test_tonic_is_an_extra_and_tqdm_a_dependency():
    runtime = _names(PROJECT["project"]["dependencies"])
    extras = PROJECT["project"]["optional-dependencies"]
    assert "tonic" not in runtime and "tqdm" in runtime
    assert "tonic" in _names(extras["tonic"]) and "tonic" in _names(extras["test"])


def test_nothing_imports_tonic_but_import_tonic():
    """Only `eventvision.data.interop.import_tonic` imports tonic, and only when called."""
    for path in [*(ROOT / "eventvision").rglob("*.py"), *(ROOT / "cli").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "tonic" for a in node.names), path
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "tonic", path
