"""The main job: synthetic CIFAR10-DVS → HDF5 cache → a small SpikingResformer → held-out results.

``quickstart(out)`` runs every stage of the toolkit on data it makes itself, on the CPU, in a
few minutes, and writes into ``out/``: ``raw/`` (recordings in the original layout), the cache,
``run/`` (pipeline, metrics, checkpoints), ``results.txt``/``results.json``, ``sample_frames.png``
and ``curves.png``. The recipe is ``pipelines/quickstart.toml``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .config import load_pipeline
from .trainer import EvalResult, evaluate, train

__all__ = ["QuickstartResult", "quickstart", "format_eval"]

logger = logging.getLogger(__name__)

PIPELINE = "quickstart"
DEFAULT_PER_CLASS = 60
DEFAULT_EPOCHS = 12
# The smoke version: seconds, not minutes; it checks the plumbing, not the accuracy.
_TINY = {
    "per_class": 4,
    "epochs": 1,
    "duration_us": 1_000_000,
    "overrides": {
        "data.time_steps": 2,
        "data.size": 16,
        "model.planes": [8, 16, 32],
        "model.num_heads": [1, 1, 2],
        "model.blocks": [1, 1, 1],
        "model.group_size": 8,
        "train.batch_size": 8,
        "train.warmup_epochs": 0,
        "train.clip_grad": 1.0,
    },
}


@dataclass(frozen=True)
class QuickstartResult:
    """The quickstart's outcome: held-out metrics, seconds per stage, files, the printed table."""

    acc1: float
    acc5: float
    chance: float
    train_samples: int
    test_samples: int
    stage_seconds: dict[str, float]
    evaluation: EvalResult
    files: dict[str, str] = field(default_factory=dict)
    table: str = ""


def _timed(stages: dict[str, float], name: str, start: float) -> None:
    stages[name] = time.perf_counter() - start
    logger.info("quickstart: %s took %.1f s", name, stages[name])


