"""Sweeps: a grid of ordinary runs as an Optuna study, shared by any number of workers.

A spec is a TOML file (docs/training.md, "Sweeps")::

    pipeline = "quickstart"               # as --pipeline
    data = "cache.h5"                     # as --data (relative to the spec's folder)
    epochs = 2                            # any train flag, by its long name
    [grid]
    "model.cpu_kernels" = [true, false]   # any --set key
    seed = [0, 1]

Each grid point is a run folder ``DIR/<key>=<value>,...`` that ``runs``, ``plot``, ``evaluate``
and ``train --resume`` read as any other. The grid is an Optuna study with a ``GridSampler``;
its storage is Optuna's journal file ``DIR/optuna.journal`` or any URL Optuna takes. Trial
``k < N`` of the study is grid point ``k`` (the sampler's rule), so each point is handed out
once. A worker holds ``DIR/.locks/<point>.lock`` (``flock``) while it runs a point: the kernel
releases it when the worker dies, and the next worker, or a restart, finds the point's trial
still RUNNING with its lock free and continues the run folder with the run's own exact resume.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .._toml import read_toml
from ..errors import ConfigError, EventVisionError
from ..files import hold_lock
from .config import _SECTIONS, Pipeline, load_pipeline

__all__ = [
    "SPEC_FILE",
    "JOURNAL_FILE",
    "SweepSpec",
    "load_spec",
    "point_name",
    "run_sweep",
    "threads_per_job",
]

logger = logging.getLogger(__name__)

SPEC_FILE = "sweep.json"  # the spec a sweep folder holds; another spec is refused
JOURNAL_FILE = "optuna.journal"
LOCK_DIR = ".locks"
SEED_KEYS = ("train.seed",)  # grid keys that repeat a configuration (mean ± std over them)
# Flags whose long name is not the pipeline field's name (as `eventvision train` takes them).
_FLAG_ALIASES = {
    "data": "data.path",
    "model": "model.name",
    "ddp_bb": "train.ddp_broadcast_buffers",
}


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec: the recipe, its fixed overrides and the grid, by pipeline key.

    Args:
        pipeline: recipe name or absolute ``.toml`` path.
        settings: ``{"section.key": value}`` applied to every point (``data.path`` absolute).
        grid: ``{"section.key": [values]}``, in the spec's order.
    """

    source: Path
    pipeline: str
    settings: dict[str, Any]
    grid: dict[str, list[Any]]

    def points(self) -> list[dict[str, Any]]:
        """Every grid point as ``{"section.key": value}``, the last key varying fastest."""
        keys = list(self.grid)
        return [
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*self.grid.values())
        ]

    def identity(self) -> dict[str, Any]:
        """What makes two specs the same sweep (recorded in ``DIR/sweep.json``)."""
        return {"pipeline": self.pipeline, "settings": self.settings, "grid": self.grid}

    def pipeline_for(self, point: dict[str, Any]) -> Pipeline:
        """The resolved recipe of one grid point."""
        return load_pipeline(self.pipeline, {**self.settings, **point})


