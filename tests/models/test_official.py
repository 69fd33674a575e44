"""Our SpikingResformer against the official model code, on the same weights and inputs."""

from __future__ import annotations

import pytest
import torch
from official import OFFICIAL_DIR, import_official
from spikingjelly.activation_based import functional, layer

from eventvision.models import create_model

pytestmark = pytest.mark.skipif(
    not (OFFICIAL_DIR / "models").is_dir(), reason=f"{OFFICIAL_DIR} not found"
)

TINY = dict(planes=(8, 16, 32), num_heads=(1, 2, 4), patch_sizes=(4, 2, 1), group_size=8)


def _official_tiny(T: int, img: int, classes: int):
    """The official class with the dvsg stem and PLIF at tiny widths."""
    official = import_official("spikingresformer")
    BN, PLIF = (getattr(import_official("submodules.layers"), k) for k in ("BN", "PLIF"))
    prologue = torch.nn.Sequential(layer.Conv2d(3, 8, 3, 1, 1, bias=False, step_mode="m"), BN(8))
    kinds = [["DSSA", "GWFFN"] * n for n in (1, 2, 1)]
    return official.SpikingResformer(
        kinds,
        list(TINY["planes"]),
        list(TINY["num_heads"]),
        list(TINY["patch_sizes"]),
        img_size=img,
        T=T,
        num_classes=classes,
        prologue=prologue,
        group_size=8,
        activation=PLIF,
    )


def _train_step(model, x, y):
    out = model(x)
    loss = torch.nn.functional.cross_entropy(out.mean(0), y)
    loss.backward()
    functional.reset_net(model)
    return out.detach(), {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.slow  # spikingjelly's stock CPU neurons: ~3 s quiet, ~20 s on the loaded 2-core box
def test_first_training_step_equals_the_official_code():
    torch.manual_seed(0)
    theirs = _official_tiny(T=2, img=16, classes=5)
    ours = create_model(
        "spikingresformer_dvsg", **TINY, blocks=(1, 2, 1), img_size=16, T=2, num_classes=5
    )
    ours.load_state_dict(theirs.state_dict(), strict=True)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 2, 3, 16, 16, generator=g) * 3  # [B, T, C, H, W]
    y = torch.randint(0, 5, (3,), generator=g)
    out_t, grads_t = _train_step(theirs.train(), x, y)
    out_o, grads_o = _train_step(ours.train(), x, y)
    torch.testing.assert_close(out_o, out_t, rtol=1e-5, atol=1e-6)
    assert grads_o.keys() == grads_t.keys()
    for name, grad in grads_t.items():
        torch.testing.assert_close(grads_o[name], grad, rtol=1e-3, atol=1e-6, msg=name)
    for name, buf in theirs.named_buffers():  # BN statistics and DSSA firing rates
        torch.testing.assert_close(dict(ours.named_buffers())[name], buf, msg=name)


@pytest.mark.slow  # the full variant at T=1, batch 2: ~4 s quiet, ~40 s on the loaded 2-core box
def test_a_float64_training_step_of_spikingresformer_cifar_equals_the_official_code():
    # the full variant with every CPU fast path on (spike-driven convolutions, in-place BN,
    # pooled buffers, fused neurons): in float64 its sums in another order flip no spike, so
    # the loss and every gradient agree with the official code to 1e-9
    torch.manual_seed(0)
    theirs = import_official().spikingresformer_cifar(T=1, img_size=32, num_classes=10)
    ours = create_model("spikingresformer_cifar", T=1, img_size=32, num_classes=10)
    theirs, ours = theirs.double().train(), ours.double().train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 32, 32, generator=g, dtype=torch.float64)  # [B, C, H, W]
    y = torch.randint(0, 10, (2,), generator=g)
    out_t, grads_t = _train_step(theirs, x, y)
    out_o, grads_o = _train_step(ours, x, y)
    loss_t = torch.nn.functional.cross_entropy(out_t.mean(0), y)
    loss_o = torch.nn.functional.cross_entropy(out_o.mean(0), y)
    torch.testing.assert_close(loss_o, loss_t, rtol=0, atol=1e-12)
    torch.testing.assert_close(out_o, out_t, rtol=1e-10, atol=1e-10)
    assert grads_o.keys() == grads_t.keys()
    for name, grad in grads_t.items():
        torch.testing.assert_close(grads_o[name], grad, rtol=1e-9, atol=1e-9, msg=name)


def test_importing_the_official_code_leaves_timm_building_ours():
    import timm

    import eventvision.models  # noqa: F401  (registers ours in timm)

    import_official()
    for name in ("spikingresformer_cifar", "spikingresformer_dvsg", "spikingresformer_ti"):
        assert timm.models.model_entrypoint(name).__module__ == "eventvision.models._timm"
