"""Pipelines: frozen dataclasses for data, model and training, loaded from ``pipelines/*.toml``.

A pipeline file has an optional top-level ``description`` and three tables, ``[data]``,
``[model]`` and ``[train]``, whose keys are the fields below. Unknown keys are errors.
Command-line flags override file values as ``section.key`` pairs (see :func:`load_pipeline`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .._toml import read_toml
from ..errors import ConfigError, check_choice

__all__ = [
    "DataSpec",
    "ModelSpec",
    "TrainSpec",
    "Pipeline",
    "list_pipelines",
    "load_pipeline",
    "apply_overrides",
    "pipeline_to_toml",
    "pipeline_from_dict",
    "pipeline_dict",
]

_FORMATS = ("frames", "images")
_NEURONS = ("lif", "plif")
_STEMS = ("imagenet", "small")
_ATTENTIONS = ("dssa", "ssa", "sdsa", "qkta")  # models/attention.py ATTENTIONS (a test checks)
_SCALE_MODES = ("rate", "const", "none", "inv_sqrt", "learnable")  # and SCALE_MODES


@dataclass(frozen=True)
class DataSpec:
    """Where the samples come from and how they are presented to the model.

    ``format = "frames"`` reads an HDF5 frame cache (``eventvision preprocess``);
    ``format = "images"`` reads a CIFAR python folder or a class-per-folder image tree and
    presents each image at every one of the ``time_steps`` (repetition encoding).
    """

    format: str = "frames"
    path: str = ""
    dataset: str = "cifar10-dvs"
    time_steps: int = 16
    size: int | tuple[int, int] = 64  # N (square) or [height, width]; "HxW" on the command line
    channels: int = 3
    augment: str = "none"  # "dvs", "none", an event augmentation ("nda") or "rand-m7-n1-..."
    normalize: str = "none"  # "none", "cifar10", "cifar100" or "imagenet"
    crop_scale: tuple[float, ...] = (1.0, 1.0)  # RandomResizedCrop area range; (1, 1) = resize
    crop_ratio: tuple[float, ...] = (3 / 4, 4 / 3)  # RandomResizedCrop aspect range (timm's)
    hflip: float = 0.5
    color_jitter: float = 0.0
    interpolation: str = "bilinear"
    test_crop_pct: float = 1.0
    workers: int = 0
    val_fraction: float = 0.0  # share of each train class held out for validation (train.seed)

    def __post_init__(self) -> None:
        _coerce_fields(self, "data")
        _check_choice("data", "format", self.format, _FORMATS)
        _check_positive("data", "time_steps", self.time_steps)
        _check_choice("data", "channels", self.channels, (2, 3))
        if self.format != "frames" and not isinstance(self.size, int):
            raise ConfigError(f"[data] size {self.size} (HxW) is for frame caches; images take N")
        _check_choice(
            "data", "normalize", self.normalize, ("none", "cifar10", "cifar100", "imagenet")
        )
        _check_choice(
            "data", "interpolation", self.interpolation, ("bilinear", "bicubic", "nearest")
        )
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ConfigError(
                f"[data] crop_scale must be [low, high] in (0, 1], got {self.crop_scale}"
            )
        if len(self.crop_ratio) != 2 or not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ConfigError(
                f"[data] crop_ratio must be [low, high] with 0 < low <= high, got {self.crop_ratio}"
            )
        if not 0 <= self.hflip <= 1:
            raise ConfigError(f"[data] hflip is a probability, got {self.hflip}")
        if not 0 < self.test_crop_pct <= 1:
            raise ConfigError(f"[data] test_crop_pct must be in (0, 1], got {self.test_crop_pct}")
        if self.workers < 0:
            raise ConfigError(f"[data] workers must be >= 0, got {self.workers}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"[data] val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class ModelSpec:
    """Which registered SpikingResformer variant to build; unset fields keep the variant's values.

    ``num_classes`` defaults to the dataset's class count; ``img_size``, ``T`` and ``in_channels``
    always come from ``[data]`` (``size``, ``time_steps``, ``channels``).
    """

    name: str = "spikingresformer_cifar"
    num_classes: int | None = None
    planes: tuple[int, ...] | None = None
    num_heads: tuple[int, ...] | None = None
    patch_sizes: tuple[int, ...] | None = None
    blocks: tuple[int, ...] | None = None
    group_size: int | None = None
    neuron: str | None = None
    stem: str | None = None
    cpu_kernels: bool | None = None  # False: oneDNN convolutions, torch BN (docs/models.md)
    attention: str | None = None  # "dssa" (the paper's), "ssa", "sdsa" or "qkta"
    attn_scale: str | None = None  # DSSA: "rate" (the paper's), "const", "none", "inv_sqrt", ...
    attn_scale_const: float | None = None  # the constant of attn_scale = "const" (0.125)
    sdsa_dvs: bool | None = None  # SDSA's 3x3 max-pools (off)
    qkta_head_dim: int | None = None  # QKTA channels per head (8; 0 keeps num_heads)
    pretrained: str = ""  # checkpoint whose backbone initialises the model (fine-tuning)
    freeze_backbone: bool = False

    def __post_init__(self) -> None:
        _coerce_fields(self, "model")
        if self.num_classes is not None:
            _check_positive("model", "num_classes", self.num_classes)
        if self.neuron is not None:
            _check_choice("model", "neuron", self.neuron, _NEURONS)
        if self.stem is not None:
            _check_choice("model", "stem", self.stem, _STEMS)
        if self.attention is not None:
            _check_choice("model", "attention", self.attention, _ATTENTIONS)
        if self.attn_scale is not None:
            _check_choice("model", "attn_scale", self.attn_scale, _SCALE_MODES)

    def overrides(self) -> dict[str, Any]:
        """The architecture keywords that are set, for ``create_model(name, **overrides)``."""
        keys = (
            "planes",
            "num_heads",
            "patch_sizes",
            "blocks",
            "group_size",
            "neuron",
            "stem",
            "cpu_kernels",
            "attention",
            "attn_scale",
            "attn_scale_const",
            "sdsa_dvs",
            "qkta_head_dim",
        )
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


@dataclass(frozen=True)
class TrainSpec:
    """Optimiser, schedule, loss and run settings (the paper's defaults: AdamW, cosine, seed 12450).

    The learning rate during epoch ``e`` is ``warmup_lr + e*(lr - warmup_lr)/warmup_epochs`` while
    ``e < warmup_epochs``, then ``min_lr + (lr - min_lr)*(1 + cos(pi*e/epochs))/2``.
    """

    epochs: int = 300
    batch_size: int = 8  # per process, as in the official configs
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 3
    warmup_lr: float = 1e-5
    min_lr: float = 1e-5
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    tet: bool = False
    clip_grad: float = 0.0  # max gradient norm; 0 turns clipping off
    amp: bool = True  # float16 on CUDA only; bfloat16 on CPU and CUDA (see amp_dtype)
    amp_dtype: str = "float16"  # "float16" (CUDA, with a gradient scaler) or "bfloat16"
    accum_steps: int = 1  # micro-batches per optimiser step (global batch = batch x procs x this)
    ema_decay: float = 0.0  # timm ModelEmaV3 decay of the weights, evaluated each epoch; 0 = off
    warmup_per_iter: bool = False  # raise the warm-up LR every optimiser step, not every epoch
    paper_global_batch: int = 0  # the paper's global batch, for the start-of-run check; 0 = none
    channels_last: bool = True  # CUDA only
    sync_bn: bool = False  # distributed CUDA runs only
    # Several processes: BN/DSSA buffers stay rank-local and are averaged at each epoch's end
    # (false, timm's --dist-bn reduce), or DDP broadcasts rank 0's at every forward and at the
    # epoch's end (true, DDP's broadcast_buffers). One of the two, never both.
    ddp_broadcast_buffers: bool = False
    seed: int = 12450
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N"

    def __post_init__(self) -> None:
        _coerce_fields(self, "train")
        _check_positive("train", "epochs", self.epochs)
        _check_positive("train", "batch_size", self.batch_size)
        _check_positive("train", "lr", self.lr)
        _check_positive("train", "accum_steps", self.accum_steps)
        _check_choice("train", "amp_dtype", self.amp_dtype, ("float16", "bfloat16"))
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"[train] ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.paper_global_batch < 0:
            raise ConfigError(
                f"[train] paper_global_batch must be >= 0, got {self.paper_global_batch}"
            )
        for key in ("weight_decay", "warmup_epochs", "warmup_lr", "min_lr", "clip_grad"):
            if getattr(self, key) < 0:
                raise ConfigError(f"[train] {key} must be >= 0, got {getattr(self, key)}")
        for key in ("mixup_alpha", "cutmix_alpha"):
            if getattr(self, key) < 0:
                raise ConfigError(f"[train] {key} must be >= 0, got {getattr(self, key)}")
        for key in ("label_smoothing", "mixup_prob", "mixup_switch_prob"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"[train] {key} must be in [0, 1], got {getattr(self, key)}")
        if self.mixes and self.batch_size % 2:
            raise ConfigError(
                f"[train] mixup/cutmix pair each sample with the batch's reverse (timm's Mixup) "
                f"and need an even batch_size, got {self.batch_size}"
            )
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(
                f"[train] device must be auto, cpu, cuda or cuda:N, got {self.device!r}"
            )

    @property
    def mixes(self) -> bool:
        """Whether batches are mixed (mixup or cutmix), which makes the targets soft."""
        return self.mixup_prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)


@dataclass(frozen=True)
class Pipeline:
    """A complete recipe: data, model and training, with the name it was loaded under."""

    name: str = "custom"
    description: str = ""
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)


_SECTIONS: dict[str, type] = {"data": DataSpec, "model": ModelSpec, "train": TrainSpec}
_TOP_KEYS = ("description", "data", "model", "train")


def _pipeline_dir() -> Path:
    return Path(str(resources.files("eventvision.pipelines")))


def list_pipelines() -> list[str]:
    """Names of the recipes shipped in ``pipelines/`` (the paper's setups and the quickstart)."""
    return sorted(p.stem for p in _pipeline_dir().glob("*.toml"))


def _resolve(name_or_path: str | Path) -> tuple[str, Path]:
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"pipeline file {text} does not exist")
        return path.stem, path
    names = list_pipelines()
    if text not in names:
        close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ConfigError(f"unknown pipeline {text!r}; {hint}known: {', '.join(names)}")
    return text, _pipeline_dir() / f"{text}.toml"


def load_pipeline(name_or_path: str | Path, overrides: Mapping[str, Any] | None = None) -> Pipeline:
    """Load a recipe by name (``pipelines/<name>.toml``) or path, then apply ``overrides``.

    Args:
        name_or_path: a shipped recipe name such as ``"cifar10dvs-direct"`` or a ``.toml`` path.
        overrides: ``{"section.key": value}`` pairs, e.g. ``{"train.epochs": 1}``; they win over
            the file.

    Example: ``load_pipeline("cifar10dvs-direct", {"train.epochs": 1}).train.epochs == 1``
    """
    name, path = _resolve(name_or_path)
    raw = read_toml(path, "pipeline")
    pipeline = pipeline_from_dict(raw, name=name, source=str(path))
    return apply_overrides(pipeline, overrides or {})


def pipeline_from_dict(raw: Mapping[str, Any], name: str = "custom", source: str = "") -> Pipeline:
    """A :class:`Pipeline` from nested ``{section: {key: value}}`` data, checking every key."""
    where = source or "pipeline"
    for key in raw:
        if key not in _TOP_KEYS and key != "name":
            raise ConfigError(
                f"{where}: unknown key {key!r} at top level; valid: {sorted(_TOP_KEYS)}"
            )
    parts: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        table = raw.get(section, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: [{section}] must be a table, got {table!r}")
        valid = {f.name for f in fields(cls)}
        for key in table:
            if key not in valid:
                raise ConfigError(
                    f"{where}: unknown key {key!r} in [{section}]{_suggest(key, valid)}; "
                    f"valid: {sorted(valid)}"
                )
        try:
            parts[section] = cls(**table)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return Pipeline(
        name=str(raw.get("name", name)),
        description=str(raw.get("description", "")),
        **parts,
    )


def apply_overrides(pipeline: Pipeline, overrides: Mapping[str, Any]) -> Pipeline:
    """Return a copy of ``pipeline`` with ``{"section.key": value}`` overrides applied."""
    by_section: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        cls = _SECTIONS.get(section)
        if cls is None or not key:
            raise ConfigError(
                f"override {dotted!r}: expected section.key with section in {sorted(_SECTIONS)}"
            )
        valid = {f.name for f in fields(cls)}
        if key not in valid:
            raise ConfigError(
                f"override: unknown key {key!r} in [{section}]{_suggest(key, valid)}; "
                f"valid: {sorted(valid)}"
            )
        by_section.setdefault(section, {})[key] = value
    changes = {s: replace(getattr(pipeline, s), **kv) for s, kv in by_section.items()}
    return replace(pipeline, **changes)


def _suggest(key: str, valid: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def pipeline_to_toml(pipeline: Pipeline) -> str:
    """The pipeline as TOML text that :func:`load_pipeline` reads back to an equal pipeline."""
    lines = [f"name = {_toml_value(pipeline.name)}"]
    lines.append(f"description = {_toml_value(pipeline.description)}")
    for section in _SECTIONS:
        lines.append(f"\n[{section}]")
        for key, value in asdict(getattr(pipeline, section)).items():
            if value is not None:  # TOML has no null: unset keys are left out
                lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


# --- field validation -------------------------------------------------------------------------


def _coerce_fields(spec: Any, section: str) -> None:
    """Check each field against its annotation; ints become floats and lists tuples where due."""
    for f in fields(spec):
        value = getattr(spec, f.name)
        ann = str(f.type).replace(" ", "")
        optional = ann.endswith("|None")
        base = ann.removesuffix("|None")
        if value is None:
            if optional:
                continue
            raise ConfigError(f"[{section}] {f.name} must be set")
        object.__setattr__(spec, f.name, _coerce(section, f.name, base, value))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# scalar annotation -> (accepts the value, what was expected, conversion)
_SCALARS: dict[str, tuple[Callable[[Any], bool], str, Callable[[Any], Any]]] = {
    "bool": (lambda v: isinstance(v, bool), "true or false", lambda v: v),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer", lambda v: v),
    "float": (_is_number, "a number", float),
    "str": (lambda v: isinstance(v, str), "a string", lambda v: v),
}


def _coerce(section: str, key: str, ann: str, value: Any) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"[{section}] {key} must be {expected}, got {value!r}")

    if ann in _SCALARS:
        accepts, expected, convert = _SCALARS[ann]
        if not accepts(value):
            raise bad(expected)
        return convert(value)
    if ann == "int|tuple[int,int]":  # a frame size: N, "HxW" or [H, W]
        from ..cache.options import parse_size

        try:
            return parse_size(value)
        except ConfigError:
            raise bad("N or HxW (e.g. 64 or 48x64)") from None
    if ann.startswith("tuple["):
        item = ann[len("tuple[") :].split(",")[0]
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise bad(f"a list of {item}s")
        return tuple(_coerce(section, key, item, v) for v in value)
    raise AssertionError(f"unhandled annotation {ann}")  # pragma: no cover


def _check_choice(section: str, key: str, value: Any, choices: tuple) -> None:
    check_choice(f"[{section}] {key}", value, choices)


def _check_positive(section: str, key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"[{section}] {key} must be > 0, got {value!r}")


def pipeline_dict(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline as plain nested dicts (tuples become lists), e.g. for JSON or checkpoints."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(asdict(pipeline))