def _pipeline_key(name: str, where: str) -> str:
    """A spec key as a pipeline key: ``section.key``, or a train flag's long name (``lr``)."""
    if "." in name:
        section, _, key = name.partition(".")
        cls = _SECTIONS.get(section)
        if cls is not None and key in {f.name for f in fields(cls)}:
            return name
        raise ConfigError(f"{where}: unknown key {name!r}: no such pipeline key")
    flag = name.replace("-", "_")
    if flag in _FLAG_ALIASES:
        return _FLAG_ALIASES[flag]
    found = [f"{s}.{flag}" for s, cls in _SECTIONS.items() if flag in {f.name for f in fields(cls)}]
    if len(found) != 1:
        raise ConfigError(
            f"{where}: unknown key {name!r}; give a train flag by its long name (epochs, lr, "
            "seed, val-fraction, ...) or a pipeline key section.key"
        )
    return found[0]


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and check a sweep spec; every grid point must make a valid pipeline.

    Raises:
        ConfigError: one line naming the file and the key: an unknown key or value, a grid
            key without values (zero points), or a point the recipe refuses.
    """
    path = Path(path)
    raw = _flatten(read_toml(path, "sweep spec"))
    grid_raw = raw.pop("grid", None)
    if not isinstance(grid_raw, dict) or not grid_raw:
        raise ConfigError(f"{path}: needs a [grid] table with at least one key")
    pipeline = raw.pop("pipeline", None)
    if not isinstance(pipeline, str) or not pipeline:
        raise ConfigError(f"{path}: key 'pipeline' (a recipe name or .toml path) is required")
    if (path.parent / pipeline).is_file():
        pipeline = str((path.parent / pipeline).resolve())
    settings: dict[str, Any] = {}
    for name, value in raw.items():
        settings[_pipeline_key(name, str(path))] = value
    grid = _parse_grid(path, grid_raw)
    if "data.path" in settings:
        settings["data.path"] = str((path.parent / str(settings["data.path"])).resolve())
    spec = SweepSpec(path.resolve(), pipeline, settings, grid)
    _check_points(path, spec)
    return spec


def _flatten(raw: dict[str, Any]) -> dict[str, Any]:
    """Unquoted dotted keys (``model.stem = ...``) back to ``"model.stem"``; ``[grid]`` too."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict) and key != "grid":
            out.update({f"{key}.{k}": v for k, v in _flatten(value).items()})
        elif isinstance(value, dict):
            out[key] = _flatten(value)
        else:
            out[key] = value
    return out


def _parse_grid(path: Path, grid_raw: dict[str, Any]) -> dict[str, list[Any]]:
    """The ``[grid]`` table by pipeline key; refuse a key without values (zero points)."""
    grid: dict[str, list[Any]] = {}
    for name, values in grid_raw.items():
        key = _pipeline_key(name, f"{path}: [grid]")
        if not isinstance(values, list):
            raise ConfigError(f"{path}: [grid] {name!r} must be a list of values, got {values!r}")
        if not values:
            raise ConfigError(f"{path}: [grid] {name!r} has no values: the grid has zero points")
        if len(set(map(repr, values))) != len(values):
            raise ConfigError(f"{path}: [grid] {name!r} repeats a value: {values!r}")
        grid[key] = values
    return grid


def _check_points(path: Path, spec: SweepSpec) -> None:
    """Every grid value makes a valid pipeline, and every point its own folder name."""
    try:
        spec.pipeline_for({})
    except EventVisionError as e:
        raise ConfigError(f"{path}: {e}") from None
    for key, values in spec.grid.items():
        for value in values:
            try:
                spec.pipeline_for({key: value})
            except EventVisionError as e:
                raise ConfigError(f"{path}: [grid] {key!r} value {value!r}: {e}") from None
    names: dict[str, dict[str, Any]] = {}
    for point in spec.points():
        name = point_name(point)
        if name in names:
            raise ConfigError(f"{path}: points {names[name]} and {point} share folder {name!r}")
        names[name] = point


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "x".join(_value_text(v) for v in value)
    return re.sub(r"[^A-Za-z0-9._+-]", "-", str(value))


def point_name(point: dict[str, Any]) -> str:
    """A grid point's run folder name, e.g. ``model.cpu_kernels=true,train.seed=0``."""
    return ",".join(f"{key}={_value_text(value)}" for key, value in point.items())


