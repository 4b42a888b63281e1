"""Text for language models: tokenizers, the vocabulary, and encoding text to id streams.

Tokenizers split a text into sentences (its lines: split at ``"\\n"`` only, a ``"\\r"`` before
it dropped; ``\\x0c``, ``\\u2028`` and the other line ends of ``str.splitlines`` are
whitespace inside a line, as for ``rnnkit.ngram``) of tokens and join tokens back:

* :class:`CharTokenizer`: every character is a token; a whitespace character becomes
  ``"▁"`` (U+2581, as SentencePiece writes it), so that tokens never hold whitespace and an
  n-gram model can count them;
* :class:`WordTokenizer`: words (with their combining marks), lowercased by default,
  punctuation split off, and every CJK character a word of its own (Chinese and Japanese are
  not written with spaces);
* :class:`WhitespaceTokenizer`: what ``str.split`` gives.

The vocabulary is :class:`rnnkit.ngram.Vocabulary`, shared with the n-gram models (ids 0
``<unk>``, 1 ``<s>``, 2 ``</s>``; ``min_count``/``max_size`` cut-offs; JSON ``save``/``load``
here). :func:`encode` turns text into one stream of ids with ``</s>`` after every sentence,
the convention of the n-gram models too, so that perplexities are comparable.

>>> from rnnkit.text import CharTokenizer, WordTokenizer, build_vocabulary, encode, decode
>>> WordTokenizer().tokenize("The cat, the dog.\\n猫が好き")
[['the', 'cat', ',', 'the', 'dog', '.'], ['猫', 'が', '好', 'き']]
>>> tok = CharTokenizer()
>>> tok.tokenize("a b")
[['a', '▁', 'b']]
>>> vocab = build_vocabulary("a b\\nb a", tok)
>>> ids = encode("a b\\nb a", vocab, tok)
>>> ids.tolist()
[3, 4, 5, 2, 5, 4, 3, 2]
>>> decode(ids, vocab, tok)
'a b\\nb a'
"""

from __future__ import annotations

import functools
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ._checks import check_bool, check_path
from .ngram import Vocabulary
from .ngram._files import write_atomically

__all__ = [
    "SPACE",
    "CharTokenizer",
    "Tokenizer",
    "Vocabulary",
    "WhitespaceTokenizer",
    "WordTokenizer",
    "build_vocabulary",
    "decode",
    "encode",
    "load_vocabulary",
    "save_vocabulary",
]

#: The token a whitespace character becomes in :class:`CharTokenizer`.
SPACE = "\u2581"


class Tokenizer(Protocol):
    """Splits a text into sentences of tokens (``tokenize``) and joins tokens (``detokenize``)."""

    def tokenize(self, text: str) -> list[list[str]]: ...

    def detokenize(self, tokens: Sequence[str]) -> str: ...


