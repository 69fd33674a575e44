from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import digest_tree
from train.tiny import CLASSES, TINY_MODEL, tiny_pipeline, write_cache

from eventvision.errors import CacheError, CacheMismatchError, CheckpointError, ConfigError
from eventvision.train import evaluate, finetune, load_pipeline, lr_at_epoch, read_metrics, train


@pytest.fixture(scope="module")
def run(cache, tmp_path_factory):
    """One finished 2-epoch run shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    result = train(tiny_pipeline(cache), run_dir)
    return run_dir, result


def test_run_folder_holds_config_metrics_and_plain_checkpoints(run):
    run_dir, result = run
    assert {p.name for p in run_dir.iterdir()} >= {
        "pipeline.toml",
        "data.json",
        "metrics.jsonl",
        "last.pt",
        "best.pt",
        "train.log",
        "summary.csv",
        "tb",
    }
    rows = read_metrics(run_dir)
    assert [r["epoch"] for r in rows] == [0, 1]
    for r in rows:
        assert r["lr"] == pytest.approx(lr_at_epoch(r["epoch"], 5e-3, 2, 0))
        for key in (
            "train_loss",
            "train_acc1",
            "train_acc5",
            "test_loss",
            "test_acc1",
            "test_acc5",
            "epoch_time_s",
            "train_samples_per_s",
            "dssa_rates",
        ):
            assert key in r, key
        assert r["dssa_rates"] and all(0 <= v <= 1 for v in r["dssa_rates"].values())
    assert result.final == rows[-1] and result.epochs == 2
    ckpt = torch.load(run_dir / "last.pt", weights_only=True)  # plain tensors and dicts only
    assert ckpt["epoch"] == 2 and ckpt["pipeline"]["train"]["epochs"] == 2
    assert not any(k.startswith("module.") for k in ckpt["model"])
    assert {"model", "optimizer", "best_metric", "rng", "eventvision_version"} <= set(ckpt)
    assert "[train]" in (run_dir / "pipeline.toml").read_text()


def test_evaluate_reproduces_the_logged_accuracy(run, cache):
    run_dir, result = run
    ev = evaluate(run_dir / "last.pt", energy=False)
    assert ev.samples == 8
    assert ev.acc1 == pytest.approx(result.final["test_acc1"])
    assert ev.loss == pytest.approx(result.final["test_loss"], rel=1e-5)
    assert ev.dssa_rates and not ev.firing_rates  # measured rates come with the energy


def test_run_folder_is_never_overwritten(run, cache):
    run_dir, _ = run
    before = digest_tree(run_dir)
    with pytest.raises(ConfigError, match="already holds this run .*--resume"):
        train(tiny_pipeline(cache), run_dir)
    with pytest.raises(ConfigError, match=r"already holds a different run \(train.lr"):
        train(tiny_pipeline(cache, **{"train.lr": 1e-3}), run_dir, resume=True)
    other = run_dir.parent / "not-a-run"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no run"):
        train(tiny_pipeline(cache), other)
    assert digest_tree(run_dir) == before
    assert (other / "notes.txt").read_text() == "mine"
    # resuming a finished run trains nothing and changes nothing
    again = train(tiny_pipeline(cache), run_dir, resume=True)
    assert again.final == read_metrics(run_dir)[-1]
    assert digest_tree(run_dir) == before


def test_bad_data_is_reported_before_anything_is_written(cache, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(CacheError, match="no such cache file"):
        train(tiny_pipeline(tmp_path / "missing.h5"), out)
    with pytest.raises(CacheMismatchError, match=r"T=2 frames of 16x16 px.*time_steps=4, size=32"):
        train(tiny_pipeline(cache, **{"data.time_steps": 4, "data.size": 32}), out)
    with pytest.raises(ConfigError, match="num_classes = 10.*4 classes"):
        train(tiny_pipeline(cache, **{"model.num_classes": 10}), out)
    with pytest.raises(ConfigError, match="needs data"):
        train(tiny_pipeline(cache, **{"data.path": ""}), out)
    with pytest.raises(ConfigError, match="unknown model 'spikingresformer_tiny'.*did you mean"):
        train(tiny_pipeline(cache, **{"model.name": "spikingresformer_tiny"}), out)
    assert not out.exists()


def test_finetune_loads_the_backbone_and_trains_a_new_classifier(run, tmp_path, caplog):
    run_dir, _ = run
    three = write_cache(tmp_path / "three.h5", classes=CLASSES[:3], seed=1)
    pipe = tiny_pipeline(three, **{"model.num_classes": 3, "train.epochs": 1})
    with caplog.at_level("INFO", logger="eventvision.train.logs"):
        result = finetune(pipe, run_dir / "last.pt", tmp_path / "ft", freeze_backbone=True)
    source = torch.load(run_dir / "last.pt", weights_only=True)["model"]
    n = len(source)  # what was loaded and what was left out, by name, with the epoch lines
    said = f"fine-tuning from {run_dir / 'last.pt'}: loaded {n - 1} of {n} model tensors"
    assert f"{said}; excluded as asked: classifier.weight (a fresh" in caplog.text
    tuned = torch.load(result.last_checkpoint, weights_only=True)["model"]
    assert tuned["classifier.weight"].shape[0] == 3
    params = [
        k
        for k, v in tuned.items()
        if v.is_floating_point()
        and "running" not in k
        and "firing_rate" not in k
        and not k.startswith("classifier")
    ]
    assert params and all(torch.equal(tuned[k], source[k]) for k in params)  # frozen backbone
    saved = json.loads(
        json.dumps(torch.load(result.last_checkpoint, weights_only=True)["pipeline"])
    )
    assert saved["model"]["pretrained"] == str(run_dir / "last.pt")


def test_finetune_refuses_another_architecture_and_broken_files(run, tmp_path):
    run_dir, _ = run
    cache = tmp_path / "c.h5"
    write_cache(cache)
    wider = tiny_pipeline(cache, **{"model.planes": [16, 16, 32], "train.epochs": 1})
    with pytest.raises(CheckpointError, match="weights of another architecture"):
        finetune(wider, run_dir / "last.pt", tmp_path / "ft")
    broken = tmp_path / "broken.pt"
    broken.write_bytes((run_dir / "last.pt").read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        finetune(tiny_pipeline(cache), broken, tmp_path / "ft")
    with pytest.raises(CheckpointError, match="truncated"):
        evaluate(broken)
    assert not (tmp_path / "ft").exists()


def test_image_recipe_trains_with_randaugment_mixup_and_repetition(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(4):  # a class-per-folder tree, the same images serving both splits
        (tmp_path / "images" / f"class{c}").mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 60, (20, 20, 3), dtype=np.uint8)
            pixels[:, :, c % 3] += 150
            Image.fromarray(pixels).save(tmp_path / "images" / f"class{c}" / f"{i}.png")
    pipe = load_pipeline(
        "cifar10-direct",
        {
            "data.path": str(tmp_path / "images"),
            "data.time_steps": 2,
            "data.size": 32,  # every DSSA head fires (at 16 px one stays silent, scaled by 0)
            "model.num_classes": 4,
            "train.epochs": 1,
            "train.batch_size": 8,
            **TINY_MODEL,
        },
    )
    assert pipe.train.mixes and pipe.data.augment.startswith("rand-")
    result = train(pipe, tmp_path / "run")
    assert result.final["train_samples_per_s"] > 0
    # the loop's test top-1 is that of the saved weights, as evaluate() computes it on its own
    again = evaluate(tmp_path / "run" / "last.pt", energy=False, save=False)
    assert again.acc1 == pytest.approx(result.final["test_acc1"])
    correct = again.acc1 * again.samples / 100
    assert correct == pytest.approx(round(correct))  # a whole number of the test samples