def threads_per_job(jobs: int) -> int:
    """Torch threads for each of ``jobs`` points at once: this machine's cores shared out."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, jobs))


# --- the study --------------------------------------------------------------------------------


def _check_folder(out: Path, spec: SweepSpec) -> None:
    """Record the spec in ``DIR/sweep.json``, or refuse a folder that holds another sweep."""
    out.mkdir(parents=True, exist_ok=True)
    mine = json.loads(json.dumps(spec.identity()))  # tuples as lists, as read back
    path = out / SPEC_FILE
    if path.is_file():
        theirs = json.loads(path.read_text(encoding="utf-8"))
        if theirs != mine:
            raise ConfigError(
                f"{out}: holds another sweep ({_difference(theirs, mine)}); choose another --out"
            )
        return
    # a temporary per process (not write_atomic's one name): workers on several machines may
    # record the same spec at once
    tmp = out / f".{SPEC_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(mine, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _difference(theirs: dict[str, Any], mine: dict[str, Any]) -> str:
    """The first difference between two spec identities, as ``key A there, B here``."""
    if theirs.get("pipeline") != mine["pipeline"]:
        return f"pipeline {theirs.get('pipeline')!r} there, {mine['pipeline']!r} here"
    for part in ("grid", "settings"):
        a, b = theirs.get(part, {}), mine[part]
        for key in [*a, *(k for k in b if k not in a)]:
            if a.get(key) != b.get(key):
                label = f"[grid] {key}" if part == "grid" else key
                return f"{label} {a.get(key, 'unset')!r} there, {b.get(key, 'unset')!r} here"
        if list(a) != list(b):
            return f"[grid] keys in order {list(a)} there, {list(b)} here"
    return "a different spec"


def _storage(out: Path, url: str | None) -> Any:
    """Optuna storage: the journal file ``DIR/optuna.journal`` by default, else ``url``."""
    import optuna

    if url:
        return url
    journal = optuna.storages.journal
    backend = getattr(journal, "JournalFileBackend", None)
    if backend is None:  # optuna < 4.0
        backend = optuna.storages.JournalFileStorage
    return optuna.storages.JournalStorage(backend(str(out / JOURNAL_FILE)))


def _grid_sampler(space: dict[str, list[int]]) -> Any:
    """Optuna's GridSampler, without its ``study.stop()`` after the last point.

    That call is only allowed inside ``study.optimize``; the workers here ask and tell
    themselves and stop when no point is left to them.
    """
    import optuna

    class _GridSampler(optuna.samplers.GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return _GridSampler(space, seed=0)


def _study(spec: SweepSpec, out: Path, storage: str | None) -> Any:
    try:
        import optuna
    except ImportError:
        raise ConfigError("sweeps need Optuna: pip install 'eventvision[sweep]'") from None

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    digest = hashlib.sha256(json.dumps(spec.identity(), sort_keys=True).encode()).hexdigest()
    space = {key: list(range(len(values))) for key, values in spec.grid.items()}
    return optuna.create_study(
        study_name=f"eventvision-sweep-{out.name}-{digest[:8]}",
        storage=_storage(out, storage),
        sampler=_grid_sampler(space),
        direction="maximize",
        load_if_exists=True,
    )


def _trial_point(spec: SweepSpec, study: Any, trial: Any) -> dict[str, Any]:
    """The grid point of a trial: from its parameters, or from its grid id when it died first."""
    params = dict(trial.params)
    if set(params) != set(spec.grid):
        sampler = study.sampler  # the trial's worker died between ask() and its suggestions
        grid = sampler._all_grids[trial.system_attrs["grid_id"]]
        params = dict(zip(sampler._param_names, grid, strict=True))
    return {key: spec.grid[key][int(params[key])] for key in spec.grid}


class _PointTaken(EventVisionError):
    """Another worker holds the point's lock."""


@contextmanager
def _point_lock(out: Path, name: str) -> Iterator[bool]:
    """Hold ``DIR/.locks/<name>.lock`` (``files.hold_lock``) if free: True when held, False
    when another worker holds it."""
    folder = out / LOCK_DIR
    folder.mkdir(exist_ok=True)
    try:
        with hold_lock(folder / f"{name}.lock", _PointTaken):
            yield True
    except _PointTaken:
        yield False


def _run_point(spec: SweepSpec, point: dict[str, Any], run_dir: Path) -> None:
    """Run one point into ``run_dir``: start it, resume it exactly, or leave it when done."""
    from .rundir import CONFIG_FILE, LAST_CKPT, read_metrics
    from .trainer import train

    pipeline = spec.pipeline_for(point)
    if (run_dir / CONFIG_FILE).is_file() and (run_dir / LAST_CKPT).is_file():
        done = len(read_metrics(run_dir))
        if done < pipeline.train.epochs:
            logger.info("resuming %s after epoch %d", run_dir, done)
            train(pipeline, run_dir, resume=True)
        return
    # new, or killed before its first epoch ended: nothing to keep
    logger.info("starting %s", run_dir)
    train(pipeline, run_dir, overwrite=(run_dir / CONFIG_FILE).is_file())


