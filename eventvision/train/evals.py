"""Saved evaluations: ``RUN/eval-<cache-id>.json`` beside the checkpoint (docs/training.md).

The cache id is ``<data file stem>-<split>-<hash>``, the hash being 8 hex digits over the
absolute data path, the split, T, the input size and the checkpoint file: evaluating the same
checkpoint on the same data the same way replaces its record, anything else adds one.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import __version__
from ..files import write_atomic
from .logs import dumps_strict

__all__ = ["cache_id", "eval_record", "save_eval", "read_evals"]


def cache_id(data: str, split: str, time_steps: int, size: int, checkpoint: Path) -> str:
    """The id an evaluation is saved under, e.g. ``tiny-test-1a2b3c4d``."""
    key = json.dumps(
        [str(Path(data).resolve()), split, time_steps, size, Path(checkpoint).name]
    ).encode()
    stem = Path(data.rstrip("/\\")).stem or "data"
    return f"{stem}-{split}-{hashlib.sha256(key).hexdigest()[:8]}"


def eval_record(result: Any, checkpoint: Path, pipeline: Any, split: str) -> dict[str, Any]:
    """The JSON record of an evaluation: metrics, firing and DSSA rates, SOPs/energy, options."""
    metrics = asdict(result)
    metrics.pop("path", None)
    return {
        "checkpoint": str(Path(checkpoint).resolve()),
        "data": str(Path(pipeline.data.path).resolve()),
        "split": split,
        "options": {
            "time_steps": pipeline.data.time_steps,
            "size": pipeline.data.size,
            "batch_size": pipeline.train.batch_size,
            "model": pipeline.model.name,
            "pipeline": pipeline.name,
        },
        **metrics,
        "evaluated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "eventvision_version": __version__,
    }


def save_eval(record: dict[str, Any], checkpoint: Path) -> Path:
    """Write ``record`` atomically as ``eval-<cache-id>.json`` in the checkpoint's folder."""
    opts = record["options"]
    name = cache_id(record["data"], record["split"], opts["time_steps"], opts["size"], checkpoint)
    out = Path(checkpoint).parent / f"eval-{name}.json"
    return write_atomic(out, dumps_strict(record) + "\n")


def read_evals(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The saved evaluation records of a run folder, oldest first."""
    paths = sorted(Path(run_dir).glob("eval-*.json"), key=lambda p: p.stat().st_mtime)
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]
