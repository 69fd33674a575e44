"""The eventvision command line: thin click commands over the library.

Commands are imported when they run (or when their help is asked), so ``eventvision --help``
and ``--version`` import neither torch nor numba (docs/cli.md).
"""

from __future__ import annotations

import importlib

import click

from eventvision import __version__
from eventvision.errors import EventVisionError

from .verbosity import add_verbosity_options, configure_logging

# name -> (module under cli/, attribute, the summary `eventvision --help` shows without importing
# the module; tests/cli/test_main.py checks it is the command's own first docstring line).
# A new command: one line here.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "synth": (
        "synth",
        "synth",
        "Write a synthetic dataset in an original raw layout (deterministic from --seed).",
    ),
    "preprocess": (
        "preprocess",
        "preprocess",
        "Bin and resize every sample of RAW_ROOT into the HDF5 cache OUT (resumable).",
    ),
    "info": (
        "preprocess",
        "info",
        "Print a cache's options, samples per split and class, and event statistics.",
    ),
    "show": (
        "preprocess",
        "show",
        "Draw the T frames of one sample as a grid PNG: OFF in blue, ON in orange.",
    ),
    "cache": ("preprocess", "cache", "Operations on frame caches."),
    "recipes": ("recipes", "recipes", "List the shipped recipes (--pipeline NAME), one a line."),
    "train": (
        "train",
        "train",
        "Train a model on a frame cache or an image folder with a recipe from pipelines/.",
    ),
    "finetune": (
        "train",
        "finetune",
        "Fine-tune from CHECKPOINT (ours or an official one) with a new classifier for the data.",
    ),
    "evaluate": (
        "train",
        "evaluate",
        "Evaluate CHECKPOINT (a .pt file, or a run folder's best checkpoint) on held-out data.",
    ),
    "plot": (
        "train",
        "plot",
        "Draw the curves of RUN into a PNG, or overlay one metric of several runs with a legend.",
    ),
    "quickstart": (
        "train",
        "quickstart",
        "Synthesise CIFAR10-DVS-like data, cache it, train a small SpikingResformer, evaluate it.",
    ),
    "runs": (
        "train",
        "runs",
        "Print a table of the runs under DIR: recipe, model, epochs, top-1, wall time, status.",
    ),
    "models": (
        "train",
        "models",
        "List the registered model variants with parameters, default input size and T.",
    ),
    "predict": (
        "predict",
        "predict",
        "Classify the windows of recordings (AEDAT 2/3.1/4, ATIS .bin, .npy/.npz/.h5) with a run.",
    ),
    "export": (
        "predict",
        "export",
        "Export RUN's whole T-step forward (eval mode) to ONNX or pt2: [B,T,C,H,W] -> logits.",
    ),
    "sweep": (
        "sweep",
        "sweep",
        "Run a grid of trainings from SPEC.toml as an Optuna study, or report one.",
    ),
}


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

    Library and filesystem errors exit with status 1, bad flags and arguments with 2. The
    commands of ``COMMANDS`` are imported on first use, and get ``-v``/``-q`` then.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute, _ = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f"{__package__}.{module}"), attribute)
            add_verbosity_options(command)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands and their summaries, without importing the commands not yet loaded."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
            else:
                summary = click.Command(name, help=COMMANDS[name][2])
                rows.append((name, summary.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

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


add_verbosity_options(main)
