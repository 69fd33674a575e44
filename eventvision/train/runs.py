"""Run folders that travel and refuse: absolute data paths, data identity, resume changes.

A run stores its data path resolved (absolute) in ``pipeline.toml`` and the data's identity
(cache options hash and build id) in ``data.json``, so ``evaluate RUN`` and ``train --resume
RUN`` work from any folder; a resume may move the data (same options only), raise the epoch
count, and change workers or device (docs/training.md, "Runs").
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import CacheMismatchError, ConfigError
from ..files import write_atomic
from .config import Pipeline
from .logs import LOG_FILE, SUMMARY_FILE, TENSORBOARD_DIR

__all__ = [
    "DATA_FILE",
    "absolute_data_path",
    "data_identity",
    "check_same_data",
    "write_data_identity",
    "resume_changes",
    "remove_stale_temporaries",
    "clear_run",
]

logger = logging.getLogger(__name__)

DATA_FILE = "data.json"
# What a resume may change: where the data lives, how long the run is, how it executes.
RESUME_CHANGES = {"data": "data.path", "epochs": "train.epochs", "workers": "data.workers"}
RESUME_CHANGES["device"] = "train.device"


def absolute_data_path(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` with its data path resolved to an absolute path (empty stays empty)."""
    path = pipeline.data.path
    if not path or Path(path).is_absolute():
        return pipeline
    return replace(pipeline, data=replace(pipeline.data, path=str(Path(path).resolve())))


def data_identity(pipeline: Pipeline) -> dict[str, Any]:
    """The data's path and, for a frame cache, its options hash, build id, planned samples,
    classes and a digest of its source manifest (None where absent)."""
    spec = pipeline.data
    identity: dict[str, Any] = {"path": spec.path, "format": spec.format}
    if spec.format == "frames" and Path(spec.path).is_file():
        from ..cache.reader import read_header, whole_files

        header = read_header(spec.path)
        for key in ("options_hash", "build_id"):
            identity[key] = None if header.get(key) is None else str(header[key])
        identity["samples"] = header.get("n_planned")
        identity["classes"] = header.get("classes")
        manifest = json.dumps(header.get("manifest"), sort_keys=True).encode()
        identity["sources"] = hashlib.sha256(manifest).hexdigest()[:16]
        if "options" in header:  # how the samples were binned: what `predict` bins windows by
            identity["options"] = header["options"]
            identity["whole_files"] = whole_files(spec.path)
    return identity


# What tells two builds apart, with the words for it.
_BUILD_KEYS = {"sources": "its source files", "samples": "its sample count", "classes": "classes"}


def _other_build(saved: dict[str, Any], identity: dict[str, Any]) -> str | None:
    """How the data differs from the run's build, or None when it is that build."""
    old, new = saved.get("build_id"), identity.get("build_id")
    if old is None or new is None or old == new:
        return None
    differ = [
        f"{words} ({saved[key]!r} there, {identity[key]!r} here)" if key != "sources" else words
        for key, words in _BUILD_KEYS.items()
        if key in saved and key in identity and saved[key] != identity[key]
    ]
    what = "; ".join(differ) if differ else "same sources and samples, built again"
    return f"build {new!r} here, {old!r} in the run: {what}"


def check_same_data(
    run_dir: Path, identity: dict[str, Any], allow_other_data: bool = False
) -> None:
    """Refuse to resume on data whose cache options or build differ from the run's recorded ones.

    ``allow_other_data`` accepts another build of the same options (logged).
    """
    path = run_dir / DATA_FILE
    if not path.is_file():
        return  # a run from before data.json: nothing recorded to compare
    saved = json.loads(path.read_text(encoding="utf-8"))
    for key in ("format", "options_hash"):
        if saved.get(key) != identity.get(key):
            raise CacheMismatchError(
                f"{identity['path']}: {key} {identity.get(key)!r} differs from the run's "
                f"{saved.get(key)!r} (data {saved.get('path')}); a resume may only move the "
                "same data"
            )
    other = _other_build(saved, identity)
    if other is not None and not allow_other_data:
        raise CacheMismatchError(
            f"{identity['path']}: not the data the run was trained on ({other}; data "
            f"{saved.get('path')}); resume on it anyway with --allow-other-data"
        )
    if other is not None:
        logger.warning("%s: resuming on other data: %s", identity["path"], other)
    old = saved.get("validation") or {"fraction": 0.0}
    new = identity.get("validation") or {"fraction": 0.0}
    for key in ("fraction", "seed", "indices_sha256"):
        if key in old and old.get(key) != new.get(key):
            raise ConfigError(
                f"{run_dir}: validation {key} {new.get(key)!r} differs from the run's "
                f"{old.get(key)!r} ({DATA_FILE}); a resume keeps the run's validation split"
            )
    if saved.get("path") != identity["path"]:
        logger.info("data moved: %s -> %s", saved.get("path"), identity["path"])


def write_data_identity(run_dir: Path, identity: dict[str, Any]) -> None:
    """Write ``data.json`` atomically."""
    write_atomic(run_dir / DATA_FILE, json.dumps(identity, indent=1) + "\n")


def resume_changes(values: dict[str, Any]) -> dict[str, Any]:
    """The pipeline overrides a resume may make (``--data``, ``--epochs``, ``--workers``,
    ``--device``), keyed by pipeline key; any other key raises ConfigError."""
    allowed = set(RESUME_CHANGES.values())
    refused = sorted(k for k in values if k not in allowed)
    if refused:
        raise ConfigError(
            f"a resume takes its configuration from the run folder; it may change only "
            f"--data, --epochs, --workers and --device, not {refused}"
        )
    out = dict(values)
    if out.get("data.path"):
        out["data.path"] = str(Path(out["data.path"]).resolve())
    return out


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporaries a killed write of a run file left (``.NAME.tmp``, ``.NAME.tmp-PID``).

    Only the run files' own temporaries go (never, say, ``evaluate``'s), and only under the run
    folder's lock (``rundir.run_lock``), so never those of a live run. A link is unlinked, never
    followed.
    """
    if not run_dir.is_dir():
        return []
    names = {f".{name}.tmp" for name in RUN_FILES}
    stale = [
        p
        for p in run_dir.iterdir()
        if p.name.partition("-")[0] in names
        and (p.name in names or p.name.partition("-")[2].isdigit())
    ]
    for p in stale:
        if p.is_symlink() or p.is_file():
            p.unlink()
            logger.info("removed %s, left by an interrupted write", p)
    return stale


# The files a run writes; --overwrite removes exactly these, never anything else.
RUN_FILES = (
    "pipeline.toml",
    "metrics.jsonl",
    "last.pt",
    "best.pt",
    DATA_FILE,
    LOG_FILE,
    SUMMARY_FILE,
)
RUN_GLOBS = ("eval-*.json",)  # saved evaluations of the run's checkpoints


def clear_run(run_dir: Path) -> None:
    """Remove a previous run's files from ``run_dir`` (``--overwrite``)."""
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for pattern in RUN_GLOBS:
        for path in run_dir.glob(pattern):
            path.unlink()
    shutil.rmtree(run_dir / TENSORBOARD_DIR, ignore_errors=True)
    remove_stale_temporaries(run_dir)
