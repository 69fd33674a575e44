"""`eventvision sweep SPEC.toml --out DIR` and `eventvision sweep report DIR`."""

from __future__ import annotations

from pathlib import Path

import click


class _SweepGroup(click.Group):
    """`sweep SPEC ...` runs the sweep; `sweep report DIR` writes its tables."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_SweepGroup)
def sweep() -> None:
    """Run a grid of trainings from SPEC.toml as an Optuna study, or report one.

    \b
    eventvision sweep SPEC.toml --out DIR [--jobs N] [--storage URL]
    eventvision sweep report DIR
    """


@sweep.command("run")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Sweep folder: one run folder per grid point, the spec and the Optuna journal.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Points run at once here, each in its own process with cores/N torch threads.",
)
@click.option(
    "--storage",
    default=None,
    help="Optuna storage URL (e.g. postgresql://...).  [default: DIR/optuna.journal]",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.01),
    default=10.0,
    show_default=True,
    help="Seconds between checks for a point left by a dead worker, while others still run.",
)
def run(spec: Path, out: Path, jobs: int, storage: str | None, poll: float) -> None:
    """Run the grid points of SPEC into DIR that no worker has run; resume killed ones."""
    from eventvision.train.sweep import run_sweep

    ran, failed = run_sweep(spec, out, storage=storage, jobs=jobs, poll_s=poll)
    click.echo(f"sweep {out}: {ran} point(s) run here, {failed} failed")
    if failed:
        raise click.ClickException(f"{failed} point(s) failed (see their train.log); run again")


@sweep.command()
@click.argument("out", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def report(out: Path) -> None:
    """Write DIR/results.csv, results.md and results.png: mean ± std over seeds."""
    from eventvision.train.sweep_report import write_report

    for path in write_report(out):
        click.echo(f"wrote {path}")
