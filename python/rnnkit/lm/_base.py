"""What the neural language models share: parameters, the training loop, evaluation in the
n-gram models' convention, scoring, generation and model files."""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._checks import check_bool, check_input_file, make_rng
from .._sampling import sample_token
from ..data import _positive
from ..ngram import Vocabulary
from ..ngram._files import check_output_file, write_atomically
from ..text import (
    CharTokenizer,
    Tokenizer,
    WhitespaceTokenizer,
    WordTokenizer,
    _check_tokenizer,
    _check_words,
    _is_version,
)
from ..text import encode as encode_text
from ._calls import OneCallAtATime, one_call_at_a_time
from ._layers import _size, softmax_cross_entropy
from ._optim import SGD, Adam, Optimizer, _rate, clip_grad_norm, grad_norm

__all__ = ["NeuralLanguageModel"]

Array = NDArray[np.floating[Any]]
_FORMAT = "rnnkit.lm"
_VERSION = 1


def _tokenizer_spec(tokenizer: Tokenizer | None) -> dict[str, Any] | None:
    if tokenizer is None:
        return None
    if isinstance(tokenizer, CharTokenizer):
        return {"kind": "char", "normalize": tokenizer.normalize}
    if isinstance(tokenizer, WordTokenizer):
        return {
            "kind": "word",
            "lower": tokenizer.lower,
            "split_punctuation": tokenizer.split_punctuation,
            "normalize": tokenizer.normalize,
        }
    if isinstance(tokenizer, WhitespaceTokenizer):
        return {"kind": "whitespace"}
    raise TypeError(f"cannot save a tokenizer of type {type(tokenizer).__name__}")


