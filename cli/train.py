"""`eventvision train`, `finetune`, `evaluate`, `plot` and `quickstart`: thin commands.

Recipes come from `--pipeline NAME|PATH` (`pipelines/*.toml`); every flag left unset keeps the
recipe's value, a flag that is given overrides it, and `--set section.key=value` reaches any key.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from eventvision.pipelines import recipe_names

from eventvision._toml import tomllib

_FROM_PIPELINE = "[default: the pipeline's value]"
_DEFAULT = click.core.ParameterSource.DEFAULT

# flag name -> pipeline key it overrides
_FLAG_KEYS = {
    "data": "data.path",
    "model": "model.name",
    "time_steps": "data.time_steps",
    "size": "data.size",
    "augment": "data.augment",
    "workers": "data.workers",
    "val_fraction": "data.val_fraction",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "weight_decay": "train.weight_decay",
    "seed": "train.seed",
    "device": "train.device",
    "clip_grad": "train.clip_grad",
    "amp": "train.amp",
    "tet": "train.tet",
    "accum_steps": "train.accum_steps",
    "ema_decay": "train.ema_decay",
    "amp_dtype": "train.amp_dtype",
    "warmup_per_iter": "train.warmup_per_iter",
    "ddp_bb": "train.ddp_broadcast_buffers",
}


def _parse_set(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or "." not in key:
            raise click.BadParameter(f"{item!r}: expected section.key=value, e.g. train.lr=1e-4")
        try:
            out[key.strip()] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = text  # a bare word is a string
    return out


def _from_pipeline(*decls: str, help: str, **attrs: Any) -> Callable:
    """An option overriding a pipeline key: left unset, the pipeline's value stands."""
    return click.option(*decls, help=f"{help} {_FROM_PIPELINE}", **attrs)


def _recipe_options(default_pipeline: str) -> Callable:
    """The options shared by train and finetune: the pipeline, its overrides, the run folder."""
    opts = [
        click.option(
            "--pipeline",
            default=default_pipeline,
            show_default=True,
            help=f"Recipe: one of {', '.join(recipe_names())} (see `eventvision recipes`), "
            "or a path to a .toml file.",
        ),
        _from_pipeline("--data", help="Frame cache (.h5) or image folder."),
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=Path),
            help="Run folder (new or empty).  [default: runs/<pipeline>]",
        ),
        _from_pipeline("--model", help="Registered model name."),
        _from_pipeline("--time-steps", "-T", type=int, help="Time steps T."),
        _from_pipeline("--size", metavar="N|HxW", help="Input size in pixels."),
        _from_pipeline(
            "--augment", help="Augmentation: dvs, an event one (nda, eventdrop, ...), none."
        ),
        _from_pipeline("--epochs", type=int, help="Epochs."),
        _from_pipeline("--batch-size", type=int, help="Batch size per process."),
        _from_pipeline("--lr", type=float, help="Peak learning rate."),
        _from_pipeline("--weight-decay", type=float, help="AdamW weight decay."),
        _from_pipeline("--workers", type=int, help="DataLoader workers."),
        _from_pipeline(
            "--val-fraction",
            type=float,
            help="Hold out this share of each train class (seeded by --seed) for validation; "
            "best.pt is then chosen on it, 0 = none.",
        ),
        _from_pipeline("--seed", type=int, help="Random seed."),
        _from_pipeline("--device", help="auto, cpu, cuda or cuda:N."),
        _from_pipeline("--clip-grad", type=float, help="Max grad norm, 0 = off."),
        _from_pipeline("--amp/--no-amp", default=None, help="Mixed precision (CUDA only)."),
        _from_pipeline("--tet/--no-tet", default=None, help="TET loss."),
        _from_pipeline(
            "--accum-steps",
            type=click.IntRange(1),
            help="Batches per optimiser step (gradient accumulation).",
        ),
        _from_pipeline(
            "--ema-decay",
            type=float,
            help="Keep a ModelEmaV3 of the weights with this decay, 0 = off.",
        ),
        _from_pipeline(
            "--amp-dtype",
            type=click.Choice(["float16", "bfloat16"]),
            help="Autocast dtype: bfloat16 also on CPU.",
        ),
        _from_pipeline(
            "--warmup-per-iter/--warmup-per-epoch",
            default=None,
            help="Raise the warm-up LR every step.",
        ),
        click.option(
            "--ddp-bb/--no-ddp-bb",
            default=None,
            help="Several processes: DDP broadcasts rank 0's BN/DSSA buffers at every forward "
            "(timm's default) instead of averaging the rank-local ones at each epoch's end.  "
            "[default: the pipeline's value, off]",
        ),
        click.option(
            "--set",
            "settings",
            multiple=True,
            callback=_parse_set,
            metavar="SECTION.KEY=VALUE",
            help="Override any pipeline key, e.g. --set train.mixup_alpha=0.2 (repeatable).  "
            "[default: none]",
        ),
        click.option(
            "--resume",
            type=click.Path(file_okay=False, path_type=Path),
            help="Continue the run in this folder exactly, with its saved configuration; "
            "--data (same cache options), --epochs (to extend), --workers and --device may "
            "change.  [default: start a new run]",
        ),
        click.option(
            "--overwrite",
            is_flag=True,
            help="Replace the run already in --out (its run files only).  [default: refuse]",
        ),
        click.option(
            "--progress/--no-progress",
            default=None,
            help="Live progress bar on stderr.  [default: on when stderr is a terminal]",
        ),
        click.option(
            "--skip-nonfinite",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="Skip up to N batches with a NaN/inf loss or gradient norm (each logged); "
            "0 stops at the first.",
        ),
    ]

    def decorate(fn: Callable) -> Callable:
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return decorate


