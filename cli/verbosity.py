"""``-v`` / ``-q`` on the group and on every command, and the stderr log handler they set."""

from __future__ import annotations

import logging
import sys

import click

__all__ = ["configure_logging", "add_verbosity_options"]

# The per-epoch summary lines: shown unless -q.
_RUN_LOGGER = "eventvision.train.logs"


class _Formatter(logging.Formatter):
    """Bare messages for INFO, ``WARNING: message`` above it."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno > logging.INFO:
            return f"{record.levelname}: {text}"
        return text


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """Route eventvision's log records to stderr: epoch lines and warnings, -v adds details."""
    root = logging.getLogger("eventvision")
    for handler in [h for h in root.handlers if getattr(h, "_eventvision_cli", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler._eventvision_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger(_RUN_LOGGER).setLevel(logging.WARNING if quiet else logging.INFO)


def _set(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    state = ctx.find_root().meta.setdefault("eventvision.verbosity", {})
    state[param.name] = True
    configure_logging(state.get("verbose", False), state.get("quiet", False))


def verbosity_params() -> list[click.Option]:
    """Fresh ``-v/--verbose`` and ``-q/--quiet`` options that take effect when given."""
    helps = {
        "verbose": "Also log progress details to stderr.  [default: off]",
        "quiet": "Only warnings and errors on stderr, no per-epoch lines.  [default: off]",
    }
    return [
        click.Option(
            [f"-{name[0]}", f"--{name}"], is_flag=True, expose_value=False, callback=_set, help=text
        )
        for name, text in helps.items()
    ]


def add_verbosity_options(command: click.Command) -> None:
    """Give ``command`` (and, for a group, each of its subcommands) the -v and -q options."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity_options(sub)
        return
    names = {name for p in command.params for name in getattr(p, "opts", [])}
    if "-v" not in names:
        command.params.extend(verbosity_params())