def _tokenizer_from(spec: Any) -> Tokenizer | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ValueError(f"tokenizer must be null or an object with a kind, got {spec!r}")
    kind = spec.get("kind")
    if kind == "char":
        return CharTokenizer(normalize=spec.get("normalize", "NFC"))
    if kind == "word":
        return WordTokenizer(
            lower=spec.get("lower", True),
            split_punctuation=spec.get("split_punctuation", True),
            # (files written before the option tokenized without normalising)
            normalize=spec.get("normalize"),
        )
    if kind == "whitespace":
        return WhitespaceTokenizer()
    raise ValueError(f"unknown tokenizer kind {kind!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _exp(value: float) -> float:
    """exp, infinite past float64's range (a perplexity of a diverging model); NaN stays NaN
    (``nan < 709`` is False: it read as an infinite perplexity)."""
    if math.isnan(value):
        return math.nan
    return math.exp(value) if value < 709.0 else math.inf


def _lm_vocab_size(value: Any) -> int:
    """A language model's vocabulary size: at least the three ids every stream uses (``<unk>``,
    ``<s>``, and ``</s>``, which ends every line and starts generation)."""
    size = _size(value, "vocab_size")
    if size < 3:
        raise ValueError(f"vocab_size must be >= 3 (ids 0, 1, 2 are <unk>, <s>, </s>), got {size}")
    return size


class NeuralLanguageModel(OneCallAtATime):
    """A neural language model over ``config["vocab_size"]`` ids: subclasses define the layers
    (:meth:`_modules`), the loss of a batch, the batches, the log probability of every token
    of a stream, and the two steps of generation."""

    #: Subclasses by the name their files carry.
    kinds: ClassVar[dict[str, type[NeuralLanguageModel]]] = {}
    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            NeuralLanguageModel.kinds[cls.kind] = cls

    def __init__(
        self,
        config: dict[str, Any],
        vocabulary: Vocabulary | None,
        tokenizer: Tokenizer | None,
    ) -> None:
        if vocabulary is not None and not isinstance(vocabulary, Vocabulary):
            raise TypeError(
                "vocabulary must be a rnnkit.ngram.Vocabulary or None, got "
                f"{type(vocabulary).__name__}"
            )
        if tokenizer is not None:
            _check_tokenizer(tokenizer)
        if vocabulary is not None and len(vocabulary) != config["vocab_size"]:
            raise ValueError(
                f"vocab_size is {config['vocab_size']} but the vocabulary has {len(vocabulary)} ids"
            )
        self.config = config
        self.vocabulary = vocabulary
        self.tokenizer = tokenizer
        self.training = True
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ to define
    def _modules(self) -> list[tuple[str, Any]]:
        """``(name, layer)`` for every layer with parameters or a mode."""
        raise NotImplementedError

    def loss(self, inputs: Any, targets: Any, state: Any = None) -> tuple[float, Any]:
        """Mean cross-entropy (nats per token) of a batch, and the state to carry; in training
        mode also adds the gradients."""
        raise NotImplementedError

    def _trained_loss(self, logits: Array, targets: Any) -> float:
        """The mean cross-entropy of ``logits`` against ``targets``; in training mode the
        model's ``backward(dlogits)`` runs too."""
        loss, dlogits = softmax_cross_entropy(logits, targets)
        if self.training:
            self.backward(dlogits)  # type: ignore[attr-defined]
        return loss

    def _batches(
        self,
        ids: NDArray[np.int64],
        batching: str,
        batch_size: int,
        seq_len: int,
        rng: np.random.Generator,
    ) -> Iterator[tuple[Any, Any, bool]]:
        """``(inputs, targets, carry_state)`` training batches."""
        raise NotImplementedError

    def token_log_probs(self, data: ArrayLike | str) -> NDArray[np.float64]:
        """The natural-log probability of every token of the stream given the tokens before
        it, the first one given a sentence end (``</s>``, as the n-gram models condition the
        first word on ``<s>``): one value per token."""
        raise NotImplementedError

    def _start(self, context: NDArray[np.int64]) -> tuple[NDArray[np.float64], Any]:
        """Logits of the next token after ``context`` (which starts with ``</s>``), and the
        state to continue from."""
        raise NotImplementedError

    def _advance(self, token: int, state: Any) -> tuple[NDArray[np.float64], Any]:
        """Logits of the next token after ``token``, and the new state."""
        raise NotImplementedError

    # ------------------------------------------------------------------ parameters
    def named_parameters(self) -> Iterator[tuple[str, Array, Array]]:
        """``(name, parameter, gradient)`` for every distinct parameter array."""
        seen: set[int] = set()
        for prefix, layer in self._modules():
            for key, p in getattr(layer, "params", {}).items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield f"{prefix}.{key}", p, layer.grads[key]

    def parameters(self) -> list[tuple[Array, Array]]:
        """``(parameter, gradient)`` pairs, what the optimisers take."""
        return [(p, g) for _, p, g in self.named_parameters()]

    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.named_parameters())

    def zero_grad(self) -> None:
        for _, _, g in self.named_parameters():
            g.fill(0)

    @one_call_at_a_time
    def train(self, mode: bool = True) -> NeuralLanguageModel:
        self.training = check_bool(mode, "mode")
        for _, layer in self._modules():
            layer.train(mode)
        return self

    def eval(self) -> NeuralLanguageModel:
        return self.train(False)

    # ------------------------------------------------------------------ training
    @one_call_at_a_time
    def fit(
        self,
        train: ArrayLike | str,
        valid: ArrayLike | str | None = None,
        *,
        epochs: int = 1,
        lr: float = 1.0,
        optimizer: Literal["sgd", "adam"] = "sgd",
        clip: float | None = 0.25,
        batching: Literal["sequential", "random"] = "sequential",
        batch_size: int = 32,
        seq_len: int = 35,
        lr_decay: float = 4.0,
        max_steps: int | None = None,
        max_seconds: float | None = None,
        seed: int = 0,
        on_step: Callable[[dict[str, float]], None] | None = None,
    ) -> list[dict[str, float]]:
        """Trains on an id stream (or text, with the model's vocabulary and tokenizer) and
        returns one record per epoch (``epoch``, ``lr``, ``train_ppl``, ``valid_ppl`` with
        ``valid``, ``tokens_per_s``, ``seconds``). After an epoch whose validation perplexity
        is not better than the best so far, the learning rate is divided by ``lr_decay``.
        ``clip`` bounds the gradients' global norm (None: no clipping). Exploding gradients:
        a non-finite loss or gradient norm stops training with ``FloatingPointError`` before
        the step that would write it into the weights (a finite but huge step can still
        overflow a weight, and the next step's loss then stops it). ``max_steps`` /
        ``max_seconds`` stop early
        (the epoch's record then covers the steps run). ``on_step`` is called after every
        step with ``step``, ``loss``, ``lr``."""
        train_ids = self._ids(train, "train")
        valid_ids = None if valid is None else self._ids(valid, "valid")
        if batching not in ("sequential", "random"):
            raise ValueError(f"batching must be 'sequential' or 'random', got {batching!r}")
        if not _is_int(epochs) or epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
        _positive(batch_size, "batch_size")
        _positive(seq_len, "seq_len")
        if clip is not None:
            _rate(clip, "clip", positive=True)
        if max_steps is not None:
            _positive(max_steps, "max_steps")
        if max_seconds is not None and not (_is_number(max_seconds) and 0 < max_seconds < math.inf):
            raise ValueError(
                f"max_seconds must be a finite number > 0 or None, got {max_seconds!r}"
            )
        if on_step is not None and not callable(on_step):
            raise TypeError(f"on_step must be callable or None, got {type(on_step).__name__}")
        for name, ids in (("train", train_ids), ("valid", valid_ids)):
            if ids is not None and ids.size == 0:
                raise ValueError(f"{name} must hold at least one token, got an empty stream")
        opt: Optimizer
        if optimizer == "sgd":
            opt = SGD(self.parameters(), lr=lr)
        elif optimizer == "adam":
            opt = Adam(self.parameters(), lr=lr)
        else:
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        if not _is_number(lr_decay) or not 1 <= lr_decay < math.inf:
            raise ValueError(f"lr_decay must be a finite number >= 1, got {lr_decay!r}")
        rng = make_rng(seed)
        best = math.inf
        steps = 0
        start = time.perf_counter()
        records: list[dict[str, float]] = []
        for epoch in range(1, int(epochs) + 1):
            self.train()
            t0 = time.perf_counter()
            total, tokens = 0.0, 0
            state = None
            stopped = False
            for inputs, targets, carry in self._batches(
                train_ids, batching, batch_size, seq_len, rng
            ):
                if not carry:
                    state = None
                self.zero_grad()
                loss, state = self.loss(inputs, targets, state)
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"the training loss is {loss} at step {steps + 1}: lower the learning rate"
                    )
                if clip is not None:
                    clip_grad_norm([g for _, g in opt.pairs], clip)
                else:
                    grad_norm([g for _, g in opt.pairs])  # refuses NaN and infinite gradients
                opt.step()
                n = int(np.size(targets))
                total += loss * n
                tokens += n
                steps += 1
                if on_step is not None:
                    on_step({"step": steps, "loss": loss, "lr": opt.lr})
                elapsed = time.perf_counter() - start
                if (max_steps is not None and steps >= max_steps) or (
                    max_seconds is not None and elapsed >= max_seconds
                ):
                    stopped = True
                    break
            seconds = time.perf_counter() - t0
            record = {
                "epoch": epoch,
                "lr": opt.lr,
                "train_ppl": _exp(total / tokens) if tokens else math.nan,
                "tokens_per_s": tokens / seconds if seconds > 0 else math.nan,
                "seconds": seconds,
            }
            if valid_ids is not None:
                ppl = self.evaluate(valid_ids)
                record["valid_ppl"] = ppl
                if ppl >= best:
                    opt.lr /= lr_decay
                best = min(best, ppl)
            records.append(record)
            if stopped:
                break
        self.history += records
        self.eval()
        return records

    # ------------------------------------------------------------------ evaluation
    def _ids(self, data: ArrayLike | str, name: str) -> NDArray[np.int64]:
        if isinstance(data, str):
            if self.vocabulary is None or self.tokenizer is None:
                raise TypeError(
                    f"{name} is text: the model needs a vocabulary and a tokenizer for it"
                )
            return encode_text(data, self.vocabulary, self.tokenizer).astype(np.int64)
        arr = np.asarray(data)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(
                f"{name} must be a 1-D array of token ids or a str, got {arr.dtype} {arr.shape}"
            )
        V = self.config["vocab_size"]
        if arr.size and (arr.min() < 0 or arr.max() >= V):
            raise ValueError(f"{name} holds ids outside [0, {V})")
        return arr.astype(np.int64, copy=False)

    @one_call_at_a_time
    def evaluate(self, data: ArrayLike | str) -> float:
        """Perplexity, exp(mean negative log likelihood per token), every token predicted
        from all before it (the n-gram models' convention: tokens include ``</s>``)."""
        logp = self.token_log_probs(data)
        if logp.size == 0:
            raise ValueError("cannot evaluate an empty stream")
        return _exp(-float(logp.mean()))

    @one_call_at_a_time
    def score(self, sentences: str | list[str]) -> list[tuple[float, NDArray[np.float64]]]:
        """For each sentence (a str: one sentence; or an iterable of str, one sentence each),
        its log10 probability with ``</s>`` and every token's log10 probability, each sentence
        scored from a fresh start after ``</s>``: rank how natural phrasings are, comparable
        with the n-gram models' scores. A sentence is one line: its line end (``"\\n"`` or
        ``"\\r\\n"``, as ``for line in file`` gives it) is dropped, and a newline inside it
        is a ``ValueError`` (give a text's lines one per item, e.g. ``text.splitlines()``);
        other characters are the tokenizer's."""
        if self.vocabulary is None or self.tokenizer is None:
            raise TypeError("score needs a model with a vocabulary and a tokenizer")
        if not isinstance(sentences, str) and (
            not isinstance(sentences, Iterable) or isinstance(sentences, (bytes, bytearray))
        ):
            raise TypeError(
                f"sentences must be a str or an iterable of str, got {type(sentences).__name__}"
            )
        lines = [sentences] if isinstance(sentences, str) else list(sentences)
        for i, line in enumerate(lines):
            name = "sentences" if isinstance(sentences, str) else f"sentences[{i}]"
            if not isinstance(line, str):
                raise TypeError(f"{name} must be a str, got {type(line).__name__}")
            if line.endswith("\n"):  # a line as a file gives it: its end is no second line
                line = lines[i] = line[:-1]
            if "\n" in line:
                # (the tokenizer would make it two sentences, scored as one entry)
                raise ValueError(
                    f"{name} holds a newline: give one sentence per item (e.g. text.splitlines())"
                )
        out = []
        for line in lines:
            ids = encode_text(line, self.vocabulary, self.tokenizer) if line else np.array([2])
            tokens = self.token_log_probs(ids) / math.log(10)
            out.append((float(tokens.sum()), tokens))
        return out

    # ------------------------------------------------------------------ generation
    @one_call_at_a_time
    def generate(
        self,
        prompt: str | ArrayLike = "",
        n: int = 100,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = 0,
    ) -> Any:
        """``n`` tokens after ``prompt`` (text, with the model's vocabulary and tokenizer, or
        ids), sampled from the softmax at ``temperature`` over the ``top_k`` most probable
        tokens (all when None); ``temperature=0`` takes the most probable (greedy). Returns the
        prompt, as given, and its continuation as text for a text prompt, else the ``n`` new
        ids. The model starts after a sentence end; a text prompt conditions it as the ids of
        the same text do, each line end a ``</s>`` (``"ab\\n"`` continues after ``</s>``,
        ``"ab"`` continues the line)."""
        if not _is_int(n) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        if not _is_number(temperature) or not 0 <= temperature < math.inf:
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        V = self.config["vocab_size"]
        if top_k is not None and (not _is_int(top_k) or not 1 <= top_k <= V):
            raise ValueError(f"top_k must be None or an int in [1, {V}], got {top_k!r}")
        rng = make_rng(seed)
        text = isinstance(prompt, str)
        if text and (self.vocabulary is None or self.tokenizer is None):
            raise TypeError(
                "prompt is text: the model needs a vocabulary and a tokenizer for it (give "
                "token ids instead, e.g. prompt=[]; the default prompt is '')"
            )
        if isinstance(prompt, str):  # (not `text`: mypy narrows on isinstance only)
            # The prompt's ids as encode gives them, with </s> for each line end, less the
            # </s> that encode puts after a last line the prompt leaves open ("ab": the model
            # continues the line; "ab\n": it starts the next one after </s>).
            prefix = self._ids(prompt, "prompt")
            if prompt and not prompt.endswith("\n"):
                prefix = prefix[:-1]
        else:
            prefix = self._ids(prompt, "prompt")
        was_training = self.training
        self.eval()
        last, state = self._start(np.concatenate([[Vocabulary.EOS], prefix]).astype(np.int64))
        out: list[int] = []
        try:
            for _ in range(int(n)):
                token = sample_token(last.astype(np.float64), temperature, top_k, rng)
                out.append(token)
                last, state = self._advance(token, state)
        finally:
            self.train(was_training)
        if isinstance(prompt, str):
            return self._continue_text(prompt, prefix, out)
        return np.array(out, dtype=np.int64)

    def _continue_text(self, prompt: str, prefix: NDArray[np.int64], new: list[int]) -> str:
        """``prompt`` as given, then the text of the ``new`` tokens as they join the prompt's
        tokens (``prefix``): decoding the prompt's tokens would not give the prompt back
        (lowercased or unknown words, normalised characters, its final newlines)."""
        assert self.vocabulary is not None and self.tokenizer is not None
        tokenizer = self.tokenizer
        words = self.vocabulary.decode(np.concatenate([prefix, new]).astype(np.int64))

        def text(tokens: list[str]) -> str:
            # (every </s> a newline: decode drops a final one, for encode's sake)
            lines: list[list[str]] = [[]]
            for word in tokens:
                if word == "</s>":
                    lines.append([])
                elif word != "<s>":
                    lines[-1].append(word)
            return "\n".join(tokenizer.detokenize(line) for line in lines)

        whole, head = text(words), text(words[: len(prefix)])
        if not whole.startswith(head):
            # (a tokenizer whose detokenize changes a line's start when tokens follow: the new
            # tokens' text alone)
            return prompt + text(words[len(prefix) :])
        rest = whole[len(head) :]
        if prompt[-1:].isspace() and not head[-1:].isspace() and rest.startswith(" "):
            # The space a word tokenizer puts between words is in the prompt already (one: a
            # character tokenizer's generated spaces are tokens of their own, and kept).
            rest = rest[1:]
        return prompt + rest

    # ------------------------------------------------------------------ files
    @one_call_at_a_time
    def save(self, path: str | os.PathLike[str]) -> None:
        """One ``.npz`` file: every parameter and a JSON ``config`` (format name and version,
        the model's kind and constructor arguments, the vocabulary's words, the tokenizer),
        written atomically. :func:`load_model` (or the class's ``load``) reads it back."""
        check_output_file(path)
        config = {
            "format": _FORMAT,
            "version": _VERSION,
            "kind": self.kind,
            "model": self.config,
            "vocabulary": None if self.vocabulary is None else self.vocabulary.words,
            "tokenizer": _tokenizer_spec(self.tokenizer),
        }
        arrays: dict[str, Any] = {name: p for name, p, _ in self.named_parameters()}
        arrays["config"] = np.array(json.dumps(config, ensure_ascii=False))
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()

        def write(tmp: str) -> None:
            Path(tmp).write_bytes(data)

        write_atomically(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """The model :meth:`save` wrote; ``ValueError`` (naming the file) for another file,
        kind or format version."""
        name = check_input_file(path, "model file")
        with open(path, "rb") as f:
            head = f.read(4)
        if head != b"PK\x03\x04":
            # (np.load would try it as a .npy or a pickle, and advise allow_pickle=True)
            raise ValueError(
                f"{name} is not an rnnkit language model (an .npz archive): it starts with {head!r}"
            )
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
        except Exception as error:
            # Whatever zipfile and NumPy raise on a damaged archive means the same: not our
            # file (the fuzz target fuzz/targets.py:lm_checkpoint found, beside the usual
            # OSError/ValueError/BadZipFile/zlib.error, struct.error, EOFError, KeyError,
            # NotImplementedError, RuntimeError for an "encrypted" member, and the tokenizer's
            # and parser's errors on an array header). zip's CRC-32 of every member catches a
            # damaged array or configuration.
            raise ValueError(f"{name} is not an rnnkit language model: {error}") from None
        try:
            config = json.loads(str(arrays.pop("config")))
        except (KeyError, ValueError, RecursionError):  # (json's errors and limits)
            raise ValueError(f"{name} is not an rnnkit language model (no config)") from None
        if not isinstance(config, dict) or config.get("format") != _FORMAT:
            raise ValueError(f"{name} is not an rnnkit language model (no {_FORMAT!r} format)")
        if not _is_version(config.get("version"), _VERSION):  # (not true, not 1.0)
            raise ValueError(
                f"{name} has format version {config.get('version')!r}; this rnnkit reads "
                f"version {_VERSION}"
            )
        kind_name = config.get("kind")
        kind = NeuralLanguageModel.kinds.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None or not issubclass(kind, cls):
            raise ValueError(f"{name} holds a model of kind {kind_name!r}, not {cls.__name__}")
        words = config.get("vocabulary")
        arguments = config.get("model")
        try:
            if not isinstance(arguments, dict):
                raise ValueError(f"model must be an object of arguments, got {arguments!r}")
            vocabulary = None
            if words is not None:
                # (as load_vocabulary: ids 0, 1, 2 are the specials, which Vocabulary adds)
                vocabulary = Vocabulary(_check_words(words, "vocabulary")[3:], frozen=True)
            model = kind(
                **arguments,
                vocabulary=vocabulary,
                tokenizer=_tokenizer_from(config.get("tokenizer")),
            )
        except (TypeError, ValueError, KeyError, MemoryError) as error:
            raise ValueError(f"{name}: bad model configuration: {error}") from None
        for key, p, _ in model.named_parameters():
            if key not in arrays or arrays[key].shape != p.shape:
                raise ValueError(f"{name}: parameter {key} is missing or has the wrong shape")
            array = arrays[key]
            # The configuration's dtype, exactly: no cast (float64 values rounded to float32,
            # integers or complex numbers read as weights). Byte order is not a value change.
            if array.dtype.newbyteorder("=") != p.dtype:
                raise ValueError(
                    f"{name}: parameter {key} has dtype {array.dtype}, but the configuration "
                    f"says {p.dtype}"
                )
            np.copyto(p, array, casting="equiv")
        model.eval()
        return model


def load_model(path: str | os.PathLike[str]) -> NeuralLanguageModel:
    """A neural language model file of any kind (:meth:`NeuralLanguageModel.save`)."""
    return NeuralLanguageModel.load(path)  # type: ignore[no-any-return]
