from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from eventvision.data import DVSAugment, DVSAugmentParams
from eventvision.errors import ConfigError


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ramp(*shape: int) -> torch.Tensor:
    return torch.arange(1, math.prod(shape) + 1, dtype=torch.float32).reshape(shape)


def test_flip_exactly_mirrors_the_width_axis():
    x = _ramp(2, 2, 3, 5)
    out = DVSAugment.apply(x, DVSAugmentParams(flip=True, op="roll", shift=(0, 0)))
    for j in range(5):
        assert torch.equal(out[..., j], x[..., 4 - j])
    assert torch.equal(DVSAugment.apply(x, DVSAugmentParams(False, "roll")), x)


def test_roll_equals_torch_roll_by_the_drawn_shifts():
    aug = DVSAugment(ops=("roll",))
    x = _ramp(2, 2, 9, 12)
    shifts = set()
    for seed in range(60):
        params = aug.draw(9, 12, _gen(seed))
        assert params.op == "roll"
        dy, dx = params.shift
        assert -3 <= dy <= 3 and -4 <= dx <= 4  # floor(H/3), floor(W/3)
        shifts.add(params.shift)
        base = torch.flip(x, dims=(-1,)) if params.flip else x
        expected = torch.roll(base, shifts=(dy, dx), dims=(-2, -1))
        assert torch.equal(aug(x, _gen(seed)), expected)
    dys, dxs = {s[0] for s in shifts}, {s[1] for s in shifts}
    assert {-3, 3} <= dys and {-4, 4} <= dxs  # the bounds are reached
    assert any(dy != dx for dy, dx in shifts)  # the axes are drawn independently


def test_rotation_by_90_degrees_is_rot90_and_0_is_identity():
    x = _ramp(3, 2, 6, 6)
    rotate = DVSAugmentParams(flip=False, op="rotate", angle_deg=90.0)
    assert torch.equal(DVSAugment.apply(x, rotate), torch.rot90(x, 1, dims=(-2, -1)))
    rotate = DVSAugmentParams(flip=False, op="rotate", angle_deg=-90.0)
    assert torch.equal(DVSAugment.apply(x, rotate), torch.rot90(x, -1, dims=(-2, -1)))
    assert torch.equal(DVSAugment.apply(x, DVSAugmentParams(False, "rotate", angle_deg=0.0)), x)


def test_rotation_is_nearest_neighbour_with_zero_fill_within_30_degrees():
    aug = DVSAugment(ops=("rotate",), flip_p=0.0)
    x = _ramp(2, 1, 9, 9)
    angles = []
    for seed in range(20):
        params = aug.draw(9, 9, _gen(seed))
        angles.append(params.angle_deg)
        out = aug(x, _gen(seed))
        values = set(out.unique().tolist())
        assert values <= set(x.unique().tolist()) | {0.0}  # nearest: no new values
        assert torch.equal(out[..., 4, 4], x[..., 4, 4])  # the centre stays
        if abs(params.angle_deg) > 10:
            assert out[..., 0, 0].eq(0).all()  # a corner comes from outside: fill 0
    assert all(-30 <= a <= 30 for a in angles) and min(angles) < -15 and max(angles) > 15
    # +30 degrees counter-clockwise moves the pixel right of centre up and to the right
    out = DVSAugment.apply(x, DVSAugmentParams(False, "rotate", angle_deg=30.0))
    assert out[0, 0, 2, 8] == x[0, 0, 4, 8] or out[0, 0, 3, 8] == x[0, 0, 4, 8]


@pytest.mark.parametrize(
    ("size", "center", "rows", "cols"),
    [
        (12, (5, 6), (3, 7), (4, 8)),  # side 2 * (12 // 3 // 2) = 4
        (12, (0, 11), (0, 2), (9, 12)),  # clipped at the top and right border
        (64, (32, 10), (22, 42), (0, 20)),  # side 20 at 64 px
        (128, (64, 127), (43, 85), (106, 128)),  # side 42 at 128 px
    ],
)
def test_cutout_zeros_exactly_a_clipped_square(size, center, rows, cols):
    x = torch.ones(2, 2, size, size)
    out = DVSAugment.apply(x, DVSAugmentParams(flip=False, op="cutout", center=center))
    expected = torch.ones(size, size)
    expected[rows[0] : rows[1], cols[0] : cols[1]] = 0
    assert torch.equal(out, expected.expand_as(x))
    assert torch.equal(x, torch.ones(2, 2, size, size))  # the input is not modified


def test_cutout_centres_are_uniform_pixels():
    aug = DVSAugment(ops=("cutout",))
    centers = [aug.draw(6, 7, _gen(s)).center for s in range(200)]
    assert all(0 <= cy < 6 and 0 <= cx < 7 for cy, cx in centers)
    assert {cy for cy, _ in centers} == set(range(6)) and {cx for _, cx in centers} == set(range(7))


def test_the_same_op_is_applied_to_every_frame_and_channel():
    base = _ramp(1, 1, 10, 10)
    scale = torch.arange(1, 4 * 3 + 1, dtype=torch.float32).reshape(4, 3, 1, 1)
    x = base * scale  # [T=4, C=3, H, W], every frame a multiple of the same image
    aug = DVSAugment()
    for seed in range(30):
        out = aug(x, _gen(seed))
        single = aug(base, _gen(seed))
        assert torch.equal(out, single * scale), aug.draw(10, 10, _gen(seed))


def test_one_op_drawn_uniformly_after_a_fair_flip():
    aug = DVSAugment()
    draws = [aug.draw(64, 64, _gen(s)) for s in range(600)]
    ops = Counter(d.op for d in draws)
    assert set(ops) == {"roll", "rotate", "cutout"} and min(ops.values()) > 150
    assert 240 < sum(d.flip for d in draws) < 360


def test_deterministic_for_a_seed():
    x = _ramp(4, 2, 16, 16)
    a, b, c = DVSAugment(seed=7), DVSAugment(seed=7), DVSAugment(seed=8)
    outs_a = [a(x) for _ in range(10)]
    outs_b = [b(x) for _ in range(10)]
    outs_c = [c(x) for _ in range(10)]
    assert all(torch.equal(p, q) for p, q in zip(outs_a, outs_b, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(outs_a, outs_c, strict=True))
    assert not all(torch.equal(outs_a[0], o) for o in outs_a[1:])  # successive draws differ
    assert torch.equal(a(x, _gen(1)), c(x, _gen(1)))  # an explicit generator wins


def test_invalid_options_raise():
    with pytest.raises(ConfigError, match="ops"):
        DVSAugment(ops=("shear",))
    with pytest.raises(ConfigError, match="flip_p"):
        DVSAugment(flip_p=2)
    assert "DVSAugment(seed=3" in repr(DVSAugment(seed=3))
