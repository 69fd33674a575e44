"""The attention variants and DSSA's scale modes against plain references from ATTENTION.md."""

from __future__ import annotations

import copy

import pytest
import torch
from click.testing import CliRunner
from eventvision.cli.main import main
from models.attention_reference import REFERENCES
from spikingjelly.activation_based import functional

from eventvision.errors import CheckpointError, ConfigError
from eventvision.models import create_model
from eventvision.models.attention import ATTENTIONS, SCALE_MODES, make_attention
from eventvision.models.neurons import FusedLIF, neuron_factory

# (attention, options): every mechanism and every DSSA scale mode
CASES = [("dssa", {"scale": mode}) for mode in SCALE_MODES] + [
    ("ssa", {}),
    ("sdsa", {}),
    ("sdsa", {"dvs": True}),
    ("qkta", {"head_dim": 2}),
]
IDS = [f"{k}-{'-'.join(str(v) for v in o.values()) or 'default'}" for k, o in CASES]
# (H, W, patch size): non-square maps, the three patch sizes, sides the patch does not divide
GEOMETRIES = [(6, 5, 1), (9, 6, 2), (12, 9, 4)]


def _block(kind: str, options: dict, h: int, w: int, p: int) -> torch.nn.Module:
    """A float64 block (8 channels, 2 heads) whose random weights make its neurons fire."""
    torch.manual_seed(1)
    block = make_attention(
        kind,
        8,
        2,
        (h // p) * (w // p),
        p,
        neuron_factory("lif"),
        neuron_factory("lif", v_threshold=0.5),
        **options,
    ).double()
    with torch.no_grad():
        for name, prm in block.named_parameters():
            if name.endswith("conv.weight") or name in ("W.weight", "Wproj.weight"):
                fan_in = prm[0].numel()
                prm.copy_(torch.randn_like(prm) * 1.5 / fan_in**0.5)
            elif name.endswith("bn.weight"):
                prm.uniform_(0.8, 1.5)
            elif name.endswith("bn.bias"):
                prm.uniform_(0.6, 1.4)
            elif name in ("scale1", "scale2"):
                prm.mul_(1.3)
    if kind == "dssa":  # y ~ N(b, 1), with b making the attention map fire moderately
        bias = {"rate": 0.5, "const": 6.0, "none": 0.4, "inv_sqrt": 1.2, "learnable": 0.8}
        block.norm.bn.bias.data.fill_(bias[options["scale"]])
    return block


def _x(h: int, w: int) -> torch.Tensor:
    torch.manual_seed(2)
    return (torch.randn(3, 2, 8, h, w, dtype=torch.float64) + 1.0) * 1.5  # [T, B, C, H, W]


def _calibrate(block, x) -> None:
    """One training batch with BN momentum 1: eval statistics (and DSSA rates) of this batch."""
    bns = [m for m in block.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.momentum = 1.0
    with torch.no_grad():
        block.train()(x)
    functional.reset_net(block)
    for m in bns:
        m.momentum = 0.1
    block.eval()


def _spike_rate(block, x) -> float:
    """The fraction of all the block's neurons (all steps) that fired on ``x``."""
    counts = [0.0, 0]

    def hook(mod, inp, out):
        counts[0] += float(out.sum())
        counts[1] += out.numel()

    hooks = [m.register_forward_hook(hook) for m in block.modules() if isinstance(m, FusedLIF)]
    with torch.no_grad():
        block(x)
    functional.reset_net(block)
    for hk in hooks:
        hk.remove()
    return counts[0] / counts[1]


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "x".join(map(str, g)))
@pytest.mark.parametrize(("kind", "options"), CASES, ids=IDS)
def test_eval_forward_equals_the_reference(kind, options, geometry):
    h, w, p = geometry
    block = _block(kind, options, h, w, p)
    x = _x(h, w)
    _calibrate(block, x)
    assert 0.10 <= _spike_rate(block, x) <= 0.40  # a silent block would equal anything
    expected = REFERENCES[kind](block, x, training=False)
    with torch.no_grad():
        out = block(x)
    functional.reset_net(block)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("geometry", GEOMETRIES[1:], ids=lambda g: "x".join(map(str, g)))
@pytest.mark.parametrize(("kind", "options"), CASES, ids=IDS)
def test_training_step_equals_the_reference(kind, options, geometry):
    h, w, p = geometry
    block = _block(kind, options, h, w, p).train()
    x = _x(h, w).requires_grad_()
    assert 0.10 <= _spike_rate(copy.deepcopy(block), x.detach()) <= 0.40
    params = [prm for _, prm in block.named_parameters()]
    expected = REFERENCES[kind](block, x, training=True)  # reads the untouched buffers
    grad_out = torch.randn_like(expected)
    ref_grads = torch.autograd.grad((expected * grad_out).sum(), [x, *params])
    out = block(x)
    grads = torch.autograd.grad((out * grad_out).sum(), [x, *params])
    functional.reset_net(block)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)
    names = ["x"] + [n for n, _ in block.named_parameters()]
    for name, g, r in zip(names, grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-9, atol=1e-9, msg=lambda m, n=name: f"{n}: {m}")
    assert any(float(g.abs().sum()) > 0 for g in grads[1:])


SMALL = {"planes": (8, 16, 32), "num_heads": (1, 2, 4), "group_size": 8}


