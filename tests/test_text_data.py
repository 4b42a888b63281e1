"""rnnkit.text (tokenizers, vocabulary files, id streams) and rnnkit.data (minibatches)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rnnkit.data import Batch, random_batches, sequential_batches, split
from rnnkit.text import (
    SPACE,
    CharTokenizer,
    WhitespaceTokenizer,
    WordTokenizer,
    build_vocabulary,
    decode,
    encode,
    load_vocabulary,
    save_vocabulary,
)

HEAD = '{"format": "rnnkit.vocabulary", "version": 1, '
UNICODE = "Héllo wörld, naïve café!\n我爱自然语言处理。\nこんにちは 世界 🙂\n\tTabs  and  spaces"


def test_char_tokenizer_handles_any_unicode_and_round_trips() -> None:
    tok = CharTokenizer()
    sentences = tok.tokenize(UNICODE)
    assert len(sentences) == 4
    assert sentences[1] == list("我爱自然语言处理。")
    assert all(t and not any(c.isspace() for c in t) for s in sentences for t in s)
    assert sentences[3][0] == SPACE  # the tab
    assert tok.detokenize(sentences[0]) == "Héllo wörld, naïve café!"
    assert tok.detokenize(sentences[2]) == "こんにちは 世界 🙂"
    # NFC: a decomposed é (e + combining accent) is one token, as the composed one
    assert tok.tokenize("e\u0301") == [["é"]]
    assert CharTokenizer(normalize=None).tokenize("e\u0301") == [["e", "\u0301"]]
    with pytest.raises(ValueError, match="normalize"):
        CharTokenizer(normalize="nfc")
    with pytest.raises(TypeError, match="text must be a str"):
        tok.tokenize(b"bytes")  # type: ignore[arg-type]


def test_word_tokenizer_lowercases_splits_punctuation_and_cjk() -> None:
    tok = WordTokenizer()
    sentences = tok.tokenize(UNICODE)
    assert sentences[0] == ["héllo", "wörld", ",", "naïve", "café", "!"]
    assert sentences[1] == [*"我爱自然语言处理", "。"]
    assert sentences[2] == [*"こんにちは", "世", "界", "🙂"]
    assert sentences[3] == ["tabs", "and", "spaces"]
    kept = WordTokenizer(lower=False, split_punctuation=False).tokenize("Hello, World!")
    assert kept == [["Hello,", "World!"]]
    # a decomposed accent is part of its word (it ended the word: ["cafe", "\u0301"])
    assert tok.tokenize("cafe\u0301 ok") == [["café", "ok"]]
    assert WordTokenizer(normalize=None).tokenize("cafe\u0301") == [["cafe", "\u0301"]]
    with pytest.raises(ValueError, match="normalize must be None, 'NFC'"):
        WordTokenizer(normalize="nfc")
    assert tok.detokenize(["the", "cat", ",", "the", "dog", "."]) == "the cat, the dog."
    assert tok.detokenize(list("我爱你")) == "我爱你"
    assert WhitespaceTokenizer().tokenize("a  b\tc\n\nd") == [["a", "b", "c"], [], ["d"]]


@pytest.mark.parametrize("tokenizer", [CharTokenizer(), WordTokenizer(), WhitespaceTokenizer()])
def test_vocabulary_encode_decode_and_json_round_trip(tokenizer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    vocab = build_vocabulary(UNICODE, tokenizer)
    ids = encode(UNICODE, vocab, tokenizer)
    sentences = tokenizer.tokenize(UNICODE)
    assert ids.dtype == np.int32
    assert (ids == 2).sum() == len(sentences)  # </s> after every sentence
    assert 0 not in ids.tolist()  # every token known
    text = decode(ids, vocab, tokenizer)
    assert tokenizer.tokenize(text) == sentences
    path = tmp_path / "vocab.json"
    save_vocabulary(vocab, path)
    loaded = load_vocabulary(path)
    assert loaded == vocab
    assert np.array_equal(encode(UNICODE, loaded, tokenizer), ids)
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == "rnnkit.vocabulary"


def test_vocabulary_cut_offs_and_unknown_words() -> None:
    tok = WordTokenizer()
    vocab = build_vocabulary("a a a b b c", tok, min_count=2)
    assert vocab.words == ["<unk>", "<s>", "</s>", "a", "b"]
    assert encode("a c d b", vocab, tok).tolist() == [3, 0, 0, 4, 2]
    assert build_vocabulary("a a a b b c", tok, max_size=1).words[3:] == ["a"]
    assert encode([["a", "b"], []], vocab).tolist() == [3, 4, 2, 2]
    with pytest.raises(TypeError, match="needs a tokenizer"):
        encode("a b", vocab)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not a vocabulary file"),
        ("[" * 100_000 + "]" * 100_000, "is not a vocabulary file"),  # deeper than recursion
        ('{"format": "rnnkit.vocabulary", "version": ' + "9" * 5000 + "}", "not a vocabulary"),
        ('{"format": "other"}', "no format"),
        ('{"format": "rnnkit.vocabulary", "version": 9, "words": []}', "format version 9"),
        ('{"format": "rnnkit.vocabulary", "version": 1, "words": ["a"]}', "must be distinct"),
        (HEAD + '"words": ["<unk>", "<s>", "</s>", "a", "a"]}', "must be distinct"),
        (HEAD + '"words": ["<unk>", "<s>", "</s>", "a b"]}', "whitespace"),
    ],
)
def test_bad_vocabulary_files_raise(content: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_vocabulary(path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="is not a vocabulary file"):
        load_vocabulary(path)


def test_sequential_batches_partition_the_stream_and_carry_state() -> None:
    stream = np.arange(103)
    batches = list(sequential_batches(stream, batch_size=4, seq_len=7))
    assert [b.carry_state for b in batches] == [False] + [True] * (len(batches) - 1)
    rows = np.concatenate([b.inputs for b in batches], axis=0).T  # [B, length]
    targets = np.concatenate([b.targets for b in batches], axis=0).T
    length = (103 - 1) // 4
    assert rows.shape == (4, length)
    assert np.array_equal(rows, stream[: 4 * length].reshape(4, length))
    assert np.array_equal(targets, rows + 1)
    assert [b.inputs.shape[0] for b in batches] == [7, 7, 7, 4]
    with pytest.raises(ValueError, match="too few"):
        list(sequential_batches(np.arange(4), batch_size=4, seq_len=2))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        list(sequential_batches(stream, batch_size=0, seq_len=2))
    with pytest.raises(ValueError, match="1-D"):
        list(sequential_batches(np.zeros((2, 2), int), batch_size=1, seq_len=2))
    with pytest.raises(TypeError, match="integers"):
        list(sequential_batches(np.zeros(5), batch_size=1, seq_len=2))


def test_random_batches_are_contiguous_shuffled_and_seeded() -> None:
    stream = np.arange(1000) * 3  # values tell positions
    batches = list(random_batches(stream, batch_size=8, seq_len=10, seed=5))
    assert all(isinstance(b, Batch) and not b.carry_state for b in batches)
    starts = []
    for b in batches:
        assert b.inputs.shape[0] == 10
        assert np.array_equal(np.diff(b.inputs, axis=0), np.full((9, b.inputs.shape[1]), 3))
        assert np.array_equal(b.targets, b.inputs + 3)
        starts += (b.inputs[0] // 3).tolist()
    offset = starts[0] % 10
    assert all(s % 10 == offset for s in starts)
    assert len(set(starts)) == len(starts) == (1000 - offset - 1) // 10
    assert starts != sorted(starts)  # shuffled
    again = list(random_batches(stream, batch_size=8, seq_len=10, seed=5))
    assert all(np.array_equal(a.inputs, b.inputs) for a, b in zip(batches, again, strict=True))
    other = list(random_batches(stream, batch_size=8, seq_len=10, seed=6))
    assert not np.array_equal(other[0].inputs, batches[0].inputs)


def test_split() -> None:
    train, valid, test = split(np.arange(100), valid=0.1, test=0.2)
    assert (len(train), len(valid), len(test)) == (70, 10, 20)
    assert np.array_equal(np.concatenate([train, valid, test]), np.arange(100))
    items = [f"s{i}" for i in range(50)]
    a = split(items, shuffle=True, seed=1)
    assert sorted(a[0] + a[1] + a[2]) == sorted(items) and a[0] != items[:40]
    with pytest.raises(ValueError, match="leave something"):
        split(items, valid=0.5, test=0.5)
    with pytest.raises(ValueError, match="fraction"):
        split(items, valid=-0.1)


@pytest.mark.parametrize(
    ("valid", "test"),
    [(np.float32(0.1), np.float64(0.2)), (np.float64(0.25), np.float16(0.5)), (np.int64(0), 0)],
)
def test_split_takes_numpy_fractions(valid: Any, test: Any) -> None:
    """NumPy scalars are fractions too (np.float32(0.1) used to be refused as out of range)."""
    got = split(np.arange(100), valid=valid, test=test)
    want = split(np.arange(100), valid=float(valid), test=float(test))
    assert [len(part) for part in got] == [len(part) for part in want]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("flag", ["lower", "split_punctuation"])
def test_word_tokenizer_flags_must_be_bools(flag: str) -> None:
    for bad in (None, "no", 0):
        with pytest.raises(TypeError, match=f"^{flag} must be a bool, got {type(bad).__name__}$"):
            WordTokenizer(**{flag: bad})
    assert getattr(WordTokenizer(**{flag: np.False_}), flag) is False


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3), max_size=6), st.booleans())
def test_decode_gives_back_the_ids_when_encoded_again(lines: list[list[str]], char: bool) -> None:
    """encode(decode(ids)) == ids for every stream of whole lines, empty last lines included
    (decode dropped the final newline of an empty last line, and with it the line)."""
    tok = CharTokenizer() if char else WhitespaceTokenizer()
    text = "".join(" ".join(line) + "\n" for line in lines)
    vocab = build_vocabulary("a b c", tok)
    ids = encode(text, vocab, tok)
    assert np.array_equal(encode(decode(ids, vocab, tok), vocab, tok), ids)
