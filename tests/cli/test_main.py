"""The command group: commands imported on use, fast --help/--version, `recipes`."""

from __future__ import annotations

import subprocess
import sys
import time

import click
import pytest
from click.testing import CliRunner
from eventvision.cli.main import COMMANDS, main
from eventvision.pipelines import describe_recipes


def _ok(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_summaries_are_the_commands_own(name):
    command = main.get_command(click.Context(main), name)
    own = command.get_short_help_str(500)
    assert click.Command(name, help=COMMANDS[name][2]).get_short_help_str(500) == own
    assert "-v" in {opt for p in command.params for opt in getattr(p, "opts", [])} or isinstance(
        command, click.Group
    )


_PROBE = """
import sys, time
t0 = time.perf_counter()
from eventvision.cli.main import main
try:
    main({args!r}, prog_name="eventvision")
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "numba", "h5py", "timm", "tonic") if m in sys.modules)
print("HEAVY", heavy, time.perf_counter() - t0)
"""


@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["train", "--help"], ["recipes"], ["synth", "--help"]]
)
def test_help_and_version_import_no_heavy_module(args):
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(args=args)], capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    line = [x for x in out.stdout.splitlines() if x.startswith("HEAVY")]
    assert line and line[0].startswith("HEAVY []"), out.stdout + out.stderr
    assert wall < 10, wall  # about 0.4 s quiet (docs/cli.md); a loaded machine is slower


def test_version_and_help_list_every_command():
    from eventvision import __version__

    assert __version__ in _ok("--version")
    text = _ok("--help")
    for name in COMMANDS:
        assert f"\n  {name} " in text, name


def test_recipes_one_line_each_and_train_help_names_them():
    described = describe_recipes()
    lines = _ok("recipes").splitlines()
    assert len(lines) == len(described) >= 10
    for line, (name, description) in zip(lines, described.items(), strict=True):
        assert line.split()[0] == name and line.endswith(description) and description
    text = " ".join(_ok("train", "--help").split())
    for name in ("cifar10dvs-direct", "dvsgesture-direct", "frames-direct", "quickstart"):
        assert name in text
    assert "eventvision recipes" in text
