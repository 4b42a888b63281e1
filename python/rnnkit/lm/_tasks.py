"""Sequence tasks on rnnkit's recurrent layers: many-to-one classification
(:class:`SequenceClassifier`), many-to-many tagging (:class:`SequenceTagger`) and an
encoder-decoder (:class:`Seq2Seq`), each with ``fit`` (Adam or SGD, clipping) and prediction.

Sequences are lists of 1-D integer id arrays of any lengths (at least 1); batches are padded
and run with ``lengths``, so padding does no work and never reaches a gradient. Shapes: T
steps, B batch, E embedding, H hidden, D directions, K classes or tags, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import nn
from .._checks import check_bool, make_rng
from ._calls import OneCallAtATime, one_call_at_a_time
from ._layers import Embedding, Linear, _size, softmax_cross_entropy
from ._optim import SGD, Adam, Optimizer, _rate, clip_grad_norm, grad_norm

__all__ = ["Seq2Seq", "SequenceClassifier", "SequenceTagger"]

Array = NDArray[np.floating[Any]]
_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
IGNORE = -100


def _sequences(
    sequences: Any, name: str = "sequences", allow_empty: bool = False
) -> list[NDArray[Any]]:
    """Each item of ``sequences`` as a 1-D integer array (non-empty unless ``allow_empty``)."""
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, (Sequence, np.ndarray)):
        raise TypeError(
            f"{name} must be a sequence of 1-D integer id arrays, got {type(sequences).__name__}"
        )
    arrays = [np.asarray(s) for s in sequences]
    if not arrays:
        raise ValueError(f"{name} must hold at least one sequence, got none")
    for i, a in enumerate(arrays):
        if (
            a.ndim != 1
            or (a.size == 0 and not allow_empty)
            or (a.size and not np.issubdtype(a.dtype, np.integer))
        ):
            what = "a 1-D array" if allow_empty else "a non-empty 1-D array"
            raise ValueError(
                f"sequence {i} of {name} must be {what} of integer ids, got {a.dtype} {a.shape}"
            )
    return arrays


def _pad(
    sequences: Sequence[ArrayLike], fill: int = 0, name: str = "sequences"
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``(ids [T, B], lengths [B])`` of the sequences padded with ``fill``."""
    arrays = _sequences(sequences, name)
    lengths = np.array([a.size for a in arrays], dtype=np.int64)
    ids = np.full((int(lengths.max()), len(arrays)), fill, dtype=np.int64)
    for b, a in enumerate(arrays):
        ids[: a.size, b] = a
    return ids, lengths


def _encoder(
    vocab_size: int,
    embed: int,
    hidden: int,
    layers: int,
    cell: str,
    bidirectional: bool,
    rng: np.random.Generator,
    dtype: Any,
) -> tuple[Embedding, Any]:
    """An embedding and recurrent layers over it."""
    if cell not in _CELLS:
        raise ValueError(f"cell must be 'lstm', 'gru' or 'rnn', got {cell!r}")
    embedding = Embedding(vocab_size, embed, dtype=dtype, seed=rng)
    rnn = _CELLS[cell](
        embed,
        hidden,
        layers,
        bidirectional=bidirectional,
        dtype=dtype,
        seed=int(rng.integers(2**31)),
    )
    return embedding, rnn


def _optimizer(name: str, parameters: list[tuple[Array, Array]], lr: float) -> Optimizer:
    if name == "adam":
        return Adam(parameters, lr=lr)
    if name == "sgd":
        return SGD(parameters, lr=lr)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")


def _check_ids(ids: NDArray[np.int64], size: int, what: str) -> None:
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        raise ValueError(f"{what} must be in [0, {size}), got values in [{ids.min()}, {ids.max()}]")


