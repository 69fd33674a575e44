from __future__ import annotations

import math

import pytest
import torch

from eventvision.models import create_model
from eventvision.train import lr_at_epoch, param_groups
from eventvision.train.config import TrainSpec
from eventvision.train.trainer import _loss, _Mixer, _topk_correct


def test_lr_golden_values():
    # e < 3: 1e-5 + e(lr - 1e-5)/3; else 1e-5 + (lr - 1e-5)(1 + cos(pi e / epochs))/2
    assert lr_at_epoch(0, 5e-4, 300) == pytest.approx(1e-5, rel=1e-12)
    assert lr_at_epoch(1, 5e-4, 300) == pytest.approx(1.7333333333e-4, rel=1e-9)
    assert lr_at_epoch(2, 5e-4, 300) == pytest.approx(3.3666666667e-4, rel=1e-9)
    assert lr_at_epoch(3, 5e-4, 300) == pytest.approx(4.998791073e-4, rel=1e-9)
    assert lr_at_epoch(150, 5e-4, 300) == pytest.approx(2.55e-4, rel=1e-12)
    assert lr_at_epoch(299, 5e-4, 300) == pytest.approx(1.0013432e-5, rel=1e-6)


@pytest.mark.parametrize("lr,epochs", [(5e-4, 300), (1e-3, 320), (4e-5, 100), (1e-4, 7)])
def test_lr_matches_the_formula_every_epoch(lr, epochs):
    for e in range(epochs):
        if e < 3:
            want = 1e-5 + e * (lr - 1e-5) / 3
        else:
            want = 1e-5 + 0.5 * (lr - 1e-5) * (1 + math.cos(math.pi * e / epochs))
        assert lr_at_epoch(e, lr, epochs) == pytest.approx(want, rel=1e-12, abs=0)


def test_param_groups_follow_timms_rule():
    model = create_model(
        "spikingresformer_dvsg",
        img_size=16,
        T=2,
        planes=(8, 16, 32),
        num_heads=(1, 1, 2),
        blocks=(1, 1, 1),
        group_size=8,
        num_classes=3,
    )
    no_decay, decay = param_groups(model, 0.05)
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 0.05
    ids = {id(p) for p in no_decay["params"]} | {id(p) for p in decay["params"]}
    assert ids == {id(p) for p in model.parameters()}
    assert len(no_decay["params"]) + len(decay["params"]) == len(list(model.parameters()))
    names = {id(p): n for n, p in model.named_parameters()}
    plif = [names[id(p)] for p in no_decay["params"] if p.ndim == 0]
    assert plif and all(n.endswith(".w") for n in plif)  # PLIF w: 0-dim, never decayed
    assert all(p.ndim >= 2 for p in decay["params"])  # conv and linear weights
    assert any("bn" in names[id(p)] for p in no_decay["params"])
    model.classifier.weight.requires_grad_(False)
    assert all(
        p is not model.classifier.weight for g in param_groups(model, 0.05) for p in g["params"]
    )


def test_loss_is_on_the_time_mean_and_tet_averages_per_step_losses():
    torch.manual_seed(0)
    out = torch.randn(4, 6, 5)  # [T, B, K]
    y = torch.randint(0, 5, (6,))
    want = torch.nn.functional.cross_entropy(out.mean(0), y)
    assert torch.allclose(_loss(out, y, 0.0, tet=False), want)
    tet = torch.stack([torch.nn.functional.cross_entropy(out[t], y) for t in range(4)]).mean()
    assert torch.allclose(_loss(out, y, 0.0, tet=True), tet)
    soft = torch.nn.functional.one_hot(y, 5).float()  # one-hot soft targets = plain CE
    assert torch.allclose(_loss(out, soft, 0.0, tet=False), want)


def test_topk_counts_hits():
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 2.0, 1.0]])
    assert _topk_correct(logits, torch.tensor([2, 1]), (1, 5)) == [1.0, 2.0]
    soft = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.9, 0.1]])
    assert _topk_correct(logits, soft, (1, 2)) == [1.0, 2.0]


def test_mixup_targets_are_smoothed_and_mixed_like_timm():
    spec = TrainSpec(mixup_alpha=0.5, cutmix_alpha=0.0, label_smoothing=0.1)
    mixer = _Mixer(spec, num_classes=4)
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    y = torch.tensor([0, 3])
    import numpy as np

    np.random.seed(0)
    xm, target = mixer(x, y)
    np.random.seed(0)
    np.random.rand()
    lam = np.random.beta(0.5, 0.5)
    assert torch.allclose(xm, x * lam + x.flip(0) * (1 - lam))
    off, on = 0.1 / 4, 0.9 + 0.1 / 4
    assert target[0, 0].item() == pytest.approx(on * lam + off * (1 - lam), rel=1e-6)
    assert target[0, 3].item() == pytest.approx(off * lam + on * (1 - lam), rel=1e-6)
    assert torch.allclose(target.sum(1), torch.ones(2))
    cut = _Mixer(TrainSpec(mixup_alpha=0.0, cutmix_alpha=1.0), num_classes=4)
    np.random.seed(1)
    xc, tc = cut(x, y)
    pasted = (xc != x).float().mean().item()  # the box area is what the targets say
    assert tc[0, 3].item() == pytest.approx(pasted, abs=1e-6)


