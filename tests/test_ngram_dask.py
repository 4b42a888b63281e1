"""N-gram counting on a Dask cluster (rnnkit.ngram.dask), against one process.

A ``distributed.LocalCluster`` of 2 worker processes is started for the module and stopped
after it. The merged counts must equal single-process counts exactly, the vocabulary pass must
equal ``Vocabulary.build``, the estimated model must equal the single-process model byte for
byte, and a worker killed in the middle of the run must not change the result.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import dask.bag as db
import numpy as np
import pytest
from distributed import Client, LocalCluster
from rnnkit.ngram import NgramCounts, Vocabulary, estimate
from rnnkit.ngram import dask as ngram_dask

# The workers cannot import this test module: its functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def zipf_lines(rng: np.random.Generator, n: int, vocab: int = 400) -> list[str]:
    ranks = np.arange(1, vocab + 1)
    p = 1.0 / ranks
    p /= p.sum()
    words = np.array([f"w{i}" for i in range(vocab)])
    return [" ".join(words[rng.choice(vocab, rng.integers(0, 15), p=p)]) for _ in range(n)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], str]:
    rng = np.random.default_rng(20261126)
    root = tmp_path_factory.mktemp("corpus")
    paths = []
    texts = []
    for i in range(3):
        text = "\n".join(zipf_lines(rng, 3000)) + "\n"
        path = root / f"part-{i}.txt"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
        texts.append(text)
    return paths, "".join(texts)


def test_counts_equal_one_process(client: Client, corpus: tuple[list[Path], str]) -> None:
    paths, text = corpus
    expected = NgramCounts(5, Vocabulary.build(text)).update(text)
    # Small blocks: several partitions per file, merged two at a time (a deep tree).
    got = ngram_dask.count(
        [str(paths[0].parent / "part-*.txt")], 5, client=client, blocksize=20_000, split_every=2
    )
    assert isinstance(got, NgramCounts)
    assert got.vocabulary == expected.vocabulary
    assert got == expected
    assert ngram_dask.last_timings.counting > 0 and ngram_dask.last_timings.vocabulary > 0


def test_bags_of_sentences_and_a_given_vocabulary(client: Client) -> None:
    lines = zipf_lines(np.random.default_rng(1), 2000)
    vocab = Vocabulary.build(lines, min_count=3)
    bag = db.from_sequence(lines, npartitions=7)
    got = ngram_dask.count(bag, 3, vocab, client=client)
    assert got == NgramCounts(3, vocab).update(lines)
    assert got.vocabulary is vocab


@pytest.mark.parametrize(("min_count", "max_size"), [(1, None), (2, None), (1, 50), (3, 10)])
def test_vocabulary_pass_equals_build(
    client: Client, corpus: tuple[list[Path], str], min_count: int, max_size: int | None
) -> None:
    paths, text = corpus
    got = ngram_dask.vocabulary(
        [str(p) for p in paths],
        min_count=min_count,
        max_size=max_size,
        client=client,
        blocksize=30_000,
    )
    assert got == Vocabulary.build(text, min_count=min_count, max_size=max_size)
    assert got.frozen


def test_model_equals_one_process(
    client: Client, corpus: tuple[list[Path], str], tmp_path: Path
) -> None:
    paths, text = corpus
    counts = ngram_dask.count([str(p) for p in paths], 4, client=client, blocksize=25_000)
    single = NgramCounts(4, Vocabulary.build(text)).update(text)
    for i, c in enumerate((counts, single)):
        with warnings.catch_warnings():  # a synthetic corpus: lmplz's fallback discounts
            warnings.filterwarnings("ignore", "could not compute Kneser-Ney discounts")
            model = estimate(c, "mkn")
        model.save(tmp_path / f"model-{i}.bin")
        model.write_arpa(tmp_path / f"model-{i}.arpa")
    assert (tmp_path / "model-0.bin").read_bytes() == (tmp_path / "model-1.bin").read_bytes()
    assert (tmp_path / "model-0.arpa").read_bytes() == (tmp_path / "model-1.arpa").read_bytes()


def _die_once(lines: list[str], flag: str) -> list[str]:
    """Kills the worker process running it the first time any worker runs it."""
    try:
        fd = os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return lines
    os.close(fd)
    os._exit(1)


def test_a_worker_killed_mid_run_is_retried_and_counts_stay_exact(
    client: Client, tmp_path: Path
) -> None:
    lines = zipf_lines(np.random.default_rng(2), 4000)
    vocab = Vocabulary.build(lines)
    flag = str(tmp_path / "died")
    bag = db.from_sequence(lines, npartitions=8).map_partitions(_die_once, flag)
    got = ngram_dask.count(bag, 4, vocab, client=client)
    assert os.path.exists(flag), "no worker died: the test did not test anything"
    assert got == NgramCounts(4, vocab).update(lines)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts the dead worker


def test_sharded_counts(client: Client, corpus: tuple[list[Path], str], tmp_path: Path) -> None:
    paths, text = corpus
    single = NgramCounts(3, Vocabulary.build(text)).update(text)
    sharded = ngram_dask.count(
        [str(p) for p in paths], 3, client=client, blocksize=40_000, shards=3
    )
    assert isinstance(sharded, ngram_dask.ShardedNgramCounts)
    assert len(sharded) == 3
    assert [sharded.size(n) for n in (1, 2, 3)] == [single.size(n) for n in (1, 2, 3)]
    owned = sharded.sizes()
    assert all(min(s) > 0 for s in owned), f"an empty shard: {owned}"
    for ngram, n in list(single.items(2))[:5] + list(single.items(3))[:5]:
        assert sharded.count(ngram) == n
        assert sharded.shard(sharded.shard_of(ngram)).count(ngram) == n
    assert sharded.count("w1 never-seen") == 0
    assert sharded.gather() == single
    files = sharded.save(tmp_path / "shards")
    merged = NgramCounts(3, single.vocabulary)
    for f in files:
        merged.merge(NgramCounts.load(f))
    assert merged == single


def test_bad_arguments(client: Client, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vocabulary must be frozen"):
        ngram_dask.count(db.from_sequence(["a b"]), 2, Vocabulary(["a"]), client=client)
    with pytest.raises(TypeError, match=r"texts must be a dask\.bag\.Bag"):
        ngram_dask.count(42, 2, client=client)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\] must be a file path"):
        ngram_dask.count(["a.txt", 3], 2, client=client)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="order must be"):
        ngram_dask.count(db.from_sequence(["a b"]), 0, client=client)
    with pytest.raises(ValueError, match="texts must name at least one file"):
        ngram_dask.count([], 2, client=client)
    with pytest.raises(FileNotFoundError, match="texts"):
        ngram_dask.count([str(tmp_path / "missing-*.txt")], 2, client=client)
    with pytest.raises(TypeError, match="must hold str sentences"):
        ngram_dask.count(db.from_sequence([["a", "b"]]), 2, client=client)


def assert_as_one_process(got: object, expected: NgramCounts) -> None:
    """The same counts, vocabulary (ids in order), n-grams in the same storage order (what
    makes estimated models equal to the byte) and count-of-counts."""
    assert isinstance(got, NgramCounts)
    assert got.vocabulary.words == expected.vocabulary.words
    assert got == expected
    for n in range(1, expected.order + 1):
        for mine, theirs in zip(got.ngrams(n), expected.ngrams(n), strict=True):
            np.testing.assert_array_equal(mine, theirs)
        np.testing.assert_array_equal(got.count_of_counts(n), expected.count_of_counts(n))


# Files whose lines a block boundary may cut anywhere: a lone \r (whitespace, as
# NgramCounts.update takes it, not a line end as Python's universal newlines would), CRLF,
# multi-byte UTF-8 characters, empty lines, no final newline, Unicode line separators that
# are part of words.
TRICKY_FILES = {
    "lone-cr.txt": b"a b\rc d\na\rb\r\n\rc\r d\n" * 7,
    "crlf.txt": b"a b c\r\nb c\r\n\r\nd\r\n" * 9,
    "utf8.txt": "\u00e9t\u00e9 \u4e2d\u6587 \U0001f600x \u00e9t\u00e9\n".encode() * 11,
    "separators.txt": "a\u2028b c\x85d \x1ce\u00a0f\n".encode() * 5,
    "empty-lines.txt": b"\n\na b\n\n\nc\n\n" * 4,
    "no-final-newline.txt": b"a b c\nd e\nf",
    "one-line.txt": b"a\n",
    "no-line-end.txt": b"x",
}


def test_files_cut_anywhere_count_as_one_process(client: Client, tmp_path: Path) -> None:
    """Blocks of 2 bytes (a boundary inside every line, character and CRLF) or one block per
    file: the counts of the file's bytes in one process."""
    for name, data in TRICKY_FILES.items():
        (tmp_path / name).write_bytes(data)
    for name, data in TRICKY_FILES.items():
        expected = NgramCounts(3, Vocabulary.build(data)).update(data)
        for blocksize in (2, None):
            got = ngram_dask.count(tmp_path / name, 3, client=client, blocksize=blocksize)
            assert_as_one_process(got, expected)
    # Several files (each line of each file a sentence, a file without a final newline
    # included), one of them empty, in the order given
    names = ["no-final-newline.txt", "lone-cr.txt", "empty.txt", "utf8.txt", "no-line-end.txt"]
    (tmp_path / "empty.txt").write_bytes(b"")
    texts = [(tmp_path / name).read_bytes() for name in names]
    whole = b"".join(t if not t or t.endswith(b"\n") else t + b"\n" for t in texts)
    expected = NgramCounts(4, Vocabulary.build(whole)).update(whole)
    for blocksize in (7, None):
        got = ngram_dask.count(
            [tmp_path / name for name in names], 4, client=client, blocksize=blocksize
        )
        assert_as_one_process(got, expected)
        vocab = ngram_dask.vocabulary(
            [tmp_path / name for name in names], client=client, blocksize=blocksize
        )
        assert vocab == expected.vocabulary


