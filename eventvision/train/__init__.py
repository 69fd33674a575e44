"""Training: pipelines (recipes), the trainer, checkpoints, distributed runs, plots, quickstart.

Example:
    >>> from eventvision.train import load_pipeline, train  # doctest: +SKIP
    >>> result = train(load_pipeline("cifar10dvs-direct", {"data.path": "cache.h5"}), "runs/c10")
"""

from __future__ import annotations

from .checkpoint import load_checkpoint as load_checkpoint
from .checkpoint import save_checkpoint as save_checkpoint
from .config import DataSpec as DataSpec
from .config import ModelSpec as ModelSpec
from .config import Pipeline as Pipeline
from .config import TrainSpec as TrainSpec
from .config import apply_overrides as apply_overrides
from .config import list_pipelines as list_pipelines
from .config import load_pipeline as load_pipeline
from .config import pipeline_to_toml as pipeline_to_toml
from .plot import plot_curves as plot_curves
from .quickstart import QuickstartResult as QuickstartResult
from .quickstart import quickstart as quickstart
from .trainer import EvalResult as EvalResult
from .trainer import RunResult as RunResult
from .trainer import build_model as build_model
from .trainer import evaluate as evaluate
from .trainer import finetune as finetune
from .trainer import load_run_pipeline as load_run_pipeline
from .trainer import lr_at_epoch as lr_at_epoch
from .trainer import param_groups as param_groups
from .trainer import read_metrics as read_metrics
from .trainer import train as train

__all__ = [
    "DataSpec",
    "EvalResult",
    "ModelSpec",
    "Pipeline",
    "QuickstartResult",
    "RunResult",
    "TrainSpec",
    "apply_overrides",
    "build_model",
    "evaluate",
    "finetune",
    "list_pipelines",
    "load_checkpoint",
    "load_pipeline",
    "load_run_pipeline",
    "lr_at_epoch",
    "param_groups",
    "pipeline_to_toml",
    "plot_curves",
    "quickstart",
    "read_metrics",
    "save_checkpoint",
    "train",
]
