"""load_pretrained: every fitting tensor loads, only named keys are left out, and it says so."""

from __future__ import annotations

import logging

import pytest
import torch
from models.tiny import TINY_CONFIG

from eventvision.errors import CheckpointError
from eventvision.models import create_model, load_pretrained

TINY = TINY_CONFIG
LOGGER = "eventvision.models.weights"


def _pair(**kw):
    torch.manual_seed(0)
    src = create_model("spikingresformer_dvsg", **TINY)
    torch.manual_seed(1)
    dst = create_model("spikingresformer_dvsg", **{**TINY, **kw})
    return src, dst


def _equal(a: dict, b: dict, keys) -> bool:
    return all(torch.equal(a[k], b[k]) for k in keys)


@pytest.mark.parametrize("wrap", ["raw", "model", "module", "path"])
def test_loads_every_form_whole_classifier_included(wrap, tmp_path):
    src, dst = _pair()
    sd = src.state_dict()
    if wrap == "model":
        source = {"model": sd, "epoch": 3}
    elif wrap == "module":
        source = {f"module.{k}": v for k, v in sd.items()}
    elif wrap == "path":
        source = tmp_path / "ckpt.pth"
        torch.save({"model": sd, "optimizer": {}}, source)
    else:
        source = sd
    result = load_pretrained(dst, source)
    assert result.complete and result.missing_keys == [] and result.unexpected_keys == []
    assert result.loaded == tuple(sd) and result.excluded == ()
    assert _equal(dst.state_dict(), sd, sd)  # the classifier too: nothing left out unnamed


def test_a_run_checkpoint_into_the_same_model_loads_the_classifier(tmp_path, caplog):
    # The trap of issue 23: a full run checkpoint must not silently lose its classifier.
    src, dst = _pair()
    path = tmp_path / "best.pt"
    torch.save({"model": src.state_dict(), "epoch": 1, "pipeline": {}}, path)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = load_pretrained(dst, path)
    assert "classifier.weight" in result.loaded
    assert torch.equal(dst.classifier.weight, src.classifier.weight)
    n = len(src.state_dict())
    assert str(result) == f"{path}: loaded {n} of {n} model tensors"
    assert repr(result) == str(result) and str(result) in caplog.text


def test_exclude_leaves_out_only_what_is_named(caplog):
    src, dst = _pair()
    before = dst.classifier.weight.clone()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = load_pretrained(dst, src.state_dict(), exclude=("classifier",))
    assert result.excluded == ("classifier.weight",) and result.complete
    assert torch.equal(dst.classifier.weight, before)
    others = [k for k in src.state_dict() if k != "classifier.weight"]
    assert _equal(dst.state_dict(), src.state_dict(), others)
    assert "excluded as asked: classifier.weight" in str(result)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_new_classes_skip_the_head_by_shape_and_say_why(caplog):
    src, dst = _pair(num_classes=4)
    sd = dict(src.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    del sd["layers.0.0.firing_rate_x"]
    before = dst.classifier.weight.clone()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        result = load_pretrained(dst, sd)
    assert result.mismatched == ("classifier.weight: checkpoint (11, 32) vs model (4, 32)",)
    assert result.missing_keys == ["layers.0.0.firing_rate_x"]
    assert result.unexpected_keys == ["extra.weight"]
    assert torch.equal(dst.classifier.weight, before)
    backbone = [k for k in sd if k not in ("classifier.weight", "extra.weight")]
    assert _equal(dst.state_dict(), sd, backbone)
    text = caplog.text
    assert "classifier.weight: checkpoint (11, 32) vs model (4, 32)" in text
    assert "layers.0.0.firing_rate_x" in text and "extra.weight" in text


def test_strict_refuses_what_it_would_skip():
    src, dst = _pair(num_classes=4)
    with pytest.raises(CheckpointError, match=r"another architecture: 1 shapes differ"):
        load_pretrained(dst, src.state_dict(), strict=True)
    result = load_pretrained(dst, src.state_dict(), exclude=("classifier",), strict=True)
    assert result.complete


def test_nothing_that_fits_is_refused():
    _, dst = _pair()
    with pytest.raises(CheckpointError, match=r"no tensor fits the model: .*1 unexpected \(enc"):
        load_pretrained(dst, {"encoder.weight": torch.zeros(3, 3)})


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pth: not a PyTorch checkpoint"):
        load_pretrained(create_model("spikingresformer_dvsg", **TINY), bad)
