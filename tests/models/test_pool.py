"""The layers' buffer pool: a tensor is handed out again only once nothing refers to it."""

import copy
import pickle
import threading

import pytest
import torch
from models.tiny import tiny_firing_model
from spikingjelly.activation_based import functional

from eventvision.errors import ConfigError
from eventvision.models import create_model
from eventvision.models import pool as pool_mod
from eventvision.models.layers import SpikingMatmul
from eventvision.models.pool import BufferPool

TINY = dict(planes=(8, 16, 32), num_heads=(1, 2, 4), group_size=8, T=2, img_size=32)

SHAPE = (256, 1024)  # 1 MiB of float32: the pool's smallest


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _saved_by_autograd(t):
    w = torch.ones(1, requires_grad=True)
    return t * w  # mul keeps t for w's gradient


HOLDERS = {
    "a reference": lambda t: t,
    "a view": lambda t: t[0],
    "a reshaped view": lambda t: t.view(-1),
    "a numpy array": lambda t: t.numpy(),
    "its storage": lambda t: t.untyped_storage(),
    "autograd's saved tensors": _saved_by_autograd,
}


@pytest.mark.parametrize("holder", HOLDERS.values(), ids=HOLDERS.keys())
def test_a_buffer_is_handed_out_again_only_once_nothing_refers_to_it(holder):
    pool = BufferPool()
    t = pool.empty(SHAPE, torch.float32)
    first = _storage(t)
    kept = holder(t)
    del t
    assert _storage(pool.empty(SHAPE, torch.float32)) != first
    del kept
    again = pool.empty(SHAPE, torch.float32)
    assert _storage(again) == first
    assert again.shape == SHAPE and again.is_contiguous() and again._base is None


def test_a_buffer_serves_any_shape_of_its_size_and_dtype():
    pool = BufferPool()
    first = _storage(pool.empty(SHAPE, torch.float32))
    assert _storage(pool.empty((4, 64, 1024), torch.float32)) == first
    assert _storage(pool.empty((4, 64, 1024), torch.int32)) != first
    assert _storage(pool.empty((4, 64, 2048), torch.float32)) != first


def test_new_step_releases_the_buffers_a_step_did_not_use():
    pool = BufferPool()
    pool.empty(SHAPE, torch.float32)
    pool.empty((512, 1024), torch.float32)
    pool.new_step()
    pool.empty(SHAPE, torch.float32)  # this step uses only the first size
    pool.new_step()
    assert pool.nbytes == 256 * 1024 * 4
    pool.new_step()
    assert pool.nbytes == 0


def test_small_tensors_are_not_pooled():
    pool = BufferPool()
    pool.empty((10, 10), torch.float32)
    assert pool.nbytes == 0


def test_a_copied_or_pickled_model_starts_with_an_empty_pool():
    model = create_model("spikingresformer_dvsg", **TINY)
    model.buffer_pool.empty(SHAPE, torch.float32)
    twin = copy.deepcopy(model)
    assert twin.buffer_pool is not model.buffer_pool and twin.buffer_pool.nbytes == 0
    assert all(m.pool is twin.buffer_pool for m in twin.modules() if hasattr(m, "pool"))
    assert pickle.loads(pickle.dumps(model.buffer_pool)).nbytes == 0
    assert create_model("spikingresformer_dvsg", **TINY, cpu_kernels=False).buffer_pool is None


def _train(model, x, steps=2):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(steps):
        loss = model(x).mean(0).logsumexp(1).sum()
        loss.backward()
        losses.append(loss.detach())
        opt.step()
        opt.zero_grad()
        functional.reset_net(model)
    return losses, [p.detach().clone() for p in model.parameters()]


def test_training_with_the_pool_equals_training_without(monkeypatch):
    monkeypatch.setattr(BufferPool, "MIN_BYTES", 0)  # every layer's tensors from the pool
    x = torch.rand(2, 2, 3, 32, 32) * 2
    runs = []
    for pooled in (True, False):
        torch.manual_seed(0)
        model = create_model("spikingresformer_dvsg", **TINY)
        if not pooled:
            for m in model.modules():
                if hasattr(m, "pool"):
                    m.pool = None
            model.buffer_pool = None
        runs.append(_train(model, x, steps=3))
    (losses, params), (want_losses, want_params) = runs
    assert torch.equal(torch.stack(losses), torch.stack(want_losses))
    for got, want in zip(params, want_params, strict=True):
        assert torch.equal(got, want)


def test_a_gradient_kept_by_a_hook_is_never_overwritten(monkeypatch):
    monkeypatch.setattr(BufferPool, "MIN_BYTES", 0)
    torch.manual_seed(0)
    model = create_model("spikingresformer_dvsg", **TINY)
    neuron = model.layers[0][0].activation_attn  # its spikes' gradient is a pooled tensor
    kept = []

    def keep_gradient(module, args, out):
        out.register_hook(kept.append)

    neuron.register_forward_hook(keep_gradient)
    x = torch.rand(2, 2, 3, 32, 32) * 2
    _train(model, x, steps=1)
    snapshot = kept[0].clone()
    _train(model, x, steps=2)
    assert torch.equal(kept[0], snapshot)
    pool = model.buffer_pool  # nor handed out, however many of its size are asked for
    taken = [pool.empty(snapshot.shape, snapshot.dtype) for _ in range(len(pool._entries) + 1)]
    assert _storage(kept[0]) not in {_storage(t) for t in taken}