def test_empty_files_count_nothing(client: Client, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    for blocksize in (16, None):
        got = ngram_dask.count(tmp_path / "empty.txt", 2, client=client, blocksize=blocksize)
        assert_as_one_process(got, NgramCounts(2, Vocabulary.build(b"")).update(b""))


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6])
def test_every_order_with_vocabulary_cut_offs(
    order: int, client: Client, corpus: tuple[list[Path], str]
) -> None:
    paths, text = corpus
    min_count, max_size = [(1, None), (2, None), (1, 40), (3, 25), (2, 0), (1, 1)][order - 1]
    vocab = Vocabulary.build(text, min_count=min_count, max_size=max_size)
    got = ngram_dask.count(
        [*paths[:2], str(paths[2])],
        order,
        client=client,
        blocksize=17_000,
        min_count=min_count,
        max_size=max_size,
    )
    assert_as_one_process(got, NgramCounts(order, vocab).update(text))


def test_a_compressed_file_is_one_block(client: Client, tmp_path: Path) -> None:
    """A compressed file cannot be cut at byte offsets: it is read whole, whatever the
    blocksize (the default included)."""
    import gzip

    data = b"".join(TRICKY_FILES.values())
    (tmp_path / "text.txt.gz").write_bytes(gzip.compress(data))
    got = ngram_dask.count(tmp_path / "text.txt.gz", 3, client=client)
    assert_as_one_process(got, NgramCounts(3, Vocabulary.build(data)).update(data))