_allow_stale = click.option(
    "--allow-stale",
    is_flag=True,
    help="Use a frame cache whose raw sources changed since it was built.  [default: refuse]",
)


_allow_other_data = click.option(
    "--allow-other-data",
    is_flag=True,
    help="With --resume: accept another build of the data (same cache options) than the "
    "run's.  [default: refuse]",
)


def _resolve(ctx: click.Context, kw: dict[str, Any]) -> tuple[Any, Path, bool]:
    """(pipeline, run folder, resume) from the shared options."""
    from eventvision.train import load_pipeline, load_run_pipeline
    from eventvision.train.runs import resume_changes

    overrides = {key: kw[flag] for flag, key in _FLAG_KEYS.items() if kw.get(flag) is not None}
    overrides.update(kw["settings"])
    if kw["resume"] is not None:
        given = ["--pipeline"] if ctx.get_parameter_source("pipeline") is not _DEFAULT else []
        if given or kw["out"] is not None or kw["overwrite"]:
            given = given or (["--out"] if kw["out"] is not None else ["--overwrite"])
            raise click.BadParameter(
                f"--resume takes the configuration from the run folder; drop {given}",
                param_hint="--resume",
            )
        changes = resume_changes(overrides)  # --data, --epochs, --workers, --device only
        load_run_pipeline(kw["resume"])  # a clear error when RUN is not a run folder
        return load_pipeline(kw["resume"] / "pipeline.toml", changes), kw["resume"], True
    name = kw["pipeline"]
    if kw["data"] and ctx.get_parameter_source("pipeline") is click.core.ParameterSource.DEFAULT:
        name, overrides = _recipe_for_data(kw["data"], name, overrides)
    pipeline = load_pipeline(name, overrides)
    return pipeline, kw["out"] or Path("runs") / pipeline.name, False


def _recipe_for_data(data: str, default: str, overrides: dict) -> tuple[str, dict]:
    """Without --pipeline, a frame cache picks its dataset's recipe; given flags still win."""
    from eventvision.train.recipes import recipe_for_cache

    found = recipe_for_cache(data) if Path(data).is_file() else None
    if found is None:
        return default, overrides
    return found[0], {**found[1], **overrides}


