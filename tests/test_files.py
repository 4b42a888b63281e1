"""Damaged files are refused with a clear error, never a crash, a hang or a silently different
model; saves are atomic: a writer killed at any moment leaves the old file or the new one."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from rnnkit.lm import RNNLanguageModel, load_model
from rnnkit.ngram import NgramCounts, NgramModel, estimate, load_arpa
from rnnkit.text import CharTokenizer, build_vocabulary

TEXT = "the cat sat on the mat\nthe dog sat on the log\n" * 20


def lm_file(tmp_path: Path) -> tuple[Path, RNNLanguageModel]:
    tok = CharTokenizer()
    vocab = build_vocabulary(TEXT, tok)
    m = RNNLanguageModel(len(vocab), 8, 8, 1, "gru", vocabulary=vocab, tokenizer=tok, seed=0)
    path = tmp_path / "lm.npz"
    m.save(path)
    return path, m


def test_lm_checkpoint_bit_flips_are_refused_or_harmless(tmp_path: Path) -> None:
    path, m = lm_file(tmp_path)
    data = path.read_bytes()
    expected = m.evaluate("the cat sat")
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.npz"
    refused = 0
    for _ in range(400):
        damaged = bytearray(data)
        damaged[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        bad.write_bytes(bytes(damaged))
        try:
            loaded = load_model(bad)
        except ValueError as error:
            assert str(bad) in str(error)
            refused += 1
            continue
        # Accepted: the flip fell where it changes nothing the model is made of (zip
        # metadata such as timestamps), so it must be the same model.
        assert loaded.evaluate("the cat sat") == expected
    assert refused > 300


def test_lm_checkpoint_truncated_gzip_and_text(tmp_path: Path) -> None:
    path, _ = lm_file(tmp_path)
    data = path.read_bytes()
    bad = tmp_path / "bad.npz"
    for cut in [0, 10, len(data) // 2, len(data) - 1]:
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="not an rnnkit language model"):
            load_model(bad)
    bad.write_bytes(gzip.compress(data))
    with pytest.raises(ValueError, match="not an rnnkit language model"):
        load_model(bad)


def test_counts_bytes_bit_flips_are_refused() -> None:
    data = NgramCounts(3).update(TEXT).to_bytes()
    rng = np.random.default_rng(1)
    for _ in range(400):
        damaged = bytearray(data)
        damaged[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        with pytest.raises(ValueError):
            NgramCounts.from_bytes(bytes(damaged))


def test_arpa_gzip_and_non_utf8_are_refused(tmp_path: Path) -> None:
    model = estimate(NgramCounts(2).update(TEXT), "witten_bell")
    arpa = tmp_path / "m.arpa"
    model.write_arpa(arpa)
    compressed = tmp_path / "m.arpa.gz"
    compressed.write_bytes(gzip.compress(arpa.read_bytes()))
    with pytest.raises(ValueError, match=r"m\.arpa\.gz:1: this is a gzip"):
        load_arpa(compressed)
    latin = tmp_path / "latin.arpa"
    latin.write_bytes(arpa.read_bytes().replace(b"cat", b"c\xe9t"))
    with pytest.raises(ValueError, match=r"latin\.arpa:\d+: the word .* is not UTF-8"):
        load_arpa(latin)


WRITER = textwrap.dedent(
    """
    import sys
    from rnnkit.ngram import NgramCounts, estimate
    text = "".join(f"w{i} w{i * 7 % 101} w{i * 13 % 97} w{i % 89}\\n" for i in range(60000))
    model = estimate(NgramCounts(4).update(text), "witten_bell")
    print("ready", flush=True)
    while True:
        model.save(sys.argv[1])
    """
)


def test_a_killed_writer_never_leaves_a_corrupt_model(tmp_path: Path) -> None:
    target = tmp_path / "m.bin"
    estimate(NgramCounts(2).update("old model\n"), "witten_bell").save(target)
    rng = np.random.default_rng(2)
    for _ in range(8):
        with subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
        ) as proc:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(float(rng.uniform(0.0, 0.3)))  # inside a save, or between two
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        NgramModel.load(target)  # the old model or a whole new one: never a partial file
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "m.bin"]
    assert all(name.endswith(".tmp") for name in leftovers)  # a killed writer's temporary


def test_paths_that_name_no_file_are_told_apart(tmp_path: Path) -> None:
    """A directory, an empty path or one with a NUL character: said as such by every loader
    and saver (a directory was "no model file at ...", a NUL "no model file", and saving to
    "" an OS error about renaming onto ".")."""
    from rnnkit.lm import RNNLanguageModel
    from rnnkit.lm import load_model as load_lm
    from rnnkit.ngram import NgramCounts, NgramModel, estimate, load_arpa, load_model

    model = estimate(NgramCounts(2).update(["a b", "b a"]), "witten_bell")
    lm = RNNLanguageModel(5, 2, 2, 1)
    for load in (NgramModel.load, load_arpa, load_model, load_lm):
        with pytest.raises(IsADirectoryError, match=f"^{tmp_path} is a directory, not the"):
            load(tmp_path)
        for bad in ("", str(tmp_path / "a\0b")):
            with pytest.raises(ValueError, match="must be a non-empty path without NUL"):
                load(bad)
        with pytest.raises(FileNotFoundError, match=r"^no (model|ARPA) file at"):
            load(tmp_path / "missing")
    for save in (model.save, model.write_arpa, lm.save, NgramCounts(2).save):
        with pytest.raises(IsADirectoryError, match="is a directory; give the path of a file"):
            save(tmp_path)
        with pytest.raises(ValueError, match="must be a non-empty path without NUL"):
            save("")
