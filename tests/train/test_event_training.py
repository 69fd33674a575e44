"""Training from an event cache: --augment names an event augmentation, the run records it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from eventvision.cli.main import main
from train.tiny import TINY_MODEL

from eventvision.cache import CacheOptions, write_cache
from eventvision.data import make_event_augmentation
from eventvision.events import make_events
from eventvision.train._data import _TorchDrawn

_spec = importlib.util.spec_from_file_location(
    "raw_release", Path(__file__).parents[1] / "cache" / "raw_release.py"
)
raw_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw_release)

TINY = [
    "--time-steps", "2", "--size", "16", "--batch-size", "4", "--epochs", "1", "--no-progress",
    *(f"--set={key}={value}" for key, value in TINY_MODEL.items()),
    "--set", "model.num_classes=11", "--set", "data.dataset=dvs-gesture",
    "--set", "train.warmup_epochs=0",
]  # fmt: skip


def invoke(*args, code: int = 0) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture(scope="module")
def event_cache(tmp_path_factory) -> Path:
    root = raw_release.make_gesture_release(tmp_path_factory.mktemp("evtrain") / "raw")
    path = root.parent / "events.h5"
    write_cache(CacheOptions("dvs-gesture", store="events"), root, path)
    return path


def test_train_on_an_event_cache_with_nda_records_the_augmentation(event_cache, tmp_path):
    out = tmp_path / "run"
    text = invoke("train", "--data", event_cache, "--out", out, "--augment", "nda", *TINY)
    assert f"run {out}: 1 epochs" in text, text
    recorded = (out / "pipeline.toml").read_text()
    assert 'augment = "nda"' in recorded and 'path = "' in recorded


def test_a_frame_cache_with_an_event_augmentation_is_a_one_line_error(cache, tmp_path):
    text = invoke(
        "train", "--data", cache, "--out", tmp_path / "r", "--augment", "nda", *TINY, code=1
    )
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "event augmentation" in errors[0] and "--store events" in errors[0]
    assert not (tmp_path / "r" / "pipeline.toml").exists()


@pytest.mark.parametrize(
    "name, match", [("ndaa", "did you mean ['nda']"), ("dvs", "frame augmentation")]
)
def test_an_event_cache_refuses_unknown_and_frame_augmentations(event_cache, tmp_path, name, match):
    text = invoke(
        "train", "--data", event_cache, "--out", tmp_path / "r", "--augment", name, *TINY, code=1
    )
    assert match in text, text


def test_the_augmentation_draws_from_torch_so_a_seed_repeats_it():
    events = make_events(
        np.arange(500), np.arange(500) % 128, np.arange(500) % 97, np.arange(500) % 2
    )
    transform = _TorchDrawn(make_event_augmentation("nda"))
    runs = []
    for _ in range(2):
        torch.manual_seed(3)
        runs.append([transform(events) for _ in range(6)])
    for a, b in zip(*runs, strict=True):
        assert np.array_equal(a, b)
    assert any(not np.array_equal(a, runs[0][0]) for a in runs[0][1:])


def test_train_with_nda_and_eventmix_runs_and_records_it(event_cache, tmp_path):
    out = tmp_path / "run"
    args = ("train", "--data", event_cache, "--out", out, "--augment", "nda+eventmix", *TINY)
    text = invoke(*args, "--set", "train.label_smoothing=0.1")
    assert f"run {out}: 1 epochs" in text, text
    assert 'augment = "nda+eventmix"' in (out / "pipeline.toml").read_text()


def test_eventmix_wraps_the_train_split_only_and_evaluation_unmixed(event_cache):
    from eventvision.data import EventDataset
    from eventvision.data.event_mixing import EventMixDataset
    from eventvision.train import load_pipeline
    from eventvision.train._data import build_datasets

    pipeline = load_pipeline("frames-direct", {"data.path": str(event_cache),
                                               "data.augment": "eventmix"})  # fmt: skip
    train, test, _ = build_datasets(pipeline)
    assert isinstance(train, EventMixDataset) and train.dataset.event_transform is None
    assert type(test) is EventDataset
    train, _, _ = build_datasets(pipeline, augment=False)
    assert type(train) is EventDataset


@pytest.mark.parametrize(
    "data, extra, match",
    [
        ("cache", (), "event augmentation"),
        ("event_cache", ("--set", "train.mixup_alpha=0.5"), "turn mixup and cutmix off"),
    ],
)
def test_eventmix_on_a_frame_cache_or_with_mixup_is_a_one_line_error(
    request, tmp_path, data, extra, match
):
    path = request.getfixturevalue(data)
    text = invoke(
        "train", "--data", path, "--out", tmp_path / "r", "--augment", "eventmix", *TINY, *extra,
        code=1,
    )  # fmt: skip
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and match in errors[0], text
    assert not (tmp_path / "r" / "pipeline.toml").exists()
