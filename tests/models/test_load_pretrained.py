"""load_pretrained: raw or wrapped state dicts, prefixes, exclusions, reported keys."""

from __future__ import annotations

import logging

import pytest
import torch

from eventvision.errors import CheckpointError
from eventvision.models import create_model, load_pretrained

TINY = dict(planes=(8, 16, 32), num_heads=(1, 2, 4), group_size=8, img_size=16, T=2)


def _pair(**kw):
    torch.manual_seed(0)
    src = create_model("spikingresformer_dvsg", **TINY)
    torch.manual_seed(1)
    dst = create_model("spikingresformer_dvsg", **{**TINY, **kw})
    return src, dst


@pytest.mark.parametrize("wrap", ["raw", "model", "module", "path"])
def test_loads_every_form(wrap, tmp_path):
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
    assert result.missing_keys == [] and result.unexpected_keys == []
    dst_sd = dst.state_dict()
    assert all(torch.equal(dst_sd[k], v) for k, v in sd.items() if not k.startswith("classifier"))
    assert not torch.equal(dst_sd["classifier.weight"], sd["classifier.weight"])


def test_transfer_to_new_classes_and_reports_keys(caplog):
    src, dst = _pair(num_classes=4)
    sd = dict(src.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    del sd["layers.0.0.firing_rate_x"]
    with caplog.at_level(logging.WARNING, logger="eventvision.models.spikingresformer"):
        result = load_pretrained(dst, sd)
    assert result.missing_keys == ["layers.0.0.firing_rate_x"]
    assert result.unexpected_keys == ["extra.weight"]
    assert "layers.0.0.firing_rate_x" in caplog.text and "extra.weight" in caplog.text


def test_exclude_nothing_rejects_mismatched_shapes():
    src, dst = _pair(num_classes=4)
    with pytest.raises(CheckpointError, match=r"classifier.weight: checkpoint \(11, 32\)"):
        load_pretrained(dst, src.state_dict(), exclude=())


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pth: not a PyTorch checkpoint"):
        load_pretrained(create_model("spikingresformer_dvsg", **TINY), bad)
