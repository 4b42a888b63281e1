"""The recurrent language model: ids -> :class:`Embedding` -> dropout -> ``rnnkit.nn.LSTM``
/ ``GRU`` / ``RNN`` -> dropout -> :class:`Linear` decoder over the vocabulary (Zaremba et al.
2014's model; weight tying of Press & Wolf 2017 as an option).

Shapes: T steps, B batch, V vocabulary, E embedding size, H hidden size, L layers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import nn
from .._checks import check_bool, make_rng
from ..data import random_batches, sequential_batches
from ..ngram import Vocabulary
from ..text import Tokenizer
from ._base import NeuralLanguageModel, _lm_vocab_size
from ._calls import one_call_at_a_time
from ._layers import Dropout, Embedding, Linear, _dtype, _fraction, _size, log_softmax

__all__ = ["RNNLanguageModel"]

Array = NDArray[np.floating[Any]]
_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class RNNLanguageModel(NeuralLanguageModel):
    """A recurrent language model over ``vocab_size`` ids.

    ``vocabulary`` (a :class:`rnnkit.ngram.Vocabulary`) and ``tokenizer`` (from
    :mod:`rnnkit.text`) are optional: with them the text arguments of ``fit``, ``evaluate``,
    ``score`` and ``generate`` take and give strings, and ``save`` keeps them. ``dropout``
    applies to the embeddings, between recurrent layers and to the decoder's input (inverted
    dropout, training only). ``tie_weights`` shares the embedding and decoder weights (needs
    ``embed == hidden``). ``cell``: ``"lstm"``, ``"gru"`` or ``"rnn"`` (tanh). Training batches
    are windows of ``seq_len`` steps (sequential partitioning carries the state across them:
    truncated BPTT; random sampling resets it).
    """

    kind = "rnn"

    def __init__(
        self,
        vocab_size: int,
        embed: int = 128,
        hidden: int = 256,
        layers: int = 2,
        cell: Literal["lstm", "gru", "rnn"] = "lstm",
        dropout: float = 0.0,
        tie_weights: bool = False,
        *,
        vocabulary: Vocabulary | None = None,
        tokenizer: Tokenizer | None = None,
        seed: int | None = 0,
        dtype: Any = np.float32,
    ) -> None:
        vocab_size, embed = _lm_vocab_size(vocab_size), _size(embed, "embed")
        hidden, layers = _size(hidden, "hidden"), _size(layers, "layers")
        if cell not in _CELLS:
            raise ValueError(f"cell must be 'lstm', 'gru' or 'rnn', got {cell!r}")
        dropout = _fraction(dropout, "dropout")
        dtype = _dtype(dtype)
        tie_weights = check_bool(tie_weights, "tie_weights")
        if tie_weights and embed != hidden:
            raise ValueError(
                f"tie_weights needs embed == hidden, got embed={embed}, hidden={hidden}"
            )
        config = {
            "vocab_size": int(vocab_size),
            "embed": int(embed),
            "hidden": int(hidden),
            "layers": int(layers),
            "cell": cell,
            "dropout": float(dropout),
            "tie_weights": tie_weights,
            "dtype": np.dtype(dtype).name,
        }
        super().__init__(config, vocabulary, tokenizer)
        rng = make_rng(seed)
        self.embedding = Embedding(vocab_size, embed, dtype=dtype, seed=rng)
        self.rnn = _CELLS[cell](
            embed,
            hidden,
            layers,
            dropout=dropout if layers > 1 else 0.0,
            dtype=dtype,
            seed=int(rng.integers(2**31)),
        )
        self.drop_in = Dropout(dropout, dtype=dtype, seed=rng)
        self.drop_out = Dropout(dropout, dtype=dtype, seed=rng)
        self.decoder = Linear(hidden, vocab_size, dtype=dtype, seed=rng)
        if tie_weights:
            self.decoder.tie(self.embedding)
        self.dtype = self.embedding.dtype

    def _modules(self) -> list[tuple[str, Any]]:
        return [
            ("embedding", self.embedding),
            ("drop_in", self.drop_in),
            ("rnn", self.rnn),
            ("drop_out", self.drop_out),
            ("decoder", self.decoder),
        ]

    # ------------------------------------------------------------------ forward / backward
    def forward(self, inputs: ArrayLike, state: Any = None) -> tuple[Array, Any]:
        """``(logits [T, B, V], state)`` for ``inputs [T, B]`` (ids) after ``state``
        (``h [L, B, H]``, or ``(h, c)`` for the LSTM; None for zeros)."""
        x = self.drop_in(self.embedding(inputs))
        y, state = self.rnn.forward(x, state)
        return self.decoder(self.drop_out(y)), state

    def backward(self, dlogits: Array) -> None:
        """Adds the gradients of the last (training) forward, given dloss/dlogits."""
        dy = self.drop_out.backward(self.decoder.backward(dlogits))
        self.embedding.backward(self.drop_in.backward(self.rnn.backward(dy)))

    @one_call_at_a_time
    def loss(self, inputs: Any, targets: Any, state: Any = None) -> tuple[float, Any]:
        logits, state = self.forward(inputs, state)
        return self._trained_loss(logits, targets), state

    def _batches(
        self,
        ids: NDArray[np.int64],
        batching: str,
        batch_size: int,
        seq_len: int,
        rng: np.random.Generator,
    ) -> Iterator[tuple[Any, Any, bool]]:
        batches = (
            sequential_batches(ids, batch_size, seq_len)
            if batching == "sequential"
            else random_batches(ids, batch_size, seq_len, rng)
        )
        for b in batches:
            yield b.inputs, b.targets, b.carry_state

    # ------------------------------------------------------------------ evaluation
    @one_call_at_a_time
    def token_log_probs(self, data: ArrayLike | str, *, chunk: int = 256) -> NDArray[np.float64]:
        ids = self._ids(data, "data")
        was_training = self.training
        self.eval()
        stream = np.concatenate([[Vocabulary.EOS], ids])
        out = np.empty(ids.size)
        state = None
        for start in range(0, ids.size, chunk):
            end = min(start + chunk, ids.size)
            logits, state = self.forward(stream[start:end, None], state)
            logp = log_softmax(logits[:, 0, :].astype(np.float64))
            out[start:end] = logp[np.arange(end - start), stream[start + 1 : end + 1]]
        self.train(was_training)
        return out

    def _start(self, context: NDArray[np.int64]) -> tuple[NDArray[np.float64], Any]:
        logits, state = self.forward(context[:, None], None)
        return logits[-1, 0].astype(np.float64), state

    def _advance(self, token: int, state: Any) -> tuple[NDArray[np.float64], Any]:
        logits, state = self.forward(np.array([[token]]), state)
        return logits[-1, 0].astype(np.float64), state

    def __repr__(self) -> str:
        c = self.config
        return (
            f"RNNLanguageModel({c['vocab_size']}, embed={c['embed']}, hidden={c['hidden']}, "
            f"layers={c['layers']}, cell={c['cell']!r}, dropout={c['dropout']}, "
            f"tie_weights={c['tie_weights']})"
        )
