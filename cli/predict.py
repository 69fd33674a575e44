"""`eventvision predict` and `eventvision export`: a trained run on recordings, or shipped."""

from __future__ import annotations

from pathlib import Path

import click

_FILE = click.Path(dir_okay=False, path_type=Path)
_binning = click.option(
    "--binning",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON binning options (an export sidecar).  [default: the run's data.json]",
)


def _positive(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise click.BadParameter(f"{value}: expected a positive number")
    return value


@click.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=_FILE, help="preds.csv or preds.json.")
@click.option(
    "--window-ms", type=float, callback=_positive, help="Window length in ms.  [default: a file]"
)
@click.option(
    "--window-events", type=int, callback=_positive, help="Events per window.  [default: none]"
)
@click.option(
    "--stride-ms", type=float, callback=_positive, help="ms between starts.  [default: the window]"
)
@click.option("--top-k", default=3, show_default=True, help="Classes listed per window.")
@click.option("--batch-size", default=8, show_default=True, help="Windows per forward pass.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@_binning
@click.option("--resize-sensor", is_flag=True, help="Resize other sensors.  [default: refuse]")
@click.option("--gif", type=_FILE, help="Draw the windows.  [default: none]")
def predict(run: Path, files: tuple[Path, ...], out: Path, **kw) -> None:
    """Classify the windows of recordings (AEDAT 2/3.1/4, ATIS .bin, .npy/.npz/.h5) with a run.

    RUN is a run folder (its best checkpoint) or a checkpoint. Each window is binned, resized
    and oriented exactly as the run's cache was built; AEDAT 4 and 3.1 files stream. Windows
    run back to back unless --stride-ms; without a window a whole file is one (when the run's
    samples were whole files). A recording from another sensor is refused unless
    --resize-sensor. See docs/predict.md.
    """
    from eventvision.predict import Predictor, Windowing
    from eventvision.predict.output import check_output, predict_files

    if kw["window_ms"] is None and kw["window_events"] is None and kw["stride_ms"] is not None:
        raise click.BadParameter("--stride-ms needs --window-ms or --window-events")
    windowing = None
    if kw["window_ms"] is not None or kw["window_events"] is not None:
        ms = {k: None if kw[k] is None else round(kw[k] * 1000) for k in ("window_ms", "stride_ms")}
        windowing = Windowing(ms["window_ms"], kw["window_events"], ms["stride_ms"])
    check_output(out)
    options = {k: kw[k] for k in ("binning", "batch_size", "resize_sensor")}
    predictor = Predictor(run, kw["device"], windowing=windowing, **options)
    summary = predict_files(predictor, files, out, top_k=kw["top_k"], gif=kw["gif"])
    click.echo(summary.line() + (f", {summary.gif}" if summary.gif else ""))


@click.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["onnx", "pt2"]), default="onnx", show_default=True
)
@click.option("--out", "-o", required=True, type=_FILE, help="The file; OUT.json beside it.")
@_binning
def export(run: Path, fmt: str, out: Path, binning: Path | None) -> None:
    """Export RUN's whole T-step forward (eval mode) to ONNX or pt2: [B,T,C,H,W] -> logits.

    The JSON sidecar OUT.json holds the class names and the binning. See docs/predict.md.
    """
    from eventvision.predict.export import export_run, sidecar_path

    info = export_run(run, out, fmt, binning=binning)
    shape = "x".join(str(v) for v in info["input"]["shape"])
    click.echo(
        f"exported {run} to {out} ({fmt}, input {shape}, {len(info['classes'])} classes), "
        f"sidecar {sidecar_path(out)}"
    )
