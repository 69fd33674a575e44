"""Two gloo processes train a tiny SpikingResformer (BatchNorm, DSSA buffers) into one model."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from train.tiny import tiny_pipeline, write_cache

from eventvision.errors import ConfigError
from eventvision.train.distributed import DistInfo, average_buffers, check_sync_bn

TESTS = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent(
    """
    import os, sys
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[1])
    from train.tiny import tiny_pipeline
    from eventvision.train import build_model, train

    cache, run_dir, out = sys.argv[2], sys.argv[3], sys.argv[4]
    broadcast = sys.argv[5] == "1"
    pipe = tiny_pipeline(cache, **{"train.batch_size": 8, "train.epochs": 1, "data.size": 32,
                                   "train.ddp_broadcast_buffers": broadcast})
    model = build_model(pipe, 4)
    train(pipe, run_dir, model=model)
    rank = int(os.environ["RANK"])
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(state, f"{out}/rank{rank}.pt")
    """
)


@pytest.mark.parametrize(
    "broadcast", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["average", "ddp-bb"]
)
def test_every_state_tensor_is_equal_across_ranks_after_training(tmp_path, broadcast):
    """One choice per run: averaged rank-local buffers (default) or DDP's broadcast (--ddp-bb)."""
    # 32 px, 32 training samples (two steps of 8 per rank): every DSSA head of the tiny model
    # fires, so every firing-rate buffer holds a rate (at 16 px one may stay silent: scaled by 0)
    cache = write_cache(tmp_path / "cache.h5", n_train=32, size=32)
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += [str(tmp_path / "worker.py"), str(TESTS), str(cache), str(tmp_path / "run")]
    proc = subprocess.run(
        [*cmd, str(tmp_path), str(int(broadcast))],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
    bn = [k for k in rank0 if k.endswith("running_mean")]
    rates = [k for k in rank0 if k.rsplit(".", 1)[-1].startswith("firing_rate")]
    assert bn and rates  # the model has BN statistics and DSSA buffers to disagree on
    assert any(rank0[k].abs().sum() > 0 for k in rates)
    assert sorted(rank0) == sorted(rank1) == sorted(saved)
    unequal = [k for k in rank0 if not torch.equal(rank0[k], rank1[k])]
    assert unequal == [], f"{len(unequal)} of {len(rank0)} state tensors differ: {unequal[:5]}"
    assert all(torch.equal(saved[k], rank0[k]) for k in rank0)


def test_ddp_gets_one_buffer_choice(monkeypatch, tmp_path):
    from eventvision.train import trainer

    seen = {}

    def fake_wrap(model, info, sync_bn=False, broadcast_buffers=False):
        seen["broadcast_buffers"] = broadcast_buffers
        raise RuntimeError("stop")

    monkeypatch.setattr(trainer, "wrap_model", fake_wrap)
    cache = write_cache(tmp_path / "cache.h5", n_train=8)
    for flag in (False, True):
        pipe = tiny_pipeline(cache, **{"train.ddp_broadcast_buffers": flag})
        with pytest.raises(RuntimeError, match="stop"):
            trainer.train(pipe, tmp_path / f"run-{flag}")
        assert seen["broadcast_buffers"] is flag


def test_average_buffers_is_a_no_op_in_one_process():
    bn = torch.nn.BatchNorm2d(3)
    bn.running_mean.fill_(2.0)
    assert average_buffers(bn, DistInfo()) == 0
    assert torch.equal(bn.running_mean, torch.full((3,), 2.0))


def test_sync_bn_on_cpu_with_several_processes_is_refused():
    check_sync_bn(True, DistInfo())  # one process: nothing to synchronise
    check_sync_bn(False, DistInfo(rank=0, world_size=2))
    with pytest.raises(ConfigError, match="sync_bn = true needs CUDA"):
        check_sync_bn(True, DistInfo(rank=0, world_size=2))


def test_only_rank_zero_prints(monkeypatch, capsys):
    from eventvision.cli.train import _echo_main

    monkeypatch.setenv("RANK", "1")
    _echo_main("summary")
    monkeypatch.setenv("RANK", "0")
    _echo_main("summary")
    assert capsys.readouterr().out == "summary\n"
