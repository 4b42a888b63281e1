"""Exploding and vanishing gradients are computed faithfully (IEEE overflow to Inf included) and
caught where the documentation says: clip_grad_norm refuses a non-finite norm, and training
stops with FloatingPointError instead of writing NaN into the weights."""

from __future__ import annotations

import numpy as np
import pytest
import rnnkit
from rnnkit.lm import RNNLanguageModel, clip_grad_norm


def test_saturating_tanh_rnn_over_1000_steps_stays_finite() -> None:
    rng = np.random.default_rng(0)
    T, B, H = 1000, 2, 16
    x = rng.standard_normal((T, B, H)).astype(np.float32)
    w = (rng.standard_normal((H, H)) * 3.0).astype(np.float32)  # large: saturates tanh
    out = rnnkit.rnn_forward(x, None, w, w)
    grads = rnnkit.rnn_backward(np.ones_like(out.y), None, out.cache)
    assert np.isfinite(out.y).all() and np.abs(out.y).max() <= 1
    for g in grads:
        if g is not None:
            assert np.isfinite(g).all()


def test_exploding_relu_rnn_overflows_and_clipping_refuses_it() -> None:
    T, B, H = 300, 2, 8
    x = np.ones((T, B, H), np.float32)
    w = (np.eye(H) * 2.0).astype(np.float32)  # doubles the state every step: 2^300 overflows
    out = rnnkit.rnn_forward(x, None, w, w, nonlinearity="relu")
    # 2^k overflows float32 after ~128 steps; then inf * 0 (the GEMM's zero weights) is NaN,
    # as IEEE says
    assert not np.isfinite(out.y[-1]).any() and np.isfinite(out.y[:100]).all()
    grads = rnnkit.rnn_backward(np.ones_like(out.y), None, out.cache)
    with pytest.raises(FloatingPointError, match="NaN or infinity"):
        clip_grad_norm([grads.dw_hh, grads.dw_ih], 1.0)


def test_training_stops_on_a_non_finite_loss_or_gradient() -> None:
    ids = np.tile(np.arange(6), 50)
    for clip in (None, 1.0):
        m = RNNLanguageModel(6, 4, 4, 1, "rnn", seed=0)
        m.decoder.params["weight"][2, 1] = np.inf  # a diverged weight: the loss is NaN
        before = {name: p.copy() for name, p, _ in m.named_parameters()}
        with pytest.raises(FloatingPointError, match="training loss is nan at step 1"):
            m.fit(ids, epochs=2, lr=0.1, clip=clip, batch_size=4, seq_len=10)
        for name, p, _ in m.named_parameters():  # no step was taken
            np.testing.assert_array_equal(p, before[name])


# ------------------------------------------------------------------- the kernels' activations
def _kernel_activations(x: np.ndarray, units: int) -> tuple[np.ndarray, np.ndarray]:
    """tanh(x) and sigmoid(x) as the kernels compute them, isolated by one cell step: an RNN
    with an identity ``w_ih`` gives ``h1 = tanh(x)``; an LSTM whose i gate reads x through an
    identity, whose g gate is tanh(40) = 1 and whose c0 is 0 gives ``c1 = sigmoid(x)``.
    ``units`` of 16 runs the vector loops, 5 the padded rows."""
    dtype = x.dtype
    rows = x.reshape(-1, units)
    eye = np.eye(units, dtype=dtype)
    tanh = rnnkit.rnn_cell_forward(rows, None, eye, np.zeros_like(eye)).h1
    w_ih = np.zeros((4 * units, units), dtype)
    w_ih[:units] = eye
    b_ih = np.zeros(4 * units, dtype)
    b_ih[2 * units : 3 * units] = 40.0
    w_hh = np.zeros((4 * units, units), dtype)
    sigmoid = rnnkit.lstm_cell_forward(rows, None, None, w_ih, w_hh, b_ih, None).c1
    return tanh.ravel(), sigmoid.ravel()


@pytest.mark.parametrize("units", [16, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_kernel_activations_are_within_two_ulp_of_libm(dtype: type, units: int) -> None:
    """Both dtypes compute tanh and sigmoid with vectorisable approximations (Cephes): within
    2 units in the last place of libm's float64 results, over the whole range (tiny values,
    the switch between tanh's two forms at 0.625, saturation); sigmoid is 0 where its true
    value is under the smallest normal number."""
    rng = np.random.default_rng(7)
    finfo = np.finfo(dtype)
    tiny = np.log10(finfo.tiny) + 1
    magnitudes = np.concatenate(
        [
            rng.uniform(0, 30, 40000),
            np.logspace(tiny, 1.5, 20000),
            rng.uniform(0.6, 0.65, 5000),
            rng.uniform(0, 1, 15000),
        ]
    )
    x = (magnitudes * rng.choice([-1.0, 1.0], magnitudes.size)).astype(dtype)
    x = x[: x.size // 80 * 80]  # rows of 16 and of 5 units
    tanh, sigmoid = _kernel_activations(x, units)
    x64 = x.astype(np.float64)
    ulp = finfo.eps
    want_tanh = np.tanh(x64)
    tanh_err = np.abs(tanh - want_tanh) / np.maximum(np.abs(want_tanh), finfo.tiny)
    assert tanh_err.max() <= 2 * ulp, (tanh_err.max() / ulp, x[tanh_err.argmax()])
    want_sigmoid = 1 / (1 + np.exp(-x64))
    sigmoid_err = np.abs(sigmoid - want_sigmoid) / np.maximum(want_sigmoid, finfo.tiny)
    assert sigmoid_err.max() <= 2 * ulp, (sigmoid_err.max() / ulp, x[sigmoid_err.argmax()])
    # Beyond the ranges: saturation, sigmoid's 0 under the smallest normal, NaN kept.
    big = 1000.0 if dtype == np.float64 else 100.0
    edge = -720.0 if dtype == np.float64 else -90.0
    special = np.array([big, -big, edge, np.nan], dtype)
    for value in special:
        tanh, sigmoid = _kernel_activations(np.full(units, value, dtype), units)
        if np.isnan(value):
            assert np.isnan(tanh).all() and np.isnan(sigmoid).all()
        else:
            np.testing.assert_array_equal(tanh, np.sign(value))
            np.testing.assert_array_equal(sigmoid, 1.0 if value > 0 else 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_softmax_of_minus_infinity_is_exactly_zero(dtype: type) -> None:
    """A masked logit (-inf) gets probability 0, so its gradient is exactly 0, as in torch."""
    from rnnkit.lm import softmax_cross_entropy

    logits = np.array([[0.5, -np.inf, 2.0, -np.inf, -1.0]], dtype)
    loss, grad = softmax_cross_entropy(logits, np.array([2]))
    finite = np.array([0.5, 2.0, -1.0])
    p = np.exp(finite - finite.max())
    p /= p.sum()
    assert grad[0, 1] == 0 and grad[0, 3] == 0
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(grad[0, [0, 2, 4]], p - [0, 1, 0], rtol=tol, atol=tol)
    assert abs(loss + np.log(p[1])) < tol
