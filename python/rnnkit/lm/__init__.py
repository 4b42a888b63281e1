"""Language models on rnnkit's kernels: the layers around the recurrent ones
(:class:`Embedding`, :class:`Linear`, :class:`Dropout`, :func:`softmax_cross_entropy`),
optimisers (:class:`SGD`, :class:`Adam`) and :func:`clip_grad_norm`."""

from __future__ import annotations

from ._layers import Dropout, Embedding, Layer, Linear, log_softmax, softmax_cross_entropy
from ._optim import SGD, Adam, Optimizer, clip_grad_norm

__all__ = [
    "SGD",
    "Adam",
    "Dropout",
    "Embedding",
    "Layer",
    "Linear",
    "Optimizer",
    "clip_grad_norm",
    "log_softmax",
    "softmax_cross_entropy",
]