class _Task(OneCallAtATime):
    """Parameters, modes and the training loop of a task model (subclasses define ``_layers``
    and ``_batch_loss``)."""

    def _layers(self) -> list[Any]:
        raise NotImplementedError

    def _batch_loss(self, inputs: list[Any], targets: list[Any]) -> tuple[float, int]:
        """The batch's mean loss per scored target (gradients added), and how many targets
        it scored (one per sequence, or one per tag or target token)."""
        raise NotImplementedError

    def _check_pairs(self, inputs: list[NDArray[Any]], targets: Sequence[Any]) -> None:
        """Checks the ids of ``inputs`` (whose shapes are checked) and ``targets`` before
        training, so that a bad pair is refused before any step."""
        raise NotImplementedError

    def parameters(self) -> list[tuple[Array, Array]]:
        seen: set[int] = set()
        out = []
        for layer in self._layers():
            for key, p in layer.params.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append((p, layer.grads[key]))
        return out

    @one_call_at_a_time
    def train(self, mode: bool = True) -> Any:
        check_bool(mode, "mode")  # before any layer changes
        for layer in self._layers():
            layer.train(mode)
        return self

    def eval(self) -> Any:
        return self.train(False)

    @one_call_at_a_time
    def fit(
        self,
        inputs: Sequence[Any],
        targets: Sequence[Any],
        *,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 1e-2,
        optimizer: Literal["adam", "sgd"] = "adam",
        clip: float | None = 1.0,
        seed: int = 0,
    ) -> list[float]:
        """Trains on ``(inputs[i], targets[i])`` pairs, shuffled each epoch; returns the mean
        training loss of every epoch (per scored target: a class, a tag, a target token with
        its ``eos``; each batch weighs as many targets as it holds). A non-finite loss or
        gradient norm stops training with ``FloatingPointError`` before the step that would
        write it into the weights, with or without ``clip``."""
        for value, name in ((inputs, "inputs"), (targets, "targets")):
            if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
                raise TypeError(f"{name} must be a sequence, got {type(value).__name__}")
        if len(inputs) != len(targets) or len(inputs) == 0:
            raise ValueError(
                "inputs and targets must be non-empty and as many, got "
                f"{len(inputs)} and {len(targets)}"
            )
        epochs, batch_size = _size(epochs, "epochs"), _size(batch_size, "batch_size")
        if clip is not None:
            _rate(clip, "clip", positive=True)
        self._check_pairs(_sequences(inputs, "inputs"), targets)
        opt = _optimizer(optimizer, self.parameters(), lr)
        rng = make_rng(seed)
        losses = []
        steps = 0
        self.train()
        for _ in range(epochs):
            order = rng.permutation(len(inputs))
            total, scored = 0.0, 0
            for start in range(0, len(order), batch_size):
                chosen = order[start : start + batch_size]
                opt.zero_grad()
                loss, count = self._batch_loss(
                    [inputs[i] for i in chosen], [targets[i] for i in chosen]
                )
                if not np.isfinite(loss):
                    raise FloatingPointError(
                        f"the training loss is {loss} at step {steps + 1}: lower the learning rate"
                    )
                if clip is not None:
                    clip_grad_norm([g for _, g in opt.pairs], clip)
                else:
                    grad_norm([g for _, g in opt.pairs])  # refuses NaN and infinite gradients
                opt.step()
                steps += 1
                total += loss * count
                scored += count
            losses.append(total / scored)
        self.eval()
        return losses


