"""`eventvision preprocess`, `info`, `show` and `cache merge`: the frame cache from the shell."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from eventvision.cache import (
    COMPRESSIONS,
    STORES,
    CacheReport,
    CacheStats,
    cache_stats,
    merge_shards,
    parse_shard,
    parse_size,
    read_header,
    source_options,
    write_cache,
)
from eventvision.datasets import ORIENTATIONS, SPLIT_PROTOCOLS
from eventvision.datasets.layouts import LAYOUTS
from eventvision.datasets.registry import list_sources
from eventvision.errors import CacheError, ConfigError
from eventvision.frames.draw import frame_grid, frame_tiles, image_format, save_gif, save_image


def _choice(name: str, choices: Sequence[str], default: str, help: str | None = None) -> Callable:
    """An option taking one of ``choices``, its default shown in the help."""
    return click.option(
        name, default=default, show_default=True, type=click.Choice(choices), help=help
    )


_split_by = _choice("--split-by", ["number", "time"], "number")
_wait = click.option(
    "--wait", is_flag=True, help="If another process writes OUT, wait for it instead of failing."
)


def _parsed(parse: Callable[[str], Any], error: type[Exception]) -> Callable:
    """A click callback giving ``parse(value)``, its ``error`` a usage error; None stays None."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        try:
            return parse(value)
        except error as e:
            raise click.BadParameter(str(e)) from None

    return callback


_shard = _parsed(parse_shard, CacheError)
_size = _parsed(parse_size, ConfigError)


def _time_steps_options(help: str):
    """``--time-steps`` / ``-T``, and ``--frames``, its hidden deprecated alias (`_time_steps`)."""

    def decorate(command):
        command = click.option(
            "--frames", "frames_alias", default=None, type=click.IntRange(1), hidden=True
        )(command)
        return click.option(
            "--time-steps", "-T", "time_steps", default=None, type=click.IntRange(1), help=help
        )(command)

    return decorate


def _time_steps(value: int | None, frames_alias: int | None, default: int | None = None):
    """``--time-steps`` (``-T``), or the deprecated ``--frames`` with a warning on stderr."""
    if frames_alias is None:
        return default if value is None else value
    click.echo("warning: --frames is deprecated; use --time-steps (or -T)", err=True)
    if value is not None and value != frames_alias:
        raise click.BadParameter(
            f"--time-steps {value} and --frames {frames_alias} disagree", param_hint="--time-steps"
        )
    return frames_alias


def _sensor_size(ctx, param, value):
    """``HxW`` (the one CLI order, as --size) as the library's ``(width, height)`` sensor."""
    if value is None:
        return None
    parts = value.lower().split("x")
    if len(parts) != 2 or not all(p.isdecimal() and int(p) > 0 for p in parts):
        raise click.BadParameter(f"expected HxW, e.g. 180x240 for a DAVIS240, got {value!r}")
    height, width = int(parts[0]), int(parts[1])
    return (width, height)


