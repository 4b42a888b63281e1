"""Sequence tasks on rnnkit's modules, each trained on a small problem that needs what the
model has: a classifier that must remember the first token (last state) or count (mean), a
bidirectional tagger that needs both neighbours, and an encoder-decoder that learns to
reverse sequences (teacher forcing, greedy decoding)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pytest
from helpers import central_difference
from rnnkit.lm import Seq2Seq, SequenceClassifier, SequenceTagger


def random_sequences(
    rng: np.random.Generator, n: int, vocab: int, lo: int, hi: int
) -> list[np.ndarray]:
    return [rng.integers(0, vocab, int(rng.integers(lo, hi + 1))) for _ in range(n)]


@pytest.mark.parametrize(("pooling", "cell"), [("last", "lstm"), ("mean", "gru")])
def test_classifier_learns(pooling: str, cell: str) -> None:
    rng = np.random.default_rng(0)
    seqs = random_sequences(rng, 600, 6, 3, 9)
    if pooling == "last":
        labels = [int(s[0] % 2) for s in seqs]  # the first token's parity: memory
    else:
        labels = [int((s == 5).mean() > 0.15) for s in seqs]  # how often 5 occurs: counting
    m = SequenceClassifier(6, 2, embed=8, hidden=24, cell=cell, pooling=pooling, seed=1)  # type: ignore[arg-type]
    losses = m.fit(seqs[:500], labels[:500], epochs=25, lr=0.02)
    assert losses[-1] < losses[0] / 3
    accuracy = float(np.mean(m.predict(seqs[500:]) == np.array(labels[500:])))
    assert accuracy > 0.9
    assert m.predict_proba(seqs[:3]).shape == (3, 2)


def test_bidirectional_classifier_and_gradients_reach_the_embedding() -> None:
    rng = np.random.default_rng(2)
    seqs = random_sequences(rng, 300, 5, 2, 6)
    labels = [int(s[-1] == 4) for s in seqs]  # the last token: either direction's final state
    m = SequenceClassifier(5, 2, embed=6, hidden=16, bidirectional=True, seed=3)
    before = m.embedding.params["weight"].copy()
    m.fit(seqs, labels, epochs=20, lr=0.02)
    assert not np.array_equal(before, m.embedding.params["weight"])
    assert float(np.mean(m.predict(seqs) == np.array(labels))) > 0.95


def test_tagger_needs_both_directions() -> None:
    rng = np.random.default_rng(4)
    seqs = random_sequences(rng, 500, 4, 3, 10)

    def tags(s: np.ndarray) -> np.ndarray:  # 1 where the token equals the next one's
        out = np.zeros(s.size, dtype=np.int64)
        out[:-1] = s[:-1] == s[1:]
        return out

    m = SequenceTagger(4, 2, embed=8, hidden=24, seed=5)
    m.fit(seqs[:400], [tags(s) for s in seqs[:400]], epochs=20, lr=0.02)
    predicted = m.predict(seqs[400:])
    correct = sum(int((p == tags(s)).sum()) for p, s in zip(predicted, seqs[400:], strict=True))
    total = sum(s.size for s in seqs[400:])
    assert correct / total > 0.95
    with pytest.raises(ValueError, match="as long as its input"):
        m.fit([np.array([1, 2])], [np.array([0])])


def test_seq2seq_learns_to_reverse() -> None:
    rng = np.random.default_rng(6)
    # source tokens 3..9, target vocabulary: 0 pad, 1 bos, 2 eos, 3..9 the same symbols
    seqs = [rng.integers(3, 10, int(rng.integers(2, 6))) for _ in range(1500)]
    m = Seq2Seq(10, 10, embed=16, hidden=64, seed=7)
    m.fit(seqs[:1300], [s[::-1] for s in seqs[:1300]], epochs=30, lr=0.01, batch_size=64)
    predicted = m.predict(seqs[1300:], max_length=10)
    exact = np.mean(
        [np.array_equal(p, s[::-1]) for p, s in zip(predicted, seqs[1300:], strict=True)]
    )
    assert exact > 0.9


def test_task_arguments() -> None:
    with pytest.raises(ValueError, match="pooling"):
        SequenceClassifier(5, 2, pooling="max")  # type: ignore[arg-type]
    m = SequenceClassifier(5, 2)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        m.predict([np.array([], dtype=np.int64)])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 5\)"):
        m.predict([np.array([7])])
    with pytest.raises(ValueError, match="as many"):
        m.fit([np.array([1])], [0, 1])
    with pytest.raises(ValueError, match="bos must be a target id"):
        Seq2Seq(5, 5, bos=9)


@pytest.mark.parametrize(("bad", "kind"), [(None, "NoneType"), ("no", "str"), (1, "int")])
def test_flags_must_be_bools(bad: object, kind: str) -> None:
    with pytest.raises(TypeError, match=f"^bidirectional must be a bool, got {kind}$"):
        SequenceClassifier(5, 2, bidirectional=bad)  # type: ignore[arg-type]
    for m in (SequenceClassifier(5, 2), SequenceTagger(5, 2), Seq2Seq(5, 5)):
        with pytest.raises(TypeError, match=f"^mode must be a bool, got {kind}$"):
            m.train(bad)
        assert all(layer.training for layer in m._layers())  # nothing half-switched


def _task_cases() -> list[Any]:
    rng = np.random.default_rng(9)
    seqs = random_sequences(rng, 40, 5, 2, 6)
    return [
        pytest.param(
            lambda: SequenceClassifier(5, 2, embed=6, hidden=8, bidirectional=True, seed=1),
            seqs,
            [int(s[0] % 2) for s in seqs],
            id="classifier",
        ),
        pytest.param(
            lambda: SequenceTagger(5, 2, embed=6, hidden=8, seed=2),
            seqs,
            [(s % 2).astype(np.int64) for s in seqs],
            id="tagger",
        ),
        pytest.param(
            lambda: Seq2Seq(5, 5, embed=6, hidden=8, seed=3),
            seqs,
            [s[::-1] for s in seqs],
            id="seq2seq",
        ),
    ]


@pytest.mark.parametrize("copier", [lambda m: pickle.loads(pickle.dumps(m)), copy.deepcopy])
@pytest.mark.parametrize(("make", "inputs", "targets"), _task_cases())
def test_pickle_and_deepcopy_are_exact_and_independent(
    make: Any, inputs: list[np.ndarray], targets: list[Any], copier: Any
) -> None:
    """pickle and copy.deepcopy of a task model used to fail ("cannot pickle 'module'")."""
    m = make()
    m.fit(inputs, targets, epochs=1, batch_size=8)
    c = copier(m)
    pairs_m, pairs_c = m.parameters(), c.parameters()
    assert len(pairs_m) == len(pairs_c)
    for (p, _), (q, _) in zip(pairs_m, pairs_c, strict=True):
        assert p.dtype == q.dtype and np.array_equal(p, q) and not np.shares_memory(p, q)
    predicted_m, predicted_c = m.predict(inputs), c.predict(inputs)
    assert all(np.array_equal(a, b) for a, b in zip(predicted_m, predicted_c, strict=True))
    assert m.fit(inputs, targets, epochs=1, batch_size=8) == c.fit(
        inputs, targets, epochs=1, batch_size=8
    )
    before = [p.copy() for p, _ in m.parameters()]
    for q, _ in c.parameters():
        q += 1
    assert all(np.array_equal(p, b) for (p, _), b in zip(m.parameters(), before, strict=True))


def _float64_cases() -> list[Any]:
    rng = np.random.default_rng(10)
    seqs = [rng.integers(0, 6, n) for n in (3, 1, 5, 2)]  # padded: lengths decide every step
    small = {"embed": 4, "hidden": 5, "layers": 2, "seed": 1, "dtype": np.float64}
    return [
        pytest.param(
            lambda: SequenceClassifier(6, 3, cell="gru", bidirectional=True, **small),
            seqs,
            [0, 2, 1, 2],
            id="classifier-last",
        ),
        pytest.param(
            lambda: SequenceClassifier(6, 3, pooling="mean", **small),
            seqs,
            [1, 0, 2, 2],
            id="classifier-mean",
        ),
        pytest.param(
            lambda: SequenceTagger(6, 4, **small),
            seqs,
            [rng.integers(0, 4, s.size) for s in seqs],
            id="tagger",
        ),
        pytest.param(
            lambda: Seq2Seq(6, 7, **small),
            seqs,
            [rng.integers(3, 7, n) for n in (2, 4, 0, 3)],
            id="seq2seq",
        ),
    ]


@pytest.mark.parametrize(("make", "inputs", "targets"), _float64_cases())
def test_task_gradients_by_finite_differences(
    make: Any, inputs: list[np.ndarray], targets: list[Any]
) -> None:
    """Every parameter's gradient (embeddings through padded batches, the state handed from
    the encoder to the decoder, both directions' final states) against central differences,
    in float64."""
    m = make()
    m.train()
    for _, g in m.parameters():
        g.fill(0)
    m._batch_loss(inputs, targets)
    grads = [g.copy() for _, g in m.parameters()]
    rng = np.random.default_rng(11)
    h = 1e-6
    for (p, _), grad in zip(m.parameters(), grads, strict=True):
        flat, g_flat = p.reshape(-1), grad.reshape(-1)
        for i in rng.choice(flat.size, min(flat.size, 4), replace=False):
            numeric = central_difference(lambda: m._batch_loss(inputs, targets)[0], flat, i, h)
            assert g_flat[i] == pytest.approx(numeric, abs=1e-8)


@pytest.mark.parametrize(("make", "inputs", "targets"), _float64_cases())
def test_fit_stops_before_writing_non_finite_values(
    make: Any, inputs: list[np.ndarray], targets: list[Any]
) -> None:
    """Without clipping, a NaN gradient was stepped into the weights (and the epoch's loss
    came back NaN); now, as with clipping and as the language models do, FloatingPointError
    before the step."""
    m = make()
    m.head.params["bias"][0] = np.nan  # (a NaN loss and NaN gradients)
    before = [p.copy() for p, _ in m.parameters()]
    for clip in (None, 1.0):
        with pytest.raises(FloatingPointError, match="loss is nan"):
            m.fit(inputs, targets, epochs=1, optimizer="sgd", clip=clip)
        for (p, _), b in zip(m.parameters(), before, strict=True):
            np.testing.assert_array_equal(p, b)
    m = make()  # a finite loss with a NaN gradient
    real_loss = m._batch_loss

    def nan_gradient(inputs: Any, targets: Any) -> Any:
        out = real_loss(inputs, targets)
        m.head.grads["bias"][0] = np.nan
        return out

    m._batch_loss = nan_gradient  # type: ignore[method-assign]
    before = [p.copy() for p, _ in m.parameters()]
    with pytest.raises(FloatingPointError, match="NaN or infinity"):
        m.fit(inputs, targets, epochs=1, optimizer="sgd", clip=None)
    for (p, _), b in zip(m.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, b)


@pytest.mark.parametrize(("make", "inputs", "targets"), _float64_cases()[2:])
def test_epoch_loss_is_the_mean_per_target_whatever_the_batches(
    make: Any, inputs: list[np.ndarray], targets: list[Any]
) -> None:
    """A tagger's or a seq2seq model's epoch loss is the mean over every tag or target token
    (the loss of one batch of everything): it was the mean of the batches' means weighted by
    their numbers of sequences, which counted a short sequence's tokens as much as a long
    one's. (A learning rate too small to move a float64 weight keeps the model fixed.)"""
    one_batch = make().fit(inputs, targets, epochs=1, batch_size=len(inputs), lr=1e-30)
    one_by_one = make().fit(inputs, targets, epochs=1, batch_size=1, lr=1e-30, optimizer="sgd")
    assert one_by_one[0] == pytest.approx(one_batch[0], rel=1e-12)


def test_tagger_logits_past_a_sequence_end_are_zero() -> None:
    """forward's documented zero rows past each sequence's end were the head's bias."""
    m = SequenceTagger(6, 4, embed=4, hidden=5, seed=0)
    m.eval()
    logits, lengths = m.forward([np.array([1, 2, 3]), np.array([4])])
    assert lengths.tolist() == [3, 1]
    assert not logits[1:, 1].any() and logits[:, 0].all() and logits[0, 1].all()
