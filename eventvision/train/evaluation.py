"""``evaluate``: a checkpoint on a split of its data, with firing rates and the energy estimate."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data import make_loader
from ..errors import CheckpointError, ConfigError, check_choice
from ._data import build_datasets, build_validation
from .checkpoint import load_checkpoint
from .config import Pipeline, pipeline_from_dict
from .logs import run_scores
from .loop import _distributed, _dssa_rate_estimates, _EpochContext, _run_epoch
from .model_setup import _num_classes, load_trained
from .rundir import BEST_CKPT, LAST_CKPT, read_metrics
from .schedule import seed_everything

__all__ = ["EvalResult", "evaluate"]


@dataclass(frozen=True)
class EvalResult:
    """Held-out metrics: loss (plain cross-entropy), top-1/top-5 (%), firing rates, energy.

    ``firing_rates``: spikes per neuron and step, measured per neuron layer by
    ``measure_energy`` (empty without ``energy``). ``dssa_rates``: the DSSA firing-rate
    buffers (running estimates of the attention inputs' rates), by buffer name, as
    ``metrics.jsonl`` logs them (docs/training.md, "Runs"). ``run_scores``: for a checkpoint
    in a run folder, the run's three test top-1 numbers as its ``metrics.jsonl`` gives them
    (``eventvision.train.logs.run_scores``: at the selected epoch, which ``best.pt`` holds, at the
    last epoch, and the maximum over epochs, the paper's protocol).
    """

    loss: float
    acc1: float
    acc5: float
    samples: int
    seconds: float
    firing_rates: dict[str, float] = field(default_factory=dict)
    dssa_rates: dict[str, float] = field(default_factory=dict)
    energy: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the saved ``eval-<cache-id>.json``, if saved
    run_scores: dict[str, Any] = field(default_factory=dict)


def resolve_checkpoint(path: Path) -> Path:
    """A run folder's ``best.pt`` (else ``last.pt``), or ``path`` itself when it is a file."""
    if path.is_dir():
        for name in (BEST_CKPT, LAST_CKPT):
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"{path}: run folder without {BEST_CKPT} or {LAST_CKPT}")
    return path


def evaluate(
    checkpoint: str | os.PathLike,
    pipeline: Pipeline | None = None,
    *,
    data: str | None = None,
    split: str = "test",
    batch_size: int | None = None,
    energy: bool = True,
    progress: bool = False,
    time_steps: int | None = None,
    size: int | str | tuple[int, int] | None = None,
    overrides: dict[str, Any] | None = None,
    save: bool = True,
    allow_stale: bool = False,
    allow_other_classes: bool = False,
) -> EvalResult:
    """Evaluate a checkpoint (or a run folder's best one) on a split of its data.

    Args:
        checkpoint: a ``.pt`` file or a run folder.
        pipeline: the recipe; by default the one stored in the checkpoint (official
            checkpoints store none and need it).
        data: replaces ``pipeline.data.path``.
        split: "test" (held out), "train" (without the validation share) or "val" (the
            validation share of a run with ``[data] val_fraction``).
        batch_size: replaces ``pipeline.train.batch_size``.
        energy: also measure per-layer firing rates, SOPs and the energy estimate.
        time_steps, size: replace ``pipeline.data.time_steps`` / ``size``.
        overrides: further ``{"section.key": value}`` pairs, as ``--set`` gives them.
        save: write the record ``eval-<cache-id>.json`` beside the checkpoint (``EvalResult.path``).
        allow_stale: use a frame cache whose raw sources changed since its build.
        allow_other_classes: evaluate on data whose class names differ from those the
            checkpoint was trained on (else ConfigError).
    """
    path = resolve_checkpoint(Path(checkpoint))
    ckpt = load_checkpoint(path)
    if pipeline is None:
        if not isinstance(ckpt.get("pipeline"), dict):
            raise ConfigError(
                f"{path}: the checkpoint stores no pipeline; pass --pipeline NAME|PATH"
            )
        pipeline = pipeline_from_dict(ckpt["pipeline"], source=str(path))
    if data is not None:
        pipeline = replace(pipeline, data=replace(pipeline.data, path=str(data)))
    pipeline = _eval_overrides(pipeline, batch_size, time_steps, size, overrides)
    check_choice("split", split, ("train", "test", "val"))
    with _distributed(pipeline.train.device) as info:
        seed_everything(pipeline.train.seed)
        train_ds, test_ds, classes = build_datasets(
            pipeline, augment=False, allow_stale=allow_stale
        )
        if not allow_other_classes:
            _check_classes(path, ckpt.get("classes"), classes, pipeline.data.path)
        dataset = {"test": test_ds, "train": train_ds}.get(split)
        if split == "val":
            dataset = build_validation(pipeline, allow_stale=allow_stale)
            if dataset is None:
                raise ConfigError(f"{path}: the run has no validation split ([data] val_fraction)")
        model = load_trained(pipeline, _num_classes(pipeline, classes), ckpt, str(path))
        model.to(info.device)
        loader = make_loader(
            dataset,
            pipeline.train.batch_size,
            False,
            pipeline.data.workers,
            pipeline.train.seed,
            rank=info.rank,
            world_size=info.world_size,
        )
        ctx = _EpochContext(device=info.device, info=info, progress=progress, desc="evaluate")
        stats = _run_epoch(model, loader, ctx)
        report: dict[str, Any] = {}
        rates: dict[str, float] = {}
        if energy:
            report, rates = _energy_report(model, loader, info.device)
    result = EvalResult(
        loss=stats["loss"],
        acc1=stats["acc1"],
        acc5=stats["acc5"],
        samples=stats["samples"],
        seconds=stats["seconds"],
        firing_rates=rates,
        dssa_rates=_dssa_rate_estimates(model),
        energy=report,
        run_scores=run_scores(read_metrics(path.parent)),
    )
    if save and info.is_main:
        from .evals import eval_record, save_eval

        saved = save_eval(eval_record(result, path, pipeline, split), path)
        result = replace(result, path=saved)
    return result


def _check_classes(path: Path, trained: Any, classes: list[str], data: str) -> None:
    """Refuse data whose class names differ from the checkpoint's (when it records them)."""
    if not isinstance(trained, list) or list(trained) == list(classes):
        return
    pairs = zip(trained, classes, strict=False)
    diff = next(
        (f"class {i} is {a!r} there, {b!r} here" for i, (a, b) in enumerate(pairs) if a != b),
        f"{len(trained)} classes there, {len(classes)} here",
    )
    raise ConfigError(
        f"{path}: trained on other classes than {data} holds ({diff}); its accuracy there "
        "would mean nothing; pass --allow-other-classes to evaluate anyway"
    )


def _eval_overrides(
    pipeline: Pipeline,
    batch_size: int | None,
    time_steps: int | None,
    size: int | str | tuple[int, int] | None,
    overrides: dict[str, Any] | None,
) -> Pipeline:
    """``pipeline`` with the evaluation's flags applied (flags win over ``overrides``)."""
    from .config import apply_overrides

    given = dict(overrides or {})
    for key, value in (
        ("train.batch_size", batch_size),
        ("data.time_steps", time_steps),
        ("data.size", size),
    ):
        if value is not None:
            given[key] = value
    return apply_overrides(pipeline, given)


def _energy_report(
    model: nn.Module, loader: DataLoader, device: torch.device
) -> tuple[dict[str, Any], dict[str, float]]:
    """SOPs and the paper's energy estimate per image, and the measured per-layer firing rates."""
    from ..models import measure_energy

    report = measure_energy(model, (x.to(device) for x, _ in loader))
    energy = {
        "SOPs per image (G)": report.sops / 1e9,
        "energy per image (mJ, 0.9 pJ/SOP)": report.energy_mj,
        "first-conv MACs per image (G)": report.first_conv_macs / 1e9,
        "energy incl. first conv (mJ, +4.6 pJ/MAC)": report.energy_with_first_conv_mj,
    }
    return energy, dict(report.firing_rates)
