"""The command line's language-model parts: ``rnnkit demo`` (the main job, on a small corpus
and a short budget here) and ``rnnkit lm train|eval|generate|score``; user mistakes exit 1
with a message, never a traceback."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rnnkit._demo import run_demo
from rnnkit.cli import main

TEXT = "".join(
    f"the {a} {b} sat on the {c}.\n"
    for a in ("cat", "dog", "fox")
    for b in ("big", "small", "old")
    for c in ("mat", "log", "rug")
)


def write_corpus(tmp_path: Path, text: str) -> Path:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text, encoding="utf-8")
    return corpus


def test_demo_runs_every_model_and_reports(tmp_path: Path) -> None:
    out = io.StringIO()
    results = run_demo(corpus=TEXT * 3, seconds=0.3, out=out, png=tmp_path / "curves.png")
    names = [r.name for r in results]
    assert names[0] == "5-gram modified Kneser-Ney" and len(names) == 5
    assert all(r.valid_ppl > 1 and r.tokens_per_s > 0 and r.bytes > 0 for r in results)
    report = out.getvalue()
    assert "| model | validation perplexity |" in report and "sample from the best" in report
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_demo_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = write_corpus(tmp_path, TEXT * 3)
    out = io.StringIO()
    assert main(["demo", "--corpus", str(corpus), "--seconds", "0.2", "--quiet"], out) == 0
    assert out.getvalue().startswith("| model |")
    (tmp_path / "tiny.txt").write_text("a\nb\n")
    assert main(["demo", "--corpus", str(tmp_path / "tiny.txt")], io.StringIO()) == 1
    assert "at least 20" in capsys.readouterr().err
    assert main(["demo", "--seconds", "0"], io.StringIO()) == 1
    assert main(["demo", "--corpus", str(tmp_path / "missing.txt")], io.StringIO()) == 1


@pytest.mark.parametrize("kind", ["rnn", "window"])
def test_lm_train_eval_generate_score(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_corpus(tmp_path, TEXT * 4)
    model = tmp_path / "lm.npz"
    out = io.StringIO()
    argv = ["lm", "train", "--text", str(corpus), "--model", str(model), "--kind", kind]
    argv += ["--hidden", "32", "--embed", "16", "--layers", "1", "--epochs", "10", "--lr", "0.01"]
    argv += ["--batch-size", "8", "--seq-len", "20"]
    assert main([*argv, "--no-progress"], out) == 0
    assert "validation perplexity" in out.getvalue() and model.exists()
    out = io.StringIO()
    quiet = [a if a != str(model) else str(tmp_path / "quiet.npz") for a in argv]
    assert main([*quiet, "--epochs", "1", "--quiet"], out) == 0
    assert out.getvalue().count("\n") == 1 and "saved to" in out.getvalue()
    out = io.StringIO()
    assert main(["lm", "eval", str(model), "--text", str(corpus)], out) == 0
    perplexity = float(out.getvalue().split("perplexity ")[1])
    assert 1 < perplexity < 4
    out = io.StringIO()
    assert main(["lm", "generate", str(model), "--prompt", "the ", "-n", "20"], out) == 0
    assert out.getvalue().startswith("the ")
    monkeypatch.setattr(sys, "stdin", io.StringIO("the cat sat on the mat.\ntac eht no tas.\n"))
    out = io.StringIO()
    assert main(["lm", "score", str(model)], out) == 0
    good, bad = (float(line.split("\t")[0]) for line in out.getvalue().splitlines())
    assert good > bad


def test_lm_score_with_an_ngram_model_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_corpus(tmp_path, TEXT)
    arpa = tmp_path / "m.arpa"
    assert (
        main(
            ["ngram", "build", "-o", "3", "--text", str(corpus), "--arpa", str(arpa)], io.StringIO()
        )
        == 0
    )
    monkeypatch.setattr(
        sys, "stdin", io.StringIO("the cat big sat on the mat.\nmat. the on big sat cat the\n")
    )
    out = io.StringIO()
    assert main(["lm", "score", str(arpa)], out) == 0
    good, bad = (float(line.split("\t")[0]) for line in out.getvalue().splitlines())
    assert good > bad
    assert main(["lm", "eval", str(tmp_path / "missing.npz")], io.StringIO()) == 1
    assert "no model file" in capsys.readouterr().err
    assert main(["lm", "eval", str(arpa)], io.StringIO()) == 1
    assert "not an rnnkit language model" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    argv = ["lm", "train", "--text", str(empty), "--model", str(tmp_path / "x.npz")]
    assert main(argv, io.StringIO()) == 1
    assert "empty" in capsys.readouterr().err


def _stdin_bytes(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_lm_user_mistakes_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_corpus(tmp_path, TEXT)
    model = tmp_path / "lm.npz"
    train = ["lm", "train", "--text", str(corpus), "--model", str(model), "--quiet"]
    small = ["--hidden", "8", "--embed", "4", "--layers", "1", "--seq-len", "8"]
    assert main([*train, *small], io.StringIO()) == 0
    for clip in ("-1", "nan", "inf"):
        assert main([*train, *small, "--clip", clip], io.StringIO()) == 1
        assert "--clip must be a finite number >= 0" in capsys.readouterr().err
    # sizes no machine holds: a one-line error, not a traceback
    assert main([*train, "--hidden", "100000000", "--layers", "1"], io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: out of memory") and "Traceback" not in err
    # standard input: nothing to evaluate; not UTF-8 (with the line)
    _stdin_bytes(monkeypatch, b"")
    assert main(["lm", "eval", str(model)], io.StringIO()) == 1
    assert "nothing to evaluate: standard input holds no tokens" in capsys.readouterr().err
    for command in ("eval", "score"):
        _stdin_bytes(monkeypatch, b"the cat\nthe \xff cat\n")
        assert main(["lm", command, str(model)], io.StringIO()) == 1
        assert "standard input is not valid UTF-8: line 2, column 5" in capsys.readouterr().err
    bad_text = tmp_path / "latin1.txt"
    bad_text.write_bytes(b"caf\xe9\n")
    assert main(["lm", "eval", str(model), "--text", str(bad_text)], io.StringIO()) == 1
    assert f"{bad_text} is not valid UTF-8: line 1, column 4" in capsys.readouterr().err
    # a file of another kind: said so, without numpy's advice to unpickle it
    arpa = tmp_path / "m.arpa"
    arpa.write_text("\\data\\\nngram 1=1\n")
    assert main(["lm", "generate", str(arpa)], io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "is not an rnnkit language model (an .npz archive)" in err and "pickle" not in err
    # universal newlines, as before: \r\n and \r end lines too
    _stdin_bytes(monkeypatch, b"the cat\r\nthe dog\rthe fox")
    out = io.StringIO()
    assert main(["lm", "score", str(model)], out) == 0
    assert [line.split("\t")[1] for line in out.getvalue().splitlines()] == [
        "the cat",
        "the dog",
        "the fox",
    ]


@pytest.mark.parametrize("options_first", [False, True], ids=["part-first", "options-first"])
def test_bench_command_runs_the_kernel_benchmark(
    capsys: pytest.CaptureFixture[str], options_first: bool
) -> None:
    options = ["--quick", "--shapes", "4,2,3,3", "--cells", "gru", "--no-ort"]
    # (options first, as in the README's "rnnkit bench --markdown BENCH.md --png bench.png")
    argv = ["bench", *options, "cells"] if options_first else ["bench", "cells", *options]
    assert main(argv, io.StringIO()) == 0
    printed = capsys.readouterr().out
    assert "GRU" in printed and "fwd vs best peer" in printed


def test_torch_comparison_runs_in_float64(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """bench/compare_torch.py --dtype float64: both libraries in float64, agreeing to float64
    tolerances before anything is timed (the script exits on a disagreement)."""
    import runpy

    script = Path(__file__).resolve().parents[1] / "bench" / "compare_torch.py"
    compare = runpy.run_path(str(script))
    table = tmp_path / "f64.md"
    argv = ["--quick", "--shapes", "6,3,5,4", "--cells", "lstm,gru", "--dtype", "float64"]
    assert compare["main"]([*argv, "--markdown", str(table)]) == 0
    printed = capsys.readouterr().out
    assert "dtype: float64" in printed and "outputs and gradients agree" in printed
    assert table.read_text().startswith("# rnnkit vs torch.nn (CPU, float64)")


def test_bench_help_lists_the_parts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"], io.StringIO())
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("usage: rnnkit bench ")
    assert "gru_reset" in printed and "--markdown" in printed
