"""``rnnkit.ngram.build_binary``: modified Kneser-Ney straight to a binary model file in
bounded memory (csrc/ngram/stream_build.cpp). Its file must be, byte for byte, the one that
``estimate(NgramCounts(order).update(text), "mkn").save(path)`` writes: every probability,
backoff, table and the checksum."""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rnnkit
import rnnkit.ngram as ngram
from rnnkit.ngram import NgramCounts, build_binary, estimate, load_model
from test_ngram_model import ISSUE_405, zipf_corpus


def in_memory(sentences: object, order: int, path: Path) -> list[tuple[float, ...]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = estimate(NgramCounts(order).update(sentences), "mkn")  # type: ignore[arg-type]
    model.save(path)
    return model.discounts


def assert_same_file(sentences: object, order: int, tmp_path: Path) -> None:
    expected = in_memory(sentences, order, tmp_path / "in-memory.bin")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        discounts = build_binary(sentences, tmp_path / "streamed.bin", order)  # type: ignore[arg-type]
    assert (tmp_path / "streamed.bin").read_bytes() == (tmp_path / "in-memory.bin").read_bytes()
    assert discounts == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in-memory.bin", "streamed.bin"]


@pytest.mark.parametrize("order", [2, 3, 4, 5, 7])
def test_the_same_file_as_estimate_and_save(
    order: int, rng: np.random.Generator, tmp_path: Path
) -> None:
    assert_same_file(zipf_corpus(rng, 3000), order, tmp_path)


def test_real_text_and_the_lmplz_example(tmp_path: Path) -> None:
    """Python's documentation (many partitions, long and one-word sentences, empty lines) and
    kpu/kenlm issue #405's text, whose lmplz numbers the in-memory estimator reproduces."""
    text = "\n".join(
        line for cls in (str, list, dict, Path) for line in (cls.__doc__ or "").splitlines()
    )
    for order, case in ((4, text), (2, ISSUE_405), (3, ISSUE_405)):
        assert_same_file(case, order, tmp_path)
        for p in tmp_path.iterdir():
            p.unlink()


def test_sentences_in_several_batches(
    rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An iterable of sentences is encoded in batches, whose ids and offsets are joined."""
    monkeypatch.setattr(ngram, "_BATCH_SENTENCES", 100)
    assert_same_file([" ".join(s) for s in zipf_corpus(rng, 1000)], 3, tmp_path)


def test_a_path_is_read(rng: np.random.Generator, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(" ".join(s) + "\n" for s in zipf_corpus(rng, 500)))
    build_binary(corpus, tmp_path / "from-path.bin", 3)
    build_binary(corpus.read_text(), tmp_path / "from-text.bin", 3)
    assert (tmp_path / "from-path.bin").read_bytes() == (tmp_path / "from-text.bin").read_bytes()


def test_tiny_data_warns_and_falls_back_as_estimate(tmp_path: Path) -> None:
    with pytest.warns(RuntimeWarning, match="discount_fallback values 0.5, 1, 1.5"):
        discounts = build_binary("a b\nb a c\n", tmp_path / "m.bin", 3)
    assert discounts[0] == (0.5, 1.0, 1.5)
    assert load_model(tmp_path / "m.bin").order == 3


def test_the_file_scores_as_the_model(rng: np.random.Generator, tmp_path: Path) -> None:
    corpus = zipf_corpus(rng, 2000)
    build_binary(corpus, tmp_path / "m.bin", 3)
    model = load_model(tmp_path / "m.bin")
    reference = estimate(NgramCounts(3).update(corpus))
    for sentence in [*corpus[:50], ["w1", "never-seen", "w3"]]:
        assert model.score(sentence) == reference.score(sentence)


def test_temporary_files_go_to_temp_dir_and_are_removed(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    build_binary(ISSUE_405, tmp_path / "m.bin", 2, temp_dir=scratch)
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"order": 1}, ValueError, r"^order must be in \[2, 64\], got 1$"),
        ({"order": 65}, ValueError, r"^order must be in \[2, 64\], got 65$"),
        ({"order": 2.0}, TypeError, r"^order must be an int, got float$"),
        ({"order": True}, TypeError, r"^order must be an int, got bool$"),
        ({"sentences": []}, ValueError, r"^sentences must hold at least one sentence, got none$"),
        ({"sentences": ["a <s> b"]}, ValueError, r"is <s> or </s>"),
        ({"sentences": [1]}, TypeError, r"^sentence 0 must be a str"),
        ({"temp_dir": 3}, TypeError, r"^temp_dir must be a str or an os.PathLike, got int$"),
        ({"path": None}, TypeError, r"^path must be a str or an os.PathLike, got NoneType$"),
    ],
)
def test_bad_arguments(
    arguments: dict[str, object], error: type[Exception], message: str, tmp_path: Path
) -> None:
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")
    call = {"sentences": ISSUE_405, "path": target, "order": 3, **arguments}
    with pytest.raises(error, match=message):
        build_binary(call.pop("sentences"), call.pop("path"), **call)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


@pytest.mark.parametrize("threads", [1, 3])
def test_any_thread_count_writes_the_same_file(
    threads: int, rng: np.random.Generator, tmp_path: Path, restore_threads: int
) -> None:
    corpus = zipf_corpus(rng, 2000)
    build_binary(corpus, tmp_path / "default.bin", 4)
    rnnkit.set_num_threads(threads)
    build_binary(corpus, tmp_path / "other.bin", 4)
    assert (tmp_path / "other.bin").read_bytes() == (tmp_path / "default.bin").read_bytes()


def test_io_failures_raise_oserror_and_leave_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        build_binary(ISSUE_405, target, 2, temp_dir=tmp_path / "no-such-directory")

    @contextlib.contextmanager
    def vanished(**_: object) -> Iterator[str]:
        yield str(tmp_path / "vanished")  # the C++ core cannot create its files there

    monkeypatch.setattr(tempfile, "TemporaryDirectory", vanished)
    with pytest.raises(OSError, match="cannot open the temporary file"):
        build_binary(ISSUE_405, target, 2)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]
