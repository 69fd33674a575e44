"""`eventvision preprocess`, `info`, `show` and `cache merge` through click's CliRunner."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner
from eventvision.cli.main import main
from PIL import Image

_spec = importlib.util.spec_from_file_location(
    "raw_release", Path(__file__).parents[1] / "cache" / "raw_release.py"
)
raw_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(raw_release)

ARGS = ["--time-steps", "4", "--size", "32"]


def invoke(*args: str, code: int = 0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(scope="module")
def raw_root(tmp_path_factory) -> Path:
    return raw_release.make_cifar_release(tmp_path_factory.mktemp("cli") / "raw", per_class=2)


@pytest.fixture(scope="module")
def cache_file(raw_root) -> Path:
    out = raw_root.parent / "cache.h5"
    output = invoke("preprocess", "cifar10-dvs", raw_root, out, *ARGS, "--workers", "2")
    assert "10 train + 10 test samples" in output and f"wrote cache {out}" in output
    # not a terminal: no bar label, and the summary line gives the rates and the size on disk
    assert "preprocessing" not in output
    assert " samples/s, " in output and " M events/s" in output and " on disk" in output
    return out


def test_preprocess_then_reuse(cache_file, raw_root):
    output = invoke("preprocess", "cifar10-dvs", raw_root, cache_file, *ARGS)
    assert "up to date" in output and "reused" in output


def test_other_options_are_a_clear_error(cache_file, raw_root):
    output = invoke("preprocess", "cifar10-dvs", raw_root, cache_file, "--time-steps", "5", code=1)
    assert "Error:" in output and "time_steps: 4 (existing) vs 5 (requested)" in output


def test_info_prints_options_counts_and_events(cache_file):
    output = invoke("info", cache_file)
    assert "time_steps: 4" in output and "size: 32" in output and "unchanged" in output
    assert any(line.split() == ["airplane", "1", "1"] for line in output.splitlines()), output
    assert "events per sample: min 500" in output


def test_show_draws_a_grid_and_a_gif(cache_file, tmp_path):
    png, gif = tmp_path / "s.png", tmp_path / "s.gif"
    output = invoke("show", cache_file, "--index", "3", "--out", png, "--gif", gif)
    assert "4 frames" in output
    assert Image.open(png).size[0] > Image.open(png).size[1] > 100
    assert Image.open(gif).n_frames == 4
    assert "holds 20 samples" in invoke("show", cache_file, "--index", "20", "--out", png, code=2)


def test_corrupt_source_stops_then_skip_bad(raw_root, tmp_path):
    import shutil

    root = tmp_path / "raw"
    shutil.copytree(raw_root, root)
    bad = root / "frog" / "cifar10_frog_0.aedat"
    bad.write_bytes(b"#!AER-DAT2.0\r\n" + b"\x01" * 13)
    out = tmp_path / "c.h5"
    output = invoke("preprocess", "cifar10-dvs", root, out, *ARGS, code=1)
    assert "frog/cifar10_frog_0.aedat" in output and "--skip-bad" in output
    output = invoke("preprocess", "cifar10-dvs", root, out, *ARGS, "--skip-bad")
    assert "skipped 1 sample(s)" in output and "frog/cifar10_frog_0.aedat" in output
    assert "skipped" in invoke("info", out)
    with h5py.File(out) as f:
        assert len(f["labels"]) == 19


def test_shards_and_merge(cache_file, raw_root, tmp_path):
    shards = [tmp_path / "s0.h5", tmp_path / "s1.h5"]
    for i, shard in enumerate(shards):
        assert f"shard {i}/2" in invoke(
            "preprocess", "cifar10-dvs", raw_root, shard, *ARGS, "--shard", f"{i}/2"
        )
    invoke("cache", "merge", tmp_path / "m.h5", *shards)
    raw_release.assert_same_content(tmp_path / "m.h5", cache_file)
    assert "--shard" in invoke(
        "preprocess", "cifar10-dvs", raw_root, shards[0], "--shard", "2/2", code=2
    )


def test_gesture_preprocess(tmp_path):
    root = raw_release.make_gesture_release(tmp_path / "raw", users=2, rows=2)
    output = invoke(
        "preprocess", "dvs-gesture", root, tmp_path / "g.h5", *ARGS, "--split-by", "time"
    )
    assert "4 train + 4 test samples" in output


def test_frames_is_a_deprecated_alias_of_time_steps(raw_root, cache_file, tmp_path):
    result = CliRunner().invoke(
        main, ["preprocess", "cifar10-dvs", str(raw_root), str(cache_file), "--frames", "4",
               "--size", "32"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "--frames is deprecated; use --time-steps" in result.output
    assert "up to date" in result.output  # the same options as --time-steps 4: reused
    output = invoke("preprocess", "cifar10-dvs", raw_root, tmp_path / "x.h5", "-T", "4",
                    "--frames", "5", code=2)  # fmt: skip
    assert "--time-steps 4 and --frames 5 disagree" in output
    assert not (tmp_path / "x.h5").exists()
