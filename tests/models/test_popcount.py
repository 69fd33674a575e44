"""Bit-packed AND + popcount spike products: exact against float matmul, alone and in DSSA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from models.tiny import tiny_firing_model
from spikingjelly.activation_based import functional

from eventvision.models.popcount import and_popcount_matmul, pack_bits, spike_matmul


def test_pack_bits_little_endian_words():
    x = np.zeros((1, 70), np.uint8)
    x[0, [0, 3, 64, 69]] = 1
    words = pack_bits(x)
    assert words.dtype == np.uint64 and words.shape == (1, 2)
    assert words[0, 0] == (1 << 0) | (1 << 3) and words[0, 1] == (1 << 0) | (1 << 5)


@pytest.mark.parametrize(("m", "k", "n"), [(1, 1, 1), (5, 64, 3), (7, 65, 9), (33, 300, 17)])
@pytest.mark.parametrize("density", [0.05, 0.5, 1.0])
def test_spike_matmul_equals_float_matmul_exactly(m, k, n, density):
    g = torch.Generator().manual_seed(m * k * n)
    a = (torch.rand(2, m, k, generator=g) < density).float()
    b = (torch.rand(2, k, n, generator=g) < density).float()
    assert torch.equal(spike_matmul(a, b), a @ b)


def test_spike_matmul_broadcasts_and_keeps_dtype():
    a = (torch.rand(3, 1, 6, 40) > 0.5).double()
    b = (torch.rand(1, 4, 40, 5) > 0.5).double()
    out = spike_matmul(a, b)
    assert out.dtype == torch.float64 and torch.equal(out, a @ b)


def test_spike_matmul_rejects_non_binary_and_bad_shapes():
    with pytest.raises(ValueError, match="not binary"):
        spike_matmul(torch.full((2, 2), 0.5), torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"expected \[\.\.\., M, K\] @ \[\.\.\., K, N\]"):
        spike_matmul(torch.ones(2, 3), torch.ones(2, 3))
    with pytest.raises(ValueError, match="do not match"):
        and_popcount_matmul(np.zeros((1, 2, 1), np.uint64), np.zeros((1, 2, 2), np.uint64))


def test_inside_the_model_in_eval():
    model, x = tiny_firing_model()
    model.eval()
    captured: dict[str, list[torch.Tensor]] = {}

    def run(backend):
        model.set_attention_backend(backend)
        outs = captured.setdefault(backend, [])
        hooks = [
            m.activation_out.register_forward_pre_hook(lambda mod, i: outs.append(i[0]))
            for m in model.modules()
            if hasattr(m, "activation_out")
        ]
        with torch.no_grad():
            logits = model(x)
        functional.reset_net(model)
        for h in hooks:
            h.remove()
        return logits

    ref, reassoc, pop = run("float"), run("float_reassociated"), run("popcount")
    assert torch.equal(pop, reassoc)  # every DSSA input to activation_out too:
    assert all(
        torch.equal(a, b)
        for a, b in zip(captured["popcount"], captured["float_reassociated"], strict=True)
    )
    # the re-associated product equals the official one up to float rounding
    for a, b in zip(captured["float_reassociated"], captured["float"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(pop, ref, rtol=1e-4, atol=1e-4)