def _echo_main(text: str) -> None:
    """Echo on rank 0 only: under torchrun every process runs the command."""
    if os.environ.get("RANK", "0") == "0":
        click.echo(text)


def _progress(flag: bool | None) -> bool:
    """Bars when asked, else only on a terminal: a log file never gets carriage returns."""
    return sys.stderr.isatty() if flag is None else flag


def _run_recipe(ctx: click.Context, run: Callable[..., Any], kw: dict[str, Any], **extra) -> None:
    """Resolve the shared options, call ``run`` (train or finetune), echo its one-line summary."""
    pipeline, run_dir, resume = _resolve(ctx, kw)
    result = run(
        pipeline=pipeline,
        run_dir=run_dir,
        resume=resume,
        progress=_progress(kw["progress"]),
        skip_nonfinite=kw["skip_nonfinite"],
        overwrite=kw["overwrite"],
        allow_stale=kw["allow_stale"],
        allow_other_data=kw["allow_other_data"],
        **extra,
    )
    _echo_main(_summary(result))


def _summary(result: Any) -> str:
    from eventvision.train.logs import format_scores

    return (
        f"run {result.run_dir}: {result.epochs} epochs, {format_scores(result.scores)}; "
        f"checkpoints {result.last_checkpoint.name} and {result.best_checkpoint.name}"
    )


