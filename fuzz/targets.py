"""Fuzz targets for rnnkit's file readers (issue 7), run by atheris (libFuzzer for Python).

Each target takes the fuzzer's bytes and hands them to one reader. The reader may refuse them
only with the errors it documents (``ValueError``, of which ``UnicodeDecodeError`` is one, and
``MemoryError`` for sizes beyond memory); anything else that escapes is a finding, as is a
crash, a hang (libFuzzer's ``-timeout``) or an allocation beyond ``-rss_limit_mb``. What a
reader accepts must then work: it is scored, queried and written back.

The checksummed formats would refuse almost every mutation at the checksum, before the parser
sees it, so their targets *reseal* the mutated bytes (recompute the checksums, as a hand-made
file would carry them) when the input's first byte is even, and pass them as they are when it
is odd, so that both the checksum and the parser behind it are exercised. The checksums are
rewritten here from the format descriptions (csrc/ngram/model_io.cpp, csrc/ngram/counts.cpp,
python/rnnkit/ngram/__init__.py); ``tests/test_fuzz.py`` checks that resealing an unchanged
file gives the same bytes, so a change of format cannot silently blind the fuzzer.

Run one target with ``python fuzz/run.py NAME [libFuzzer options] [corpus dirs]``;
``scripts/fuzz.sh`` runs them all for a long time.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

_MASK = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3

#: Errors a reader may refuse an input with.
REFUSALS = (ValueError, MemoryError)

# A scratch directory for the targets that read files (a tmpfs where there is one).
_SCRATCH = Path(
    tempfile.mkdtemp(prefix="rnnkit-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
)


# --------------------------------------------------------------------------- checksums
def fnv1a(data: bytes) -> int:
    """64-bit FNV-1a, the checksum of the C++ count store's bytes."""
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def model_checksum(data: bytes) -> int:
    """The binary model file's checksum: four multiply-xor lanes over the 8-byte words of each
    32-byte block, then the block count and the bytes left over folded in, byte by byte."""
    blocks = len(data) // 32
    words = np.frombuffer(data, dtype="<u8", count=4 * blocks).reshape(blocks, 4)
    lanes = [_FNV_OFFSET, 1, 2, 3]
    for row in words.tolist():
        for lane in range(4):
            lanes[lane] = ((lanes[lane] ^ row[lane]) * _FNV_PRIME) & _MASK
    h = _FNV_OFFSET ^ (32 * blocks)
    for lane in lanes:
        h = ((h ^ lane) * _FNV_PRIME) & _MASK
    for byte in data[32 * blocks :]:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def reseal_model(data: bytes) -> bytes:
    """``data`` with its last 8 bytes replaced by the checksum of the bytes before them."""
    if len(data) < 8:
        return data
    return data[:-8] + struct.pack("<Q", model_checksum(data[:-8]))


_COUNTS_HEADER = 8 + 4 + 1 + 8  # RNKCOUNT, version, frozen flag, vocabulary bytes


def reseal_counts(data: bytes) -> bytes:
    """``data`` with both checksums of the ``NgramCounts.to_bytes`` format recomputed: the
    C++ store's (the 8 bytes before the last 4) where the header's vocabulary length
    leaves room for a store, then the outer CRC-32 (the last 4 bytes)."""
    if len(data) < _COUNTS_HEADER + 4:
        return data
    body = bytearray(data[:-4])
    vocab_bytes = int.from_bytes(body[13:21], "little")
    store_start = _COUNTS_HEADER + vocab_bytes
    if store_start + 8 <= len(body):
        store = bytes(body[store_start:-8])
        # The store's format version 1 carried FNV-1a; version 2 the model file's checksum.
        version = int.from_bytes(store[8:12], "little") if len(store) >= 12 else 2
        body[-8:] = struct.pack("<Q", fnv1a(store) if version == 1 else model_checksum(store))
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


# --------------------------------------------------------------------------- seeds
_SENTENCES = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the mat is red",
    "über café 猫 sat",
]


def _seed_model(method: str = "mkn", order: int = 3):
    import rnnkit.ngram as ngram

    counts = ngram.NgramCounts(order).update(_SENTENCES)
    return ngram.estimate(counts, method=method)


