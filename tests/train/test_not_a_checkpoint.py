"""A file that is not a PyTorch checkpoint at all is reported as such, by both loaders."""

from __future__ import annotations

import pytest
import torch

from eventvision.errors import CheckpointError
from eventvision.models.spikingresformer import load_pretrained
from eventvision.train import load_checkpoint

NOT_CHECKPOINTS = {
    "notes.txt": b"epoch 3: loss 0.41\n",
    "picture.png": b"\x89PNG\r\n\x1a\n" + bytes(32),
    "cache.h5": b"\x89HDF\r\n\x1a\n" + bytes(32),
    "empty.pt": b"",
}


@pytest.mark.parametrize("name", sorted(NOT_CHECKPOINTS))
def test_not_a_pytorch_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(NOT_CHECKPOINTS[name])
    with pytest.raises(CheckpointError, match=f"{name}: not a PyTorch checkpoint") as e:
        load_checkpoint(path)
    assert "pickled objects" not in str(e.value)
    with pytest.raises(CheckpointError, match=f"{name}: not a PyTorch checkpoint"):
        load_pretrained(torch.nn.Linear(2, 2), path)


def test_real_checkpoints_still_load(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    assert set(load_checkpoint(path)["model"]) == {"weight", "bias"}
    legacy = tmp_path / "legacy.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert set(load_checkpoint(legacy)["model"]) == {"weight", "bias"}
    with pytest.raises(CheckpointError, match="is a folder"):
        load_checkpoint(tmp_path)
