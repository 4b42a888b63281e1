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
    # without normalising, the mark still stays with its letter (the word is the decomposed
    # one: another token than the composed "café")
    assert WordTokenizer(normalize=None).tokenize("cafe\u0301") == [["cafe\u0301"]]
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


PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),  # virama and vowel signs (Mn, Mc)
        ("مَرْحَبًا بِكُمْ!", ["مَرْحَبًا", "بِكُمْ", "!"]),  # harakat
        ("İstanbul'da", ["i\u0307stanbul", "'", "da"]),  # "İ".lower() is "i" + U+0307
        ("a\u200db a\u200cb", ["a\u200db", "a\u200cb"]),  # zero-width joiner, non-joiner
        # Persian's ZWNJ in a word: "می‌خواهم."
        (PERSIAN + ".", [PERSIAN, "."]),
        ("👨\u200d👩\u200d👧 ok", ["👨\u200d👩\u200d👧", "ok"]),  # one emoji sequence
        ("👩🏽\u200d💻, ❤\ufe0f!", ["👩🏽\u200d💻", ",", "❤\ufe0f", "!"]),
        ("x\u20dd y", ["x\u20dd", "y"]),  # an enclosing mark (Me)
    ],
)
def test_word_tokenizer_keeps_combining_marks_and_joiners_in_words(
    text: str, words: list[str]
) -> None:
    """Combining marks (Mn, Mc, Me) and U+200C/U+200D stay with the letters before them (the
    tokenizer split "नमस्ते" into ['नमस', '्', 'त', 'े']), and detokenising gives the words back."""
    tok = WordTokenizer()
    assert tok.tokenize(text) == [words]
    assert tok.tokenize(tok.detokenize(words)) == [words]
    if "İ" not in text:
        assert tok.detokenize(words).split() == text.split()
    # the same without normalising, lowercasing or punctuation splitting
    assert WordTokenizer(lower=False, normalize=None).tokenize("नमस्ते दुनिया") == [["नमस्ते", "दुनिया"]]
    assert WordTokenizer(split_punctuation=False).tokenize("a\u0301b, c\u200dd!") == [
        ["áb,", "c\u200dd!"]
    ]
    assert WordTokenizer().tokenize("漢\u3099字") == [["漢\u3099", "字"]]


def test_word_tokenizer_splits_punctuation_as_before() -> None:
    """The ASCII fast path and the full pattern split alike, as the old pattern did."""
    tok = WordTokenizer()
    text = 'Don\'t stop: x_y=3.5 (a, b) [c]; e-mail@host.com -- 42!? "q" café, naïve…'
    assert tok.tokenize(text)[0] == [
        *["don", "'", "t", "stop", ":", "x_y", "=", "3", ".", "5", "(", "a", ",", "b", ")"],
        *["[", "c", "]", ";", "e", "-", "mail", "@", "host", ".", "com", "-", "-", "42"],
        *["!", "?", '"', "q", '"', "café", ",", "naïve", "…"],
    ]
    # an ASCII line takes the fast pattern: it splits as the full one (which "…" chose above)
    ascii_text = ("\t" + "".join(chr(c) for c in range(32, 127))) * 2
    full = tok.tokenize(ascii_text + " é")[0]
    assert tok.tokenize(ascii_text)[0] == full[:-1] and full[-1] == "é"
    kept = WordTokenizer(split_punctuation=False)
    assert kept.tokenize(ascii_text + " é")[0] == [*kept.tokenize(ascii_text)[0], "é"]


