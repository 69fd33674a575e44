"""The variants in timm's registry: timm.create_model, pretrained_cfg files, checkpoint_path."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import timm
import torch
from models.tiny import TINY_CONFIG

from eventvision.errors import ConfigError
from eventvision.models import create_model, list_models
from eventvision.models._timm import OFFICIAL_CHECKPOINTS, register_with_timm
from eventvision.models.registry import _REGISTRY

TINY = TINY_CONFIG


@pytest.fixture(autouse=True)
def _ours_in_timm():
    """The official code registers the same six names; the last import wins (timm warns)."""
    for name in list_models():
        if timm.models.model_entrypoint(name).__module__ != "eventvision.models._timm":
            register_with_timm(name, _REGISTRY[name])


def _shapes(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def test_every_variant_is_in_timms_registry():
    assert timm.list_models("spikingresformer_*") == list_models()


@pytest.mark.parametrize("name", list_models())
def test_timm_builds_the_same_model_with_the_variants_cfg(name):
    with torch.device("meta"):
        ours = create_model(name)
        theirs = timm.create_model(name)
    assert theirs.cfg == ours.cfg and _shapes(theirs) == _shapes(ours)
    cfg = theirs.pretrained_cfg
    assert cfg["num_classes"] == ours.cfg.num_classes
    assert cfg["input_size"] == (ours.cfg.in_channels, ours.cfg.img_size, ours.cfg.img_size)
    assert cfg["url"] == "" and cfg["origin_url"] == OFFICIAL_CHECKPOINTS
    assert cfg["first_conv"] == "prologue.0" and cfg["classifier"] == "classifier"
    assert isinstance(theirs.get_submodule(cfg["first_conv"]), torch.nn.Conv2d)


def test_timm_keywords_reach_our_config():
    with torch.device("meta"):
        model = timm.create_model("spikingresformer_s", num_classes=10, in_chans=2, T=3)
    assert (model.cfg.num_classes, model.cfg.in_channels, model.cfg.T) == (10, 2, 3)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['drop_rate'\]"):
        timm.create_model("spikingresformer_cifar", drop_rate=0.1)


def _source(tmp_path, **kw):
    torch.manual_seed(0)
    src = create_model("spikingresformer_dvsg", **{**TINY, **kw})
    path = tmp_path / "best.pt"
    torch.save({"model": src.state_dict(), "epoch": 1}, path)
    return src.state_dict(), path


def test_pretrained_from_a_local_file_through_pretrained_cfg(tmp_path):
    sd, path = _source(tmp_path)
    torch.manual_seed(1)
    overlay = dict(file=str(path))
    model = timm.create_model(
        "spikingresformer_dvsg", pretrained=True, pretrained_cfg_overlay=overlay, **TINY
    )
    got = model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in sd.items())
    assert model.pretrained_cfg["file"] == str(path)


def test_pretrained_for_other_classes_and_channels_adapts_like_timm(tmp_path):
    sd, path = _source(tmp_path)  # 11 classes, 3 input channels (the variant's cfg)
    torch.manual_seed(1)
    fresh = create_model("spikingresformer_dvsg", **TINY, num_classes=4, in_channels=2)
    torch.manual_seed(1)
    model = timm.create_model(
        "spikingresformer_dvsg",
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(path)),
        num_classes=4,
        in_chans=2,
        **TINY,
    )
    got = model.state_dict()
    assert torch.equal(got["classifier.weight"], fresh.state_dict()["classifier.weight"])
    # timm's adapt_input_conv for 3 -> 2 channels: the first two, scaled by 3/2
    assert torch.equal(got["prologue.0.weight"], sd["prologue.0.weight"][:, :2] * 1.5)
    rest = [k for k in sd if k not in ("classifier.weight", "prologue.0.weight")]
    assert all(torch.equal(got[k], sd[k]) for k in rest)


def test_checkpoint_path_loads_strictly(tmp_path):
    sd, path = _source(tmp_path)
    model = timm.create_model("spikingresformer_dvsg", checkpoint_path=str(path), **TINY)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())


def test_pretrained_without_weights_says_where_they_are():
    with pytest.raises(ConfigError, match=r"pretrained_cfg_overlay=dict\(file=.*drive\.google"):
        timm.create_model("spikingresformer_cifar", pretrained=True)


@pytest.mark.slow  # a fresh interpreter importing torch, then timm: about 5 s of CPU
def test_importing_our_models_leaves_timm_unloaded_until_it_is_used():
    code = (
        "import sys, eventvision.models; assert 'timm' not in sys.modules, 'timm loaded'; "
        "import timm; print(timm.list_models('spikingresformer_*'))"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(list_models())
