"""Every benchmark script still imports and parses its options: a rename in the library breaks
them here, not on the next quiet machine. Nothing is timed."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))
SCRIPTS = [p for p in BENCHMARKS if p.name not in ("common.py", "official.py")]


def test_found_the_scripts():
    assert {"bench_models.py", "bench_predict.py", "bench_readers.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_script_imports_and_says_its_help(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out
