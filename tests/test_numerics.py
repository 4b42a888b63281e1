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
