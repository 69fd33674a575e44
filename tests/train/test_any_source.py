"""`train --data CACHE` without --pipeline, on a cache of every registered source."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tomllib
from click.testing import CliRunner
from eventvision.cli.main import main

from eventvision.datasets import list_sources
from eventvision.datasets.layouts import write_spikingjelly_npz
from eventvision.synth import make_ncaltech101, make_nmnist

_spec = importlib.util.spec_from_file_location(
    "raw_release", Path(__file__).parents[1] / "cache" / "raw_release.py"
)
raw_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw_release)

# The tiny model of tests/train/tiny.py, as flags; no --pipeline: the cache picks the recipe.
TINY = [
    "--epochs", "1", "--time-steps", "2", "--size", "16",
    "--device", "cpu", "--no-amp", "--no-progress", "--set", "model.planes=[8, 16, 32]",
    "--set", "model.num_heads=[1, 1, 2]", "--set", "model.blocks=[1, 1, 1]",
    "--set", "model.group_size=8", "--set", "model.stem=imagenet",
]  # fmt: skip


def _folder(root: Path) -> Path:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            events = raw_release.random_raw_events(200, seed=10 * ord(c) + i)
            write_spikingjelly_npz(root / c / f"{i}.npz", events)
    return root


# source -> (writes a tiny raw tree and returns its root, preprocess flags, train samples)
RAW = {
    "cifar10-dvs": (lambda p: raw_release.make_cifar_release(p, per_class=2, n_events=200), [], 10),
    "dvs-gesture": (lambda p: raw_release.make_gesture_release(p, rows=2, n_events=600), [], 4),
    "nmnist": (lambda p: make_nmnist(p, per_class=1, seed=0, duration_us=5_000) and p, [], 10),
    "ncaltech101": (
        lambda p: make_ncaltech101(p, per_class=2, seed=0, duration_us=2_000) and p,
        [],
        101,
    ),
    "folder": (_folder, ["--sensor-size", "128x128", "--test-fraction", "0.5"], 2),
}


def invoke(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_every_source_has_a_raw_tree_here():
    assert sorted(RAW) == list_sources()


# about 3-6 s each on 2 loaded cores (one tiny epoch); the first pays torch's optimiser imports
@pytest.mark.slow
@pytest.mark.parametrize(
    "source, store", [(s, "frames") for s in sorted(RAW)] + [("folder", "events")]
)
def test_train_without_pipeline_on_any_source(tmp_path, source, store):
    write_raw, flags, n_train = RAW[source]
    root = write_raw(tmp_path / "raw")
    cache = tmp_path / "c.h5"
    binning = ["--time-steps", "2", "--size", "16"] if store == "frames" else []
    invoke("preprocess", source, root, cache, *binning, *flags, "--store", store)
    out = invoke(
        "train", "--data", cache, "--out", tmp_path / "run", *TINY, "--batch-size", n_train
    )
    assert "1 epochs" in out and "Traceback" not in out
    saved = tomllib.loads((tmp_path / "run" / "pipeline.toml").read_text())
    assert saved["data"]["dataset"] in (source, "")
    assert (saved["data"]["time_steps"], saved["data"]["size"]) == (2, 16)
    assert np.isfinite(float(out.split("at the last epoch: ")[1].split("%")[0]))