def _lines(text: str) -> list[str]:
    r"""The sentences of ``text``: its lines, split at ``"\n"`` only, one ``"\r"`` at a line's
    end dropped; a final ``"\n"`` ends the last line rather than starting an empty one. The
    one rule of the tokenizers here, the language models' ``score`` and the command line, as
    of ``rnnkit.ngram`` (which splits sentences at ``"\n"`` and refuses one inside a sentence):
    the other characters ``str.splitlines`` splits at (``\x0c``, ``\x1c``, ``\u2028``, a lone
    ``\r``, ...) are whitespace inside a line, so that a line is one sentence for the n-gram
    and the neural models alike."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    lines = text.split("\n")
    if lines[-1] == "":  # (the last line's end, or an empty text: no line at all)
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _tokens(tokens: Any) -> Sequence[str]:
    """The ``tokens`` argument of ``detokenize``: a sequence of str (not one str)."""
    if isinstance(tokens, (str, bytes, bytearray)) or not isinstance(tokens, Sequence):
        raise TypeError(f"tokens must be a sequence of str tokens, got {type(tokens).__name__}")
    for token in tokens:
        if not isinstance(token, str):
            raise TypeError(f"tokens must hold str tokens, got {type(token).__name__}")
    return tokens


def _check_tokenizer(tokenizer: Any, name: str = "tokenizer") -> Tokenizer:
    """A tokenizer instance: an object with ``tokenize`` and ``detokenize`` methods."""
    if isinstance(tokenizer, type) or not (
        callable(getattr(tokenizer, "tokenize", None))
        and callable(getattr(tokenizer, "detokenize", None))
    ):
        what = f"the class {tokenizer.__name__}" if isinstance(tokenizer, type) else None
        raise TypeError(
            f"{name} must be a tokenizer (an object with tokenize and detokenize methods, e.g. "
            f"rnnkit.text.WordTokenizer()), got {what or type(tokenizer).__name__}"
        )
    return tokenizer  # type: ignore[no-any-return]


def _check_vocabulary(vocabulary: Any) -> Vocabulary:
    if not isinstance(vocabulary, Vocabulary):
        raise TypeError(
            f"vocabulary must be a rnnkit.ngram.Vocabulary, got {type(vocabulary).__name__}"
        )
    return vocabulary


def _check_normalize(normalize: Any) -> str | None:
    if normalize not in (None, "NFC", "NFKC", "NFD", "NFKD"):
        raise ValueError(
            f"normalize must be None, 'NFC', 'NFKC', 'NFD' or 'NFKD', got {normalize!r}"
        )
    return normalize  # type: ignore[no-any-return]


def _normalized_lines(text: str, normalize: str | None) -> list[str]:
    lines = _lines(text)
    if normalize:
        form: Any = normalize
        lines = [unicodedata.normalize(form, line) for line in lines]
    return lines


class CharTokenizer:
    """Characters, each line a sentence; whitespace characters become :data:`SPACE`.
    ``normalize`` (default ``"NFC"``, or None) applies Unicode normalisation first, so that
    an accented letter is one token however it was typed."""

    def __init__(self, normalize: str | None = "NFC") -> None:
        self.normalize = _check_normalize(normalize)

    def tokenize(self, text: str) -> list[list[str]]:
        lines = _normalized_lines(text, self.normalize)
        return [[SPACE if c.isspace() else c for c in line] for line in lines]

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(" " if t == SPACE else t for t in _tokens(tokens))

    def __repr__(self) -> str:
        return f"CharTokenizer(normalize={self.normalize!r})"


# CJK ideographs, kana and hangul syllables: written without spaces, one token each.
_CJK = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002ebef"
)
_ZWNJ, _ZWJ = "\u200c", "\u200d"
# Emoji skin-tone modifiers (category Sk): part of the emoji before them.
_EMOJI_MODIFIERS = "\U0001f3fb-\U0001f3ff"


def _class_ranges(codes: list[int]) -> str:
    """A regular-expression character class's body for ``codes`` (sorted), as ranges."""
    parts, i = [], 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        parts.append(re.escape(chr(codes[i])) + ("-" + re.escape(chr(codes[j])) if j > i else ""))
        i = j + 1
    return "".join(parts)


@functools.cache
def _marks() -> str:
    """The combining marks (Unicode categories Mn, Mc, Me) as a character class's body, from
    this Python's ``unicodedata``: ``re`` has no ``\\p{M}``, and ``\\w`` leaves marks out (a
    virama or a vowel sign ended a Devanagari word). Built on first use (about 40 ms): planes
    0-3 and 14 hold every assigned mark (planes 4-13 are unassigned, 15-16 private use)."""
    category = unicodedata.category
    codes = [
        c
        for plane in (range(0, 0x40000), range(0xE0000, 0xF0000))
        for c in plane
        if category(chr(c))[0] == "M"
    ]
    return _class_ranges(codes)


@functools.cache
def _word_patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """``(split punctuation, keep punctuation, one CJK token)`` patterns. A combining mark or a
    zero-width (non-)joiner belongs to the token before it: in a word (``"नमस्ते"``, Arabic with
    harakat, ``"i\\u0307"`` from lowercasing ``"İ"``, ``"a\\u200db"``), after a CJK character, and
    after a symbol, where a zero-width joiner also takes the next symbol in (the emoji
    sequence ``"👨\\u200d👩\\u200d👧"`` is one token) and skin-tone modifiers are kept."""
    marks = _marks()
    joined = f"[{marks}{_ZWNJ}{_ZWJ}]"
    cjk = f"[{_CJK}]{joined}*"
    # (unrolled: a run of letters, then marks and letters only where there are marks, the
    # common case costing one failed class test per word)
    word = f"[^\\W{_CJK}]+(?:{joined}+[^\\W{_CJK}]*)*"
    symbol = f"[^\\w\\s](?:[{marks}{_ZWNJ}{_EMOJI_MODIFIERS}]+|{_ZWJ}(?:[^\\w\\s])?)*"
    return (
        re.compile(f"{word}|{cjk}|{symbol}"),
        re.compile(f"{cjk}|[^\\s{_CJK}]+"),
        re.compile(cjk),
    )


