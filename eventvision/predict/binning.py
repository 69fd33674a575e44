"""How a run's cache turned events into frames, recovered from the run's records."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cache.options import parse_size, size_hw
from ..data.event_frames import EventsToFrames
from ..datasets.registry import get_source
from ..errors import CacheError, ConfigError
from ..events import Sensor
from ..train.runs import DATA_FILE

__all__ = ["Binning", "run_binning", "read_binning"]


@dataclass(frozen=True)
class Binning:
    """Everything that turns a window's events into the model's input, as the run's cache did.

    Args:
        dataset: the cache's source (its orientation fix, if any, is applied to every file).
        sensor: the sensor the cache binned on.
        classes: class names, in label order.
        time_steps, size, split_by: the cache's binning (``bin_events`` then ``resize_frames``).
        channels: 3 adds OFF+ON after OFF and ON, as `FrameDataset`.
        whole_files: the run's samples were whole files (so a whole file is the default window).
    """

    dataset: str
    sensor: Sensor
    classes: tuple[str, ...]
    time_steps: int
    size: int | tuple[int, int]
    split_by: str = "number"
    channels: int = 3
    whole_files: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "sensor", Sensor(*self.sensor))
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "size", parse_size(self.size))
        if not self.classes:
            raise ConfigError("binning: no class names")
        get_source(self.dataset)  # an unknown dataset is refused here, not at the first file

    @property
    def size_hw(self) -> tuple[int, int]:
        """``(h, w)`` of the model's input frames."""
        return size_hw(self.size)

    def input_shape(self) -> tuple[int, int, int, int]:
        """``(T, C, h, w)`` of one window's frames."""
        return (self.time_steps, self.channels, *self.size_hw)

    def to_frames(self, sensor: Sensor | None = None) -> EventsToFrames:
        """The binning of `EventDataset` (bit for bit the frame cache's), on ``sensor``."""
        sensor = self.sensor if sensor is None else sensor
        return EventsToFrames(self.time_steps, self.size, self.split_by, self.channels, sensor)

    def orient(self, events: np.ndarray) -> np.ndarray:
        """The events in the orientation the cache used (the source's fix, e.g. CIFAR10-DVS)."""
        fix = get_source(self.dataset).orient_events
        return events if fix is None else fix(events)

    def to_dict(self) -> dict[str, Any]:
        """As JSON-able data (the export sidecar's ``binning``)."""
        out = asdict(self)
        out["sensor"] = list(self.sensor)
        out["classes"] = list(self.classes)
        out["size"] = list(self.size_hw)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "binning") -> Binning:
        """The binning back from :meth:`to_dict` (ConfigError naming ``where`` when bad)."""
        fields = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - fields)
        missing = sorted(
            k for k in ("dataset", "sensor", "classes", "time_steps", "size") if k not in data
        )
        if unknown or missing:
            raise ConfigError(
                f"{where}: binning options unknown {unknown}, missing {missing}; "
                f"valid: {sorted(fields)}"
            )
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{where}: bad binning options: {e}") from None


def read_binning(path: str | os.PathLike) -> Binning:
    """The binning in a JSON file: an export sidecar (its ``binning``) or the options alone."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read binning options: {e}") from None
    if isinstance(data, dict) and isinstance(data.get("binning"), dict):
        data = data["binning"]
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of binning options")
    return Binning.from_dict(data, str(path))


def run_binning(run_dir: str | os.PathLike, time_steps: int, size: Any, channels: int) -> Binning:
    """The binning of the run in ``run_dir``: its ``data.json`` and the cache it names.

    ``time_steps``, ``size`` and ``channels`` are the run's pipeline's; an event cache bins
    in the loader with them (split by number), a frame cache must have been built with them.

    Raises:
        ConfigError: no ``data.json``, or it records no options and its cache is not at hand.
        CacheMismatchError: the cache at the recorded path is another build than the run's.
    """
    run_dir = Path(run_dir)
    record = run_dir / DATA_FILE
    if not record.is_file():
        raise ConfigError(
            f"{run_dir}: no {DATA_FILE} (how the run's data was binned) and no binning options "
            "given; pass --binning FILE.json (e.g. the sidecar `eventvision export` writes)"
        )
    identity = json.loads(record.read_text(encoding="utf-8"))
    options, classes = identity.get("options"), identity.get("classes")
    whole = identity.get("whole_files")
    if options is None or classes is None or whole is None:
        cache = Path(identity.get("path") or "")
        options, classes, whole = _cache_options(run_dir, cache, identity.get("options_hash"))
    if options.get("store") == "events":  # the loader bins with the pipeline's T and size
        options = {**options, "time_steps": time_steps, "size": size, "split_by": "number"}
    elif (options["time_steps"], size_hw(parse_size(options["size"]))) != (
        time_steps,
        size_hw(parse_size(size)),
    ):
        raise CacheError(
            f"{run_dir}: the cache holds T={options['time_steps']} at size {options['size']}, "
            f"the run's model expects T={time_steps} at size {size}"
        )
    return Binning(
        dataset=options["dataset"],
        sensor=Sensor(*options["sensor"]),
        classes=tuple(classes),
        time_steps=int(options["time_steps"]),
        size=options["size"],
        split_by=options.get("split_by", "number"),
        channels=channels,
        whole_files=bool(whole),
    )


def _cache_options(run_dir: Path, cache: Path, options_hash: str | None) -> tuple:
    """``(options, classes, whole files)`` from the cache a run's ``data.json`` names."""
    from ..cache.reader import read_header, whole_files

    if not cache.is_file():
        raise ConfigError(
            f"{run_dir}: {DATA_FILE} names the cache {cache}, which is not there, and records "
            "no binning options; pass --binning FILE.json"
        )
    header = read_header(cache)
    if options_hash is not None and header["options_hash"] != options_hash:
        from ..errors import CacheMismatchError

        raise CacheMismatchError(
            f"{cache}: options hash {header['options_hash']} differs from the run's "
            f"{options_hash} ({run_dir / DATA_FILE}); pass --binning FILE.json"
        )
    return header["options"], header["classes"], whole_files(cache)
