"""Language models on rnnkit's kernels: the layers around the recurrent ones
(:class:`Embedding`, :class:`Linear`, :class:`Dropout`, :func:`softmax_cross_entropy`),
optimisers (:class:`SGD`, :class:`Adam`), :func:`clip_grad_norm`, and the language models
:class:`RNNLanguageModel` and :class:`WindowLanguageModel` (fit, evaluate, score, generate,
save/load; :func:`load_model` reads either), and the sequence tasks
:class:`SequenceClassifier`, :class:`SequenceTagger` and :class:`Seq2Seq`."""

from __future__ import annotations

from ._base import NeuralLanguageModel, load_model
from ._layers import Dropout, Embedding, Layer, Linear, log_softmax, softmax_cross_entropy
from ._optim import SGD, Adam, Optimizer, clip_grad_norm, grad_norm
from ._rnnlm import RNNLanguageModel
from ._tasks import Seq2Seq, SequenceClassifier, SequenceTagger
from ._window import WindowLanguageModel

__all__ = [
    "SGD",
    "Adam",
    "Dropout",
    "Embedding",
    "Layer",
    "Linear",
    "NeuralLanguageModel",
    "Optimizer",
    "RNNLanguageModel",
    "Seq2Seq",
    "SequenceClassifier",
    "SequenceTagger",
    "WindowLanguageModel",
    "clip_grad_norm",
    "grad_norm",
    "load_model",
    "log_softmax",
    "softmax_cross_entropy",
]