# ASCII holds no mark, joiner or CJK character: its lines take the simpler (faster) pattern,
# which splits them as the full one does.
_ASCII_WORD = re.compile(r"\w+|[^\w\s]")
_ASCII_KEEP_PUNCTUATION = re.compile(r"\S+")


class WordTokenizer:
    """Words, each line a sentence: lowercased (``lower``), punctuation split off as tokens of
    its own (``split_punctuation``; else words are what lies between whitespace), every CJK
    character (ideographs, kana, hangul) a token. Combining marks (Unicode categories Mn, Mc,
    Me) and zero-width (non-)joiners stay with the letter or symbol before them (Devanagari's
    vowel signs and virama, Arabic's harakat, ``"İ"`` lowercased to ``"i\\u0307"``), and an
    emoji sequence joined by U+200D is one token. ``normalize`` (default ``"NFC"``, or None) as
    :class:`CharTokenizer`'s: an accent typed decomposed (``"cafe\\u0301"``) then gives the
    same word as the composed one."""

    def __init__(
        self, lower: bool = True, split_punctuation: bool = True, normalize: str | None = "NFC"
    ) -> None:
        self.lower = check_bool(lower, "lower")
        self.split_punctuation = check_bool(split_punctuation, "split_punctuation")
        self.normalize = _check_normalize(normalize)

    def tokenize(self, text: str) -> list[list[str]]:
        split, keep, _ = _word_patterns()
        pattern, ascii_pattern = (
            (split, _ASCII_WORD) if self.split_punctuation else (keep, _ASCII_KEEP_PUNCTUATION)
        )
        out = []
        for line in _normalized_lines(text, self.normalize):
            if self.lower:
                line = line.lower()
            out.append((ascii_pattern if line.isascii() else pattern).findall(line))
        return out

    def detokenize(self, tokens: Sequence[str]) -> str:
        out = ""
        one_cjk = _word_patterns()[2]
        for t in _tokens(tokens):
            cjk = bool(one_cjk.fullmatch(t))
            glue = not out or cjk or (len(t) == 1 and not t.isalnum() and t not in "([{\"'")
            out += t if glue else " " + t
        return out

    def __repr__(self) -> str:
        return (
            f"WordTokenizer(lower={self.lower}, split_punctuation={self.split_punctuation}, "
            f"normalize={self.normalize!r})"
        )


class WhitespaceTokenizer:
    """The tokens between whitespace, as ``str.split`` gives them (any Unicode whitespace;
    ``rnnkit.ngram`` splits on ASCII whitespace only), each line a sentence."""

    def tokenize(self, text: str) -> list[list[str]]:
        return [line.split() for line in _lines(text)]

    def detokenize(self, tokens: Sequence[str]) -> str:
        return " ".join(_tokens(tokens))

    def __repr__(self) -> str:
        return "WhitespaceTokenizer()"


def build_vocabulary(
    text: str, tokenizer: Tokenizer, *, min_count: int = 1, max_size: int | None = None
) -> Vocabulary:
    """The frozen vocabulary of ``text``'s tokens seen at least ``min_count`` times (at most
    ``max_size``, the most frequent), in order of decreasing count."""
    tokenizer = _check_tokenizer(tokenizer)
    return Vocabulary.build(tokenizer.tokenize(text), min_count=min_count, max_size=max_size)


