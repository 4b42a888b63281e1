"""Language models on rnnkit's kernels: the layers around the recurrent ones
(:class:`Embedding`, :class:`Linear`, :class:`Dropout`, :func:`softmax_cross_entropy`),
optimisers (:class:`SGD`, :class:`Adam`), :func:`clip_grad_norm`, and the recurrent language
model :class:`RNNLanguageModel` (fit, evaluate, score, generate, save/load)."""

from __future__ import annotations

from ._layers import Dropout, Embedding, Layer, Linear, log_softmax, softmax_cross_entropy
from ._optim import SGD, Adam, Optimizer, clip_grad_norm
from ._rnnlm import RNNLanguageModel

__all__ = [
    "SGD",
    "Adam",
    "Dropout",
    "Embedding",
    "Layer",
    "Linear",
    "Optimizer",
    "RNNLanguageModel",
    "clip_grad_norm",
    "log_softmax",
    "softmax_cross_entropy",
]
