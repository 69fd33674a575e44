"""The model a pipeline asks for, its pretrained backbone and its class count."""

from __future__ import annotations

import logging

from torch import nn

from ..errors import ConfigError
from .config import Pipeline

logger = logging.getLogger(__name__)
_RUN_LOG = logging.getLogger("eventvision.train.logs")  # shown by the CLI unless -q


def build_model(pipeline: Pipeline, num_classes: int | None = None) -> nn.Module:
    """The pipeline's registered model with the data's size, time steps and channels."""
    from ..models import create_model

    classes = pipeline.model.num_classes or num_classes
    if classes is None:
        raise ConfigError("[model] num_classes is not set and the data does not tell it")
    return create_model(
        pipeline.model.name,
        num_classes=classes,
        img_size=pipeline.data.size,
        time_steps=pipeline.data.time_steps,
        in_channels=pipeline.data.channels,
        **pipeline.model.overrides(),
    )


def load_trained(pipeline: Pipeline, num_classes: int, ckpt: dict, source: str) -> nn.Module:
    """The pipeline's model with a checkpoint's weights, checked to fit first (CheckpointError
    naming ``source`` otherwise)."""
    from ..models.weights import check_state_dict

    model = build_model(pipeline, num_classes)
    check_state_dict(model, ckpt["model"], source)
    model.load_state_dict(ckpt["model"])
    return model


def _load_backbone(model: nn.Module, path: str) -> None:
    """Initialise every weight except the classifier from a checkpoint of the same backbone.

    The classifier is excluded by name (the run trains a new head for its classes), every other
    tensor must fit; what was loaded and left out is shown with the run's epoch lines.
    """
    from ..models.weights import load_pretrained

    result = load_pretrained(model, path, exclude=("classifier",), strict=True)
    _RUN_LOG.info("fine-tuning from %s (a fresh classifier for the data's classes)", result)


def _freeze_backbone(model: nn.Module) -> None:
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("classifier"))


def _num_classes(pipeline: Pipeline, classes: list[str]) -> int:
    declared = pipeline.model.num_classes
    if declared is not None and classes and declared != len(classes):
        raise ConfigError(
            f"[model] num_classes = {declared}, but the data {pipeline.data.path} has "
            f"{len(classes)} classes; set --set model.num_classes={len(classes)}"
        )
    return declared or len(classes)
