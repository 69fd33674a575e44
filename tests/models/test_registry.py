"""Registry, parameter counts and state-dict layout against the official model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from eventvision.errors import ConfigError, UnknownModelError
from eventvision.models import ResformerConfig, create_model, list_models

REFERENCE = (
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "official_state_dicts.json"
)
OFFICIAL = json.loads(REFERENCE.read_text()) if REFERENCE.exists() else {}
needs_reference = pytest.mark.skipif(not OFFICIAL, reason=f"{REFERENCE} not found")

PARAM_COUNTS = {
    ("spikingresformer_ti", ()): 11_180_992,
    ("spikingresformer_s", ()): 17_813_824,
    ("spikingresformer_m", ()): 35_601_472,
    ("spikingresformer_l", ()): 60_375_680,
    ("spikingresformer_cifar", ()): 10_793_152,
    ("spikingresformer_dvsg", ()): 2_709_830,
    ("spikingresformer_s", (("num_classes", 10), ("img_size", 128), ("T", 10))): 17_306_944,
}


def test_list_models():
    assert list_models() == [
        "spikingresformer_cifar",
        "spikingresformer_dvsg",
        "spikingresformer_l",
        "spikingresformer_m",
        "spikingresformer_s",
        "spikingresformer_ti",
    ]


@pytest.mark.parametrize(("name", "overrides"), list(PARAM_COUNTS))
def test_parameter_counts(name, overrides):
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = create_model(name, **dict(overrides))
    assert sum(p.numel() for p in model.parameters()) == PARAM_COUNTS[(name, overrides)]


@needs_reference
@pytest.mark.parametrize("variant", sorted(OFFICIAL))
@pytest.mark.parametrize("impl", ["fused", "spikingjelly"])
def test_state_dict_equals_official(variant, impl):
    info = OFFICIAL[variant]
    with torch.device("meta"):
        model = create_model(info["factory"], **info["kwargs"], neuron_impl=impl)
    ours = [
        [k, list(v.shape), str(v.dtype).removeprefix("torch.")]
        for k, v in model.state_dict().items()
    ]
    assert ours == [entry[:3] for entry in info["state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == info["total_params"]
    for name, c in info["dssa_constants"].items():
        dssa = model.get_submodule(name)
        got = (dssa.dim, dssa.num_heads, dssa.lenth, dssa.patch_size, dssa.momentum)
        assert got == (c["dim"], c["num_heads"], c["lenth"], c["patch_size"], c["momentum"])
        assert dssa.dim // dssa.num_heads == c["scale1_denominator_dim_over_heads"]


@needs_reference
def test_official_layout_loads_strictly():
    info = OFFICIAL["spikingresformer_dvsg"]
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    state = {k: torch.ones(shape, dtype=dtypes[dt]) for k, shape, dt, _ in info["state_dict"]}
    model = create_model("spikingresformer_dvsg")
    model.load_state_dict(state, strict=True)
    assert torch.all(model.layers[0][0].firing_rate_x == 1)


def test_unknown_name_suggests():
    with pytest.raises(UnknownModelError, match=r"did you mean \['spikingresformer_s"):
        create_model("spikingresformer_ss")
    with pytest.raises(ConfigError, match="known: "):
        create_model("resnet")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"planes": (8, 16)}, "one entry per stage"),
        ({"planes": (8, 18, 28), "group_size": 8}, "planes 28 is not divisible by num_heads 6"),
        ({"group_size": 48}, "not divisible by group_size"),
        ({"neuron": "izhikevich"}, "must be one of \\['lif', 'plif'\\]"),
        ({"stem": "huge"}, "must be one of \\['imagenet', 'small'\\]"),
        ({"neuron_impl": "cupy"}, "must be one of \\['fused', 'spikingjelly'\\]"),
        ({"img_size": 3}, "smaller than its patch size"),
        ({"T": 0}, "T must be >= 1"),
        ({"heads": (1, 2, 4)}, "unknown option\\(s\\) \\['heads'\\]"),
    ],
)
def test_bad_configs_say_what_is_valid(overrides, message):
    with pytest.raises(ConfigError, match=message):
        create_model("spikingresformer_cifar", **overrides)


def test_config_is_frozen_and_overridable():
    cfg = create_model(
        "spikingresformer_dvsg",
        img_size=32,
        T=2,
        planes=[8, 16, 32],
        num_heads=[1, 2, 4],
        group_size=8,
    ).cfg
    assert isinstance(cfg, ResformerConfig)
    assert cfg.planes == (8, 16, 32) and cfg.neuron == "plif" and cfg.stem == "small"
    with pytest.raises(AttributeError):
        cfg.T = 3  # type: ignore[misc]
