"""DSSA firing-rate buffers and scales, checked on hand-built spike patterns."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional

from eventvision.models import make_neuron
from eventvision.models.layers import DSSA


def _dssa(**kw):
    torch.manual_seed(0)
    m = DSSA(dim=4, num_heads=2, lenth=4, patch_size=1, neuron=make_neuron, **kw)
    with torch.no_grad():  # y = BN(W s) around 3, so the attention neurons fire
        m.norm.bn.bias.fill_(3.0)
    return m


def _input(head0, head1):
    """[T=1, B=1, C=4, 2, 2]; a channel fed 2.0 spikes everywhere (H = 2 / tau = 1 >= 1)."""
    x = torch.zeros(1, 1, 4, 2, 2)
    for c, on in enumerate((*head0, *head1)):
        x[:, :, c] = 2.0 * on
    return x


def _rates(module, x):
    """Capture (matmul1 out, attn-neuron in, matmul2 out, out-neuron in) of one forward."""
    seen = {}
    hooks = [
        module.matmul1.register_forward_hook(lambda m, i, o: seen.__setitem__("mm1", o)),
        module.activation_attn.register_forward_pre_hook(
            lambda m, i: seen.__setitem__("attn_in", i[0])
        ),
        module.matmul2.register_forward_hook(lambda m, i, o: seen.__setitem__("mm2", o)),
        module.activation_out.register_forward_pre_hook(
            lambda m, i: seen.__setitem__("out_in", i[0])
        ),
    ]
    module(x)
    functional.reset_net(module)
    for h in hooks:
        h.remove()
    return seen


def test_first_batch_initialises_then_ema():
    m = _dssa()
    assert m.init_firing_rate_x is False and torch.all(m.firing_rate_x == 0)
    seen = _rates(m, _input((1, 1), (1, 0)))  # rates: head 0 -> 1.0, head 1 -> 0.5
    r1 = torch.tensor([1.0, 0.5]).reshape(1, 1, 2, 1, 1)
    # initialised to r1, then the EMA runs once more with r1 before the scale is computed
    assert torch.equal(m.firing_rate_x, r1 * 0.999 + r1 * (1 - 0.999))
    torch.testing.assert_close(m.firing_rate_x.flatten(), torch.tensor([1.0, 0.5]))
    assert m.init_firing_rate_x is True and m.init_firing_rate_attn is True
    # scale1 = 1 / sqrt(rate_x * dim / heads) multiplies the first product
    scale1 = 1.0 / torch.sqrt(m.firing_rate_x * 2)
    assert torch.equal(seen["attn_in"], seen["mm1"] * scale1)
    # the attention buffer is the per-head mean of the attention spikes
    r_attn = make_neuron("lif")(seen["attn_in"]).mean((0, 1, 3, 4), keepdim=True)
    assert torch.equal(m.firing_rate_attn, r_attn * 0.999 + r_attn * (1 - 0.999))
    assert torch.all(r_attn > 0)
    scale2 = 1.0 / torch.sqrt(m.firing_rate_attn * 4)  # lenth = 4
    torch.testing.assert_close(seen["out_in"], (seen["mm2"] * scale2).reshape(1, 1, 4, 2, 2))

    b1 = m.firing_rate_x.clone()
    _rates(m, _input((1, 0), (0, 0)))  # head 0 -> 0.5, head 1 -> 0.0
    r2 = torch.tensor([0.5, 0.0]).reshape(1, 1, 2, 1, 1)
    assert torch.equal(m.firing_rate_x, b1 * 0.999 + r2 * (1 - 0.999))


def test_eval_uses_and_keeps_the_buffers():
    m = _dssa()
    _rates(m, _input((1, 1), (1, 0)))
    m.eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    seen = _rates(m, _input((1, 0), (0, 1)))
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    scale1 = 1.0 / torch.sqrt(before["firing_rate_x"] * 2)
    assert torch.equal(seen["attn_in"], seen["mm1"] * scale1)


def test_loaded_buffer_is_never_reinitialised():
    m = _dssa()
    state = m.state_dict()
    state["firing_rate_x"] = torch.full((1, 1, 2, 1, 1), 0.25)
    m.load_state_dict(state)
    _rates(m, _input((1, 1), (1, 0)))
    r = torch.tensor([1.0, 0.5]).reshape(1, 1, 2, 1, 1)
    assert torch.equal(m.firing_rate_x, torch.full_like(r, 0.25) * 0.999 + r * (1 - 0.999))


def test_flag_prevents_a_second_initialisation():
    m = _dssa()
    _rates(m, _input((1, 1), (1, 0)))
    m.firing_rate_x.zero_()  # all zero again, but the flag is set: plain EMA from zero
    _rates(m, _input((1, 1), (1, 0)))
    r = torch.tensor([1.0, 0.5]).reshape(1, 1, 2, 1, 1)
    assert torch.equal(m.firing_rate_x, torch.zeros_like(r) * 0.999 + r * (1 - 0.999))


def test_flags_are_not_saved():
    m = _dssa()
    assert sorted(k for k in m.state_dict() if "firing" in k) == [
        "firing_rate_attn",
        "firing_rate_x",
    ]


def test_eval_with_zero_buffers_gives_zero_attention_input_where_official_gives_inf():
    # an untrained model's buffers are 0: the official scale 1/sqrt(0) makes this input
    # non-finite; ours scales a zero-rate head by 0 (docs/models.md, "DSSA")
    m = _dssa().eval()
    with torch.no_grad():
        seen = _rates(m, _input((1, 1), (1, 0)))
    assert torch.equal(seen["attn_in"], torch.zeros_like(seen["attn_in"]))


def test_dim_must_divide_heads():
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        DSSA(dim=6, num_heads=4, lenth=4, patch_size=1, neuron=make_neuron)


@pytest.mark.parametrize("training", [True, False])
def test_a_silent_head_contributes_zero_not_nan(training):
    # head 1 never spikes: its firing rate is 0 and its spike products are 0. The official
    # code scales them by 1 / sqrt(0) and the output turns NaN; the limit, and ours, is 0.
    m = _dssa()
    m.train(training)
    x = _input((1, 1), (0, 0))
    if not training:
        with torch.no_grad():
            m.firing_rate_x.copy_(torch.tensor([0.5, 0.0]).view(1, 1, 2, 1, 1))
            m.firing_rate_attn.copy_(torch.tensor([0.5, 0.0]).view(1, 1, 2, 1, 1))
    seen = _rates(m, x)
    assert m.firing_rate_x.view(-1)[1] == 0
    assert torch.isfinite(seen["out_in"]).all()
    assert torch.equal(seen["out_in"][:, :, 2:], torch.zeros_like(seen["out_in"][:, :, 2:]))
    functional.reset_net(m)
    x.requires_grad_(True)
    m(x).sum().backward()
    assert torch.isfinite(x.grad).all()
