"""`preprocess --store events`, then `info` and `show` (binned, before/after an augmentation)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from eventvision.cli.main import main
from PIL import Image

_spec = importlib.util.spec_from_file_location(
    "raw_release", Path(__file__).parents[1] / "cache" / "raw_release.py"
)
raw_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw_release)


def invoke(*args: str, code: int = 0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(scope="module")
def event_cache(tmp_path_factory) -> Path:
    root = raw_release.make_cifar_release(tmp_path_factory.mktemp("ev") / "raw", per_class=2)
    out = root.parent / "events.h5"
    output = invoke("preprocess", "cifar10-dvs", root, out, "--store", "events", "--workers", "2")
    # 500 + 537 events per class
    assert "10 train + 10 test samples" in output and "10,370 events" in output, output
    return out


def test_info_shows_an_event_cache_without_binning_options(event_cache):
    output = invoke("info", event_cache)
    assert "store: events" in output and "time_steps" not in output, output
    assert "events per sample: min 500" in output


def test_show_bins_with_the_given_options(event_cache, tmp_path):
    png = tmp_path / "s.png"
    output = invoke("show", event_cache, "--index", "2", "--time-steps", "5", "--out", png)
    assert "5 frames" in output and png.exists()


def test_show_augment_draws_before_above_after(event_cache, tmp_path):
    plain, both = tmp_path / "plain.png", tmp_path / "both.png"
    invoke("show", event_cache, "--time-steps", "4", "--out", plain)
    seed = next(s for s in range(10) if np.random.default_rng(s).random() < 0.5)  # p=0.5: flips
    output = invoke(
        "show", event_cache, "--time-steps", "4", "--augment", "flip", "--seed", seed, "--out", both
    )
    assert "before and after flip" in output
    top, grid = np.asarray(Image.open(plain)), np.asarray(Image.open(both))
    assert grid.shape[0] > 2 * top.shape[0] - 1 and grid.shape[1] == top.shape[1]
    assert np.array_equal(grid[: top.shape[0]], top)  # the "before" row is the plain sample
    assert not np.array_equal(grid[-top.shape[0] :], top)  # flipped events draw differently


def test_show_refuses_an_unknown_augmentation_and_binning_flags_on_a_frame_cache(
    event_cache, tmp_path
):
    output = invoke("show", event_cache, "--augment", "ndaa", "--out", tmp_path / "x.png", code=1)
    assert "did you mean ['nda']" in output and "Traceback" not in output
    frames = tmp_path / "frames.h5"
    root = event_cache.parent / "raw"
    invoke("preprocess", "cifar10-dvs", root, frames, "--time-steps", "2", "--size", "8")
    output = invoke("show", frames, "--augment", "nda", "--out", tmp_path / "y.png", code=2)
    assert "frame cache" in output and "--augment" in output
