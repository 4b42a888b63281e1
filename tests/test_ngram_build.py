"""``rnnkit.ngram.build``: modified Kneser-Ney straight to model files in bounded memory
(csrc/ngram/stream_build.cpp). Its files must be, byte for byte, the ones that
``estimate(NgramCounts(order).update(text), "mkn")`` gives with ``save`` (every probability,
backoff, table and the checksum) and ``write_arpa``."""

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
from helpers import ISSUE_405, zipf_corpus
from rnnkit.ngram import NgramCounts, build, estimate, load_model


def in_memory(sentences: object, order: int, directory: Path) -> list[tuple[float, ...]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = estimate(NgramCounts(order).update(sentences), "mkn")  # type: ignore[arg-type]
    model.save(directory / "in-memory.bin")
    model.write_arpa(directory / "in-memory.arpa")
    return model.discounts


def assert_same_files(sentences: object, order: int, tmp_path: Path) -> None:
    expected = in_memory(sentences, order, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        built = build(  # type: ignore[arg-type]
            sentences, order, binary=tmp_path / "streamed.bin", arpa=tmp_path / "streamed.arpa"
        )
    for suffix in ("bin", "arpa"):
        streamed = (tmp_path / f"streamed.{suffix}").read_bytes()
        assert streamed == (tmp_path / f"in-memory.{suffix}").read_bytes(), suffix
    assert built.discounts == expected
    model = load_model(tmp_path / "streamed.bin")
    assert built.sizes == [model.size(n) for n in range(1, order + 1)]
    assert len(built.seconds) == 3 and all(t >= 0 for t in built.seconds)
    names = ["in-memory.arpa", "in-memory.bin", "streamed.arpa", "streamed.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names


@pytest.mark.parametrize("order", [2, 3, 4, 5, 7])
def test_the_same_file_as_estimate_and_save(
    order: int, rng: np.random.Generator, tmp_path: Path
) -> None:
    assert_same_files(zipf_corpus(rng, 3000), order, tmp_path)


@pytest.mark.parametrize("order", [2, 4])
def test_an_arpa_file_alone_is_the_same_file_too(
    order: int, rng: np.random.Generator, tmp_path: Path
) -> None:
    """Without a binary file the finished tables go to temporary files for the ARPA text
    (with one, they are read back from it)."""
    sentences = zipf_corpus(rng, 3000)
    in_memory(sentences, order, tmp_path)
    build(sentences, order, arpa=tmp_path / "alone.arpa")
    assert (tmp_path / "alone.arpa").read_bytes() == (tmp_path / "in-memory.arpa").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "alone.arpa",
        "in-memory.arpa",
        "in-memory.bin",
    ]


def test_real_text_and_the_lmplz_example(tmp_path: Path) -> None:
    """Python's documentation (many partitions, long and one-word sentences, empty lines) and
    kpu/kenlm issue #405's text, whose lmplz numbers the in-memory estimator reproduces."""
    text = "\n".join(
        line for cls in (str, list, dict, Path) for line in (cls.__doc__ or "").splitlines()
    )
    for order, case in ((4, text), (2, ISSUE_405), (3, ISSUE_405)):
        assert_same_files(case, order, tmp_path)
        for p in tmp_path.iterdir():
            p.unlink()


def test_sentences_in_several_batches(
    rng: np.random.Generator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An iterable of sentences is encoded in batches, whose ids and offsets are joined."""
    monkeypatch.setattr(ngram, "_BATCH_SENTENCES", 100)
    assert_same_files([" ".join(s) for s in zipf_corpus(rng, 1000)], 3, tmp_path)


def test_a_path_is_read(rng: np.random.Generator, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(" ".join(s) + "\n" for s in zipf_corpus(rng, 500)))
    build(corpus, 3, binary=tmp_path / "from-path.bin")
    build(corpus.read_text(), 3, binary=tmp_path / "from-text.bin")
    assert (tmp_path / "from-path.bin").read_bytes() == (tmp_path / "from-text.bin").read_bytes()


def test_tiny_data_warns_and_falls_back_as_estimate(tmp_path: Path) -> None:
    with pytest.warns(RuntimeWarning, match="discount_fallback values 0.5, 1, 1.5"):
        built = build("a b\nb a c\n", 3, arpa=tmp_path / "m.arpa")
    assert built.discounts[0] == (0.5, 1.0, 1.5)
    assert load_model(tmp_path / "m.arpa").order == 3


def test_the_file_scores_as_the_model(rng: np.random.Generator, tmp_path: Path) -> None:
    corpus = zipf_corpus(rng, 2000)
    build(corpus, 3, binary=tmp_path / "m.bin")
    model = load_model(tmp_path / "m.bin")
    reference = estimate(NgramCounts(3).update(corpus))
    for sentence in [*corpus[:50], ["w1", "never-seen", "w3"]]:
        assert model.score(sentence) == reference.score(sentence)


def test_temporary_files_go_to_temp_dir_and_are_removed(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    build(ISSUE_405, 2, binary=tmp_path / "m.bin", arpa=tmp_path / "m.arpa", temp_dir=scratch)
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"order": 1}, ValueError, r"^order must be in \[2, 64\], got 1$"),
        ({"order": 65}, ValueError, r"^order must be in \[2, 64\], got 65$"),
        ({"order": 2.0}, TypeError, r"^order must be an int, got float$"),
        ({"order": True}, TypeError, r"^order must be an int, got bool$"),
        ({"sentences": []}, ValueError, r"^sentences must hold at least one sentence, got none$"),
        ({"sentences": ["a <s> b"]}, ValueError, r"holds <s>, which the store adds"),
        ({"sentences": [1]}, TypeError, r"^sentence 0 must be a str"),
        ({"temp_dir": 3}, TypeError, r"^temp_dir must be a str or an os.PathLike, got int$"),
        ({"binary": 3}, TypeError, r"^binary must be a str or an os.PathLike, got int$"),
        ({"arpa": b"x"}, TypeError, r"^arpa must be a str or an os.PathLike, got bytes$"),
        ({"binary": None}, TypeError, r"^build needs binary= and/or arpa=: where to write"),
        # nothing is written for text that is not UTF-8, or two outputs in one file
        ({"sentences": b"ok\na \xff b\n"}, ValueError, r"not valid UTF-8: line 2 has the byte"),
        ({"arpa": "SAME"}, ValueError, r"^binary and arpa must be different files, got "),
    ],
)
def test_bad_arguments(
    arguments: dict[str, object], error: type[Exception], message: str, tmp_path: Path
) -> None:
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")
    call = {"sentences": ISSUE_405, "order": 3, "binary": target, **arguments}
    if call.get("arpa") == "SAME":
        call["arpa"] = target
    with pytest.raises(error, match=message):
        build(call.pop("sentences"), call.pop("order"), **call)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


@pytest.mark.parametrize("threads", [1, 3])
def test_any_thread_count_writes_the_same_file(
    threads: int, rng: np.random.Generator, tmp_path: Path, restore_threads: int
) -> None:
    corpus = zipf_corpus(rng, 2000)
    build(corpus, 4, binary=tmp_path / "default.bin", arpa=tmp_path / "default.arpa")
    rnnkit.set_num_threads(threads)
    build(corpus, 4, binary=tmp_path / "other.bin", arpa=tmp_path / "other.arpa")
    for suffix in ("bin", "arpa"):
        other = (tmp_path / f"other.{suffix}").read_bytes()
        assert other == (tmp_path / f"default.{suffix}").read_bytes()


def test_io_failures_raise_oserror_and_leave_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")
    with pytest.raises(OSError):
        build(ISSUE_405, 2, binary=target, temp_dir=tmp_path / "no-such-directory")

    @contextlib.contextmanager
    def vanished(**_: object) -> Iterator[str]:
        yield str(tmp_path / "vanished")  # the C++ core cannot create its files there

    monkeypatch.setattr(tempfile, "TemporaryDirectory", vanished)
    with pytest.raises(OSError, match="cannot open the temporary file"):
        build(ISSUE_405, 2, binary=target, arpa=tmp_path / "m.arpa")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


def test_outputs_and_input_must_be_different_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One file given twice (relative and absolute, through a symbolic link, a hard link), or
    # the text file as an output: ValueError naming both arguments, nothing written.
    text = tmp_path / "text.txt"
    text.write_text(ISSUE_405)
    (tmp_path / "m.bin").write_bytes(b"old")
    (tmp_path / "link.bin").symlink_to(tmp_path / "m.bin")
    (tmp_path / "hard.bin").hardlink_to(tmp_path / "m.bin")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for binary, arpa in [
        (tmp_path / "m.bin", "../m.bin"),
        ("../link.bin", tmp_path / "m.bin"),
        (tmp_path / "hard.bin", tmp_path / "m.bin"),
    ]:
        with pytest.raises(ValueError, match=r"^binary and arpa must be different files"):
            build(text, 2, binary=binary, arpa=arpa)
    with pytest.raises(ValueError, match=r"^sentences and arpa must be different files"):
        build(text, 2, arpa="../text.txt")
    with pytest.raises(ValueError, match=r"^sentences and binary must be different files"):
        build(Path("../text.txt"), 2, binary=tmp_path / "text.txt")
    assert (tmp_path / "m.bin").read_bytes() == b"old" and text.read_text() == ISSUE_405
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "hard.bin",
        "link.bin",
        "m.bin",
        "sub",
        "text.txt",
    ]
    # different files are fine
    build(text, 2, binary="m.bin", arpa="m.arpa")
    assert load_model("m.bin").size(1) == load_model("m.arpa").size(1)


def test_a_text_file_is_not_held_while_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a path, the file's bytes are freed once encoded: the model is built with only the
    ids in memory (the last batch of the text stayed referenced before)."""
    import tracemalloc

    from rnnkit import _core

    line = " ".join(f"{'long-word-' * 8}{i}" for i in range(40)) + "\n"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(line * (8_000_000 // len(line)))
    size = corpus.stat().st_size
    real = _core._build_model_files
    held: list[int] = []

    def spy(*arguments: object) -> object:
        held.append(tracemalloc.get_traced_memory()[0])
        return real(*arguments)

    monkeypatch.setattr(_core, "_build_model_files", spy)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            build(corpus, 2, binary=tmp_path / "m.bin")
    finally:
        tracemalloc.stop()
    # the ids (4 bytes per word of about 90 bytes) and offsets: a few percent of the text
    assert held and held[0] < size // 4, (held, size)
