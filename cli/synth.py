"""`eventvision synth`: synthetic datasets in the original raw layouts."""

from __future__ import annotations

from pathlib import Path

import click

_out = click.argument("out", type=click.Path(file_okay=False, path_type=Path))
_seed = click.option("--seed", default=0, show_default=True, help="Random seed.")


@click.group()
def synth() -> None:
    """Write a synthetic dataset in an original raw layout (deterministic from --seed)."""


@synth.command("cifar10-dvs")
@_out
@click.option("--per-class", default=20, show_default=True, help="Recordings per class.")
@_seed
@click.option(
    "--layout",
    type=click.Choice(["original", "tonic", "spikingjelly"]),
    default="original",
    show_default=True,
    help="original: <class>/*.aedat; tonic: CIFAR10DVS/<class>/*.aedat4; "
    "spikingjelly: events_np/<class>/*.npz.",
)
def synth_cifar10dvs(out: Path, per_class: int, seed: int, layout: str) -> None:
    """CIFAR10-DVS layout: OUT/<class>/cifar10_<class>_<i>.aedat (jAER AEDAT 2.0)."""
    from eventvision.synth import make_cifar10dvs

    paths = make_cifar10dvs(out, per_class=per_class, seed=seed, layout=layout)
    click.echo(f"wrote {len(paths)} CIFAR10-DVS recordings ({layout} layout) to {out}")


def _per_class_command(name: str, maker: str, per_class: int, what: str, doc: str) -> None:
    """Register ``synth NAME OUT --per-class N --seed S`` calling ``eventvision.synth.<maker>``."""

    @synth.command(name, help=doc)
    @_out
    @click.option("--per-class", default=per_class, show_default=True, help=f"{what} per class.")
    @_seed
    def command(out: Path, per_class: int, seed: int) -> None:
        from eventvision import synth as synthesis

        paths = getattr(synthesis, maker)(out, per_class=per_class, seed=seed)
        where = out / "Caltech101" if name == "ncaltech101" else out
        click.echo(f"wrote {len(paths)} {doc.split(' layout')[0]} files to {where}")


_per_class_command(
    "nmnist",
    "make_nmnist",
    20,
    "Train files",
    "N-MNIST layout: OUT/Train|Test/<digit>/<i>.bin (ATIS binary, 34x34).",
)
_per_class_command(
    "ncaltech101",
    "make_ncaltech101",
    5,
    "Files",
    "N-Caltech101 layout: OUT/Caltech101/<class>/image_<i>.bin (ATIS binary, <= 240x180).",
)


@synth.command("dvs-gesture")
@_out
@click.option("--users", default=4, show_default=True, help="Number of users (subjects).")
@_seed
@click.option(
    "--scale",
    default=1.0,
    show_default=True,
    help="Gesture duration scale; 1 gives the original's 5-8 s gestures, less makes tiny data.",
)
def synth_dvs_gesture(out: Path, users: int, seed: int, scale: float) -> None:
    """DVS Gesture layout: OUT/DvsGesture/userNN_<lighting>.aedat (AEDAT 3.1), csv, trials."""
    from eventvision.synth import make_dvs_gesture

    paths = make_dvs_gesture(out, users=users, seed=seed, scale=scale)
    click.echo(f"wrote {len(paths)} DVS Gesture recordings to {out / 'DvsGesture'}")
