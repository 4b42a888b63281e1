"""N-gram counting on a Dask cluster: :func:`count` (needs ``pip install "rnnkit[dask]"``).

Each partition of the text is counted by rnnkit's C++ store on a worker, and the stores are
merged in a tree (``split_every`` at a time) into one :class:`~rnnkit.ngram.NgramCounts`
(a store that moves between workers, or to the client, travels as
:meth:`NgramCounts.to_bytes`, its pickled form), exactly what counting the whole text in one
process gives. Estimation (modified Kneser-Ney's discounts and continuation counts need the
global counts) runs on that merged store, never per shard::

    import dask.bag as db
    from distributed import Client
    from rnnkit.ngram import estimate
    from rnnkit.ngram.dask import count

    client = Client("tcp://scheduler:8786")           # or Client() for a local cluster
    counts = count(["corpus/*.txt"], order=5, client=client)
    model = estimate(counts, "mkn")

* ``texts``: a ``dask.bag.Bag`` whose elements are sentences (lines), or file paths and globs
  (one or a list, read in blocks of whole lines through fsspec, as ``dask.bag.read_text``
  reads them: the files' lines are sentences, split at ``\\n`` only, as
  :meth:`NgramCounts.update` splits a text; any path the workers can read, including
  ``s3://`` and other fsspec URLs; UTF-8, else ``ValueError`` naming the file).
* Without a vocabulary, a first pass over the text builds one, as
  :meth:`Vocabulary.build` would on the whole text (``min_count``, ``max_size``; words in
  order of decreasing count, ties by first appearance), so that every worker maps words to
  the same ids. A given vocabulary must be frozen, for the same reason.
* ``shards=k`` leaves the counts hash-partitioned by the n-grams' first word in ``k`` stores
  on the workers (:class:`ShardedNgramCounts`), for stores too large for one machine.
* A task lost with its worker is recomputed by Dask; counts stay exact, since every partition
  is counted once into the result however often it ran.

Importing :mod:`rnnkit` never imports Dask; importing this module does.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.bag as db
import numpy as np
from dask.base import tokenize
from dask.delayed import Delayed, delayed
from dask.sizeof import sizeof

from .. import _core
from . import _MAX_ORDER, NgramCounts, Vocabulary, _check_int, _ngram_ids

__all__ = ["ShardedNgramCounts", "Timings", "count", "vocabulary"]

Texts = db.Bag | str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


@dataclass
class Timings:
    """Wall seconds of the last :func:`count` or :func:`vocabulary` call of this process: the
    vocabulary pass, the counting (with the merge and the result's transfer), and, with a
    client, each split into the time until the result exists on the workers and the time
    it takes to reach the client (``phases``)."""

    vocabulary: float = 0.0
    counting: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)


#: The phases of the last call of this process (for benchmarks).
last_timings = Timings()


# --------------------------------------------------------------------------- inputs
def _check_blocksize(blocksize: Any) -> int | None:
    """``blocksize`` as bytes (an int > 0, or a str such as ``"64MiB"``), or None."""
    if blocksize is None:
        return None
    if isinstance(blocksize, str):
        from dask.utils import parse_bytes

        try:
            value = parse_bytes(blocksize)
        except (ValueError, TypeError):
            raise ValueError(
                f"blocksize must be a number of bytes (an int, or a str such as '64MiB') or "
                f"None, got {blocksize!r}"
            ) from None
        if value < 1:
            raise ValueError(f"blocksize must be at least 1 byte, got {blocksize!r}")
        return int(value)
    if not isinstance(blocksize, (int, np.integer)) or isinstance(blocksize, (bool, np.bool_)):
        raise TypeError(
            "blocksize must be an int (bytes), a str such as '64MiB', or None, got "
            f"{type(blocksize).__name__}"
        )
    if blocksize < 1:
        raise ValueError(f"blocksize must be >= 1 (bytes), got {blocksize}")
    return int(blocksize)


def _check_client(client: Any) -> Any:
    """``client``: None, or a ``distributed.Client`` that is not closed."""
    if client is None:
        return None
    try:
        from distributed import Client
    except ImportError:  # (then it cannot be one)
        raise TypeError(
            f"client must be a distributed.Client or None, got {type(client).__name__}"
        ) from None
    if not isinstance(client, Client):
        raise TypeError(f"client must be a distributed.Client or None, got {type(client).__name__}")
    if client.status in ("closing", "closed"):
        raise ValueError(f"client must be a running distributed.Client, got a {client.status} one")
    return client


def _block_lines(
    fs: Any, path: str, compression: str | None, offset: int, length: int | None
) -> list[str]:
    """The sentences of one block of a file (all of it when ``length`` is None): its whole
    lines, split at ``\\n`` only, as :meth:`NgramCounts.update` splits a text (``\\r`` and
    the other characters that Python's universal newlines take for line ends are whitespace
    or part of a word). A block runs from after the first ``\\n`` at or after ``offset``
    (from the file's start for offset 0) to the first ``\\n`` at or after ``offset +
    length`` (or the file's end), so that consecutive blocks share no line and miss none."""
    from fsspec.core import OpenFile  # type: ignore[import-untyped]
    from fsspec.utils import seek_delimiter  # type: ignore[import-untyped]

    # (an OpenFile of this task's own: one shared by tasks on threads would close the
    # others' files)
    with OpenFile(fs, path, compression=compression) as f:
        if length is None:
            start, data = 0, f.read()
        else:
            f.seek(offset)
            seek_delimiter(f, b"\n", 1 << 16)  # (past the first \n at or after offset)
            start = f.tell()
            f.seek(offset + length)
            seek_delimiter(f, b"\n", 1 << 16)
            end = f.tell()
            f.seek(start)
            data = f.read(end - start) if end > start else b""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        where = start + error.start
        if start == 0:
            line = data.count(b"\n", 0, error.start) + 1
            place = f"line {line} (byte {where} of the file)"
        else:  # (the line number would need the lines before the block)
            place = f"byte {where} of the file"
        raise ValueError(
            f"texts: {path} is not valid UTF-8: {place} has the byte 0x{data[error.start]:02x}"
        ) from None
    lines = text.split("\n")
    if lines[-1] == "":  # (after the last line end; or an empty block)
        lines.pop()
    return lines


def _block_offsets(size: int, blocksize: int) -> list[tuple[int, int]]:
    """(offset, length) of the blocks of a file of ``size`` bytes: about ``blocksize`` each."""
    blocks = max(1, size // blocksize)
    starts = [size * i // blocks for i in range(blocks)] + [size]
    return [(starts[i], starts[i + 1] - starts[i]) for i in range(blocks)]


def _read_files(paths: list[str], blocksize: int | None) -> db.Bag:
    """The lines of the files (globs expanded) as a bag, a partition per block of each file
    (per file with ``blocksize`` None, or for a compressed file)."""
    from fsspec.core import get_fs_token_paths  # type: ignore[import-untyped]
    from fsspec.utils import infer_compression  # type: ignore[import-untyped]

    try:
        fs, fs_token, found = get_fs_token_paths(paths, mode="rb")
    except (OSError, ValueError) as err:
        raise FileNotFoundError(f"texts: cannot read {paths}: {err}") from err
    if not found:
        raise FileNotFoundError(f"texts: {paths} names no file")
    blocks = []
    for path in found:
        try:
            info = fs.info(path)
        except (OSError, ValueError) as err:
            raise FileNotFoundError(f"texts: cannot read {path}: {err}") from err
        if info.get("type") == "directory":
            raise IsADirectoryError(
                f"texts: {path} is a directory; give its files (a glob such as "
                f"{path.rstrip('/')}/*.txt)"
            )
        compression = infer_compression(path)
        size = info.get("size")
        if blocksize is None or compression is not None or size is None:
            pieces: list[tuple[int, int | None]] = [(0, None)]
        elif size == 0:
            continue
        else:
            pieces = list(_block_offsets(int(size), blocksize))
        key = tokenize(fs_token, path, fs.ukey(path), compression)
        for offset, length in pieces:
            blocks.append(
                delayed(_block_lines, pure=True)(
                    fs,
                    path,
                    compression,
                    offset,
                    length,
                    dask_key_name=f"rnnkit-read-{offset}-{length}-{key}",
                )
            )
    if not blocks:  # (only empty files)
        return db.from_sequence([], npartitions=1)
    return db.from_delayed(blocks)


def _as_bag(texts: Any, partitions: int | None, blocksize: int | str | None) -> db.Bag:
    blocksize = _check_blocksize(blocksize)
    if isinstance(texts, db.Bag):
        bag = texts
    else:
        paths: list[str]
        if isinstance(texts, (str, os.PathLike)):
            paths = [os.fspath(texts)]
        elif isinstance(texts, Sequence) and not isinstance(texts, bytes):
            paths = []
            for i, p in enumerate(texts):
                if not isinstance(p, (str, os.PathLike)):
                    raise TypeError(
                        f"texts[{i}] must be a file path or glob, got {type(p).__name__}"
                    )
                paths.append(os.fspath(p))
            if not paths:
                raise ValueError("texts must name at least one file, got an empty list")
        else:
            raise TypeError(
                "texts must be a dask.bag.Bag of sentences or file paths/globs, got "
                f"{type(texts).__name__}"
            )
        bag = _read_files(paths, blocksize)
    if partitions is not None:
        partitions = _check_int(partitions, "partitions", 1)
        bag = bag.repartition(npartitions=partitions)
    return bag


def _partition_text(lines: Sequence[Any]) -> str:
    """A partition's sentences as one text whose lines are sentences (an item may end with
    its line end, as ``dask.bag.read_text`` gives lines; one inside it is refused, as
    :meth:`NgramCounts.update` refuses it, rather than making two sentences of one item)."""
    parts = []
    for i, line in enumerate(lines):
        if not isinstance(line, str):
            raise TypeError(f"texts must hold str sentences, got {type(line).__name__} (item {i})")
        if line.find("\n", 0, len(line) - 1) >= 0:
            raise ValueError(
                f"texts must hold one sentence per item: item {i} of a partition holds a "
                f"newline inside ({line[:40]!r}); split the text into its lines"
            )
        parts.append(line if line.endswith("\n") else line + "\n")
    return "".join(parts)


def _compute(client: Any, *objects: Any, phase: str | None = None) -> tuple[Any, ...]:
    """The objects' values; with a client, the seconds until they exist on the workers and
    until they are here go to ``last_timings.phases[phase + " on the workers"]`` and
    ``[phase + " to the client"]``."""
    if client is None:
        return tuple(dask.compute(*objects))
    from distributed import wait

    start = time.perf_counter()
    futures = client.compute(list(objects))
    wait(futures)
    computed = time.perf_counter()
    values = tuple(client.gather(futures))
    if phase is not None:
        last_timings.phases[phase + " on the workers"] = computed - start
        last_timings.phases[phase + " to the client"] = time.perf_counter() - computed
    return values


def _tree(
    pieces: list[Delayed], combine: Callable[[list[Any]], Any], split_every: int, pure: bool
) -> Delayed:
    """Combines pieces split_every at a time, in order, into one (a balanced tree)."""
    level = pieces
    while len(level) > 1:
        level = [
            delayed(combine, pure=pure)(level[i : i + split_every])
            for i in range(0, len(level), split_every)
        ]
    return level[0]


# --------------------------------------------------------------------------- vocabulary
def _partition_words(lines: Sequence[Any]) -> tuple[list[str], np.ndarray]:
    """The partition's words in order of first appearance, and their counts."""
    seen = _core._Vocabulary()
    _, _, counts = seen.encode_text(_partition_text(lines), True, True)
    words = seen.words()[3:]
    totals = np.zeros(len(words), dtype=np.uint64)
    if counts is not None and counts.size > 3:
        totals[: counts.size - 3] = counts[3:]
    return words, totals


def _merge_words(pieces: list[tuple[list[str], np.ndarray]]) -> tuple[list[str], np.ndarray]:
    """Words of consecutive partitions: first appearances in order, counts summed."""
    index: dict[str, int] = {}
    words: list[str] = []
    totals: list[int] = []
    for piece_words, piece_counts in pieces:
        for word, n in zip(piece_words, piece_counts.tolist(), strict=True):
            i = index.get(word)
            if i is None:
                index[word] = len(words)
                words.append(word)
                totals.append(int(n))
            else:
                totals[i] += int(n)
    return words, np.array(totals, dtype=np.uint64)


def vocabulary(
    texts: Texts,
    *,
    min_count: int = 1,
    max_size: int | None = None,
    client: Any = None,
    partitions: int | None = None,
    blocksize: int | str | None = "64MiB",
    split_every: int = 8,
) -> Vocabulary:
    """The frozen vocabulary :meth:`Vocabulary.build` would give on the whole text, built
    partition by partition on the cluster (arguments as :func:`count`'s)."""
    split_every = _check_int(split_every, "split_every", 2)
    client = _check_client(client)
    bag = _as_bag(texts, partitions, blocksize)
    last_timings.phases.clear()
    return _vocabulary_of(bag, min_count, max_size, client, split_every)


def _vocabulary_of(
    bag: db.Bag, min_count: Any, max_size: Any, client: Any, split_every: int
) -> Vocabulary:
    min_count = _check_int(min_count, "min_count", 1)
    if max_size is not None:
        max_size = _check_int(max_size, "max_size", 0)
    start = time.perf_counter()
    pieces = bag.map_partitions(_partition_words).to_delayed(optimize_graph=True)
    (merged,) = _compute(
        client, _tree(pieces, _merge_words, split_every, pure=True), phase="vocabulary"
    )
    words, totals = merged
    order = np.flatnonzero(totals >= min_count)
    order = order[np.argsort(-totals[order].astype(np.int64), kind="stable")]
    if max_size is not None:
        order = order[:max_size]
    last_timings.vocabulary = time.perf_counter() - start
    return Vocabulary((words[i] for i in order), frozen=True)


# --------------------------------------------------------------------------- counting
def _count_partition(lines: Sequence[Any], order: int, words: list[str]) -> NgramCounts:
    counts = NgramCounts(order, Vocabulary(words, frozen=True))
    return counts.update(_partition_text(lines))


def _merge_stores(pieces: list[NgramCounts]) -> NgramCounts:
    """The pieces' counts in one store: the first piece, with the others added to it in
    order, so that the n-grams keep the order in which the text first shows them (the order
    one process counting the whole text gives: estimated models are then the same to the
    byte).

    Modifying an input is safe here, though Dask's tasks usually must not: each piece feeds
    this one task only, under keys of this call alone, and if the worker holding the result
    dies, Dask recomputes the pieces too, from the text, rather than reusing a modified one."""
    merged = pieces[0]
    for piece in pieces[1:]:
        merged._store.merge(piece._store)  # the same vocabulary everywhere: no translation
    return merged


@sizeof.register(NgramCounts)
def _sizeof_counts(counts: NgramCounts) -> int:
    # What the store holds in C++, so that workers account for it (and spill it) correctly.
    return int(counts._store.memory_bytes())


def _shard_ids(first_words: np.ndarray, shards: int) -> np.ndarray:
    """The shard of each n-gram from its first word: a multiplicative hash, so that shards
    balance whatever the ids' order."""
    mixed = (first_words.astype(np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    return (mixed % np.uint64(shards)).astype(np.int64)


def _split_store(whole: NgramCounts, shards: int) -> tuple[NgramCounts, ...]:
    """One store's n-grams split into `shards` stores by their first word."""
    parts = [NgramCounts(whole.order, whole.vocabulary) for _ in range(shards)]
    for n in range(1, whole.order + 1):
        ngrams, counts = whole._store.ngrams(n)
        if not counts.size:
            continue
        which = _shard_ids(ngrams[:, 0], shards)
        for j, part in enumerate(parts):
            mask = which == j
            if mask.any():
                part._store.add_ngrams(
                    np.ascontiguousarray(ngrams[mask]).ravel(),
                    n,
                    np.ascontiguousarray(counts[mask]),
                )
    return tuple(parts)


def _check_count_arguments(
    order: Any, vocab: Any, split_every: Any, shards: Any
) -> tuple[int, int, int | None]:
    order = _check_int(order, "order", 1)
    if order > _MAX_ORDER:
        raise ValueError(f"order must be in [1, {_MAX_ORDER}], got {order}")
    if vocab is not None:
        if not isinstance(vocab, Vocabulary):
            raise TypeError(
                f"vocabulary must be a rnnkit.ngram.Vocabulary or None, got {type(vocab).__name__}"
            )
        if not vocab.frozen:
            raise ValueError(
                "vocabulary must be frozen (Vocabulary(words, frozen=True)), so that every "
                "worker maps words to the same ids; or None for a vocabulary pass"
            )
    split_every = _check_int(split_every, "split_every", 2)
    if shards is not None:
        shards = _check_int(shards, "shards", 1)
    return order, split_every, shards


def count(
    texts: Texts,
    order: int,
    vocabulary: Vocabulary | None = None,
    *,
    client: Any = None,
    partitions: int | None = None,
    blocksize: int | str | None = "64MiB",
    split_every: int = 8,
    min_count: int = 1,
    max_size: int | None = None,
    shards: int | None = None,
) -> NgramCounts | ShardedNgramCounts:
    """Exact counts of every n-gram of orders 1..``order`` of ``texts``, on Dask.

    ``texts``: a ``dask.bag.Bag`` of sentence strings, or file paths/globs (their lines are
    sentences). ``vocabulary``: a frozen :class:`Vocabulary`, or None for a first pass that
    builds one with ``min_count`` and ``max_size`` (as :meth:`Vocabulary.build`; with a
    vocabulary given, they are refused).
    ``client``: a ``distributed.Client`` (None: Dask's current scheduler, a client if one is
    active). ``partitions``: repartition the bag to this many partitions; ``blocksize``: bytes
    per partition when reading files (an int >= 1 or a str such as ``"64MiB"``; None: one per
    file, as for a compressed file, which cannot be cut). ``split_every``: stores merged at
    a time in the tree. ``shards``: leave the result hash-partitioned in that many stores on
    the workers (:class:`ShardedNgramCounts`) instead of merging it into one.

    The result equals ``NgramCounts(order, vocabulary).update(text)`` on the whole text, count
    for count.
    """
    order, split_every, shards = _check_count_arguments(order, vocabulary, split_every, shards)
    client = _check_client(client)
    bag = _as_bag(texts, partitions, blocksize)
    last_timings.phases.clear()
    if vocabulary is None:
        vocabulary = _vocabulary_of(bag, min_count, max_size, client, split_every)
    else:
        if min_count != 1 or max_size is not None:
            # (they shape the vocabulary pass, which a given vocabulary replaces: silently
            # ignored, they would count words the caller meant to cut)
            raise ValueError(
                "min_count and max_size build the vocabulary: give them or a vocabulary, "
                f"not both (got min_count={min_count!r}, max_size={max_size!r})"
            )
        last_timings.vocabulary = 0.0
    start = time.perf_counter()
    words = vocabulary.words[3:]
    # Keys of their own for every call (pure=False): the merges add into their inputs, which
    # must then never be shared with another computation.
    # map_partitions, not a task per partition of to_delayed(): reading a block and counting
    # it fuse into one task, the graph's roots, which Dask spreads over the workers (counting
    # tasks downstream of cheap reads all followed the reads' worker).
    token = f"rnnkit-count-{uuid.uuid4().hex}"
    # The words go into every task as they are: a shared dependency (a delayed list) would
    # make the tasks follow it to one worker.
    counted = bag.map_partitions(_count_partition, order, words, token=token)
    stores = counted.to_delayed(optimize_graph=True)
    if shards is None:
        (result,) = _compute(
            client, _tree(stores, _merge_stores, split_every, pure=False), phase="counts"
        )
        result.vocabulary = vocabulary  # the same words: share the caller's object
        last_timings.counting = time.perf_counter() - start
        return result
    split = [delayed(_split_store, pure=False, nout=shards)(s, shards) for s in stores]
    per_shard = [
        _tree([pieces[j] for pieces in split], _merge_stores, split_every, pure=False)
        for j in range(shards)
    ]
    if client is not None:
        handles = client.persist(per_shard)
    else:
        handles = list(dask.persist(*per_shard))
    last_timings.counting = time.perf_counter() - start
    return ShardedNgramCounts(order, vocabulary, list(handles), client)


# --------------------------------------------------------------------------- sharded result
def _store_count(store: NgramCounts, ngram: list[int]) -> int:
    return int(store._store.count(np.array(ngram, dtype=np.int32)))


def _store_sizes(counts: NgramCounts, j: int, shards: int) -> list[int]:
    """The n-grams of each order that shard j owns. (A shard's store also holds the prefixes
    of its n-grams, which the store's keys need, with count 0 unless the shard owns them.)"""
    store = counts._store
    sizes = []
    for n in range(1, store.order + 1):
        ngrams, values = store.ngrams(n)
        owned = (_shard_ids(ngrams[:, 0], shards) == j) & (values > 0)
        sizes.append(int(owned.sum()))
    return sizes


def _save_store(counts: NgramCounts, path: str) -> str:
    counts.save(path)
    return path


class ShardedNgramCounts:
    """Counts left on the workers in ``len(shards)`` stores, hash-partitioned by the n-grams'
    first word: every n-gram is in exactly one shard, with its full count. Each shard is
    :class:`NgramCounts` held by Dask (a future with a client, a persisted
    collection otherwise).

    Queries run where the shards are. :meth:`gather` merges them into one store (what
    estimation needs); :meth:`save` writes each shard where the workers can write.
    """

    def __init__(self, order: int, vocabulary: Vocabulary, shards: list[Any], client: Any) -> None:
        self.order = order
        self.vocabulary = vocabulary
        self.shards = shards
        self._client = client

    def __len__(self) -> int:
        """The number of shards."""
        return len(self.shards)

    def __repr__(self) -> str:
        return f"<ShardedNgramCounts order={self.order}, shards={len(self.shards)}>"

    def shard_of(self, ngram: str | Sequence[str]) -> int:
        """The shard holding ``ngram`` (by its first word's id; a word outside the vocabulary
        counts as ``<unk>`` here)."""
        ids = np.maximum(self._ids(ngram), 0)
        return int(_shard_ids(ids[:1], len(self.shards))[0])

    def _ids(self, ngram: str | Sequence[str]) -> np.ndarray:
        """The words' ids, -1 for a word outside the vocabulary (as NgramCounts finds them)."""
        return _ngram_ids(ngram, self.order, self.vocabulary)

    def count(self, ngram: str | Sequence[str]) -> int:
        """The count of ``ngram``, asked of its shard alone (0 for a word outside the
        vocabulary, which was never seen, as :meth:`NgramCounts.count` gives)."""
        ids = self._ids(ngram)
        if (ids < 0).any():
            return 0
        shard = self.shards[self.shard_of(ngram)]
        (value,) = _compute(self._client, delayed(_store_count, pure=True)(shard, ids.tolist()))
        return int(value)

    def sizes(self) -> list[list[int]]:
        """Distinct n-grams of each order (a list per shard)."""
        k = len(self.shards)
        tasks = [delayed(_store_sizes, pure=True)(s, j, k) for j, s in enumerate(self.shards)]
        return list(_compute(self._client, *tasks))

    def size(self, n: int) -> int:
        """Distinct n-grams of order ``n`` over all shards."""
        n = _check_int(n, "n", 1, self.order)
        return sum(s[n - 1] for s in self.sizes())

    def shard(self, j: int) -> NgramCounts:
        """Shard ``j`` as a store here."""
        j = _check_int(j, "j", 0, len(self.shards) - 1)
        (store,) = _compute(self._client, self.shards[j])
        return store

    def gather(self) -> NgramCounts:
        """All shards merged into one store here (the counts :func:`count` gives without
        ``shards``)."""
        merged = NgramCounts(self.order, self.vocabulary)
        for store in _compute(self._client, *self.shards):
            merged._store.merge(store._store)
        return merged

    def save(self, directory: str | os.PathLike[str]) -> list[str]:
        """Each worker writes its shards, as :meth:`NgramCounts.save` files
        ``shard-00000.counts`` ..., into ``directory`` (a path every worker can write: a
        shared file system or an fsspec-less local path on a one-machine cluster). Returns
        the paths."""
        base = os.fspath(directory)
        os.makedirs(base, exist_ok=True)
        paths = [os.path.join(base, f"shard-{j:05d}.counts") for j in range(len(self.shards))]
        tasks = [
            delayed(_save_store, pure=True)(s, p) for s, p in zip(self.shards, paths, strict=True)
        ]
        return list(_compute(self._client, *tasks))
