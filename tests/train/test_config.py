from __future__ import annotations

import pytest

from eventvision.errors import ConfigError
from eventvision.train import list_pipelines, load_pipeline, pipeline_to_toml
from eventvision.train.config import pipeline_dict, pipeline_from_dict

# The official recipes (docs/training.md): model, T, batch, epochs, lr, weight decay, input size.
PAPER = {
    "imagenet-ti": ("spikingresformer_ti", 4, 32, 320, 1e-3, 0.01, 224),
    "imagenet-s": ("spikingresformer_s", 4, 32, 320, 1e-3, 0.01, 224),
    "imagenet-m": ("spikingresformer_m", 4, 28, 320, 8e-4, 0.01, 224),
    "imagenet-l": ("spikingresformer_l", 4, 16, 320, 5e-4, 0.01, 224),
    "cifar10-direct": ("spikingresformer_cifar", 4, 128, 600, 5e-4, 0.01, 32),
    "cifar100-direct": ("spikingresformer_cifar", 4, 128, 600, 5e-4, 0.01, 32),
    "cifar10dvs-direct": ("spikingresformer_cifar", 16, 8, 300, 5e-4, 0.05, 64),
    "dvsgesture-direct": ("spikingresformer_dvsg", 16, 8, 300, 1e-4, 0.05, 64),
    "transfer-cifar10": ("spikingresformer_s", 4, 128, 100, 1e-4, 0.01, 128),
    "transfer-cifar100": ("spikingresformer_s", 4, 128, 150, 1e-4, 0.01, 128),
    "transfer-cifar10dvs": ("spikingresformer_s", 10, 48, 100, 4e-5, 0.01, 128),
    "transfer-dvsgesture": ("spikingresformer_s", 10, 48, 100, 1e-4, 0.05, 128),
}


def test_every_paper_recipe_is_shipped_with_its_values():
    assert set(PAPER) <= set(list_pipelines())
    for name, (model, t, batch, epochs, lr, wd, size) in PAPER.items():
        p = load_pipeline(name)
        got = (
            p.model.name,
            p.data.time_steps,
            p.train.batch_size,
            p.train.epochs,
            p.train.lr,
            p.train.weight_decay,
            p.data.size,
        )
        assert got == (model, t, batch, epochs, lr, wd, size), name
        assert (p.train.seed, p.train.warmup_epochs, p.train.warmup_lr, p.train.min_lr) == (
            12450,
            3,
            1e-5,
            1e-5,
        )
        if p.data.format == "frames":  # DVS: one-hot targets, no mixup, no smoothing
            assert p.data.augment == "dvs" and not p.train.mixes
            assert p.train.label_smoothing == 0.0
        else:
            assert p.train.mixes and p.train.label_smoothing == 0.1
    assert load_pipeline("imagenet-s").train.cutmix_alpha == 1.0
    assert load_pipeline("imagenet-s").train.mixup_alpha == 0.2
    assert load_pipeline("cifar10-direct").train.mixup_alpha == 0.5
    assert load_pipeline("imagenet-l").train.sync_bn


def test_overrides_win_and_are_checked():
    p = load_pipeline("cifar10dvs-direct", {"train.epochs": 1, "data.path": "c.h5", "train.lr": 1})
    assert (p.train.epochs, p.data.path, p.train.lr) == (1, "c.h5", 1.0)
    assert isinstance(p.train.lr, float)
    with pytest.raises(
        ConfigError, match=r"unknown key 'epoch' in \[train\] \(did you mean 'epochs'"
    ):
        load_pipeline("cifar10dvs-direct", {"train.epoch": 1})
    with pytest.raises(ConfigError, match="section.key"):
        load_pipeline("cifar10dvs-direct", {"epochs": 1})
    with pytest.raises(ConfigError, match=r"\[train\] epochs must be an integer"):
        load_pipeline("cifar10dvs-direct", {"train.epochs": "ten"})
    with pytest.raises(ConfigError, match=r"\[data\] channels must be one of \[2, 3\]"):
        load_pipeline("cifar10dvs-direct", {"data.channels": 4})


def test_unknown_key_in_file_names_file_section_and_valid_keys(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[train]\nepochs = 3\nlearning_rate = 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_pipeline(path)
    msg = str(e.value)
    assert str(path) in msg and "'learning_rate'" in msg and "[train]" in msg
    assert "valid: [" in msg and "'lr'" in msg
    path.write_text("[trian]\nepochs = 3\n")
    with pytest.raises(ConfigError, match="unknown key 'trian' at top level"):
        load_pipeline(path)
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="cannot read pipeline"):
        load_pipeline(path)


def test_unknown_pipeline_name_suggests_close_matches():
    with pytest.raises(ConfigError, match="did you mean cifar10dvs-direct"):
        load_pipeline("cifar10dvs-drect")
    with pytest.raises(ConfigError, match="does not exist"):
        load_pipeline("nowhere/mine.toml")


def test_toml_round_trip(tmp_path):
    p = load_pipeline("transfer-cifar10", {"model.planes": [1, 2, 3], "data.path": 'a"b'})
    path = tmp_path / "p.toml"
    path.write_text(pipeline_to_toml(p))
    q = load_pipeline(path)
    assert q == p  # the saved name travels with the file
    assert pipeline_from_dict(pipeline_dict(p), name=p.name) == p


def test_model_cpu_kernels_reaches_the_model():
    from eventvision.models.layers import MultiStepConv2d
    from eventvision.train import build_model

    assert load_pipeline("cifar10dvs-direct").model.overrides() == {}
    p = load_pipeline("cifar10dvs-direct", {"model.cpu_kernels": False, "data.size": 32})
    convs = [m for m in build_model(p, 10).modules() if isinstance(m, MultiStepConv2d)]
    assert p.model.cpu_kernels is False and not any(m.sparse for m in convs)