def _tiny(attention: str, cpu_kernels: bool, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(
        "spikingresformer_cifar",
        **SMALL,
        img_size=(24, 16),
        T=2,
        num_classes=4,
        attention=attention,
        cpu_kernels=cpu_kernels,
        **kw,
    ).double()


@pytest.mark.parametrize(
    ("attention", "kw"),
    [
        ("dssa", {"attn_scale": "learnable"}),
        ("ssa", {}),
        ("sdsa", {"sdsa_dvs": True}),
        ("qkta", {}),
        ("ssa", {"patch_sizes": (1, 2, 4)}),
    ],
)
def test_cpu_kernels_on_and_off_agree_in_float64(attention, kw):
    fast, plain = _tiny(attention, True, **kw), _tiny(attention, False, **kw)
    plain.load_state_dict(fast.state_dict())
    torch.manual_seed(3)
    x = torch.rand(2, 2, 3, 24, 16, dtype=torch.float64) * 3
    results = []
    for model in (fast, plain):
        model.train()
        out = model(x)
        out.square().sum().backward()
        functional.reset_net(model)
        results.append((out, {n: p.grad for n, p in model.named_parameters()}))
    (out_a, grads_a), (out_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b, rtol=1e-10, atol=1e-10)
    assert out_a.abs().sum() > 0
    for name, g in grads_a.items():
        torch.testing.assert_close(g, grads_b[name], rtol=1e-8, atol=1e-10, msg=name)


def test_the_default_is_the_official_dssa_and_its_state_dict():
    default = create_model("spikingresformer_cifar")
    named = create_model("spikingresformer_cifar", attention="dssa", attn_scale="rate")
    assert type(default.layers[0][0]).__name__ == "DSSA"
    assert list(default.state_dict()) == list(named.state_dict())
    assert not any("attention_kind" in k or "scale1" in k for k in default.state_dict())


@pytest.mark.parametrize("mode", ["const", "none", "inv_sqrt"])
def test_buffer_only_scale_modes_load_each_others_checkpoints(mode):
    rate = create_model("spikingresformer_cifar", **SMALL)
    other = create_model("spikingresformer_cifar", **SMALL, attn_scale=mode)
    with torch.no_grad():
        rate.layers[0][0].firing_rate_x.fill_(0.3)
    other.load_state_dict(rate.state_dict())  # strict
    assert float(other.layers[0][0].firing_rate_x.mean()) == pytest.approx(0.3)


def test_learnable_scales_have_no_weight_decay():
    from eventvision.train import param_groups

    model = create_model("spikingresformer_cifar", attn_scale="learnable")
    skip = model.no_weight_decay()
    assert "layers.0.0.scale1" in skip and "layers.2.5.scale2" in skip
    groups = param_groups(model, 0.05)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    scales = [p for n, p in model.named_parameters() if n.endswith(("scale1", "scale2"))]
    assert len(scales) == 12 and not any(id(p) in decayed for p in scales)


@pytest.mark.parametrize(("key", "value"), [("attention", "flash"), ("attn_scale", "sqrt")])
def test_unknown_attention_or_scale_lists_the_valid_ones(key, value):
    with pytest.raises(ConfigError) as e:
        create_model("spikingresformer_cifar", **{key: value})
    valid = ATTENTIONS if key == "attention" else SCALE_MODES
    assert str(value) in str(e.value) and all(v in str(e.value) for v in valid)
    assert "\n" not in str(e.value)


def test_scale_modes_are_a_dssa_option():
    with pytest.raises(ConfigError, match="DSSA option"):
        create_model("spikingresformer_cifar", attention="ssa", attn_scale="const")


@pytest.mark.parametrize(("saved", "loaded"), [("ssa", "sdsa"), ("dssa", "qkta"), ("qkta", "dssa")])
def test_a_checkpoint_of_another_attention_is_refused_naming_both(saved, loaded, tmp_path):
    from eventvision.models import load_weights

    small = SMALL
    state = create_model("spikingresformer_cifar", attention=saved, **small).state_dict()
    model = create_model("spikingresformer_cifar", attention=loaded, **small)
    with pytest.raises(CheckpointError) as e:
        model.load_state_dict(state, strict=False)
    assert repr(saved) in str(e.value) and repr(loaded) in str(e.value)
    torch.save(state, tmp_path / "w.pt")
    for strict in (True, False):
        with pytest.raises(CheckpointError, match=f"attention is {saved!r}"):
            load_weights(model, tmp_path / "w.pt", strict=strict)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_models_command_lists_parameters_per_attention(attention):
    result = CliRunner().invoke(main, ["models", "--attention", attention])
    assert result.exit_code == 0, result.output
    line = next(r for r in result.output.splitlines() if r.startswith("spikingresformer_cifar"))
    with torch.device("meta"):
        n = sum(
            p.numel()
            for p in create_model("spikingresformer_cifar", attention=attention).parameters()
        )
    assert f"{n:,}" in line


def test_parameter_counts_follow_the_conv_weights_of_attention_md():
    # ATTENTION.md, 5: attention conv weights (2p^2+1)C^2 DSSA, (2p^2+2)C^2 SSA/SDSA, 3C^2 QKTA,
    # plus 2 BN parameters per channel of each BN.
    cfg = {"planes": (16, 32, 64), "num_heads": (1, 2, 4), "group_size": 8, "blocks": (1, 1, 1)}
    counts = {}
    for kind in ATTENTIONS:
        model = create_model("spikingresformer_cifar", attention=kind, **cfg)
        counts[kind] = sum(p.numel() for p in model.parameters())
    expect = {"ssa": 0, "sdsa": 0, "qkta": 0}
    for c, p in zip((16, 32, 64), (4, 2, 1), strict=True):
        dssa = (2 * p * p + 1) * c * c + 2 * (2 * c) + 2 * c
        expect["ssa"] += (2 * p * p + 2) * c * c + 4 * 2 * c - dssa
        expect["qkta"] += 3 * c * c + 3 * 2 * c - dssa
    expect["sdsa"] = expect["ssa"]
    for kind, diff in expect.items():
        assert counts[kind] - counts["dssa"] == diff, kind
