"""`eventvision train`, `finetune`, `evaluate`, `plot` and `quickstart`: thin commands.

Recipes come from `--pipeline NAME|PATH` (`pipelines/*.toml`); every flag left unset keeps the
recipe's value, a flag that is given overrides it, and `--set section.key=value` reaches any key.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_FROM_PIPELINE = "[default: the pipeline's value]"

# flag name -> pipeline key it overrides
_FLAG_KEYS = {
    "data": "data.path",
    "model": "model.name",
    "time_steps": "data.time_steps",
    "size": "data.size",
    "augment": "data.augment",
    "workers": "data.workers",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "weight_decay": "train.weight_decay",
    "seed": "train.seed",
    "device": "train.device",
    "clip_grad": "train.clip_grad",
    "amp": "train.amp",
    "tet": "train.tet",
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


def _recipe_options(default_pipeline: str) -> Callable:
    """The options shared by train and finetune: the pipeline, its overrides, the run folder."""
    opts = [
        click.option(
            "--pipeline",
            default=default_pipeline,
            show_default=True,
            help="Recipe: a name from pipelines/ or a path to a .toml file.",
        ),
        click.option("--data", help=f"Frame cache (.h5) or image folder. {_FROM_PIPELINE}"),
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=Path),
            help="Run folder (new or empty).  [default: runs/<pipeline>]",
        ),
        click.option("--model", help=f"Registered model name. {_FROM_PIPELINE}"),
        click.option("--time-steps", type=int, help=f"Time steps T. {_FROM_PIPELINE}"),
        click.option("--size", type=int, help=f"Input side in pixels. {_FROM_PIPELINE}"),
        click.option(
            "--augment",
            help=f"Augmentation: dvs, an event one (nda, eventdrop, ...), none. {_FROM_PIPELINE}",
        ),
        click.option("--epochs", type=int, help=f"Epochs. {_FROM_PIPELINE}"),
        click.option("--batch-size", type=int, help=f"Batch size per process. {_FROM_PIPELINE}"),
        click.option("--lr", type=float, help=f"Peak learning rate. {_FROM_PIPELINE}"),
        click.option("--weight-decay", type=float, help=f"AdamW weight decay. {_FROM_PIPELINE}"),
        click.option("--workers", type=int, help=f"DataLoader workers. {_FROM_PIPELINE}"),
        click.option("--seed", type=int, help=f"Random seed. {_FROM_PIPELINE}"),
        click.option("--device", help=f"auto, cpu, cuda or cuda:N. {_FROM_PIPELINE}"),
        click.option("--clip-grad", type=float, help=f"Max grad norm, 0 = off. {_FROM_PIPELINE}"),
        click.option(
            "--amp/--no-amp", default=None, help=f"Mixed precision (CUDA only). {_FROM_PIPELINE}"
        ),
        click.option("--tet/--no-tet", default=None, help=f"TET loss. {_FROM_PIPELINE}"),
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
            help="Continue the run in this folder exactly, with its saved configuration.  "
            "[default: start a new run]",
        ),
        click.option(
            "--progress/--no-progress",
            default=True,
            show_default=True,
            help="Progress bar on stderr.",
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


def _resolve(ctx: click.Context, kw: dict[str, Any]) -> tuple[Any, Path, bool]:
    """(pipeline, run folder, resume) from the shared options."""
    from eventvision.train import load_pipeline, load_run_pipeline

    overrides = {key: kw[flag] for flag, key in _FLAG_KEYS.items() if kw.get(flag) is not None}
    overrides.update(kw["settings"])
    if kw["resume"] is not None:
        given = sorted(overrides) + (
            ["--pipeline"]
            if ctx.get_parameter_source("pipeline") is not click.core.ParameterSource.DEFAULT
            else []
        )
        if given or kw["out"] is not None:
            raise click.BadParameter(
                f"--resume takes the configuration from the run folder; drop {given or ['--out']}",
                param_hint="--resume",
            )
        return load_run_pipeline(kw["resume"]), kw["resume"], True
    pipeline = load_pipeline(kw["pipeline"], overrides)
    return pipeline, kw["out"] or Path("runs") / pipeline.name, False


def _summary(result: Any) -> str:
    final = result.final
    return (
        f"run {result.run_dir}: {result.epochs} epochs, held-out top-1 "
        f"{final.get('test_acc1', float('nan')):.2f}% (best {result.best_acc1:.2f}%), "
        f"checkpoints {result.last_checkpoint.name} and {result.best_checkpoint.name}"
    )


@click.command()
@_recipe_options("cifar10dvs-direct")
@_allow_stale
@click.pass_context
def train(ctx: click.Context, allow_stale: bool, **kw: Any) -> None:
    """Train a model on a frame cache or an image folder with a recipe from pipelines/.

    Under `torchrun --nproc-per-node N` the same command trains with DistributedDataParallel.
    """
    from eventvision.train import allow_stale_sources
    from eventvision.train import train as train_run

    pipeline, run_dir, resume = _resolve(ctx, kw)
    with allow_stale_sources(allow_stale):
        result = train_run(pipeline, run_dir, resume=resume, progress=kw["progress"])
    click.echo(_summary(result))


@click.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@_recipe_options("transfer-cifar10dvs")
@click.option(
    "--freeze-backbone/--no-freeze-backbone",
    default=None,
    help=f"Train the new classifier only. {_FROM_PIPELINE}",
)
@_allow_stale
@click.pass_context
def finetune(
    ctx: click.Context, checkpoint: Path, freeze_backbone: bool | None, allow_stale: bool, **kw: Any
) -> None:
    """Fine-tune from CHECKPOINT (ours or an official one) with a new classifier for the data."""
    from eventvision.train import allow_stale_sources
    from eventvision.train import finetune as finetune_run

    pipeline, run_dir, resume = _resolve(ctx, kw)
    with allow_stale_sources(allow_stale):
        result = finetune_run(
            pipeline,
            checkpoint,
            run_dir,
            freeze_backbone=freeze_backbone,
            resume=resume,
            progress=kw["progress"],
        )
    click.echo(_summary(result))


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--data", help="Frame cache or image folder.  [default: the checkpoint's]")
@click.option(
    "--pipeline", help="Recipe, for checkpoints that store none.  [default: the checkpoint's]"
)
@click.option(
    "--split",
    type=click.Choice(["test", "train"]),
    default="test",
    show_default=True,
    help="Which split to evaluate.",
)
@click.option("--batch-size", type=int, help="Batch size.  [default: the recipe's]")
@click.option(
    "--energy/--no-energy", default=True, show_default=True, help="Measure SOPs and energy."
)
@click.option("--progress/--no-progress", default=False, show_default=True, help="Progress bar.")
@_allow_stale
def evaluate(
    checkpoint: Path,
    data: str | None,
    pipeline: str | None,
    split: str,
    batch_size: int | None,
    energy: bool,
    progress: bool,
    allow_stale: bool,
) -> None:
    """Evaluate CHECKPOINT (a .pt file, or a run folder's best checkpoint) on held-out data."""
    from eventvision.train import allow_stale_sources, load_pipeline
    from eventvision.train import evaluate as evaluate_run
    from eventvision.train.quickstart import format_eval

    recipe = load_pipeline(pipeline) if pipeline else None
    with allow_stale_sources(allow_stale):
        result = evaluate_run(
            checkpoint,
            recipe,
            data=data,
            split=split,
            batch_size=batch_size,
            energy=energy,
            progress=progress,
        )
    click.echo(format_eval(result, title=f"{checkpoint} on the {split} split"))


@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PNG file to write.  [default: RUN/curves.png]",
)
def plot(run: Path, out: Path | None) -> None:
    """Draw the loss, accuracy and learning-rate curves of RUN into a PNG."""
    from eventvision.train.plot import plot_curves

    click.echo(f"wrote {plot_curves(run, out or run / 'curves.png')}")


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
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
def quickstart(
    out: Path, tiny: bool, per_class: int | None, epochs: int | None, seed: int, progress: bool
) -> None:
    """Synthesise CIFAR10-DVS-like data, cache it, train a small SpikingResformer, evaluate it.

    Prints a results table (accuracy, firing rates, energy, time per stage) and writes
    OUT/sample_frames.png and OUT/curves.png.
    """
    from eventvision.train.quickstart import quickstart as run_quickstart

    result = run_quickstart(
        out, tiny=tiny, per_class=per_class, epochs=epochs, seed=seed, progress=progress
    )
    click.echo(result.table)