def _objective(rows: list[dict[str, Any]]) -> float:
    """The value a point reports to Optuna: its best validation top-1, else its best test top-1
    (what ``best.pt`` was selected on)."""
    key = "val_acc1" if any("val_acc1" in r for r in rows) else "test_acc1"
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return max(values, default=0.0)


def _is_running(study: Any, number: int) -> bool:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False)[number].state == TrialState.RUNNING


def _claim(
    spec: SweepSpec, study: Any, out: Path, tried: set[int], poll_s: float
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Points for this worker, each yielded while its lock is held.

    First a RUNNING trial whose lock is free (its worker died), then a new trial from the
    sampler; when every point is handed out and some still run elsewhere, wait for them (their
    worker may die). Points that failed in this worker (``tried``) are left for a restart.
    """
    from optuna.trial import TrialState

    n = len(spec.points())
    while True:
        waiting, claimed = False, False
        for t in study.get_trials(deepcopy=False)[:n]:  # trial k < n is grid point k
            if t.state != TrialState.RUNNING or t.number in tried:
                continue
            point = _trial_point(spec, study, t)
            with _point_lock(out, point_name(point)) as held:
                waiting = waiting or not held
                if held and _is_running(study, t.number):
                    tried.add(t.number)
                    claimed = True
                    yield t.number, point
            if claimed:
                break
        if claimed:
            continue
        if len(study.get_trials(deepcopy=False)) < n:
            trial = study.ask()
            if trial.number >= n:  # another worker took the last point at the same moment
                study.tell(trial, state=TrialState.FAIL)
                continue
            for key in spec.grid:
                trial.suggest_categorical(key, list(range(len(spec.grid[key]))))
            point = _trial_point(spec, study, study.get_trials(deepcopy=False)[trial.number])
            with _point_lock(out, point_name(point)) as held:
                if held and _is_running(study, trial.number):
                    tried.add(trial.number)
                    yield trial.number, point
            continue
        if not waiting:
            return
        time.sleep(poll_s)


def _sweep_worker(
    spec_path: str, out: str, storage: str | None, threads: int, poll_s: float
) -> tuple[int, int]:
    """Run grid points until none is left; ``(points run, points that failed)``.

    ``threads`` > 0 sets torch's intra-op threads. Any number of workers, on any machines that
    see ``out``, may run at once: each point runs once, and a dead worker's point is resumed by
    a worker that is still waiting (every ``poll_s`` seconds) or by a restart. A point whose
    run raises an eventvision error is logged, counted and left for a restart.
    """
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    spec = load_spec(spec_path)
    out = Path(out).resolve()
    _check_folder(out, spec)
    study = _study(spec, out, storage)
    from .rundir import read_metrics

    ran = failed = 0
    for number, point in _claim(spec, study, out, set(), poll_s):
        run_dir = out / point_name(point)
        try:
            _run_point(spec, point, run_dir)
        except EventVisionError as e:
            logger.error("%s: %s", run_dir, e)
            failed += 1
            continue
        study.tell(number, _objective(read_metrics(run_dir)))
        ran += 1
    return ran, failed


def run_sweep(
    spec_path: str | os.PathLike,
    out: str | os.PathLike,
    storage: str | None = None,
    jobs: int = 1,
    poll_s: float = 10.0,
) -> tuple[int, int]:
    """Run the sweep with ``jobs`` worker processes here; ``(points run, points failed)``.

    Each process gets ``threads_per_job(jobs)`` torch threads (the cores shared out); with one
    job the worker runs in this process with torch's default threads.
    """
    _check_folder(Path(out).resolve(), load_spec(spec_path))  # a bad spec fails here, once
    args = (str(spec_path), str(out), storage, threads_per_job(jobs) if jobs > 1 else 0, poll_s)
    if jobs <= 1:
        return _sweep_worker(*args)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(jobs) as pool:
        counts = pool.starmap(_sweep_worker, [args] * jobs)
    return sum(c[0] for c in counts), sum(c[1] for c in counts)