class SequenceClassifier(_Task):
    """Many-to-one: ids -> embedding -> recurrent layers -> ``pooling`` (``"last"``: the
    final hidden state, of both directions when bidirectional; ``"mean"``: the mean of the
    outputs over the sequence's steps) -> linear -> softmax over ``num_classes``."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed: int = 32,
        hidden: int = 64,
        layers: int = 1,
        cell: Literal["lstm", "gru", "rnn"] = "lstm",
        *,
        bidirectional: bool = False,
        pooling: Literal["last", "mean"] = "last",
        seed: int | None = 0,
        dtype: Any = np.float32,
    ) -> None:
        vocab_size, num_classes = _size(vocab_size, "vocab_size"), _size(num_classes, "num_classes")
        embed, hidden = _size(embed, "embed"), _size(hidden, "hidden")
        layers = _size(layers, "layers")
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")
        rng = make_rng(seed)
        self.vocab_size, self.num_classes, self.pooling, self.cell = (
            vocab_size,
            num_classes,
            pooling,
            cell,
        )
        self.embedding, self.rnn = _encoder(
            vocab_size, embed, hidden, layers, cell, bidirectional, rng, dtype
        )
        self.head = Linear(hidden * (2 if bidirectional else 1), num_classes, dtype=dtype, seed=rng)
        self._cache: tuple[Any, ...] | None = None

    def _layers(self) -> list[Any]:
        return [self.embedding, self.rnn, self.head]

    def _check_pairs(self, inputs: list[NDArray[Any]], targets: Sequence[Any]) -> None:
        _check_ids(np.concatenate(inputs), self.vocab_size, "inputs")
        labels = np.asarray(targets)
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(
                f"targets must be one integer class id per input, got {labels.dtype} {labels.shape}"
            )
        _check_ids(labels, self.num_classes, "targets")

    def forward(self, sequences: Sequence[ArrayLike]) -> Array:
        """Class logits ``[B, K]``."""
        ids, lengths = _pad(sequences)
        _check_ids(ids, self.vocab_size, "ids")
        y, state = self.rnn.forward(self.embedding(ids), lengths=lengths)
        D = self.rnn.num_directions
        if self.pooling == "last":
            h = state[0] if self.cell == "lstm" else state
            pooled = np.concatenate([h[-D + d] for d in range(D)], axis=1)
        else:
            pooled = y.sum(axis=0) / lengths[:, None].astype(y.dtype)
        self._cache = (ids.shape, lengths, state)
        return self.head(pooled)

    def _batch_loss(self, inputs: list[Any], targets: list[Any]) -> tuple[float, int]:
        logits = self.forward(inputs)
        loss, dlogits = softmax_cross_entropy(logits, np.asarray(targets))
        dpooled = self.head.backward(dlogits)
        assert self._cache is not None
        (T, _), lengths, state = self._cache
        D, H = self.rnn.num_directions, self.rnn.hidden_size
        if self.pooling == "last":
            h = state[0] if self.cell == "lstm" else state
            dh = np.zeros_like(h)
            for d in range(D):
                dh[-D + d] = dpooled[:, d * H : (d + 1) * H]
            dstate: Any = (dh, None) if self.cell == "lstm" else dh
            dx = self.rnn.backward(None, dstate)
        else:
            steps = np.arange(T)[:, None] < lengths[None, :]
            dy = steps[:, :, None] * (dpooled / lengths[:, None].astype(dpooled.dtype))[None]
            dx = self.rnn.backward(dy.astype(self.embedding.dtype))
        self.embedding.backward(dx)
        return loss, len(inputs)

    @one_call_at_a_time
    def predict_proba(self, sequences: Sequence[ArrayLike]) -> NDArray[np.float64]:
        self.eval()
        logits = self.forward(sequences).astype(np.float64)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    @one_call_at_a_time
    def predict(self, sequences: Sequence[ArrayLike]) -> NDArray[np.int64]:
        return np.argmax(self.predict_proba(sequences), axis=1)


class SequenceTagger(_Task):
    """Many-to-many: a tag for every step, from the outputs of (by default bidirectional)
    recurrent layers: ids -> embedding -> recurrent layers -> linear -> softmax over
    ``num_tags`` at each step."""

    def __init__(
        self,
        vocab_size: int,
        num_tags: int,
        embed: int = 32,
        hidden: int = 64,
        layers: int = 1,
        cell: Literal["lstm", "gru", "rnn"] = "lstm",
        *,
        bidirectional: bool = True,
        seed: int | None = 0,
        dtype: Any = np.float32,
    ) -> None:
        vocab_size, num_tags = _size(vocab_size, "vocab_size"), _size(num_tags, "num_tags")
        embed, hidden = _size(embed, "embed"), _size(hidden, "hidden")
        layers = _size(layers, "layers")
        rng = make_rng(seed)
        self.vocab_size, self.num_tags = vocab_size, num_tags
        self.embedding, self.rnn = _encoder(
            vocab_size, embed, hidden, layers, cell, bidirectional, rng, dtype
        )
        self.head = Linear(hidden * (2 if bidirectional else 1), num_tags, dtype=dtype, seed=rng)

    def _layers(self) -> list[Any]:
        return [self.embedding, self.rnn, self.head]

    def _check_pairs(self, inputs: list[NDArray[Any]], targets: Sequence[Any]) -> None:
        _check_ids(np.concatenate(inputs), self.vocab_size, "inputs")
        for i, (x, tags) in enumerate(zip(inputs, _sequences(targets, "targets"), strict=True)):
            if tags.size != x.size:
                raise ValueError(
                    f"targets[{i}] has {tags.size} tags for {x.size} inputs: every tag sequence "
                    "must be as long as its input sequence"
                )
            _check_ids(tags, self.num_tags, f"targets[{i}]")

    def forward(self, sequences: Sequence[ArrayLike]) -> tuple[Array, NDArray[np.int64]]:
        """Tag logits ``[T, B, K]`` (zero rows past each sequence's end) and the lengths."""
        ids, lengths = _pad(sequences)
        _check_ids(ids, self.vocab_size, "ids")
        y, _ = self.rnn.forward(self.embedding(ids), lengths=lengths)
        logits = self.head(y)
        # (the head maps a padded step's zero output to its bias: zeroed, as documented; the
        # loss ignores those rows, so their gradient is zero either way)
        logits[np.arange(ids.shape[0])[:, None] >= lengths[None, :]] = 0
        return logits, lengths

    def _batch_loss(self, inputs: list[Any], targets: list[Any]) -> tuple[float, int]:
        logits, lengths = self.forward(inputs)
        tags, tag_lengths = _pad(targets, fill=IGNORE)
        if not np.array_equal(tag_lengths, lengths):
            raise ValueError("every tag sequence must be as long as its input sequence")
        loss, dlogits = softmax_cross_entropy(logits, tags, ignore_index=IGNORE)
        self.embedding.backward(self.rnn.backward(self.head.backward(dlogits)))
        return loss, int(lengths.sum())

    @one_call_at_a_time
    def predict(self, sequences: Sequence[ArrayLike]) -> list[NDArray[np.int64]]:
        """The most probable tag of every step of every sequence."""
        self.eval()
        logits, lengths = self.forward(sequences)
        best = np.argmax(logits, axis=2)
        return [best[: int(n), b] for b, n in enumerate(lengths)]


class Seq2Seq(_Task):
    """Encoder-decoder: the encoder (embedding, recurrent layers) reads the source; its final
    state starts the decoder (embedding, recurrent layers, linear over the target vocabulary),
    which is trained with teacher forcing (it reads ``bos`` then the target, and predicts the
    target then ``eos``) and decodes greedily. Source and target have their own vocabularies;
    ``bos`` and ``eos`` are ids of the target vocabulary."""

    def __init__(
        self,
        source_vocab: int,
        target_vocab: int,
        embed: int = 32,
        hidden: int = 64,
        layers: int = 1,
        cell: Literal["lstm", "gru", "rnn"] = "lstm",
        *,
        bos: int = 1,
        eos: int = 2,
        seed: int | None = 0,
        dtype: Any = np.float32,
    ) -> None:
        source_vocab = _size(source_vocab, "source_vocab")
        target_vocab = _size(target_vocab, "target_vocab")
        embed, hidden = _size(embed, "embed"), _size(hidden, "hidden")
        layers = _size(layers, "layers")
        for value, name in ((bos, "bos"), (eos, "eos")):
            if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if not 0 <= value < target_vocab:
                raise ValueError(f"{name} must be a target id in [0, {target_vocab}), got {value}")
        rng = make_rng(seed)
        self.source_vocab, self.target_vocab, self.bos, self.eos = (
            source_vocab,
            target_vocab,
            bos,
            eos,
        )
        self.src_embedding, self.encoder = _encoder(
            source_vocab, embed, hidden, layers, cell, False, rng, dtype
        )
        self.tgt_embedding, self.decoder = _encoder(
            target_vocab, embed, hidden, layers, cell, False, rng, dtype
        )
        self.head = Linear(hidden, target_vocab, dtype=dtype, seed=rng)

    def _layers(self) -> list[Any]:
        return [self.src_embedding, self.encoder, self.tgt_embedding, self.decoder, self.head]

    def _check_pairs(self, inputs: list[NDArray[Any]], targets: Sequence[Any]) -> None:
        _check_ids(np.concatenate(inputs), self.source_vocab, "inputs")
        for i, t in enumerate(_sequences(targets, "targets", allow_empty=True)):
            _check_ids(t, self.target_vocab, f"targets[{i}]")

    def _encode(self, sources: Sequence[ArrayLike]) -> Any:
        ids, lengths = _pad(sources, name="sources")
        _check_ids(ids, self.source_vocab, "source ids")
        _, state = self.encoder.forward(self.src_embedding(ids), lengths=lengths)
        return state

    def _batch_loss(self, inputs: list[Any], targets: list[Any]) -> tuple[float, int]:
        state = self._encode(inputs)
        shifted = [np.concatenate([[self.bos], np.asarray(t, dtype=np.int64)]) for t in targets]
        expected = [np.concatenate([np.asarray(t, dtype=np.int64), [self.eos]]) for t in targets]
        dec_in, lengths = _pad(shifted)
        dec_out, _ = _pad(expected, fill=IGNORE)
        _check_ids(dec_in, self.target_vocab, "target ids")
        y, _ = self.decoder.forward(self.tgt_embedding(dec_in), state, lengths=lengths)
        loss, dlogits = softmax_cross_entropy(self.head(y), dec_out, ignore_index=IGNORE)
        self.tgt_embedding.backward(self.decoder.backward(self.head.backward(dlogits)))
        # the decoder's initial state is the encoder's final state: its gradient flows back
        self.src_embedding.backward(self.encoder.backward(None, self.decoder.dstate0))
        return loss, int(lengths.sum())

    @one_call_at_a_time
    def predict(
        self, sources: Sequence[ArrayLike], max_length: int = 50
    ) -> list[NDArray[np.int64]]:
        """Greedy decoding of every source: the most probable token at each step, until
        ``eos`` (not included) or ``max_length`` tokens."""
        max_length = _size(max_length, "max_length")
        self.eval()
        state = self._encode(sources)
        B = len(sources)
        token = np.full((1, B), self.bos, dtype=np.int64)
        out = np.zeros((max_length, B), dtype=np.int64)
        done = np.zeros(B, dtype=bool)
        ends = np.full(B, max_length)
        for t in range(max_length):
            y, state = self.decoder.forward(self.tgt_embedding(token), state)
            token = np.argmax(self.head(y), axis=2)
            out[t] = token[0]
            newly = (~done) & (token[0] == self.eos)
            ends[newly] = t
            done |= newly
            if done.all():
                break
        return [out[: ends[b], b] for b in range(B)]
