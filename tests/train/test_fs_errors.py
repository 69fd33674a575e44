"""`train --out` into an unwritable folder: one line, exit 1, nothing written."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from eventvision.cli.main import main
from helpers import deny_writes_under
from train.test_cli import TINY


@pytest.fixture()
def unwritable(tmp_path, monkeypatch):
    folder = (tmp_path / "readonly").absolute()
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    else:  # root writes anyway: make the write calls fail with EACCES
        deny_writes_under(folder, monkeypatch)
        yield folder


def test_train_out_in_an_unwritable_folder(cache, unwritable, one_thread):
    args = ["train", "--data", cache, "--out", unwritable / "run", "--epochs", "1", *TINY]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    # the hand-made test cache has no source manifest, which is warned about on its own line
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and str(unwritable / "run") in lines[0], result.output
    assert list(unwritable.iterdir()) == []