@pytest.mark.parametrize(
    ("mixup", "cutmix", "smoothing"), [(0.5, 0.0, 0.1), (0.2, 1.0, 0.1), (0.0, 1.0, 0.0)]
)
def test_mixer_equals_timm_mixup_batch_mode(mixup: float, cutmix: float, smoothing: float):
    import numpy as np
    from timm.data import Mixup

    spec = TrainSpec(mixup_alpha=mixup, cutmix_alpha=cutmix, label_smoothing=smoothing)
    ours = _Mixer(spec, num_classes=10)
    theirs = Mixup(
        mixup_alpha=mixup,
        cutmix_alpha=cutmix,
        prob=1.0,
        switch_prob=0.5,
        mode="batch",
        label_smoothing=smoothing,
        num_classes=10,
    )
    gen = torch.Generator().manual_seed(0)
    for seed in range(8):
        x = torch.randn(6, 3, 16, 16, generator=gen)
        y = torch.randint(0, 10, (6,), generator=gen)
        np.random.seed(seed)
        got_x, got_t = ours(x.clone(), y)
        np.random.seed(seed)
        want_x, want_t = theirs(x.clone(), y)
        assert torch.equal(got_x, want_x), seed
        assert torch.allclose(got_t, want_t, atol=1e-7), seed


def test_frames_are_cut_and_mixed_with_one_box_for_every_step_like_timm():
    import numpy as np
    from timm.data import Mixup

    spec = TrainSpec(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.1)
    x = torch.randn(4, 3, 2, 8, 8, generator=torch.Generator().manual_seed(0))  # [B, T, C, H, W]
    y = torch.tensor([0, 1, 2, 3])
    before = x.clone()
    np.random.seed(3)
    got_x, got_t = _Mixer(spec, num_classes=5)(x, y)
    assert torch.equal(x, before)  # the input is not written to
    pasted = got_x != x  # [B, T, C, H, W]
    assert pasted.any() and bool((pasted == pasted[:, :1, :1]).all())  # one box, every step
    box = pasted[0, 0, 0]
    rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
    region = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
    assert torch.equal(got_x[..., region[0], region[1]], x.flip(0)[..., region[0], region[1]])
    np.random.seed(3)
    mixup = Mixup(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=5)
    want_x, want_t = mixup(x.reshape(4, 6, 8, 8).clone(), y)
    assert torch.equal(got_x, want_x.reshape(x.shape)) and torch.equal(got_t, want_t)


def test_mixing_needs_an_even_batch():
    from eventvision.errors import ConfigError

    with pytest.raises(ConfigError, match="need an even batch_size, got 3"):
        TrainSpec(mixup_alpha=0.5, batch_size=3)
    TrainSpec(mixup_alpha=0.0, batch_size=3)  # no mixing: any batch
    mixer = _Mixer(TrainSpec(mixup_alpha=0.5), num_classes=3)
    with pytest.raises(ConfigError, match="need an even batch, got 3 samples"):
        mixer(torch.zeros(3, 2, 1, 4, 4), torch.tensor([0, 1, 2]))


def test_lr_is_timms_cosine_scheduler_on_the_optimizer():
    from timm.scheduler import CosineLRScheduler

    from eventvision.train.schedule import lr_schedule

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=5e-4)
    scheduler = lr_schedule(5e-4, 20, warmup_epochs=3, optimizer=opt)
    assert isinstance(scheduler, CosineLRScheduler) and scheduler.optimizer is opt
    for e in [0, 1, 2.5, 3, 10, 19]:
        scheduler.step(e)
        assert opt.param_groups[0]["lr"] == lr_at_epoch(e, 5e-4, 20)
    # the fractional warm-up (warmup_per_iter) is the straight line between epochs
    assert lr_at_epoch(0.5, 5e-4, 20) == pytest.approx(1e-5 + 0.5 * (5e-4 - 1e-5) / 3, rel=1e-12)


def test_topk_counts_equal_a_plain_count_on_random_logits():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(37, 7, generator=gen)
    target = torch.randint(0, 7, (37,), generator=gen)
    rank = (logits > logits.gather(1, target[:, None])).sum(1)  # classes scored above the target
    want = [float((rank < k).sum()) for k in (1, 5)]
    assert _topk_correct(logits, target, (1, 5)) == want
