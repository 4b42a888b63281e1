"""rnnkit.lm's layers, loss, optimisers and clipping against torch (same numbers) and, in
float64, against finite differences."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest
import rnnkit
import torch
from rnnkit.lm import (
    SGD,
    Adam,
    Dropout,
    Embedding,
    Linear,
    clip_grad_norm,
    log_softmax,
    softmax_cross_entropy,
)


def test_embedding_backward_uses_the_ids_of_its_forward() -> None:
    """A caller refilling its ids array (the next batch) before backward moves nothing."""
    emb, fresh = Embedding(7, 3, seed=0), Embedding(7, 3, seed=0)
    ids = np.array([[1, 2], [2, 5]], dtype=np.intp)
    dy = np.random.default_rng(2).standard_normal((2, 2, 3)).astype(np.float32)
    emb.forward(ids)
    fresh.forward(ids.copy())
    ids[...] = 0
    emb.backward(dy)
    fresh.backward(dy)
    assert np.array_equal(emb.grads["weight"], fresh.grads["weight"])
    assert not emb.grads["weight"][0].any()


def test_embedding_backward_refuses_a_dy_that_is_part_of_grad() -> None:
    """grad[ids[n]] += dy[n] runs in place: a dy that is rows of grad itself would be read
    after earlier rows changed it (a result that depends on the order of the updates, and so
    on the thread count), so it is refused, through the layer and the kernel alike."""
    from rnnkit import _core

    emb = Embedding(6, 2, dtype=np.float64, seed=0)
    emb.forward(np.array([2, 1, 0]))
    before = emb.grads["weight"].copy()
    with pytest.raises(ValueError, match="must not share memory with grad"):
        emb.backward(emb.grads["weight"][:3])
    assert np.array_equal(emb.grads["weight"], before)
    grad = np.zeros((6, 2))
    with pytest.raises(ValueError, match="must not share memory with grad"):
        _core._embedding_backward(np.array([2, 1, 0]), grad[1:4], grad)


def test_embedding_backward_refuses_ids_that_are_part_of_grad() -> None:
    """ids viewing grad's memory pass the range check, then an update rewrites the next id:
    its row was silently dropped (or added to another row)."""
    from rnnkit import _core

    grad = np.zeros((4, 1))
    ids = grad.view(np.int64).reshape(-1)[:2]  # ids[n] is grad[n, 0]'s bits
    ids[0] = 1  # valid ids [1, 0]
    dy = np.zeros((2, 1))
    dy[0].view(np.int64)[0] = 1 << 40  # grad[1] += dy[0] turns ids[1] into 2**40
    dy[1] = 1.0
    with pytest.raises(ValueError, match="must not share memory with grad"):
        _core._embedding_backward(ids, dy, grad)
    assert np.array_equal(ids, [1, 0])


def test_embedding_matches_torch_with_repeated_ids() -> None:
    emb = Embedding(11, 5, seed=0)
    ids = np.array([[1, 3, 3], [0, 1, 10]])
    t = torch.nn.Embedding(11, 5)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(emb.params["weight"]))
    y = emb.forward(ids)
    ty = t(torch.from_numpy(ids))
    assert np.array_equal(y, ty.detach().numpy())
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    assert emb.backward(dy) is None
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(emb.grads["weight"], t.weight.grad.numpy(), rtol=1e-6, atol=1e-6)
    emb.backward(dy)  # accumulates
    np.testing.assert_allclose(emb.grads["weight"], 2 * t.weight.grad.numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 11\)"):
        emb.forward([11])
    with pytest.raises(TypeError, match="integers"):
        emb.forward([1.0])
    emb.eval()
    emb.forward([1])
    with pytest.raises(RuntimeError, match="training mode"):
        emb.backward(np.zeros((1, 5), np.float32))


def test_linear_matches_torch_and_ties() -> None:
    rng = np.random.default_rng(2)
    lin = Linear(6, 4, seed=3)
    t = torch.nn.Linear(6, 4)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(lin.params["weight"]))
        t.bias.copy_(torch.from_numpy(lin.params["bias"]))
    x = rng.standard_normal((3, 2, 6)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_(True)
    y = lin.forward(x)
    ty = t(tx)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = lin.backward(dy)
    ty.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lin.grads["weight"], t.weight.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lin.grads["bias"], t.bias.grad.numpy(), rtol=1e-5, atol=1e-5)
    # tying: the decoder's weight and gradient are the embedding's arrays
    emb = Embedding(4, 6, seed=4)
    dec = Linear(6, 4, seed=5)
    dec.tie(emb)
    assert dec.params["weight"] is emb.params["weight"]
    emb.forward(np.array([1, 2]))
    emb.backward(np.ones((2, 6), np.float32))
    dec.forward(np.ones((1, 6), np.float32))
    dec.backward(np.ones((1, 4), np.float32))
    assert emb.grads["weight"][1, 0] == 2.0 and emb.grads["weight"][0, 0] == 1.0
    with pytest.raises(ValueError, match="cannot tie"):
        Linear(5, 4).tie(emb)
    with pytest.raises(TypeError, match="dtype float32"):
        lin.forward(x.astype(np.float64))
    with pytest.raises(ValueError, match=r"shape \[\.\.\., 6\]"):
        lin.forward(np.zeros((2, 5), np.float32))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_matches_torch(reduction: str) -> None:
    rng = np.random.default_rng(6)
    logits = (rng.standard_normal((4, 5, 7)) * 30).astype(np.float32)  # large: stability
    targets = rng.integers(0, 7, (4, 5))
    targets[0, :2] = -100
    loss, grad = softmax_cross_entropy(logits, targets, reduction=reduction)
    tl = torch.from_numpy(logits).requires_grad_(True)
    tloss = torch.nn.functional.cross_entropy(
        tl.reshape(-1, 7), torch.from_numpy(targets).reshape(-1), reduction=reduction
    )
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-5)
    np.testing.assert_allclose(grad, tl.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert np.isfinite(grad).all()
    loss_all_ignored, g = softmax_cross_entropy(logits, np.full((4, 5), -100))
    assert math.isnan(loss_all_ignored) and not g.any()  # as torch: NaN loss, zero gradient


def test_cross_entropy_gradient_by_finite_differences() -> None:
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((3, 6))
    targets = np.array([1, 5, 2])
    _, grad = softmax_cross_entropy(logits, targets)
    h = 1e-6
    for i in range(3):
        for j in range(6):
            up, down = logits.copy(), logits.copy()
            up[i, j] += h
            down[i, j] -= h
            numeric = (
                softmax_cross_entropy(up, targets)[0] - softmax_cross_entropy(down, targets)[0]
            ) / (2 * h)
            assert grad[i, j] == pytest.approx(numeric, abs=1e-7)
    np.testing.assert_allclose(np.exp(log_softmax(logits)).sum(axis=1), 1.0)
    with pytest.raises(ValueError, match=r"targets must be in \[0, 6\)"):
        softmax_cross_entropy(logits, np.array([1, 6, 2]))
    # a uint64 target past int64 must not wrap onto ignore_index (-100) and be skipped
    with pytest.raises(ValueError, match=r"targets must be in \[0, 6\).*got 18446744073709551516"):
        softmax_cross_entropy(logits, np.array([1, 2**64 - 100, 2], np.uint64))
    loss, grad = softmax_cross_entropy(logits, targets.astype(np.uint64))
    assert loss == softmax_cross_entropy(logits, targets)[0]
    with pytest.raises(ValueError, match="targets must have shape"):
        softmax_cross_entropy(logits, np.array([1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        softmax_cross_entropy(logits, targets, reduction="none")


def test_dropout() -> None:
    d = Dropout(0.25, seed=0)
    x = np.ones((1000, 10), np.float32)
    y = d.forward(x)
    kept = y != 0
    assert 0.7 < kept.mean() < 0.8
    assert np.allclose(y[kept], 1 / 0.75)
    assert np.array_equal(d.backward(x), y)
    d.eval()
    assert d.forward(x) is x
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        Dropout(1.0)


def _torch_pair(p: np.ndarray) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.from_numpy(p.copy()))


@pytest.mark.parametrize(
    ("make", "make_torch"),
    [
        (lambda ps: SGD(ps, lr=0.1), lambda ts: torch.optim.SGD(ts, lr=0.1)),
        (
            lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
            lambda ts: torch.optim.SGD(ts, lr=0.1, momentum=0.9, weight_decay=0.01),
        ),
        (
            lambda ps: SGD(ps, lr=0.05, momentum=0.5, nesterov=True),
            lambda ts: torch.optim.SGD(ts, lr=0.05, momentum=0.5, nesterov=True),
        ),
        (lambda ps: Adam(ps, lr=0.01), lambda ts: torch.optim.Adam(ts, lr=0.01)),
        (
            lambda ps: Adam(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
            lambda ts: torch.optim.Adam(ts, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        ),
    ],
)
def test_optimizers_match_torch(make, make_torch) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(8)
    params = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    grads = [np.zeros_like(p) for p in params]
    tparams = [_torch_pair(p) for p in params]
    opt = make(list(zip(params, grads, strict=True)))
    topt = make_torch(tparams)
    for _ in range(5):
        for g, t in zip(grads, tparams, strict=True):
            value = rng.standard_normal(g.shape)
            g[...] = value
            t.grad = torch.from_numpy(value.copy())
        opt.step()
        topt.step()
    for p, t in zip(params, tparams, strict=True):
        np.testing.assert_allclose(p, t.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.1),
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
        lambda ps: SGD(ps, lr=0.05, momentum=0.5, nesterov=True),
        lambda ps: Adam(ps, lr=0.01),
        lambda ps: Adam(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    ],
)
def test_fused_optimizer_steps_match_numpys_and_any_thread_count(make, dtype) -> None:  # type: ignore[no-untyped-def]
    """C-contiguous parameters step in one C++ pass on rnnkit's threads; a strided view
    steps in NumPy. Both compute the same rule (to rounding), and the C++ pass gives the same
    bits on 1 and 2 threads (several chunks of 65,536 values)."""
    rng = np.random.default_rng(10)
    shape = (300, 700)
    start = rng.standard_normal(shape).astype(dtype)
    grads_seq = [rng.standard_normal(shape).astype(dtype) for _ in range(4)]
    results = []
    before = rnnkit.get_num_threads()
    try:
        for threads, strided in ((1, False), (2, False), (2, True)):
            rnnkit.set_num_threads(threads)
            if strided:  # a transposed view: not C-contiguous, the NumPy path
                p = np.ascontiguousarray(start.T).T
                g = np.ascontiguousarray(np.zeros(shape, dtype).T).T
                assert not p.flags.c_contiguous
            else:
                p, g = start.copy(), np.zeros(shape, dtype)
            opt = make([(p, g)])
            for value in grads_seq:
                g[...] = value
                opt.step()
            results.append(np.array(p))
    finally:
        rnnkit.set_num_threads(before)
    np.testing.assert_array_equal(results[0], results[1])
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results[1], results[2], rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_of_long_rows_alone_or_in_a_batch(dtype) -> None:  # type: ignore[no-untyped-def]
    """A row over many classes scored alone has its column blocks spread over the threads;
    in a batch, each row is one thread's: the sums run over the same blocks in the same
    order, so the loss and the gradient are the same bits either way, and for any thread
    count."""
    rng = np.random.default_rng(11)
    V = 150_000  # 10 blocks of 16,384 columns
    logits = (rng.standard_normal((4, V)) * 3).astype(dtype)
    targets = rng.integers(0, V, 4)
    before = rnnkit.get_num_threads()
    try:
        batch = softmax_cross_entropy(logits, targets, reduction="sum")
        for threads in (1, 2, 3):
            rnnkit.set_num_threads(threads)
            for n in range(4):
                loss, grad = softmax_cross_entropy(
                    logits[n : n + 1], targets[n : n + 1], reduction="sum"
                )
                np.testing.assert_array_equal(grad[0], batch[1][n])
                alone_in_batch = softmax_cross_entropy(
                    np.repeat(logits[n : n + 1], 4, axis=0),
                    np.repeat(targets[n : n + 1], 4),
                    reduction="sum",
                )
                assert loss * 4 == pytest.approx(alone_in_batch[0], rel=1e-12)
                np.testing.assert_array_equal(grad[0], alone_in_batch[1][0])
    finally:
        rnnkit.set_num_threads(before)
    t = torch.from_numpy(logits).requires_grad_()
    ref = torch.nn.functional.cross_entropy(t, torch.from_numpy(targets), reduction="sum")
    ref.backward()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert batch[0] == pytest.approx(ref.item(), rel=tol)
    np.testing.assert_allclose(batch[1], t.grad.numpy(), rtol=tol, atol=tol)


def test_optimizer_arguments_and_shared_parameters() -> None:
    p = np.zeros(3)
    g = np.ones(3)
    opt = SGD([(p, g), (p, g)], lr=1.0)
    assert len(opt.pairs) == 1  # a tied parameter is updated once
    opt.step()
    assert np.array_equal(p, -np.ones(3))
    opt.zero_grad()
    assert not g.any()
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        SGD([(p, g)], lr=0)
    with pytest.raises(ValueError, match="nesterov needs momentum"):
        SGD([(p, g)], lr=1, nesterov=True)
    with pytest.raises(ValueError, match="must match its parameter"):
        Adam([(p, np.ones(2))])
    with pytest.raises(ValueError, match="at least one parameter"):
        Adam([])


def test_clip_grad_norm_matches_torch_and_refuses_non_finite() -> None:
    rng = np.random.default_rng(9)
    grads = [rng.standard_normal((4, 4)), rng.standard_normal(7)]
    tparams = [_torch_pair(np.zeros_like(g)) for g in grads]
    for t, g in zip(tparams, grads, strict=True):
        t.grad = torch.from_numpy(g.copy())
    norm = clip_grad_norm(grads, 1.5)
    tnorm = torch.nn.utils.clip_grad_norm_(tparams, 1.5)
    assert norm == pytest.approx(tnorm.item(), rel=1e-12)
    for g, t in zip(grads, tparams, strict=True):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-12)
    small = [np.full(3, 0.1)]
    assert clip_grad_norm(small, 10.0) == pytest.approx(math.sqrt(0.03))
    assert np.array_equal(small[0], np.full(3, 0.1))  # under the bound: untouched
    bad = [np.array([1.0, np.nan])]
    with pytest.raises(FloatingPointError, match="NaN or infinity"):
        clip_grad_norm(bad, 1.0)
    assert np.isnan(bad[0][1]) and bad[0][0] == 1.0
    with pytest.raises(FloatingPointError):
        clip_grad_norm([np.array([np.inf])], 1.0)
    # finite gradients whose squares overflow: a finite norm, clipped (not "NaN or infinity")
    huge = [np.full(4, 1e200), np.full(2, -1e200)]
    assert clip_grad_norm(huge, 1.0) == pytest.approx(math.sqrt(6) * 1e200, rel=1e-12)
    np.testing.assert_allclose(huge[0], 1 / math.sqrt(6), rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("trans_a", "trans_b"), [(False, False), (False, True), (True, False), (True, True)]
)
@pytest.mark.parametrize(
    ("M", "N", "K"),
    [(130, 70, 90), (1, 3000, 700), (5, 3000, 700)],
    ids=["row-blocks", "one-row-gemv", "few-rows-column-blocks"],
)
def test_gemm_on_rnnkit_threads(
    dtype: type, trans_a: bool, trans_b: bool, M: int, N: int, K: int
) -> None:
    """Several 64-row blocks; and few rows, where fixed blocks of columns go to the threads
    (one row as a gemv): the same bits for any thread count."""
    import rnnkit
    from rnnkit import _core

    rng = np.random.default_rng(10)
    a = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    b = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    c0 = rng.standard_normal((M, N)).astype(dtype)
    expected = 0.5 * (a.T if trans_a else a) @ (b.T if trans_b else b) + 2.0 * c0
    results = []
    before = rnnkit.get_num_threads()
    try:
        for threads in (1, 2, 3):
            rnnkit.set_num_threads(threads)
            c = c0.copy()
            _core._gemm(a, b, c, trans_a=trans_a, trans_b=trans_b, alpha=0.5, beta=2.0)
            results.append(c)
    finally:
        rnnkit.set_num_threads(before)
    c = results[0]
    assert all(np.array_equal(c, r) for r in results[1:])
    np.testing.assert_allclose(c, expected, rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-3)
    assert _core._sum_of_squares(a) == pytest.approx(
        float((a.astype(np.float64) ** 2).sum()), rel=1e-12
    )


def test_gemm_arguments_are_checked() -> None:
    from rnnkit import _core

    a = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="shapes do not match"):
        _core._gemm(a, a, np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="dtype float32"):
        _core._gemm(a, a.T.copy(), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="C-contiguous 2-D"):
        _core._gemm(a, a.T, np.zeros((4, 4), np.float32))
    c = np.zeros((4, 4), np.float32)
    with pytest.raises(ValueError, match="share memory"):
        _core._gemm(c, c, c)
    frozen = np.zeros((4, 4), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core._gemm(a, a.T.copy(), frozen)
    with pytest.raises(TypeError, match="float32 or float64"):
        _core._sum_of_squares(np.ones(3, np.int32))


@pytest.mark.parametrize(("bad", "kind"), [(None, "NoneType"), ("no", "str"), (1, "int")])
def test_flags_must_be_bools(bad: object, kind: str) -> None:
    """``bool(x)`` used to take None, "no" or 1 as a flag by truth value."""
    p, g = np.zeros(3), np.zeros(3)
    with pytest.raises(TypeError, match=f"^bias must be a bool, got {kind}$"):
        Linear(3, 2, bias=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=f"^nesterov must be a bool, got {kind}$"):
        SGD([(p, g)], lr=1, momentum=0.5, nesterov=bad)  # type: ignore[arg-type]
    for layer in (Linear(3, 2), Embedding(4, 2), Dropout(0.5)):
        with pytest.raises(TypeError, match=f"^mode must be a bool, got {kind}$"):
            layer.train(bad)  # type: ignore[arg-type]
        assert layer.training is True
    assert "bias" not in Linear(3, 2, bias=np.False_).params
    assert SGD([(p, g)], lr=1, momentum=0.5, nesterov=np.True_).nesterov is True


@pytest.mark.parametrize("copier", [lambda o: pickle.loads(pickle.dumps(o)), copy.deepcopy])
@pytest.mark.parametrize(
    "make",
    [
        lambda pairs: SGD(pairs, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda pairs: Adam(pairs, lr=0.01),
    ],
    ids=["sgd", "adam"],
)
def test_optimizer_pickles_with_its_layers(make, copier) -> None:  # type: ignore[no-untyped-def]
    """A layer and its optimizer copied together stay connected (one pickle keeps the shared
    arrays shared), carry the optimizer's state and step exactly as the originals."""
    rng = np.random.default_rng(0)
    layer = Linear(3, 2, seed=1)
    opt = make([(layer.params[k], layer.grads[k]) for k in layer.params])
    x = rng.standard_normal((4, 3)).astype(np.float32)
    for _ in range(2):
        layer.zero_grad()
        layer.backward(np.ones_like(layer.forward(x)))
        opt.step()
    layer2, opt2 = copier((layer, opt))
    for a, b in ((layer, opt), (layer2, opt2)):
        a.zero_grad()
        a.backward(np.ones_like(a.forward(x)))
        b.step()
    for key in layer.params:
        assert np.array_equal(layer.params[key], layer2.params[key]), key
        assert not np.shares_memory(layer.params[key], layer2.params[key]), key