def make_seeds(name: str, directory: str | os.PathLike[str]) -> list[Path]:
    """Writes valid inputs for target ``name`` into ``directory`` (its seed corpus)."""
    import warnings

    import rnnkit.ngram as ngram

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, bytes] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Kneser-Ney's discount fallback on so little data
        if name in ("arpa", "binary_model"):
            for method, order in (("mkn", 3), ("witten_bell", 2), ("stupid_backoff", 1)):
                model = _seed_model(method, order)
                path = _SCRATCH / f"seed.{name}"
                if name == "arpa":
                    model.write_arpa(path)
                else:
                    model.save(path)
                seeds[f"{method}{order}"] = path.read_bytes()
            if name == "arpa":
                seeds["srilm"] = (
                    b"# SRILM style\r\n\\data\\\r\nngram 1=3\r\n\r\n\\1-grams:\r\n"
                    b"-99\t<s>\r\n-0.5\ta\r\n-0.3\t</s>\r\n\r\n\\end\\\r\n"
                )
        elif name == "counts_bytes":
            for order in (1, 3):
                seeds[f"order{order}"] = ngram.NgramCounts(order).update(_SENTENCES).to_bytes()
        elif name == "lm_checkpoint":
            seeds["window"] = _checkpoint_bytes()
        else:
            raise ValueError(f"no target named {name!r}")
    paths = []
    for label, data in seeds.items():
        path = out / f"seed-{label}"
        path.write_bytes(data)
        paths.append(path)
    return paths


def _checkpoint_bytes() -> bytes:
    from rnnkit.lm import WindowLanguageModel
    from rnnkit.ngram import Vocabulary
    from rnnkit.text import WhitespaceTokenizer

    vocabulary = Vocabulary(["a", "b", "c"], frozen=True)
    model = WindowLanguageModel(
        len(vocabulary),
        context=2,
        embed=3,
        hidden=4,
        vocabulary=vocabulary,
        tokenizer=WhitespaceTokenizer(),
    )
    path = _SCRATCH / "seed.npz"
    model.save(path)
    return path.read_bytes()


# --------------------------------------------------------------------------- targets
def _as_file(data: bytes, suffix: str) -> Path:
    path = _SCRATCH / f"input{suffix}"
    path.write_bytes(data)
    return path


def _exercise_model(model) -> None:
    """What a loaded n-gram model must survive: scoring known and unknown words, a batch, the
    state API, an ARPA and a binary round trip."""
    words = [*model.vocabulary.words[3:8], "never-seen"]
    sentence = " ".join(words)
    model.score(sentence)
    model.full_scores(sentence)
    model.perplexity(sentence)
    state = model.begin_state()
    for word in words:
        _, _, state = model.full_score(state, word)
    model.evaluate([sentence, ""])
    for save, load in ((model.write_arpa, "load_arpa"), (model.save, "load_model")):
        import rnnkit.ngram as ngram

        path = _SCRATCH / "roundtrip"
        save(path)
        again = getattr(ngram, load)(path)
        if again.order != model.order:
            raise AssertionError("a round trip changed the model's order")


def arpa(data: bytes) -> None:
    """``rnnkit.ngram.load_arpa`` on the bytes as a file."""
    import rnnkit.ngram as ngram

    try:
        model = ngram.load_arpa(_as_file(data, ".arpa"))
    except REFUSALS:
        return
    _exercise_model(model)


def binary_model(data: bytes) -> None:
    """``rnnkit.ngram.load_model`` on the bytes as a file, resealed when the first byte is
    even."""
    import rnnkit.ngram as ngram

    if data[:1] and data[0] % 2 == 0:
        data = reseal_model(data)
    try:
        model = ngram.NgramModel.load(_as_file(data, ".bin"))
    except REFUSALS:
        return
    _exercise_model(model)


def counts_bytes(data: bytes) -> None:
    """``NgramCounts.from_bytes``, resealed when the first byte is even; what it accepts must
    give back the same bytes, iterate, and estimate a model."""
    import warnings

    import rnnkit.ngram as ngram

    if data[:1] and data[0] % 2 == 0:
        data = reseal_counts(data)
    try:
        counts = ngram.NgramCounts.from_bytes(data)
    except REFUSALS:
        return
    if ngram.NgramCounts.from_bytes(counts.to_bytes()) != counts:
        raise AssertionError("from_bytes(to_bytes()) changed the counts")
    for n in range(1, counts.order + 1):
        counts.count_of_counts(n)
        for _ in counts.items(n):
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = ngram.estimate(counts, method="witten_bell")
        except REFUSALS:
            return  # e.g. counts without any sentence end: documented refusals
    model.score("a b")


def lm_checkpoint(data: bytes) -> None:
    """``rnnkit.lm.load_model`` on the bytes as a file (an ``.npz`` archive holding a JSON
    configuration); what loads must score a sentence."""
    from rnnkit.lm import load_model

    try:
        model = load_model(_as_file(data, ".npz"))
    except REFUSALS:
        return
    if model.vocabulary is not None and model.tokenizer is not None:
        model.score(["a b", "b never-seen"])


TARGETS: dict[str, Callable[[bytes], None]] = {
    "arpa": arpa,
    "binary_model": binary_model,
    "counts_bytes": counts_bytes,
    "lm_checkpoint": lm_checkpoint,
}
