"""`eventvision preprocess folder|nmnist|ncaltech101`, non-square sizes, and training any cache."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import tomllib
import torch
from click.testing import CliRunner
from eventvision.cli.main import main
from helpers import random_events

from eventvision.cache import open_cache, sample_frames
from eventvision.cache.options import CacheOptions
from eventvision.datasets.folder import read_event_file, scan_folder
from eventvision.datasets.layouts import write_spikingjelly_npz
from eventvision.errors import DatasetError
from eventvision.events import DVS128, Sensor
from eventvision.io import write_aedat2, write_aedat4, write_atis_bin
from eventvision.synth.atis import make_nmnist

SENSOR = Sensor(40, 30)


def _write_npy_structured(path: Path, ev: np.ndarray) -> None:
    np.save(path, ev)


def _write_npy_columns(path: Path, ev: np.ndarray) -> None:
    # tonic's column order x, y, p, t (t in microseconds)
    np.save(path, np.stack([ev["x"], ev["y"], ev["p"], ev["t"]], axis=1).astype(np.int64))


def _write_h5(path: Path, ev: np.ndarray) -> None:
    with h5py.File(path, "w") as f:
        for k in "txyp":
            f[k] = ev[k]


WRITERS = {
    ".aedat": lambda p, ev: write_aedat2(p, ev),
    ".aedat4": lambda p, ev: write_aedat4(p, ev, SENSOR, compression="lz4", packet_events=64),
    ".bin": lambda p, ev: write_atis_bin(p, ev),
    ".npy": _write_npy_structured,
    ".npz": lambda p, ev: write_spikingjelly_npz(p, ev),
    ".h5": _write_h5,
}


def _events(seed: int, sensor: Sensor) -> np.ndarray:
    return random_events(200, seed, width=sensor.width, height=sensor.height)


def make_tree(root: Path, suffix: str, *, per_class: int = 3, split_folders: bool = False) -> Path:
    """Class folders ``a`` and ``b`` (or train|test/a|b) of ``per_class`` files written by us."""
    sensor = DVS128 if suffix == ".aedat" else SENSOR
    write = WRITERS.get(suffix, _write_npy_columns)
    parts = ["train", "test"] if split_folders else [""]
    for part in parts:
        for c, name in enumerate(("a", "b")):
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                name = f"{i}{'.npy' if suffix == '.npycols' else suffix}"
                write(folder / name, _events(100 * c + i + len(part), sensor))
    return root


def invoke(*args, code: int = 0) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    return result.output


@pytest.mark.parametrize("suffix", [*WRITERS, ".npycols"])
def test_folder_of_each_format_builds_the_cache_of_its_events(tmp_path, suffix):
    real_suffix = ".npy" if suffix == ".npycols" else suffix
    root = make_tree(tmp_path / "raw", suffix)
    out = tmp_path / "c.h5"
    sensor_args = [] if real_suffix in (".aedat", ".aedat4") else ["--sensor-size", "30x40"]
    args = ["--time-steps", "3", "--size", "12x16", "--test-fraction", "0.34", *sensor_args]
    invoke("preprocess", "folder", root, out, *args)
    meta = open_cache(out)
    sensor = DVS128 if suffix == ".aedat" else SENSOR
    assert (meta.classes, meta.sensor, meta.size) == (("a", "b"), sensor, (12, 16))
    assert (meta.n_train, meta.n_test) == (4, 2)  # per class round(3 * 0.34) = 1 for test
    options = CacheOptions.from_dict(meta.options)
    with h5py.File(out, "r") as f:
        for i, source in enumerate(f["source"].asstr()[:]):
            events = read_event_file(root / source)
            assert f["labels"][i] == ("a", "b").index(Path(source).parent.name)
            assert np.array_equal(f["frames"][i], sample_frames(events, options))


def test_folder_reader_equals_the_written_events(tmp_path):
    ev = _events(5, SENSOR)
    for suffix, write in WRITERS.items():
        if suffix == ".aedat":
            continue  # raw DVS128 addresses, checked through the cache above
        write(tmp_path / f"x{suffix}", ev)
        assert np.array_equal(read_event_file(tmp_path / f"x{suffix}"), ev), suffix
    _write_npy_columns(tmp_path / "cols.npy", ev)
    assert np.array_equal(read_event_file(tmp_path / "cols.npy"), ev)


def test_folder_split_folders_and_seeded_ratio(tmp_path):
    root = make_tree(tmp_path / "split", ".npz", per_class=2, split_folders=True)
    tree = scan_folder(root)
    assert tree.split_folders and tree.classes == ("a", "b")
    out = tmp_path / "s.h5"
    invoke(
        "preprocess",
        "folder",
        root,
        out,
        "--time-steps",
        "2",
        "--size",
        "8",
        "--sensor-size",
        "30x40",
    )
    with h5py.File(out, "r") as f:
        split, sources = f["split"][:], f["source"].asstr()[:]
    assert all(s.startswith("train/") for s in sources[split == 0])
    assert all(s.startswith("test/") for s in sources[split == 1])
    flat = make_tree(tmp_path / "flat", ".npz", per_class=10)
    runs = []
    for seed in (1, 1, 2):
        out = tmp_path / f"r{len(runs)}.h5"
        invoke(
            "preprocess", "folder", flat, out, "--time-steps", "2", "--size", "8",
            "--sensor-size", "30x40", "--seed", seed, "--test-fraction", "0.3",
        )  # fmt: skip
        with h5py.File(out, "r") as f:
            runs.append(sorted(f["source"].asstr()[:][f["split"][:] == 1]))
    assert len(runs[0]) == 6 and runs[0] == runs[1] and runs[0] != runs[2]  # 3 per class


def test_folder_bad_input_one_line_errors(tmp_path):
    root = make_tree(tmp_path / "mixed", ".npz", per_class=1)
    write_atis_bin(root / "a" / "extra.bin", _events(9, SENSOR))
    out = invoke("preprocess", "folder", root, tmp_path / "m.h5", "--sensor-size", "30x40", code=1)
    assert "mixed formats" in out and "1 *.bin, 2 *.npz" in out and len(out.splitlines()) == 1
    assert not (tmp_path / "m.h5").exists()
    bins = make_tree(tmp_path / "bins", ".bin", per_class=2)
    out = invoke("preprocess", "folder", bins, tmp_path / "b.h5", code=1)
    assert "give it with --sensor-size HxW" in out
    aedat4 = make_tree(tmp_path / "a4", ".aedat4", per_class=1)
    out = invoke(
        "preprocess", "folder", aedat4, tmp_path / "a.h5", "--sensor-size", "64x48", code=1
    )
    assert "disagrees with the 30x40" in out
    out = invoke(
        "preprocess", "folder", bins, tmp_path / "b.h5", "--sensor-size", "4x3",
        "--test-fraction", "0.5", code=1,
    )  # fmt: skip
    assert "outside the sensor 4x3" in out and not (tmp_path / "b.h5").exists()
    invoke("preprocess", "folder", bins, tmp_path / "b.h5", "--sensor-size", "40", code=2)
    out = invoke("preprocess", "nmnist", bins, tmp_path / "n.h5", "--sensor-size", "30x40", code=1)
    assert "['sensor_size'] do not apply to nmnist" in out  # refused, not ignored


def test_folder_skip_bad_lists_unreadable_files(tmp_path):
    root = make_tree(tmp_path / "raw", ".npz", per_class=3)
    (root / "b" / "1.npz").write_bytes(b"not a zip")
    args = ["preprocess", "folder", root, tmp_path / "c.h5", "--time-steps", "2", "--size", "8"]
    args += ["--test-fraction", "0.34"]
    out = invoke(*args, "--sensor-size", "30x40", code=1)
    assert "b/1.npz" in out and not (tmp_path / "c.h5").exists()
    out = invoke(*args, "--sensor-size", "30x40", "--skip-bad")
    assert "skipped 1 sample(s)" in out and "b/1.npz" in out
    assert open_cache(tmp_path / "c.h5").n_samples == 5
    assert "b/1.npz" in invoke("info", tmp_path / "c.h5")


def test_non_square_end_to_end(tmp_path):
    """preprocess HxW -> FrameDataset -> DVSAugment -> loader -> model forward."""
    from eventvision.data import DVSAugment, FrameDataset, make_loader
    from eventvision.models import create_model

    root = make_tree(tmp_path / "raw", ".h5", per_class=4)
    out = tmp_path / "c.h5"
    invoke(
        "preprocess",
        "folder",
        root,
        out,
        "--time-steps",
        "2",
        "--size",
        "16x24",
        "--sensor-size",
        "30x40",
        "--test-fraction",
        "0.5",
    )
    ds = FrameDataset(out, "train", transform=DVSAugment(seed=0))
    frames, _ = ds[0]
    assert frames.shape == (2, 3, 16, 24)
    x, y = next(iter(make_loader(ds, 3, train=True, workers=0, seed=0)))
    assert x.shape == (3, 2, 3, 16, 24)  # [B, T, C, H, W]
    tiny = dict(planes=(8, 16, 32), num_heads=(1, 1, 2), blocks=(1, 1, 1), group_size=8)
    model = create_model("spikingresformer_cifar", img_size=(16, 24), num_classes=2, T=2, **tiny)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, 3, 2) and torch.isfinite(logits).all()
    lenths = [m.lenth for m in model.modules() if hasattr(m, "lenth")]
    assert lenths == [(16 // 4) * (24 // 4), (8 // 2) * (12 // 2), 4 * 6]
    png = tmp_path / "s.png"
    invoke("show", out, "--out", png)
    assert png.exists()


def test_scan_folder_refuses_an_empty_tree(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DatasetError, match="no event files"):
        scan_folder(tmp_path)


@pytest.mark.slow  # a real 1-epoch run through the CLI: about 10 s on 2 loaded cores
def test_train_on_an_nmnist_cache_takes_recipe_classes_from_the_cache(tmp_path):
    make_nmnist(tmp_path / "raw", per_class=1, seed=0, duration_us=10_000)
    cache = tmp_path / "nm.h5"
    invoke("preprocess", "nmnist", tmp_path / "raw", cache, "--time-steps", "2", "--size", "16")
    assert "nmnist, 20 samples" in invoke("info", cache)
    out = invoke(
        "train", "--data", cache, "--out", tmp_path / "run", "--epochs", "1",
        "--time-steps", "2", "--size", "16", "--batch-size", "10", "--device", "cpu", "--no-amp",
        "--set", "model.planes=[8, 16, 32]", "--set", "model.num_heads=[1, 1, 2]",
        "--set", "model.blocks=[1, 1, 1]", "--set", "model.group_size=8", "--no-progress",
    )  # fmt: skip
    assert "1 epochs" in out
    saved = tomllib.loads((tmp_path / "run" / "pipeline.toml").read_text())
    assert saved["name"] == "nmnist-direct" and saved["data"]["dataset"] == "nmnist"
    assert saved["model"]["num_classes"] == 10


def test_a_folder_cache_gets_the_generic_recipe_sized_from_the_cache(tmp_path):
    from eventvision.train import load_pipeline
    from eventvision.train.recipes import recipe_for_cache

    root = make_tree(tmp_path / "raw", ".npz", per_class=2)
    out = tmp_path / "c.h5"
    invoke(
        "preprocess",
        "folder",
        root,
        out,
        "--time-steps",
        "2",
        "--size",
        "16x24",
        "--sensor-size",
        "30x40",
        "--test-fraction",
        "0.5",
    )
    name, overrides = recipe_for_cache(out)
    pipeline = load_pipeline(name, overrides)
    assert name == "frames-direct" and pipeline.model.num_classes is None  # classes: the cache's
    assert (pipeline.data.time_steps, pipeline.data.size, pipeline.data.dataset) == (
        2,
        (16, 24),
        "folder",
    )
    assert recipe_for_cache(tmp_path / "raw" / "a" / "0.npz") is None  # not a cache


def test_a_split_leaving_a_class_without_test_samples_is_refused(tmp_path):
    root = make_tree(tmp_path / "raw", ".npz", per_class=3)
    args = ["preprocess", "folder", root, tmp_path / "c.h5", "--sensor-size", "30x40", "-T", "2"]
    out = invoke(*args, code=1)  # the default 0.1 draws round(0.3) = 0 of 3 files per class
    assert "test fraction 0.1 leaves class 'a' (3 files) with no test sample" in out
    assert "use --test-fraction 0.34" in out and len(out.splitlines()) == 1
    assert not (tmp_path / "c.h5").exists()
    out = invoke(*args, "--test-fraction", "0.9", code=1)
    assert "with no train sample" in out and "0.34" in out
    assert "4 train + 2 test samples" in invoke(*args, "--test-fraction", "0.34")
    (root / "c").mkdir()
    write_spikingjelly_npz(root / "c" / "0.npz", _events(9, SENSOR))
    out = invoke(*args, "--overwrite", code=1)
    assert "class 'c' has 1 file: a drawn split needs 2 per class" in out