@click.command()
@_recipe_options("cifar10dvs-direct")
@_allow_stale
@_allow_other_data
@click.pass_context
def train(ctx: click.Context, **kw: Any) -> None:
    """Train a model on a frame cache or an image folder with a recipe from pipelines/.

    Under `torchrun --nproc-per-node N` the same command trains with DistributedDataParallel.
    """
    from eventvision.train import train as train_run

    _run_recipe(ctx, train_run, kw)


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@_recipe_options("transfer-cifar10dvs")
@_from_pipeline(
    "--freeze-backbone/--no-freeze-backbone", default=None, help="Train the new classifier only."
)
@_allow_stale
@_allow_other_data
@click.pass_context
def finetune(ctx: click.Context, checkpoint: Path, freeze_backbone: bool | None, **kw: Any) -> None:
    """Fine-tune from CHECKPOINT (ours or an official one) with a new classifier for the data."""
    from eventvision.train import finetune as finetune_run

    _run_recipe(ctx, finetune_run, kw, checkpoint=checkpoint, freeze_backbone=freeze_backbone)


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--data", help="Frame cache or image folder.  [default: the checkpoint's]")
@click.option(
    "--pipeline", help="Recipe, for checkpoints that store none.  [default: the checkpoint's]"
)
@click.option(
    "--split",
    type=click.Choice(["test", "train", "val"]),
    default="test",
    show_default=True,
    help="Which split to evaluate.",
)
@click.option("--batch-size", type=int, help="Batch size.  [default: the recipe's]")
@click.option("--time-steps", "-T", type=int, help="Time steps T.  [default: the recipe's]")
@click.option("--size", metavar="N|HxW", help="Input size in pixels.  [default: the recipe's]")
@click.option(
    "--set",
    "settings",
    multiple=True,
    callback=_parse_set,
    metavar="SECTION.KEY=VALUE",
    help="Override any pipeline key, e.g. --set data.workers=2 (repeatable).  [default: none]",
)
@click.option(
    "--energy/--no-energy", default=True, show_default=True, help="Measure SOPs and energy."
)
@click.option(
    "--save/--no-save",
    default=True,
    show_default=True,
    help="Keep the result as eval-<cache-id>.json beside the checkpoint.",
)
@click.option("--progress/--no-progress", default=False, show_default=True, help="Progress bar.")
@click.option(
    "--allow-other-classes",
    is_flag=True,
    help="Evaluate on data whose class names differ from the checkpoint's.  [default: refuse]",
)
@_allow_stale
def evaluate(
    checkpoint: Path, pipeline: str | None, settings: dict, allow_stale: bool, **kw: Any
) -> None:
    """Evaluate CHECKPOINT (a .pt file, or a run folder's best checkpoint) on held-out data."""
    from eventvision.train import evaluate as evaluate_run
    from eventvision.train import load_pipeline
    from eventvision.train.quickstart import format_eval

    recipe = load_pipeline(pipeline) if pipeline else None
    result = evaluate_run(checkpoint, recipe, overrides=settings, allow_stale=allow_stale, **kw)
    click.echo(format_eval(result, title=f"{checkpoint} on the {kw['split']} split"))
    if result.path is not None:
        click.echo(f"saved {result.path}")


@click.command()
@click.argument(
    "run_dirs", metavar="RUN [RUN ...]", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option(
    "--metric",
    default=None,
    help="metrics.jsonl column to overlay, e.g. test_acc1, train_loss, lr; dssa_rate_error "
    "draws DSSA's rate estimates against the measured rates, per layer, of one run.  "
    "[default: one run: loss, top-1 and lr panels; several: test_acc1]",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG file to write.  [default: RUN/curves.png for one run, runs.png for several]",
)
def plot(run_dirs: tuple[Path, ...], metric: str | None, out: Path | None) -> None:
    """Draw the curves of RUN into a PNG, or overlay one metric of several runs with a legend."""
    from eventvision.train.plot import plot_curves, plot_rate_check, plot_runs

    if len(run_dirs) == 1 and metric == "dssa_rate_error":
        click.echo(f"wrote {plot_rate_check(run_dirs[0], out or run_dirs[0] / 'dssa_rates.png')}")
        return
    if len(run_dirs) == 1 and metric is None:
        click.echo(f"wrote {plot_curves(run_dirs[0], out or run_dirs[0] / 'curves.png')}")
        return
    path = plot_runs(run_dirs, metric or "test_acc1", out or Path("runs.png"))
    click.echo(f"wrote {path}")


@click.command()
@click.argument("folder", metavar="DIR", default="runs", type=click.Path(path_type=Path))
def runs(folder: Path) -> None:
    """Print a table of the runs under DIR: recipe, model, epochs, top-1, wall time, status."""
    from eventvision.train.runs_table import format_runs, list_runs

    click.echo(format_runs(list_runs(folder)))


@click.command()
@click.option(
    "--attention",
    type=click.Choice(["dssa", "ssa", "sdsa", "qkta"]),
    default="dssa",
    show_default=True,
    help="Build every variant with this attention (docs/models.md).",
)
def models(attention: str) -> None:
    """List the registered model variants with parameters, default input size and T."""
    from eventvision.models.catalog import format_models

    click.echo(format_models(attention))


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("quickstart"),
    show_default=True,
    help="Folder for the raw data, cache, run, table and pictures.",
)
@click.option(
    "--tiny", is_flag=True, help="A seconds-long smoke version (tests, CI).  [default: off]"
)
@click.option(
    "--per-class", type=int, help="Synthetic recordings per class.  [default: 60, tiny 4]"
)
@click.option("--epochs", type=int, help="Training epochs.  [default: 12, tiny 1]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of data and training.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Live progress bars on stderr.  [default: on when stderr is a terminal]",
)
def quickstart(
    out: Path,
    tiny: bool,
    per_class: int | None,
    epochs: int | None,
    seed: int,
    progress: bool | None,
) -> None:
    """Synthesise CIFAR10-DVS-like data, cache it, train a small SpikingResformer, evaluate it.

    Prints a results table (accuracy, firing rates, energy, time per stage) and writes
    OUT/sample_frames.png and OUT/curves.png.
    """
    from eventvision.train.quickstart import quickstart as run_quickstart

    result = run_quickstart(
        out, tiny=tiny, per_class=per_class, epochs=epochs, seed=seed, progress=_progress(progress)
    )
    click.echo(result.table)