def test_clear_releases_every_buffer():
    pool = BufferPool()
    kept = pool.empty(SHAPE, torch.float32)
    first = _storage(kept)
    pool.empty((512, 1024), torch.float32)
    assert pool.nbytes > 0
    pool.clear()
    assert pool.nbytes == 0
    kept.fill_(1.0)  # still its user's
    again = pool.empty(SHAPE, torch.float32)  # a new buffer, the pool's only one
    assert _storage(again) != first and pool.nbytes == again.numel() * 4


BROKEN_INTERNALS = {
    "storage use count gone": ("torch._C._storage_Use_Count", None),
    "storage use count constant": ("torch._C._storage_Use_Count", lambda cdata: 1),
    "set_ copies": ("torch.Tensor.set_", lambda self, storage, offset, shape: self.resize_(shape)),
}


@pytest.mark.parametrize("target, value", BROKEN_INTERNALS.values(), ids=BROKEN_INTERNALS.keys())
def test_the_self_test_fails_loudly_when_torch_internals_change(monkeypatch, target, value):
    monkeypatch.setattr(pool_mod, "_ALONE", None)  # as in a fresh process
    if value is None:
        monkeypatch.delattr(target)
    else:
        monkeypatch.setattr(target, value)
    with pytest.raises(ConfigError, match="BufferPool self-test failed") as err:
        BufferPool()
    assert "\n" not in str(err.value) and "cpu_kernels=False" in str(err.value)


def test_the_self_test_passes_on_this_torch(monkeypatch):
    monkeypatch.setattr(pool_mod, "_ALONE", None)
    pool_mod.self_test()
    assert pool_mod._ALONE is not None


def _receiver(inbox, ready, go, outbox):  # in the child process
    t = inbox.get()
    ready.set()
    go.wait(60)
    outbox.put(float(t.sum()))


def test_a_buffer_sent_to_another_process_is_never_handed_out_again():
    ctx = torch.multiprocessing.get_context("fork")
    inbox, outbox, ready, go = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Event()
    child = ctx.Process(target=_receiver, args=(inbox, ready, go, outbox))
    child.start()
    try:
        pool = BufferPool()
        t = pool.empty(SHAPE, torch.float32)
        t.fill_(1.0)
        inbox.put(t)  # moves t's storage into shared memory, in place
        assert ready.wait(60), "the receiver did not start"
        del t
        again = pool.empty(SHAPE, torch.float32)  # the next step's buffer
        again.fill_(7.0)
        go.set()
        received = outbox.get(timeout=60)
    finally:
        child.join(60)
    assert not again.is_shared()
    assert received == SHAPE[0] * SHAPE[1]  # what was sent, not the next step's 7s
    assert pool.nbytes == SHAPE[0] * SHAPE[1] * 4  # the shared one left the pool


def test_two_threads_never_get_a_buffer_the_other_holds():
    pool = BufferPool()
    seen_twice = []
    held = set()
    lock = threading.Lock()
    start = threading.Barrier(2)

    def work(k):
        start.wait()
        for i in range(200):
            t = pool.empty(SHAPE, torch.float32)
            ptr = _storage(t)
            with lock:
                if ptr in held:
                    seen_twice.append(ptr)
                held.add(ptr)
            t.fill_(k)
            if i % 7 == 0:
                pool.new_step()
            assert bool((t == k).all())  # nobody else wrote into it
            with lock:
                held.discard(ptr)
            del t

    threads = [threading.Thread(target=work, args=(k,)) for k in (1, 2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not seen_twice


def test_inference_products_come_from_the_pool_and_equal_fresh_ones(monkeypatch):
    """Under no_grad the DSSA products go into reused buffers (no page faults for a fresh
    attention map each window), bit for bit the products torch allocates itself."""
    model, x = tiny_firing_model()
    model.eval()
    monkeypatch.setattr(BufferPool, "MIN_BYTES", 0)  # the tiny model's products are small
    products = [m for m in model.modules() if isinstance(m, SpikingMatmul)]
    assert products and all(m.pool is model.buffer_pool for m in products)

    def run():
        with torch.no_grad():
            out = model(x)
        functional.reset_net(model)
        return out

    seen = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.append(o.untyped_storage().data_ptr()))
        for m in products
    ]
    pooled = run()
    pool_ptrs = {t.untyped_storage().data_ptr() for t, _ in model.buffer_pool._entries}
    assert len(seen) == len(products) and set(seen) <= pool_ptrs
    for h in hooks:
        h.remove()
    assert torch.equal(run(), pooled)  # buffers reused: same logits
    for m in products:
        m.pool = None
    assert torch.equal(run(), pooled)  # torch's own allocations: same logits
    with torch.enable_grad():  # training keeps its own path
        model.train()
        model(x).sum().backward()
