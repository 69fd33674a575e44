"""docs/cli.md is generated from the commands and must be up to date."""

from __future__ import annotations

from pathlib import Path

import click
from eventvision.cli.docs import render_cli_docs
from eventvision.cli.main import COMMANDS, main

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_md_is_up_to_date():
    assert DOC.read_text(encoding="utf-8") == render_cli_docs(), (
        "docs/cli.md is out of date: run `python -m eventvision.cli.docs`"
    )


def test_every_registered_command_is_documented_with_its_options():
    text = render_cli_docs()
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert f"\n## eventvision {name}\n" in text, name
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and not param.hidden:
                    assert opt in text, (name, opt)
    assert set(COMMANDS) <= set(main.list_commands(ctx))


def test_a_command_added_later_is_picked_up():
    @click.command("extra-probe")
    def probe() -> None:
        """A probe command for this test."""

    main.add_command(probe)
    try:
        assert "## eventvision extra-probe" in render_cli_docs()
        assert "A probe command for this test." in render_cli_docs()
    finally:
        del main.commands["extra-probe"]