@click.command()
@click.argument("dataset", type=click.Choice(list_sources()))
@click.argument("raw_root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))  # a folder: one-line error (the lock)
@_time_steps_options("Frames per sample.  [default: 16]")
@_split_by
@click.option(
    "--size",
    default="64",
    show_default=True,
    callback=_size,
    metavar="N|HxW",
    help="Resized frames: N for N x N, or HxW, height x width (48x64: 48 rows of 64 pixels).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Processes computing frames.",
)
@_choice("--compression", COMPRESSIONS, COMPRESSIONS[0])
@_choice(
    "--store",
    STORES,
    "frames",
    "Store binned frames, or each sample's events (binned in the loader).",
)
@_choice("--protocol", sorted(SPLIT_PROTOCOLS), "paper", "CIFAR10-DVS train/test protocol.")
@click.option(
    "--seed", default=0, show_default=True, help="Seed of a random split (protocol, folder)."
)
@click.option(
    "--sensor-size",
    default=None,
    callback=_sensor_size,
    metavar="HxW",
    help="folder: sensor height x width, where the files do not state it (180x240 for a "
    "DAVIS240: 180 rows of 240 pixels).",
)
@click.option(
    "--test-fraction",
    default=None,
    type=click.FloatRange(0, 1, max_open=True),
    help="folder without train/ and test/: share of each class drawn (seeded) for test.  "
    "[default: 0.1]",
)
@_choice(
    "--layout",
    LAYOUTS,
    "auto",
    "cifar10-dvs, dvs-gesture: the layout of RAW_ROOT (original release, tonic's or "
    "spikingjelly's download); auto detects it. Recorded in the cache options.",
)
@_choice(
    "--orientation",
    ORIENTATIONS,
    "raw",
    "folder: turn raw sensor coordinates upright; jaer for files recorded with jAER "
    "(y up, x mirrored: a 180-degree turn). Recorded in the cache options.",
)
@click.option(
    "--shard",
    default=None,
    callback=_shard,
    metavar="I/N",
    help="Build shard I of N, for `cache merge`.",
)
@click.option("--skip-bad", is_flag=True, help="Skip sources that fail to read, and list them.")
@click.option(
    "--follow-symlinks",
    is_flag=True,
    help="folder: read symlinked files and folders that point outside RAW_ROOT (refused "
    "otherwise; recorded in the cache options).",
)
@click.option(
    "--overwrite", is_flag=True, help="Rebuild even if OUT holds other options or is stale."
)
@_wait
def preprocess(dataset: str, raw_root: Path, out: Path, frames_alias, **opts) -> None:
    """Bin and resize every sample of RAW_ROOT into the HDF5 cache OUT (resumable).

    Sizes: N is a square N x N; AxB is always height x width (HxW), for --size and
    --sensor-size alike, e.g. `--size 48x64 --sensor-size 180x240`.

    With --store events, OUT holds each sample's events instead (--time-steps, --split-by and
    --size then do not apply: the loader bins). --frames is a deprecated --time-steps.
    """
    opts["time_steps"] = _time_steps(opts["time_steps"], frames_alias, default=16)
    keys = ("time_steps", "split_by", "size", "compression", "protocol", "seed", "store")
    keys += ("sensor_size", "test_fraction", "follow_symlinks", "layout", "orientation")
    options = source_options(dataset, raw_root, **{k: opts.pop(k) for k in keys})
    with _Progress() as bar:
        report = write_cache(
            options, raw_root, out, progress=bar.update, on_start=bar.start, **opts
        )
    click.echo(_summary(report))


@click.command()
@click.argument(
    "cache_path", metavar="CACHE", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def info(cache_path: Path) -> None:
    """Print a cache's options, samples per split and class, and event statistics."""
    click.echo("\n".join(_info_lines(cache_stats(cache_path))))


@click.command()
@click.argument(
    "cache_path", metavar="CACHE", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--index", default=0, show_default=True, type=click.IntRange(0), help="Sample index.")
@click.option(
    "--out",
    "out_png",
    default="sample.png",
    show_default=True,
    type=click.Path(path_type=Path),
)
@click.option(
    "--gif",
    "out_gif",
    default=None,
    type=click.Path(path_type=Path),
    help="Also write the T frames as an animated GIF.",
)
@_time_steps_options("Event caches: time steps to bin into.  [default: 16]")
@click.option(
    "--size",
    default=None,
    callback=_size,
    metavar="N|HxW",
    help="Event caches: frame size.  [default: 64]",
)
@_split_by
@click.option(
    "--augment",
    default=None,
    help="Event caches: also draw the sample after this event augmentation (e.g. nda).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of --augment.")
def show(
    cache_path: Path, index: int, out_png: Path, out_gif: Path | None, frames_alias, **binning
) -> None:
    """Draw the T frames of one sample as a grid PNG: OFF in blue, ON in orange.

    An event cache is binned first (--time-steps, --size, --split-by); --augment draws the
    sample before (top) and after (bottom) an event augmentation.
    """
    binning["time_steps"] = _time_steps(binning["time_steps"], frames_alias)
    image_format(out_png)  # a bad path fails before any work
    if out_gif is not None:
        image_format(out_gif)
    _check_binning_flags(cache_path, binning)
    from eventvision.data.preview import preview_sample  # torch: only when drawing

    try:
        sample = preview_sample(cache_path, index, **binning)
    except IndexError as e:
        raise click.BadParameter(str(e), param_hint="--index") from None
    drawn = [sample.frames] if sample.augmented is None else [sample.frames, sample.augmented]
    save_image(frame_grid(drawn), out_png)
    if out_gif is not None:
        save_gif(frame_tiles(sample.frames), out_gif)
    click.echo(
        f"sample {index} ({sample.label}, {sample.source}): {len(sample.frames)} frames"
        + (f", before and after {binning['augment']}," if sample.augmented is not None else "")
        + f" drawn to {out_png}"
        + (f" and {out_gif}" if out_gif else "")
    )


def _check_binning_flags(path: Path, binning: dict) -> None:
    """Binning flags name event-cache options: a usage error on a frame cache."""
    if read_header(path).get("store", "frames") != "frames":
        return
    given = [f"--{k.replace('_', '-')}" for k in ("time_steps", "size", "augment") if binning[k]]
    if given:
        raise click.BadParameter(
            f"{path} is a frame cache (binned at preprocess); {', '.join(given)} apply to "
            "event caches (`preprocess --store events`)",
            param_hint=given[0],
        )


@click.group()
def cache() -> None:
    """Operations on frame caches."""


@cache.command("merge")
@click.argument("out", type=click.Path(path_type=Path))
@click.argument(
    "shards", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--overwrite", is_flag=True, help="Replace OUT even if it holds another cache.")
@_wait
def merge(out: Path, shards: tuple[Path, ...], overwrite: bool, wait: bool) -> None:
    """Join the shard files of `preprocess --shard I/N` into the cache OUT of a single run."""
    report = merge_shards(shards, out, overwrite=overwrite, wait=wait)
    click.echo(_summary(report))


class _Progress:
    """A click progress bar over samples with the event rate; hidden when not on a terminal."""

    def __enter__(self) -> _Progress:
        self.bar = None
        self.events = 0
        self.t0 = time.perf_counter()
        return self

    def start(self, todo: int, done: int) -> None:
        if not sys.stderr.isatty():
            return  # no bar, not even its label: the closing summary line says it all
        label = f"preprocessing ({done} samples already done)" if done else "preprocessing"
        self.bar = click.progressbar(
            length=todo,
            label=label,
            show_pos=True,
            show_eta=True,
            item_show_func=lambda s: s,
            file=sys.stderr,
        )
        self.bar.__enter__()

    def update(self, samples: int, events: int) -> None:
        self.events += events
        if self.bar is None:
            return
        rate = self.events / max(time.perf_counter() - self.t0, 1e-9)
        self.bar.update(samples, f"{rate / 1e6:.1f} M events/s")

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _summary(r: CacheReport) -> str:
    if r.reused:
        head = f"{r.path} is up to date (same options and sources): reused"
    else:
        what = f"shard {r.shard[0]}/{r.shard[1]}" if r.shard else "cache"
        resumed = f", resumed after {r.resumed_blocks} blocks" if r.resumed_blocks else ""
        head = f"wrote {what} {r.path} in {r.wall_s:.1f} s{resumed}"
    total = sum(r.samples.values())
    rates = ""
    if not r.reused and r.wall_s > 0:
        rates = f", {total / r.wall_s:.1f} samples/s, {r.n_events / r.wall_s / 1e6:.2f} M events/s"
    lines = [
        f"{head}: {r.samples.get('train', 0)} train + {r.samples.get('test', 0)} test samples, "
        f"{r.n_events:,} events, {_bytes(r.size_bytes)} on disk{rates}"
    ]
    if r.skipped:
        lines.append(f"skipped {len(r.skipped)} sample(s) of bad sources:")
        lines += [f"  {_skip_line(*skip)}" for skip in r.skipped]
    return "\n".join(lines)


def _info_lines(stats: CacheStats) -> list[str]:
    meta, e = stats.meta, stats.events
    lines = [f"{meta.path}: {meta.dataset}, {meta.n_samples} samples, {_bytes(stats.size_bytes)}"]
    lines += [f"  {key}: {_option_text(key, meta.options[key])}" for key in sorted(meta.options)]
    lines += [
        f"  options_hash: {meta.options_hash}   eventvision {meta.eventvision_version}",
        f"  sources: {meta.raw_root} ({len(meta.manifest)} files), {_staleness(meta.stale)}",
        f"  {'class':<28}{'train':>8}{'test':>8}",
    ]
    for name in meta.classes:
        train, test = stats.per_class["train"][name], stats.per_class["test"][name]
        lines.append(f"  {name:<28}{train:>8}{test:>8}")
    lines += [
        f"  {'total':<28}{meta.n_train:>8}{meta.n_test:>8}",
        f"  events per sample: min {e['min']}, median {e['median']:.0f}, "
        f"mean {e['mean']:.0f}, max {e['max']}; total {e['total']}",
    ]
    lines += [f"  skipped {_skip_line(*skip)}" for skip in meta.skipped]
    return lines


def _option_text(key: str, value) -> str:
    """An option as `info` prints it: sizes in the CLI's one order, height x width."""
    if key in ("sensor", "sensor_size") and isinstance(value, list) and len(value) >= 2:
        width, height = value[0], value[1]  # stored as Sensor(width, height[, polarities])
        extra = f", {value[2]} polarities" if len(value) > 2 else ""
        return f"{height}x{width} (HxW){extra}"
    if key == "size" and isinstance(value, list):
        return f"{value[0]}x{value[1]} (HxW)"
    return str(value)


def _skip_line(source: str, row: int, why: str) -> str:
    where = f"{source} row {row}" if row >= 0 else source
    return why if source in why and row < 0 else f"{where}: {why}"


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _staleness(stale: list[str] | None) -> str:
    if stale is None:
        return "not checked (raw root not found)"
    if not stale:
        return "unchanged since the build"
    return (
        f"STALE: {len(stale)} changed ("
        + "; ".join(stale[:3])
        + ("; ..." if len(stale) > 3 else "")
        + ")"
    )