def encode(
    text: str | Iterable[Sequence[str]], vocabulary: Vocabulary, tokenizer: Tokenizer | None = None
) -> NDArray[np.int32]:
    """One stream of ids: each sentence's tokens (unknown ones ``<unk>``, 0), then ``</s>``.
    ``text`` is a str (tokenized by ``tokenizer``) or sentences already tokenized."""
    vocabulary = _check_vocabulary(vocabulary)
    if isinstance(text, str):
        if tokenizer is None:
            raise TypeError("a str text needs a tokenizer (e.g. rnnkit.text.WordTokenizer())")
        sentences: Iterable[Sequence[str]] = _check_tokenizer(tokenizer).tokenize(text)
    elif isinstance(text, Iterable) and not isinstance(text, (bytes, bytearray)):
        sentences = text
    else:
        raise TypeError(
            "text must be a str or an iterable of tokenized sentences (sequences of str), got "
            f"{type(text).__name__}"
        )
    parts: list[NDArray[np.int32]] = []
    eos = np.array([Vocabulary.EOS], dtype=np.int32)
    for i, sentence in enumerate(sentences):
        if isinstance(sentence, (str, bytes)) or not isinstance(sentence, Iterable):
            raise TypeError(
                f"text must be a str or an iterable of tokenized sentences; sentence {i} is "
                f"{type(sentence).__name__}, not a sequence of str tokens"
            )
        words = list(sentence)
        for word in words:
            if not isinstance(word, str):
                raise TypeError(
                    f"sentence {i} of text must hold str tokens, got {type(word).__name__}"
                )
        if words:
            parts.append(vocabulary.encode(words))
        parts.append(eos)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def decode(ids: Iterable[int], vocabulary: Vocabulary, tokenizer: Tokenizer) -> str:
    """The text of an id stream: ``</s>`` ends a line (the last one's newline is dropped,
    unless that line is empty: encoding the text gives the ids back), ``<s>`` is skipped."""
    vocabulary = _check_vocabulary(vocabulary)
    tokenizer = _check_tokenizer(tokenizer)
    lines: list[list[str]] = [[]]
    for word in vocabulary.decode(ids):
        if word == "</s>":
            lines.append([])
        elif word != "<s>":
            lines[-1].append(word)
    # (an empty last line is kept by its newline: the tokenizers' line split, which encode
    # reads lines with, takes a final newline as the end of the line before it)
    last_empty = len(lines) > 1 and not lines[-1] and not lines[-2]
    if not lines[-1]:
        lines.pop()
    return "\n".join(tokenizer.detokenize(line) for line in lines) + ("\n" if last_empty else "")


_VOCABULARY_FORMAT = "rnnkit.vocabulary"
_VOCABULARY_VERSION = 1


def _is_version(value: Any, version: int) -> bool:
    """Whether a file's ``version`` field is the int ``version`` (not ``true``, not ``1.0``:
    ``True == 1`` and ``1.0 == 1`` in Python)."""
    return type(value) is int and value == version


_SPECIALS = ["<unk>", "<s>", "</s>"]


def _check_words(words: Any, where: str) -> list[str]:
    """A vocabulary's words as a file holds them: distinct strings, ``<unk>``, ``<s>``,
    ``</s>`` first (ids 0, 1, 2); ``ValueError`` naming ``where`` otherwise."""
    if (
        not isinstance(words, list)
        or words[:3] != _SPECIALS
        or not all(isinstance(w, str) for w in words)
        or len(set(words)) != len(words)
    ):
        raise ValueError(f"{where}: the words must be distinct strings after <unk>, <s>, </s>")
    return words


def save_vocabulary(vocabulary: Vocabulary, path: str | os.PathLike[str]) -> None:
    """Writes ``vocabulary`` as JSON (format name and version, frozen flag, words in id
    order), atomically."""
    vocabulary = _check_vocabulary(vocabulary)
    document = {
        "format": _VOCABULARY_FORMAT,
        "version": _VOCABULARY_VERSION,
        "frozen": vocabulary.frozen,
        "words": vocabulary.words,
    }
    text = json.dumps(document, ensure_ascii=False)

    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    write_atomically(path, write)


def load_vocabulary(path: str | os.PathLike[str]) -> Vocabulary:
    """The vocabulary :func:`save_vocabulary` wrote; ``ValueError`` (naming the file) for
    anything else."""
    try:
        document = json.loads(Path(check_path(path)).read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as error:
        # (JSON and UTF-8 errors, and json's limits: an integer of over 4,300 digits, nesting
        # deeper than the interpreter's recursion limit)
        raise ValueError(f"{os.fspath(path)} is not a vocabulary file: {error}") from None
    if not isinstance(document, dict) or document.get("format") != _VOCABULARY_FORMAT:
        raise ValueError(
            f"{os.fspath(path)} is not a vocabulary file (no format {_VOCABULARY_FORMAT!r})"
        )
    version = document.get("version")
    if not _is_version(version, _VOCABULARY_VERSION):
        raise ValueError(
            f"{os.fspath(path)} is a vocabulary of format version {version!r}; this rnnkit reads "
            f"version {_VOCABULARY_VERSION}"
        )
    words = _check_words(document.get("words"), os.fspath(path))
    frozen = document.get("frozen", True)
    if not isinstance(frozen, bool):  # (bool("no") is True: no guessing)
        raise ValueError(f"{os.fspath(path)}: frozen must be true or false, got {frozen!r}")
    try:
        return Vocabulary(words[3:], frozen=frozen)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{os.fspath(path)}: {error}") from None
