"""The exception hierarchy: every error eventvision raises on bad input."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "EventVisionError",
    "FormatError",
    "DatasetError",
    "ConfigError",
    "CacheError",
    "CacheMismatchError",
    "CacheBusyError",
    "RunBusyError",
    "PathError",
    "UnknownModelError",
    "CheckpointError",
    "NonFiniteError",
    "check_choice",
]


class EventVisionError(Exception):
    """Base class of every error eventvision raises on bad input or bad options."""


class FormatError(EventVisionError, ValueError):
    """A raw file does not follow its format; the message names the file and the byte offset."""


class DatasetError(EventVisionError, ValueError):
    """A dataset folder is missing, empty or laid out in a way we do not know."""


class ConfigError(EventVisionError, ValueError):
    """A pipeline, option or model configuration is invalid."""


class CacheError(EventVisionError, ValueError):
    """A frame cache is missing, incomplete or unreadable."""


class CacheMismatchError(CacheError):
    """A cache exists but was built with other options or from other sources."""


class CacheBusyError(CacheError):
    """Another process is writing the same output (it holds the output's lock)."""


class RunBusyError(EventVisionError):
    """Another process is writing the same run folder (it holds the folder's lock)."""


class PathError(EventVisionError, OSError):
    """A path given as input is missing, a folder where a file is expected, or unreadable."""


class UnknownModelError(ConfigError, KeyError):
    """A model name is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(EventVisionError, ValueError):
    """A checkpoint is truncated, unreadable or made for another architecture."""


class NonFiniteError(EventVisionError, ArithmeticError):
    """Training produced a NaN or infinite loss or gradient norm."""


def check_choice(name: str, value: object, choices: Iterable[object]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``, naming both.

    Example: ``split must be one of ['train', 'test'], got 'val'``.
    """
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}, got {value!r}")
