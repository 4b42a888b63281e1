"""The ``rnnkit`` command line: ``ngram build`` writes an ARPA file that kenlm reads with the
same scores, ``ngram query`` prints KenLM-style totals and perplexities; errors exit 1."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import kenlm
import pytest
from rnnkit.cli import main
from rnnkit.ngram import load_arpa

TEXT = (
    "".join(
        f"the {a} {b} sat on the mat\n"
        for a in ("cat", "dog", "fox", "cow")
        for b in ("big", "small")
    )
    + "a cat ran\nthe dog ran away\n"
)


def test_build_then_query(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    arpa = tmp_path / "model.arpa"
    out = io.StringIO()
    assert main(["ngram", "build", "-o", "3", "--text", str(corpus), "--arpa", str(arpa)], out) == 0
    assert "n-grams 1:" in out.getvalue() and arpa.exists()
    k = kenlm.Model(str(arpa))
    model = load_arpa(arpa)
    queries = ["the cat sat on the mat", "a dog ran", "zebra"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(q + "\n" for q in queries)))
    out = io.StringIO()
    assert main(["ngram", "query", str(arpa), "--words"], out) == 0
    lines = out.getvalue().splitlines()
    for q, line in zip(queries, lines, strict=False):
        total = float(line.split("Total: ")[1].split()[0])
        assert total == pytest.approx(k.score(q), abs=1e-5)
        assert total == pytest.approx(model.score(q), abs=1e-5)
    assert lines[2].endswith("OOV: 1")
    assert lines[-1] == "Tokens:\t13" and lines[-2] == "OOVs:\t1"
    assert lines[-4].startswith("Perplexity including OOVs:\t")


def test_build_from_stdin_and_module_entry_point(tmp_path: Path) -> None:
    arpa = tmp_path / "m.arpa"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "rnnkit", "ngram", "build", "-o", "2"),
            *("--method", "stupid_backoff", "--alpha", "0.3", "--arpa", str(arpa)),
        ],
        input=TEXT,
        text=True,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert load_arpa(arpa).size(2) > 10


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ngram", "query", "/nonexistent/model.arpa"], "no model file at /nonexistent/model.arpa"),
        (["ngram", "build", "-o", "0", "--arpa", "x.arpa"], "--order must be >= 1, got 0"),
        (["ngram", "build", "-o", "2"], "give --arpa and/or --binary"),
        (
            ["ngram", "build", "-o", "2", "--text", "/dev/null", "--arpa", "x", "--k", "1"],
            "'mkn' takes no options, got k",
        ),
        (
            [
                *("ngram", "build", "-o", "2", "--text", "/dev/null", "--arpa", "x"),
                *("--method", "add_k", "--k", "-1"),
            ],
            "k must be a finite number > 0, got -1.0",
        ),
    ],
)
def test_errors_exit_1(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_binary_model_and_progress_bars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    arpa, binary = tmp_path / "m.arpa", tmp_path / "m.bin"
    argv = ["ngram", "build", "-o", "3", "--text", str(corpus), "--arpa", str(arpa)]
    assert main([*argv, "--binary", str(binary), "--progress"], io.StringIO()) == 0
    err = capsys.readouterr().err
    assert "count" in err and "estimate, write" in err  # tqdm's bars
    results = []
    for model in (arpa, binary):
        monkeypatch.setattr(sys, "stdin", io.StringIO("the cat sat\na zebra ran\n"))
        out = io.StringIO()
        assert main(["ngram", "query", str(model), "--no-progress"], out) == 0
        results.append(out.getvalue())
    assert results[0] == results[1]
    assert capsys.readouterr().err == ""  # --no-progress: no bar
    damaged = bytearray(binary.read_bytes())
    damaged[len(damaged) // 2] ^= 0x10
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(damaged))
    monkeypatch.setattr(sys, "stdin", io.StringIO("the cat\n"))
    assert main(["ngram", "query", str(bad)], io.StringIO()) == 1
    assert "checksum mismatch" in capsys.readouterr().err


def test_mkn_builds_in_bounded_memory_the_same_files(tmp_path: Path) -> None:
    """mkn without --prune takes rnnkit.ngram.build; --in-memory the counts and the model."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT * 3)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    argv = ["ngram", "build", "-o", "3", "--text", str(corpus)]
    out = io.StringIO()
    streamed = [*argv, "--binary", str(tmp_path / "s.bin"), "--arpa", str(tmp_path / "s.arpa")]
    assert main([*streamed, "--temp-dir", str(scratch)], out) == 0
    assert "(in bounded memory)" in out.getvalue()
    held = [*argv, "--binary", str(tmp_path / "m.bin"), "--arpa", str(tmp_path / "m.arpa")]
    out_held = io.StringIO()
    assert main([*held, "--in-memory"], out_held) == 0
    assert "(in bounded memory)" not in out_held.getvalue()
    assert out.getvalue().split(";")[0] == out_held.getvalue().split(";")[0]  # the n-grams
    for suffix in ("bin", "arpa"):
        assert (tmp_path / f"s.{suffix}").read_bytes() == (tmp_path / f"m.{suffix}").read_bytes()
    assert list(scratch.iterdir()) == []


def test_order_1_is_built_in_memory(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    argv = ["ngram", "build", "-o", "1", "--text", str(corpus), "--binary", str(tmp_path / "m")]
    out = io.StringIO()
    assert main(argv, out) == 0
    assert "n-grams 1:" in out.getvalue() and "(in bounded memory)" not in out.getvalue()
