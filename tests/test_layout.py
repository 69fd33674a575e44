"""Package-level promises: the torch-free core, the public API, the console script."""

from __future__ import annotations

import subprocess
import sys

import eventvision


def test_core_imports_without_torch():
    code = (
        "import sys, eventvision, eventvision.io, eventvision.datasets, eventvision.frames,"
        " eventvision.cache, eventvision.synth;"
        "assert 'torch' not in sys.modules, 'torch imported by the core'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_api():
    assert set(eventvision.__all__) >= {"EVENT_DTYPE", "read_aedat2", "read_aedat31", "__version__"}
    assert eventvision.EVENT_DTYPE.names == ("t", "x", "y", "p")


def test_console_script_runs():
    from click.testing import CliRunner
    from eventvision.cli.main import main

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and eventvision.__version__ in result.output, result.output