def quickstart(
    out: str | os.PathLike = "quickstart",
    *,
    tiny: bool = False,
    per_class: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    threads: int = 1,
    progress: bool = False,
) -> QuickstartResult:
    """Synthesise, preprocess, train, evaluate; return (and write) the results table.

    Args:
        out: folder for everything the run makes; rerunning reuses its data, cache and a
            finished run of the same settings.
        tiny: a seconds-long version with a tiny model and a handful of samples.
        per_class: synthetic recordings per class (90 % train, 10 % test per class).
        epochs: training epochs.
        seed: seed of the synthetic data and of training.
        threads: torch intra-op threads while training and evaluating. The small model is
            bound by per-operation overhead, so one thread is about as fast as two, and it
            stays fast when other processes share the cores (spinning OpenMP threads do not).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _quickstart(Path(out), tiny, per_class, epochs, seed, progress)
    finally:
        torch.set_num_threads(before)


def _quickstart(
    out: Path, tiny: bool, per_class: int | None, epochs: int | None, seed: int, progress: bool
) -> QuickstartResult:
    from ..cache import CacheOptions, write_cache

    out.mkdir(parents=True, exist_ok=True)
    per_class = per_class or (_TINY["per_class"] if tiny else DEFAULT_PER_CLASS)
    epochs = epochs or (_TINY["epochs"] if tiny else DEFAULT_EPOCHS)
    overrides: dict[str, Any] = dict(_TINY["overrides"]) if tiny else {}
    overrides.update({"train.epochs": epochs, "train.seed": seed})
    base = load_pipeline(PIPELINE, overrides)
    stages: dict[str, float] = {}

    start = time.perf_counter()
    raw = out / "raw"
    _synthesise(raw, per_class, seed, _TINY["duration_us"] if tiny else None)
    _timed(stages, "synthesise", start)

    start = time.perf_counter()
    cache = out / f"cifar10dvs_T{base.data.time_steps}_{base.data.size}px.h5"
    options = CacheOptions(
        dataset="cifar10-dvs", time_steps=base.data.time_steps, size=base.data.size
    )
    write_cache(options, raw, cache, workers=min(2, os.cpu_count() or 1))
    _timed(stages, "preprocess", start)

    start = time.perf_counter()
    pipeline = load_pipeline(PIPELINE, {**overrides, "data.path": str(cache)})
    run_dir = out / "run"
    result = train(
        pipeline, run_dir, resume=(run_dir / "pipeline.toml").is_file(), progress=progress
    )
    _timed(stages, "train", start)

    start = time.perf_counter()
    evaluation = evaluate(result.last_checkpoint, energy=True)
    _timed(stages, "evaluate", start)

    start = time.perf_counter()
    from .plot import plot_curves

    frames_png = _sample_frames(cache, out / "sample_frames.png")
    curves_png = plot_curves(run_dir, out / "curves.png")
    _timed(stages, "pictures", start)

    from ..data import FrameDataset

    n_train = len(FrameDataset(cache, "train"))
    n_classes = len(FrameDataset(cache, "test").classes) or 10
    files = {
        "raw": str(raw),
        "cache": str(cache),
        "run": str(run_dir),
        "sample_frames": str(frames_png),
        "curves": str(curves_png),
        "results": str(out / "results.txt"),
    }
    partial = QuickstartResult(
        acc1=evaluation.acc1,
        acc5=evaluation.acc5,
        chance=100.0 / n_classes,
        train_samples=n_train,
        test_samples=evaluation.samples,
        stage_seconds=stages,
        evaluation=evaluation,
        files=files,
    )
    table = _format_table(partial, pipeline, result.final)
    (out / "results.txt").write_text(table + "\n", encoding="utf-8")
    summary = {k: v for k, v in asdict(partial).items() if k != "table"}
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    return replace(partial, table=table)


def _synthesise(raw: Path, per_class: int, seed: int, duration_us: int | None) -> None:
    """Write ``per_class`` recordings per class into ``raw`` (CIFAR10-DVS layout), once.

    The recordings come in two halves generated in parallel, with seeds ``2*seed`` and
    ``2*seed + 1``, the second renumbered after the first: the same data for the same
    (per_class, seed) on any machine, in about half the time on two cores.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ..synth import make_cifar10dvs

    marker = raw / f".complete-{per_class}-{seed}-{duration_us or 'default'}"
    if marker.is_file():
        return
    for stale in [*raw.glob("*/cifar10_*.aedat"), *raw.glob(".complete-*")]:
        stale.unlink()  # an interrupted or different earlier synthesis
    shutil.rmtree(raw / ".half2", ignore_errors=True)
    halves = [(raw, (per_class + 1) // 2, 2 * seed), (raw / ".half2", per_class // 2, 2 * seed + 1)]
    workers = min(2, os.cpu_count() or 1)
    spawn = multiprocessing.get_context("spawn")  # the synth is torch-free: light children
    with ProcessPoolExecutor(workers, mp_context=spawn) as pool:
        kw = {} if duration_us is None else {"duration_us": duration_us}
        jobs = [pool.submit(make_cifar10dvs, root, n, s, **kw) for root, n, s in halves]
        second = [Path(p) for p in jobs[1].result()]
        jobs[0].result()
    offset = halves[0][1]
    for path in second:  # <half2>/<class>/cifar10_<class>_<i>.aedat -> index i + offset
        stem, _, index = path.stem.rpartition("_")
        path.rename(raw / path.parent.name / f"{stem}_{int(index) + offset}{path.suffix}")
    shutil.rmtree(raw / ".half2")
    marker.touch()


def _sample_frames(cache: Path, png: Path) -> Path:
    """One held-out sample per class, its T frames in a row, the class name above."""
    from ..data import FrameDataset
    from ..frames.draw import frame_grid, save_image

    ds = FrameDataset(cache, "test", channels=2)
    picks: dict[int, int] = {}
    for i, label in enumerate(ds.targets.tolist()):
        picks.setdefault(int(label), i)
    order = sorted(picks)
    frames = [ds[picks[c]][0].numpy() for c in order]  # [T, 2, H, W] each
    return save_image(frame_grid(frames, titles=[ds.classes[c] for c in order]), png)


def format_eval(result: EvalResult, title: str = "evaluation") -> str:
    """Held-out metrics, firing rates and the energy estimate as an aligned text table."""
    lines = [
        title,
        f"  {'samples':<44}{result.samples:>12d}",
        f"  {'top-1 accuracy (%)':<44}{result.acc1:>12.2f}",
        f"  {'top-5 accuracy (%)':<44}{result.acc5:>12.2f}",
        f"  {'loss (cross-entropy)':<44}{result.loss:>12.4f}",
    ]
    if result.firing_rates:
        rates = np.array(list(result.firing_rates.values()))
        lines.append(
            f"  {'firing rate, mean / min / max':<44}"
            f"{rates.mean():>8.4f} / {rates.min():.4f} / {rates.max():.4f}"
        )
    for key, value in result.energy.items():
        text = f"{value:>12.4g}" if isinstance(value, (int, float)) else f"{value!s:>12}"
        lines.append(f"  {key:<44}{text}")
    return "\n".join(lines)


def _format_table(result: QuickstartResult, pipeline: Any, final: dict[str, Any]) -> str:
    spec = pipeline.model
    arch = (
        f"{spec.name} planes {list(spec.planes or [])} blocks {list(spec.blocks or [])}, "
        f"T={pipeline.data.time_steps}, {pipeline.data.size}x{pipeline.data.size} px"
    )
    total = sum(result.stage_seconds.values())
    lines = [
        "eventvision quickstart: synthetic CIFAR10-DVS (10 classes), trained on the CPU",
        f"  model      {arch}",
        f"  data       {result.train_samples} train / {result.test_samples} held-out samples",
        f"  training   {pipeline.train.epochs} epochs, batch {pipeline.train.batch_size}, "
        f"lr {pipeline.train.lr:g}, final train top-1 {final.get('train_acc1', float('nan')):.1f}%",
        "",
        f"  {'stage':<44}{'seconds':>12}",
    ]
    lines += [f"  {name:<44}{sec:>12.1f}" for name, sec in result.stage_seconds.items()]
    lines += [f"  {'total':<44}{total:>12.1f}", ""]
    lines.append(
        format_eval(result.evaluation, title=f"held-out results (chance {result.chance:.0f}%)")
    )
    lines += ["", "  pictures   " + result.files["sample_frames"] + ", " + result.files["curves"]]
    return "\n".join(lines)
