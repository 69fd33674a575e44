"""Two CPU processes under torchrun (gloo) train like one process on the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from train.tiny import tiny_pipeline

from eventvision.train import read_metrics, train

TESTS = Path(__file__).resolve().parents[1]

# BatchNorm normalises with per-process batch statistics, which differ from the global
# batch's by design (SyncBN is CUDA-only), so the comparison uses a BN-free spiking model.
MODEL = textwrap.dedent(
    """
    import torch
    from spikingjelly.activation_based import neuron, surrogate
    from torch import nn

    class NoBatchNormSNN(nn.Module):
        def __init__(self, classes):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.lif = neuron.LIFNode(
                step_mode="m", detach_reset=True, surrogate_function=surrogate.ATan()
            )
            self.classifier = nn.Linear(8, classes)

        def forward(self, x):  # [B, T, C, H, W] -> [T, B, classes]
            x = x.transpose(0, 1)  # [T, B, C, H, W]
            T, B = x.shape[:2]
            y = self.conv(x.flatten(0, 1)).reshape(T, B, 8, *x.shape[-2:])  # [T, B, 8, H, W]
            return self.classifier(self.lif(y).mean((-2, -1)))  # [T, B, classes]

    def make_model():
        torch.manual_seed(0)
        return NoBatchNormSNN(4)
    """
)

WORKER = textwrap.dedent(
    """
    import os, sys
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from train.tiny import tiny_pipeline
    from eventvision.train import train
    from nobn import make_model

    cache, run_dir, out = sys.argv[2], sys.argv[3], sys.argv[4]
    model = make_model()
    pipe = tiny_pipeline(cache, **{"train.batch_size": 4, "train.epochs": 2})
    train(pipe, run_dir, model=model)
    rank = int(os.environ["RANK"])
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(weights, f"{out}/rank{rank}.pt")
    """
)


def test_two_gloo_processes_match_one_process_on_the_same_global_batch(cache, tmp_path):
    (tmp_path / "nobn.py").write_text(MODEL)
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        str(tmp_path / "worker.py"),
        str(TESTS),
        str(cache),
        str(tmp_path / "ddp"),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key  # DDP keeps the replicas identical

    sys.path.insert(0, str(tmp_path))
    try:
        from nobn import make_model
    finally:
        sys.path.remove(str(tmp_path))
    single = train(
        tiny_pipeline(cache, **{"train.batch_size": 8, "train.epochs": 2}),
        tmp_path / "single",
        model=make_model(),
    )
    want = torch.load(single.last_checkpoint, weights_only=True)["model"]
    saved = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)["model"]
    for key in want:
        assert torch.allclose(rank0[key], want[key], rtol=1e-5, atol=1e-6), key
        assert torch.equal(saved[key], rank0[key]), key  # rank 0 wrote the checkpoint
    ddp_rows, single_rows = read_metrics(tmp_path / "ddp"), read_metrics(single.run_dir)
    assert len(ddp_rows) == 2
    for a, b in zip(ddp_rows, single_rows, strict=True):  # metrics are reduced over both processes
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5
        assert a["test_acc1"] == b["test_acc1"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_with_c10d_rendezvous_match_one_node_with_two_processes(cache, tmp_path):
    (tmp_path / "nobn.py").write_text(MODEL)
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = [sys.executable, "-m", "torch.distributed.run"]

    def args(name: str) -> list[str]:
        (tmp_path / name).mkdir()
        out = [str(tmp_path / "worker.py"), str(TESTS), str(cache), str(tmp_path / name / "run")]
        return [*out, str(tmp_path / name)]

    one_node = [*run, "--standalone", "--nnodes", "1", "--nproc-per-node", "2", *args("one")]
    rdzv = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{_free_port()}"]
    node = [*run, "--nnodes", "2", "--nproc-per-node", "1", *rdzv, "--rdzv-id", "ev-test"]
    two = args("two")
    # two "machines": two launchers that meet at the rendezvous, one process each
    pipe = {"env": env, "stdout": subprocess.PIPE, "stderr": subprocess.STDOUT}
    nodes = [subprocess.Popen([*node, *two], **pipe) for _ in range(2)]
    single = subprocess.run(one_node, env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]
    for p in nodes:
        output = p.communicate(timeout=300)[0].decode()
        assert p.returncode == 0, output[-3000:]
    want = torch.load(tmp_path / "one" / "run" / "last.pt", weights_only=True)["model"]
    got = torch.load(tmp_path / "two" / "run" / "last.pt", weights_only=True)["model"]
    assert sorted(want) == sorted(got)
    for key in want:
        assert torch.equal(want[key], got[key]), key
    for rank in (0, 1):  # both nodes' replicas ended equal to the checkpoint
        replica = torch.load(tmp_path / "two" / f"rank{rank}.pt", weights_only=True)
        assert all(torch.equal(replica[k], got[k]) for k in got)
    timing = ("epoch_time_s", "train_samples_per_s", "test_samples_per_s")
    rows = [read_metrics(tmp_path / name / "run") for name in ("one", "two")]
    for a, b in zip(*rows, strict=True):  # the same epochs, timing aside
        assert {k: v for k, v in a.items() if k not in timing} == {
            k: v for k, v in b.items() if k not in timing
        }
