"""Write docs/cli.md from the click commands: ``python -m eventvision.cli.docs [OUT]``.

Every command registered on the ``eventvision`` group (and every subcommand of a group) gets
its ``--help`` text, so the page cannot drift from the code; tests/cli/test_docs.py fails when
the committed page differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .main import main

__all__ = ["render_cli_docs", "write_cli_docs"]

WIDTH = 100  # help wrapped at the project's line length, whatever the terminal
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "cli.md"

_HEAD = """# Command line reference

Generated from the click commands by `python -m eventvision.cli.docs` (do not edit by hand;
`tests/cli/test_docs.py` fails when this page is out of date). Sizes follow one rule: `N` is a
square `N x N`, and `AxB` is always height x width (`--size 48x64`, `--sensor-size 180x240`).
"""


def _help(command: click.Command, path: list[str], parent: click.Context | None) -> str:
    ctx = click.Context(
        command, info_name=path[-1], parent=parent, terminal_width=WIDTH, max_content_width=WIDTH
    )
    with ctx:
        return command.get_help(ctx)


def _sections(
    command: click.Command, path: list[str], parent: click.Context | None
) -> list[tuple[str, str]]:
    """``(command path, help text)`` of ``command`` and of each subcommand, depth first."""
    out = [(" ".join(path), _help(command, path, parent))]
    if isinstance(command, click.Group):
        ctx = click.Context(command, info_name=path[-1], parent=parent)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out += _sections(sub, [*path, name], ctx)
    return out


def render_cli_docs() -> str:
    """The Markdown of docs/cli.md: the ``--help`` of every command, in command order."""
    sections = _sections(main, ["eventvision"], None)
    lines = [_HEAD, "## Commands", ""]
    lines += [f"- [`{name}`](#{name.replace(' ', '-')})" for name, _ in sections]
    for name, text in sections:
        lines += ["", f"## {name}", "", "```text", text.rstrip(), "```"]
    return "\n".join(lines) + "\n"


def write_cli_docs(out: str | Path = DEFAULT_OUT) -> Path:
    """Write :func:`render_cli_docs` to ``out`` (docs/cli.md by default)."""
    out = Path(out)
    out.write_text(render_cli_docs(), encoding="utf-8")
    return out


if __name__ == "__main__":  # pragma: no cover
    print(f"wrote {write_cli_docs(*sys.argv[1:2])}")
