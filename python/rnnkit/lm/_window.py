"""The fixed-window neural language model (Bengio et al. 2003), between the n-gram models
and the recurrent ones: the embeddings of the previous ``context`` tokens, concatenated ->
a tanh hidden layer -> a linear decoder over the vocabulary -> softmax.

Shapes: B windows, C context tokens, E embedding size, H hidden size, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._checks import make_rng
from ..data import _positive
from ..ngram import Vocabulary
from ..text import Tokenizer
from ._base import NeuralLanguageModel, _is_int, _lm_vocab_size
from ._calls import one_call_at_a_time
from ._layers import Dropout, Embedding, Linear, _dtype, _fraction, _size, log_softmax

__all__ = ["WindowLanguageModel"]

Array = NDArray[np.floating[Any]]


class WindowLanguageModel(NeuralLanguageModel):
    """Predicts a token from the ``context`` tokens before it (the stream starts after
    ``context`` sentence ends, as an n-gram model of order ``context + 1`` pads with ``<s>``).
    Same interface as :class:`RNNLanguageModel`; a training batch is ``batch_size`` windows
    (``batching="random"``: shuffled each epoch; ``"sequential"``: in stream order;
    ``seq_len`` is not used)."""

    kind = "window"

    def __init__(
        self,
        vocab_size: int,
        context: int = 4,
        embed: int = 64,
        hidden: int = 256,
        dropout: float = 0.0,
        *,
        vocabulary: Vocabulary | None = None,
        tokenizer: Tokenizer | None = None,
        seed: int | None = 0,
        dtype: Any = np.float32,
    ) -> None:
        vocab_size = _lm_vocab_size(vocab_size)
        if not _is_int(context) or context < 1:
            raise ValueError(f"context must be an int >= 1, got {context!r}")
        embed, hidden = _size(embed, "embed"), _size(hidden, "hidden")
        dropout = _fraction(dropout, "dropout")
        dtype = _dtype(dtype)
        config = {
            "vocab_size": int(vocab_size),
            "context": int(context),
            "embed": int(embed),
            "hidden": int(hidden),
            "dropout": float(dropout),
            "dtype": np.dtype(dtype).name,
        }
        super().__init__(config, vocabulary, tokenizer)
        rng = make_rng(seed)
        self.embedding = Embedding(vocab_size, embed, dtype=dtype, seed=rng)
        self.hidden = Linear(context * embed, hidden, dtype=dtype, seed=rng)
        self.drop = Dropout(dropout, dtype=dtype, seed=rng)
        self.decoder = Linear(hidden, vocab_size, dtype=dtype, seed=rng)
        self.dtype = self.embedding.dtype
        self._h: Array | None = None

    def _modules(self) -> list[tuple[str, Any]]:
        return [
            ("embedding", self.embedding),
            ("hidden", self.hidden),
            ("drop", self.drop),
            ("decoder", self.decoder),
        ]

    def forward(self, windows: ArrayLike) -> Array:
        """Logits ``[B, V]`` of the token after each window ``[B, C]`` of ids."""
        w = np.asarray(windows)
        C = self.config["context"]
        if w.ndim != 2 or w.shape[1] != C:
            raise ValueError(f"windows must have shape [B, {C}], got {w.shape}")
        e = self.embedding(w).reshape(w.shape[0], -1)
        h = np.tanh(self.hidden(e))
        self._h = h if self.training else None
        return self.decoder(self.drop(h))

    def backward(self, dlogits: Array) -> None:
        assert self._h is not None
        dh = self.drop.backward(self.decoder.backward(dlogits)) * (1 - self._h * self._h)
        de = self.hidden.backward(dh)
        self.embedding.backward(de.reshape(de.shape[0], self.config["context"], -1))

    @one_call_at_a_time
    def loss(self, inputs: Any, targets: Any, state: Any = None) -> tuple[float, Any]:
        return self._trained_loss(self.forward(inputs), targets), None

    def _windows(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Every token of the stream with its ``context`` predecessors (padded with ``</s>``)."""
        C = self.config["context"]
        stream = np.concatenate([np.full(C, Vocabulary.EOS, dtype=np.int64), ids])
        if ids.size == 0:
            return np.zeros((0, C), dtype=np.int64), ids
        windows = np.lib.stride_tricks.sliding_window_view(stream[:-1], C)
        return windows, ids

    def _batches(
        self,
        ids: NDArray[np.int64],
        batching: str,
        batch_size: int,
        seq_len: int,
        rng: np.random.Generator,
    ) -> Iterator[tuple[Any, Any, bool]]:
        # (NumPy integers too, as everywhere: np.int64(4) was refused here)
        batch_size = _positive(batch_size, "batch_size")
        windows, targets = self._windows(ids)
        order = rng.permutation(targets.size) if batching == "random" else np.arange(targets.size)
        for start in range(0, targets.size, batch_size):
            chosen = order[start : start + batch_size]
            yield windows[chosen], targets[chosen], False

    @one_call_at_a_time
    def token_log_probs(self, data: ArrayLike | str, *, chunk: int = 4096) -> NDArray[np.float64]:
        ids = self._ids(data, "data")
        was_training = self.training
        self.eval()
        windows, targets = self._windows(ids)
        out = np.empty(ids.size)
        for start in range(0, ids.size, chunk):
            end = min(start + chunk, ids.size)
            logp = log_softmax(self.forward(windows[start:end]).astype(np.float64))
            out[start:end] = logp[np.arange(end - start), targets[start:end]]
        self.train(was_training)
        return out

    def _start(self, context: NDArray[np.int64]) -> tuple[NDArray[np.float64], Any]:
        C = self.config["context"]
        window = np.concatenate([np.full(C, Vocabulary.EOS, dtype=np.int64), context])[-C:]
        return self.forward(window[None, :])[0].astype(np.float64), window

    def _advance(self, token: int, state: Any) -> tuple[NDArray[np.float64], Any]:
        window = np.concatenate([state[1:], [token]])
        return self.forward(window[None, :])[0].astype(np.float64), window

    def __repr__(self) -> str:
        c = self.config
        return (
            f"WindowLanguageModel({c['vocab_size']}, context={c['context']}, embed={c['embed']}, "
            f"hidden={c['hidden']}, dropout={c['dropout']})"
        )