def test_bad_files_and_block_sizes(client: Client, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("a b\n")
    for blocksize in (0, -1, "0B", "-5MiB"):  # (-1 looped for ever in dask.bytes.read_bytes)
        with pytest.raises(ValueError, match=r"^blocksize must be"):
            ngram_dask.count(good, 2, client=client, blocksize=blocksize)
    with pytest.raises(ValueError, match=r"^blocksize must be a number of bytes .* got 'lots'"):
        ngram_dask.count(good, 2, client=client, blocksize="lots")
    for blocksize in (True, 1.5):
        with pytest.raises(TypeError, match=r"^blocksize must be an int"):
            ngram_dask.count(good, 2, client=client, blocksize=blocksize)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"^texts: cannot read .*missing\.txt"):
        ngram_dask.count([good, tmp_path / "missing.txt"], 2, client=client)
    with pytest.raises(IsADirectoryError, match=r"^texts: .* is a directory"):
        ngram_dask.count(tmp_path, 2, client=client)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat\nthe \xff cat\n" + b"more\n" * 20)
    for blocksize in (None, 30):
        with pytest.raises(ValueError, match=r"bad\.txt is not valid UTF-8: line 2 .*0xff"):
            ngram_dask.count(bad, 2, client=client, blocksize=blocksize)
    bad.write_bytes(b"the cat\n" * 5 + b"the \xff cat\n")
    with pytest.raises(
        ValueError, match=r"bad\.txt is not valid UTF-8: byte 44 of the file has .*0xff"
    ):
        # (in a later block the line is not known: the byte's offset in the file is)
        ngram_dask.count(bad, 2, client=client, blocksize=8)


