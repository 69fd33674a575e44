"""Bad flags, arguments and commands: one line on stderr, exit status 2, no usage block."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from eventvision.cli.main import main


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["info", "missing.h5"],
            "File 'missing.h5' does not exist. (see 'eventvision info --help')",
        ),
        (["train", "--bogus"], "No such option '--bogus'"),
        (["bogus"], "No such command 'bogus'. (see 'eventvision --help')"),
        (["preprocess", "cifar10-dvs"], "Missing argument"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args, prog_name="eventvision")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert expected in lines[0], result.output
