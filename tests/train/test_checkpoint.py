from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from eventvision.errors import CheckpointError, PathError
from eventvision.train.checkpoint import (
    check_state_dict,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def test_save_is_atomic_and_loads_with_weights_only(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    payload = {"model": {"w": torch.ones(2)}, "epoch": 3, "pipeline": {"train": {"lr": 1e-3}}}
    save_checkpoint(payload, path)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left
    raw = torch.load(path, weights_only=True)
    assert raw["epoch"] == 3 and torch.equal(raw["model"]["w"], torch.ones(2))
    assert load_checkpoint(path)["pipeline"] == {"train": {"lr": 1e-3}}


def test_raw_and_ddp_state_dicts_are_read(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save({"module.a": torch.zeros(1), "module.b": torch.ones(1)}, path)
    assert sorted(load_checkpoint(path)["model"]) == ["a", "b"]


def test_truncated_foreign_and_missing_checkpoints_raise(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint({"model": {"w": torch.randn(100, 100)}}, good)
    data = good.read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt: not a readable checkpoint"):
        load_checkpoint(bad)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pt: not a PyTorch checkpoint"):
        load_checkpoint(text)
    code = tmp_path / "code.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, code)  # a pickled module: refused
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(code)
    other = tmp_path / "other.pt"
    torch.save({"epoch": 1, "notes": "x"}, other)
    with pytest.raises(CheckpointError, match="no model weights"):
        load_checkpoint(other)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


def test_check_state_dict_names_the_difference():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    state = model.state_dict()
    check_state_dict(model, state, "x.pt")
    with pytest.raises(CheckpointError, match=r"x.pt: weights of another architecture: .*shapes"):
        check_state_dict(model, {**state, "1.weight": torch.zeros(5, 4)}, "x.pt")
    with pytest.raises(CheckpointError, match="keys missing"):
        check_state_dict(model, {k: v for k, v in state.items() if k != "0.bias"}, "x.pt")
    check_state_dict(
        model, {k: v for k, v in state.items() if k[0] == "0"}, "x.pt", exclude=("1.",)
    )


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    save_checkpoint({"model": {}, "rng": rng_state()}, tmp_path / "r.pt")
    want = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(torch.load(tmp_path / "r.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == want


# save_checkpoint in a process whose files may not grow past 64 KiB: the write fails (EFBIG).
SMALL_FILES = """
import resource, signal, sys, torch
from eventvision.train.checkpoint import save_checkpoint
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, 1 << 16))
try:
    save_checkpoint({"model": {"w": torch.zeros(1 << 16)}}, sys.argv[1])
except Exception as e:
    print(type(e).__name__, e)
"""


def test_a_failed_write_names_the_checkpoint_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}, "epoch": 1}, path)
    before = path.read_bytes()
    out = subprocess.run(
        [sys.executable, "-c", SMALL_FILES, str(path)], capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip() == f"PathError {path}: cannot write: File too large", out
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left


def test_a_planted_temporary_link_is_refused_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / ".last.pt.tmp").symlink_to(victim)
    with pytest.raises(PathError, match="symbolic link"):
        save_checkpoint({"model": {"w": torch.ones(2)}}, tmp_path / "last.pt")
    assert victim.read_text() == "precious\n" and not (tmp_path / "last.pt").exists()
