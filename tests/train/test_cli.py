"""`eventvision train/finetune/evaluate/plot/quickstart` through click's CliRunner."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from eventvision.cli.main import main
from helpers import digest_tree
from train.tiny import SIZE, TIME_STEPS

# The tiny cache is a `folder` cache: name the paper's CIFAR10-DVS recipe and accept any dataset.
TINY = [
    "--pipeline",
    "cifar10dvs-direct",
    "--set",
    "data.dataset=",
    "--time-steps",
    str(TIME_STEPS),
    "--size",
    str(SIZE),
    "--batch-size",
    "8",
    "--lr",
    "5e-3",
    "--set",
    "model.planes=[8, 16, 32]",
    "--set",
    "model.num_heads=[1, 1, 2]",
    "--set",
    "model.blocks=[1, 1, 1]",
    "--set",
    "model.group_size=8",
    "--set",
    "model.stem=imagenet",
    "--set",
    "model.num_classes=4",
    "--set",
    "data.augment=none",
    "--set",
    "train.warmup_epochs=0",
    "--no-progress",
]


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def ok(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str, match: str, code: int = 1) -> str:
    """A one-line error, the given exit status, no traceback."""
    result = invoke(*args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and match in lines[0], result.output
    return lines[0]


@pytest.mark.parametrize("command", ["train", "finetune", "evaluate", "plot", "quickstart"])
def test_help_lists_every_option_with_its_default(command):
    text = ok(command, "--help")
    cmd = main.commands[command]
    for param in cmd.params:
        if param.param_type_name != "option" or param.name == "help":
            continue
        assert param.opts[0] in text, param.name
        assert param.help and ("default" in param.help or param.show_default), param.name
    assert text.count("[default") >= len([p for p in cmd.params if p.param_type_name == "option"])


@pytest.fixture(scope="module")
def cli_run(cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    text = ok("train", "--data", cache, "--out", out, "--epochs", "1", *TINY)
    assert f"run {out}: 1 epochs" in text
    # the recipe's amp = true cannot apply on the CPU: said on stderr and in train.log
    warning = '[train] amp = true with amp_dtype = "float16" needs CUDA'
    assert f"WARNING: {warning}" in text and warning in (out / "train.log").read_text()
    return out


def test_train_evaluate_plot_resume(cli_run, cache, tmp_path):
    assert "epochs = 1" in (cli_run / "pipeline.toml").read_text()
    assert "planes = [8, 16, 32]" in (cli_run / "pipeline.toml").read_text()
    text = ok("evaluate", cli_run, "--no-energy")
    assert "top-1 accuracy (%)" in text and "samples" in text
    png = tmp_path / "curves.png"
    ok("plot", cli_run, "--out", png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = digest_tree(cli_run)
    ok("train", "--resume", cli_run, "--no-progress")  # finished: nothing to do
    assert digest_tree(cli_run) == before


def test_bad_input_is_a_one_line_error_and_damages_nothing(cli_run, cache, paper_cache, tmp_path):
    before = digest_tree(cli_run)
    fails(
        "train",
        "--pipeline",
        "cifar10dvs-drect",
        "--data",
        cache,
        match="did you mean cifar10dvs-direct",
    )
    fails(
        "train",
        "--data",
        cache,
        "--model",
        "spikingresformer_tiny",
        "--out",
        tmp_path / "r",
        *TINY,
        match="did you mean",
    )
    fails(
        "train",
        "--data",
        tmp_path / "missing.h5",
        "--out",
        tmp_path / "r",
        match="no such cache file",
    )
    fails(
        "train",
        "--data",
        paper_cache,
        "--out",
        tmp_path / "r",
        match="expects time_steps=16, size=64",
    )  # the paper's recipe on a T=2, 16 px cache
    fails(
        "train",
        "--data",
        cache,
        "--out",
        cli_run,
        "--epochs",
        "1",
        *TINY,
        "--lr",
        "1e-3",
        match="already holds a different run",
    )
    fails("train", "--data", cache, "--out", cli_run, "--epochs", "1", *TINY, match="--resume")
    fails("train", "--data", cache, "--set", "train.epoch=1", match="did you mean 'epochs'")
    broken = tmp_path / "broken.pt"
    broken.write_bytes((cli_run / "last.pt").read_bytes()[:2000])
    fails("evaluate", broken, match="truncated")
    fails("finetune", broken, "--data", cache, "--out", tmp_path / "ft", *TINY, match="truncated")
    foreign = tmp_path / "foreign.pt"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, foreign)
    fails(
        "finetune",
        foreign,
        "--data",
        cache,
        "--out",
        tmp_path / "ft",
        *TINY,
        match="weights of another architecture",
    )
    fails("evaluate", foreign, match="stores no pipeline")
    fails("train", "--resume", cli_run, "--lr", "1", match="may change only --data")
    fails("train", "--set", "lr", match="section.key=value", code=2)
    assert digest_tree(cli_run) == before
    assert not (tmp_path / "r").exists() and not (tmp_path / "ft").exists()