@pytest.mark.parametrize("tokenizer", [CharTokenizer(), WordTokenizer(), WhitespaceTokenizer()])
def test_lines_are_split_at_newlines_only(tokenizer: Any) -> None:
    """A sentence is a line split at "\\n" (one "\\r" before it dropped): \\x0c, \\x1c, \\u2028,
    a lone \\r, ... are whitespace inside it, as for rnnkit.ngram (str.splitlines made them
    sentence ends: an extra </s> mid-line)."""
    vocab = build_vocabulary("a b\n", tokenizer)
    for space in ("\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r", "\x0b"):
        sentences = tokenizer.tokenize(f"a{space}b\nb a\n")
        assert len(sentences) == 2, repr(space)
        assert (encode(f"a{space}b\nb a\n", vocab, tokenizer) == 2).sum() == 2
    assert tokenizer.tokenize("a b\r\nb a\r\n") == tokenizer.tokenize("a b\nb a")
    assert tokenizer.tokenize("") == [] and len(tokenizer.tokenize("\n")) == 1
    assert len(tokenizer.tokenize("a\n\n")) == 2


def test_split_never_leaves_the_training_part_empty() -> None:
    """split(list(range(2)), valid=0.5, test=0.45) returned ([], [0], [1])."""
    with pytest.raises(ValueError, match=r"^valid=0\.5 and test=0\.45 leave no training item"):
        split(list(range(2)), valid=0.5, test=0.45)
    with pytest.raises(ValueError, match=r"valid=0\.6 and test=0\.0 leave no training item"):
        split(np.arange(1), valid=0.6, test=0.0)
    for n in range(1, 40):
        for valid, test in ((0.5, 0.45), (0.3, 0.3), (0.9, 0.0), (0.0, 0.7), (0.1, 0.1)):
            try:
                parts = split(list(range(n)), valid=valid, test=test)
            except ValueError:
                assert round(n * valid) + round(n * test) >= n
            else:
                assert parts[0] and sum(map(len, parts)) == n
    assert split([], valid=0.5, test=0.4) == ([], [], [])


def test_batch_errors_name_the_argument() -> None:
    """The too-short-stream errors name batch_size / seq_len and their bound."""
    with pytest.raises(ValueError, match=r"batch_size=1000 streams .*batch_size must be <= 65"):
        list(sequential_batches(np.arange(66), batch_size=1000, seq_len=4))
    with pytest.raises(ValueError, match=r"seq_len=1000 \+ 1 tokens: seq_len must be <= 65"):
        list(random_batches(np.arange(66), batch_size=2, seq_len=1000))
    with pytest.raises(ValueError, match="the stream needs at least 2 tokens"):
        list(sequential_batches(np.arange(1), batch_size=1, seq_len=4))


def test_random_batches_fit_whenever_one_window_fits() -> None:
    """The offset leaves room for a window: with seq_len <= len - 1 there is always a batch
    (an offset drawn from [0, seq_len) made it fail by chance on short streams)."""
    for seed in range(50):
        for n, seq_len in ((5, 4), (9, 5), (12, 11)):
            batches = list(random_batches(np.arange(n), batch_size=2, seq_len=seq_len, seed=seed))
            assert batches and all(b.inputs.shape[0] == seq_len for b in batches)
            assert all(np.array_equal(b.targets, b.inputs + 1) for b in batches)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HEAD.replace('"version": 1', '"version": true') + '"words": []}', "version True"),
        (HEAD.replace('"version": 1', '"version": 1.0') + '"words": []}', "version 1.0"),
        (HEAD + '"words": ["<unk>", "<s>", "</s>", "a"], "frozen": "no"}', "frozen must be"),
    ],
)
def test_vocabulary_files_version_and_frozen_are_exact(
    content: str, message: str, tmp_path: Path
) -> None:
    """true and 1.0 are not version 1; "no" is not a frozen flag (bool("no") was True)."""
    path = tmp_path / "v.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_vocabulary(path)


def test_save_vocabulary_names_the_path_not_a_temporary_file(tmp_path: Path) -> None:
    vocab = build_vocabulary("a b", WhitespaceTokenizer())
    target = tmp_path / "nodir" / "v.json"
    with pytest.raises(FileNotFoundError, match=f"^path '{target}' cannot be written: no dir"):
        save_vocabulary(vocab, target)
    with pytest.raises(IsADirectoryError, match=f"path '{tmp_path}' is a directory"):
        save_vocabulary(vocab, tmp_path)
    assert list(tmp_path.iterdir()) == []
