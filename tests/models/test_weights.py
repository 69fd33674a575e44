"""The one weights reader: wrappers, per-key prefix strip, prefix exclusion, shapes, key report."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from eventvision.errors import CheckpointError
from eventvision.models.weights import (
    check_state_dict,
    exclude_keys,
    load_weights,
    read_checkpoint,
    read_state_dict,
    strip_prefix,
)


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))  # keys 0.weight 0.bias 1.weight 1.bias


def test_module_prefix_is_stripped_per_key():
    state = {"module.a": torch.zeros(1), "b": torch.ones(1), "x.module.c": torch.ones(2)}
    assert sorted(strip_prefix(state)) == ["a", "b", "x.module.c"]  # only a leading prefix
    assert sorted(read_state_dict(state)) == ["a", "b", "x.module.c"]


def test_official_model_wrapper_from_a_file(tmp_path):
    src = _net()
    path = tmp_path / "checkpoint_max_acc1.pth"
    sd = {f"module.{k}": v for k, v in src.state_dict().items()}
    torch.save({"model": sd, "optimizer": {}, "epoch": 7, "max_acc1": 0.5}, path)
    ckpt = read_checkpoint(path)
    assert ckpt["epoch"] == 7 and sorted(ckpt["model"]) == sorted(src.state_dict())
    dst = _net()
    result = load_weights(dst, path, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert all(torch.equal(dst.state_dict()[k], v) for k, v in src.state_dict().items())


def test_exclusion_is_by_module_prefix():
    state = {"classifier.weight": 1, "classifier": 2, "classifier2.weight": 3, "head.classifier": 4}
    assert sorted(exclude_keys(state, ("classifier",))) == ["classifier2.weight", "head.classifier"]
    assert sorted(exclude_keys({"1.weight": 1, "11.weight": 2}, ("1.",))) == ["11.weight"]


def test_excluded_keys_are_neither_loaded_nor_missing():
    src, dst = _net(), _net()
    before = dst.state_dict()["1.weight"].clone()
    result = load_weights(dst, src.state_dict(), exclude=("1",))
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(dst.state_dict()["1.weight"], before)
    assert torch.equal(dst.state_dict()["0.weight"], src.state_dict()["0.weight"])


def test_shape_mismatch_names_key_and_both_shapes():
    state = {**_net().state_dict(), "1.weight": torch.zeros(5, 4)}
    with pytest.raises(CheckpointError, match=r"1.weight: checkpoint \(5, 4\) vs model \(2, 4\)"):
        load_weights(_net(), state)
    with pytest.raises(CheckpointError, match=r"x.pt: .*1 shapes differ .*\(5, 4\) vs model"):
        check_state_dict(_net(), state, "x.pt")


def test_missing_and_unexpected_are_reported_or_refused():
    state = dict(_net().state_dict())
    del state["0.bias"]
    state["extra.weight"] = torch.zeros(1)
    result = load_weights(_net(), state)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra.weight"]
    with pytest.raises(CheckpointError, match=r"1 keys missing \(e.g. 0.bias\); 1 unexpected"):
        load_weights(_net(), state, strict=True)


def test_non_tensor_weights_and_non_dicts_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="'model' entry is not a state dict"):
        read_checkpoint({"model": {"w": [1.0]}})
    with pytest.raises(CheckpointError, match="no model weights"):
        read_checkpoint({"epoch": 1})
    path = tmp_path / "t.pt"
    torch.save(torch.zeros(2), path)
    with pytest.raises(CheckpointError, match="t.pt: holds a Tensor"):
        read_checkpoint(path)
