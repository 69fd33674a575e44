"""The eventvision command line: thin click commands over the library."""

from __future__ import annotations

import click

from eventvision import __version__
from eventvision.errors import EventVisionError


def os_error_line(e: OSError) -> str:
    """One line for a filesystem error: the path(s) it concerns and what went wrong."""
    what = e.strerror or str(e)
    paths = [str(p) for p in (e.filename, e.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {what}" if paths else what


class _UsageLine(click.ClickException):
    """A bad flag or argument as one line (exit status 2, as click's own usage errors)."""

    exit_code = 2


class _Group(click.Group):
    """Turns the library's errors, filesystem errors and bad arguments into one line each.

    Library and filesystem errors exit with status 1, bad flags and arguments with 2.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else ctx.command_path
            raise _UsageLine(f"{e.format_message()} (see '{where} --help')") from None
        except EventVisionError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:  # unwritable folder, disk full, ... (docs/preprocess.md)
            raise click.ClickException(os_error_line(e)) from None


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="eventvision")
@click.option("-v", "--verbose", is_flag=True, help="Also log progress details to stderr.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def main(verbose: bool, quiet: bool) -> None:
    """eventvision: raw event-camera recordings to frames, and SpikingResformer trained on them.

    -v and -q also work after the command (`eventvision train ... -v`).
    """
    state = {"verbose": verbose, "quiet": quiet}
    click.get_current_context().meta["eventvision.verbosity"] = state
    configure_logging(verbose, quiet)


# Each command lives in its own module; register it here.
from .predict import export, predict  # noqa: E402
from .preprocess import cache, info, preprocess, show  # noqa: E402
from .synth import synth  # noqa: E402
from .train import evaluate, finetune, models, plot, quickstart, runs, train  # noqa: E402
from .verbosity import add_verbosity_options, configure_logging  # noqa: E402

for _command in (synth, preprocess, info, show, cache, train, finetune, evaluate, plot, quickstart):
    main.add_command(_command)
for _command in (runs, models, predict, export):
    main.add_command(_command)
add_verbosity_options(main)
