"""Every attention variant trains: the loss falls in a few steps, and a one-epoch CLI run works."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from eventvision.cli.main import main
from spikingjelly.activation_based import functional
from train.test_cli import TINY
from train.tiny import tiny_pipeline

from eventvision.train import build_model
from eventvision.train._data import build_datasets
from eventvision.train.config import _ATTENTIONS, _SCALE_MODES

VARIANTS = [
    {"model.attention": "dssa"},
    {"model.attention": "dssa", "model.attn_scale": "learnable"},
    {"model.attention": "ssa"},
    {"model.attention": "sdsa", "model.sdsa_dvs": True},
    {"model.attention": "qkta"},
]


_INNER = ("q_conv.weight", "k_conv.weight", "v_conv.weight", ".W.weight")


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_the_config_knows_the_models_attentions():
    from eventvision.models.attention import ATTENTIONS, SCALE_MODES

    assert _ATTENTIONS == ATTENTIONS and _SCALE_MODES == SCALE_MODES


@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: "-".join(map(str, o.values())))
def test_the_loss_falls_in_a_few_steps(options, cache):
    pipeline = tiny_pipeline(cache, **options)
    torch.manual_seed(0)
    model = build_model(pipeline, 4)
    assert model.cfg.attention == options["model.attention"]
    train_ds, _, _ = build_datasets(pipeline, augment=False)
    x = torch.stack([train_ds[i][0] for i in range(4)])
    y = torch.tensor([train_ds[i][1] for i in range(4)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-2)
    losses = []
    model.train()
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(model(x).mean(0), y)
        optimizer.zero_grad()
        loss.backward()
        inner = [p.grad for n, p in model.named_parameters() if n.endswith(_INNER)]
        assert any(float(g.abs().sum()) > 0 for g in inner)  # the attention itself learns
        optimizer.step()
        functional.reset_net(model)
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.85 * losses[0], losses


@pytest.mark.parametrize("attention", ["ssa", "sdsa", "qkta"])
def test_one_epoch_from_the_command_line(attention, cache, tmp_path):
    out = tmp_path / "run"
    args = ["--set", f"model.attention={attention}"]
    result = _invoke("train", "--data", cache, "--out", out, "--epochs", "1", *TINY, *args)
    assert result.exit_code == 0, result.output
    assert f'attention = "{attention}"' in (out / "pipeline.toml").read_text()
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["epoch"] == 0 and row["train_loss"] > 0
    result = _invoke("evaluate", out, "--no-save")
    assert result.exit_code == 0, result.output
    assert "SOPs per image" in result.output
    other = "dssa" if attention == "qkta" else "qkta"
    ft = tmp_path / "ft"
    args = [
        "--data",
        cache,
        "--out",
        ft,
        "--epochs",
        "1",
        *TINY,
        "--set",
        f"model.attention={other}",
    ]
    result = _invoke("finetune", out / "last.pt", *args)
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    assert repr(attention) in errors[0] and repr(other) in errors[0]
    assert not (ft / "last.pt").exists()


@pytest.mark.parametrize(
    ("setting", "valid"),
    [("model.attention=flash", _ATTENTIONS), ("model.attn_scale=sqrt", _SCALE_MODES)],
)
def test_an_unknown_attention_is_one_line_listing_the_valid_ones(setting, valid, cache, tmp_path):
    result = _invoke("train", "--data", cache, "--out", tmp_path / "r", *TINY, "--set", setting)
    assert result.exit_code != 0 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and all(v in errors[0] for v in valid), result.output
    assert not (tmp_path / "r").exists()


def test_each_epoch_records_dssa_rate_estimates_beside_measured_rates(cache, tmp_path):
    from eventvision.train import train

    pipeline = tiny_pipeline(cache)  # DSSA, rate scale; 2 epochs
    torch.manual_seed(0)
    model = build_model(pipeline, 4)
    block = model.layers[2][1]  # 2 heads
    sums = {"x": torch.zeros(2, dtype=torch.float64), "n": 0}

    def count(mod, inp, out):  # our own count of the input spikes of the training batches
        if mod.training:
            s = out.detach().double().reshape(*out.shape[:2], 2, -1)  # [T, B, heads, ...]
            sums["x"] += s.sum((0, 1, 3))
            sums["n"] += s[:, :, 0].numel()

    handle = block.activation_in.register_forward_hook(count)
    epochs = []
    result = train(pipeline, tmp_path / "run", model=model, on_epoch=epochs.append)
    handle.remove()
    assert result.epochs == 2
    check = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    check = check["dssa_rate_check"]
    assert set(check) == {"layers.0.0", "layers.1.1", "layers.2.1"}
    last = check["layers.2.1"]["x"]
    assert last["estimate"] == pytest.approx(block.firing_rate_x.flatten().tolist())
    # the last epoch's measured rate: our count over both epochs minus the first epoch's batches
    first = epochs[0]["dssa_rate_check"]["layers.2.1"]["x"]["measured"]
    n_epoch = sums["n"] / 2
    second = (sums["x"] - torch.tensor(first, dtype=torch.float64) * n_epoch) / n_epoch
    assert last["measured"] == pytest.approx(second.tolist(), rel=1e-9, abs=1e-12)
    assert all(0 < m < 1 for m in last["measured"])
    assert epochs[-1]["dssa_rate_error"] >= 0
    png = tmp_path / "rates.png"
    result = _invoke("plot", tmp_path / "run", "--metric", "dssa_rate_error", "--out", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_rate_plot_refuses_a_run_without_the_check(cache, tmp_path):
    from eventvision.train import train

    pipeline = tiny_pipeline(cache, **{"model.attention": "qkta", "train.epochs": 1})
    train(pipeline, tmp_path / "run")
    result = _invoke("plot", tmp_path / "run", "--metric", "dssa_rate_error")
    assert result.exit_code == 1 and "no dssa_rate_check" in result.output
    assert "Traceback" not in result.output


def test_the_rate_check_goes_to_tensorboard_per_block_and_head():
    from eventvision.train.logs import _TB_TAGS, _rate_check_scalars

    row = {"dssa_rate_check": {"layers.0.0": {"x": {"estimate": [0.2], "measured": [0.25]}}}}
    assert _rate_check_scalars(row) == [
        ("dssa_rate/layers.0.0/x_head0_estimate", 0.2),
        ("dssa_rate/layers.0.0/x_head0_measured", 0.25),
    ]
    assert _TB_TAGS["dssa_rate_error"] == "dssa_rate/max_relative_error"
