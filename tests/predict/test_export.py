"""Export: plain-op twins of the neurons and kernels, ONNX and torch.export equal to eager."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from spikingjelly.activation_based import functional

from cli.main import main
from eventvision.data import FrameDataset
from eventvision.models import create_model
from eventvision.predict import Predictor
from eventvision.predict.export import exportable


@pytest.mark.parametrize(
    ("neuron", "impl"),
    [
        # spikingjelly's stock CPU neurons compile their scripts on first use: ~18 s loaded
        pytest.param("lif", "spikingjelly", marks=pytest.mark.slow),
        ("plif", "fused"),
    ],
)
def test_plain_twin_equals_the_eager_model(neuron, impl):
    """Stock spikingjelly neurons and the fused CPU kernels give way to plain ops, same output."""
    torch.manual_seed(0)
    cfg = dict(planes=(8, 16), num_heads=(1, 2), patch_sizes=(2, 1), blocks=(1, 1))
    model = create_model(
        "spikingresformer_dvsg",
        img_size=16,
        time_steps=3,
        num_classes=5,
        group_size=8,
        neuron=neuron,
        neuron_impl=impl,
        stem="small",
        **cfg,
    )
    for m in model.modules():  # wide batch norms: spikes in every layer
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 1.0, 3.0)
    model.train()
    x = torch.rand(4, 3, 3, 16, 16) * 3  # [B, T, C, H, W]
    with torch.no_grad():
        model(x)  # firing-rate buffers and running statistics from a train-mode pass
    functional.reset_net(model)
    model.eval()
    with torch.no_grad():
        eager = model(x).mean(0)
        functional.reset_net(model)
        plain = exportable(model)
        twice = [plain(x), plain(x)]  # no state kept between calls
    assert not any(type(m).__module__.startswith("spikingjelly") for m in plain.modules())
    assert torch.equal(twice[0], twice[1])
    torch.testing.assert_close(twice[0], eager, rtol=0, atol=1e-5)
    assert eager.std(0).min() > 0  # the inputs give different logits


@pytest.mark.slow  # two exports of the tiny run: ~20 s on the loaded 2-core box
def test_onnx_and_pt2_equal_eager_on_every_test_sample(tiny_run, tiny_cache, tmp_path):
    import onnxruntime as ort

    test = FrameDataset(tiny_cache, "test")
    x = torch.stack([test[i][0] for i in range(len(test))])  # [8, T, C, h, w]
    eager = Predictor(tiny_run, batch_size=len(test)).logits(x)
    for fmt in ("onnx", "pt2"):
        out = tmp_path / f"model.{fmt}"
        r = CliRunner().invoke(
            main,
            ["export", str(tiny_run), "--format", fmt, "--out", str(out)],
            catch_exceptions=False,
        )
        assert r.exit_code == 0 and "input batchx2x3x16x16, 4 classes" in r.output, r.output
        sidecar = json.loads((tmp_path / f"model.{fmt}.json").read_text(encoding="utf-8"))
        assert sidecar["classes"] == ["a", "b", "c", "d"]
        assert sidecar["binning"]["time_steps"] == 2 and sidecar["input"]["dtype"] == "float32"
        if fmt == "onnx":
            session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            got = session.run(None, {"frames": x.numpy()})[0]
            one = session.run(None, {"frames": x[:1].numpy()})[0]  # the batch is dynamic
            np.testing.assert_allclose(one[0], got[0], rtol=0, atol=1e-5)
        else:
            got = torch.export.load(str(out)).module()(x).detach().numpy()
        np.testing.assert_allclose(got, eager, rtol=0, atol=1e-4)
        assert np.array_equal(got.argmax(1), eager.argmax(1))
    assert not list(tmp_path.glob(".*"))


def test_export_refuses_an_unknown_format_and_a_bare_checkpoint(tiny_run, tmp_path):
    r = CliRunner().invoke(main, ["export", str(tiny_run), "--format", "tflite", "-o", "m"])
    assert r.exit_code == 2 and "tflite" in r.output
    bare = tmp_path / "m.pt"
    bare.write_bytes((tiny_run / "best.pt").read_bytes())
    r = CliRunner().invoke(main, ["export", str(bare), "-o", str(tmp_path / "m.onnx")])
    assert r.exit_code == 1 and "no data.json" in r.output and "--binning" in r.output, r.output
    assert not (tmp_path / "m.onnx").exists()