def test_a_closed_client_or_no_client_is_refused(client: Client) -> None:
    bag = db.from_sequence(["a b"])
    other = Client(client.cluster)
    other.close()
    with pytest.raises(ValueError, match=r"^client must be a running distributed\.Client"):
        ngram_dask.count(bag, 2, client=other)
    with pytest.raises(ValueError, match=r"^client must be a running"):
        ngram_dask.vocabulary(bag, client=other)
    with pytest.raises(TypeError, match=r"^client must be a distributed\.Client or None, got str"):
        ngram_dask.count(bag, 2, client="tcp://127.0.0.1:8786")


def test_cut_offs_beside_a_vocabulary_are_refused(client: Client) -> None:
    """min_count and max_size build the vocabulary: given with one, they would be ignored."""
    bag = db.from_sequence(["a b", "a c"])
    vocab = Vocabulary.build(["a b", "a c"])
    for options in ({"min_count": 2}, {"max_size": 1}):
        with pytest.raises(ValueError, match=r"^min_count and max_size build the vocabulary"):
            ngram_dask.count(bag, 2, vocab, client=client, **options)  # type: ignore[arg-type]
    counts = ngram_dask.count(bag, 2, vocab, client=client)
    assert isinstance(counts, NgramCounts) and counts.count("a c") == 1


def test_an_item_holding_a_newline_is_refused(client: Client) -> None:
    """One sentence per item, as NgramCounts.update takes a list (an item may end with its
    line end, as dask.bag.read_text gives lines)."""
    ended = ngram_dask.count(db.from_sequence(["a b\n", "c"]), 2, client=client)
    assert isinstance(ended, NgramCounts) and ended.count("a b") == ended.count("c") == 1
    for function in (ngram_dask.count, ngram_dask.vocabulary):
        args = (2,) if function is ngram_dask.count else ()
        with pytest.raises(ValueError, match=r"item 1 of a partition holds a newline inside"):
            function(db.from_sequence(["a b", "c\nd"], npartitions=1), *args, client=client)


def test_sharded_counts_of_words_outside_the_vocabulary(client: Client, tmp_path: Path) -> None:
    """A word the vocabulary cut off (or never saw) was never seen: count 0, as
    NgramCounts.count gives, not the count of <unk> (which the shards were asked for)."""
    lines = ["a b c", "a b d", "x a b", "a y", "b a"]
    expected = NgramCounts(3, Vocabulary.build(lines, min_count=2)).update(lines)
    sharded = ngram_dask.count(
        db.from_sequence(lines, npartitions=2), 3, client=client, min_count=2, shards=2
    )
    assert isinstance(sharded, ngram_dask.ShardedNgramCounts)
    for ngram in ["zzz", "c", "x a", "a zzz", "<unk>", "<unk> a", "a b", ("<s>", "a"), ["b", "a"]]:
        assert sharded.count(ngram) == expected.count(ngram), ngram
    assert expected.count("<unk>") == 4  # (the cut words: what "zzz" counted as)
    with pytest.raises(ValueError, match=r"^ngram\[1\] must be non-empty"):
        sharded.count(["a", "b c"])
    gathered = sharded.gather()
    assert gathered == expected
    files = sharded.save(tmp_path / "shards")
    loaded = NgramCounts(3, expected.vocabulary)
    for f in files:
        loaded.merge(NgramCounts.load(f))
    assert loaded == expected


def test_without_a_client_dask_s_local_scheduler_counts() -> None:
    lines = zipf_lines(np.random.default_rng(3), 500)
    got = ngram_dask.count(db.from_sequence(lines, npartitions=3), 3)
    assert got == NgramCounts(3, Vocabulary.build(lines)).update(lines)


def test_importing_rnnkit_never_imports_dask() -> None:
    code = (
        "import sys, rnnkit, rnnkit.ngram, rnnkit.lm, rnnkit.text, rnnkit.data\n"
        "assert 'dask' not in sys.modules and 'distributed' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
