"""The command line's language-model parts: ``rnnkit demo`` (the main job, on a small corpus
and a short budget here) and ``rnnkit lm train|eval|generate|score``; user mistakes exit 1
with a message, never a traceback."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rnnkit._demo import run_demo
from rnnkit.cli import main
from rnnkit.text import SPACE

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
    if importlib.util.find_spec("matplotlib") is None:  # the test extra has none on Python 3.10
        assert f"(matplotlib is not installed: no {tmp_path / 'curves.png'})" in report
    else:
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
    # the library's sentence rule (and rnnkit ngram's): \r\n ends a line, a lone \r is
    # whitespace inside one (the command line took it as a line end, the library did not)
    _stdin_bytes(monkeypatch, b"the cat\r\nthe dog\rthe fox")
    out = io.StringIO()
    assert main(["lm", "score", str(model)], out) == 0
    printed = out.getvalue().split("\n")
    assert [line.split("\t")[1] for line in printed[:-1]] == ["the cat", "the dog\rthe fox"]
    from rnnkit.lm import load_model

    expected = load_model(model).score(["the dog the fox"])[0][0]
    assert float(printed[1].split("\t")[0]) == pytest.approx(expected, rel=1e-5)


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


def _small_model(tmp_path: Path, text: str = TEXT) -> tuple[Path, Path]:
    corpus = write_corpus(tmp_path, text)
    model = tmp_path / "lm.npz"
    argv = ["lm", "train", "--text", str(corpus), "--model", str(model), "--quiet"]
    argv += ["--hidden", "8", "--embed", "4", "--layers", "1", "--seq-len", "8"]
    assert main(argv, io.StringIO()) == 0
    return corpus, model


def test_lm_eval_reports_inf_and_nan_perplexities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A diverged model's perplexity is inf, as evaluate gives it (math.exp raised
    OverflowError: a traceback); a NaN model's is nan (it read as inf)."""
    from rnnkit.lm import load_model

    corpus, path = _small_model(tmp_path)
    model = load_model(path)
    model.decoder.params["bias"][3:] = -1e30  # (every token but the specials: impossible)
    model.save(path)
    out = io.StringIO()
    assert main(["lm", "eval", str(path), "--text", str(corpus)], out) == 0
    assert out.getvalue().endswith("\tperplexity inf\n") and capsys.readouterr().err == ""
    model.decoder.params["bias"][...] = np.nan
    model.save(path)
    out = io.StringIO()
    assert main(["lm", "eval", str(path), "--text", str(corpus)], out) == 0
    assert out.getvalue().endswith("\tperplexity nan\n")


def test_lm_train_never_overwrites_its_texts_and_checks_the_output_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_corpus(tmp_path, TEXT)
    valid = tmp_path / "valid.txt"
    valid.write_text(TEXT[:200])
    link = tmp_path / "link.txt"
    link.symlink_to(corpus)
    small = ["--hidden", "8", "--embed", "4", "--layers", "1", "--seq-len", "8", "--quiet"]
    for model, named in ((corpus, "--text"), (link, "--text"), (valid, "--valid")):
        argv = ["lm", "train", "--text", str(corpus), "--valid", str(valid), "--model", str(model)]
        assert main([*argv, *small], io.StringIO()) == 1
        assert f"{named} and --model must be different files" in capsys.readouterr().err
    assert corpus.read_text() == TEXT and valid.read_text() == TEXT[:200]
    # --valid may be the training text itself
    argv = ["lm", "train", "--text", str(corpus), "--valid", str(corpus)]
    assert main([*argv, "--model", str(tmp_path / "m.npz"), *small], io.StringIO()) == 0
    # a missing directory: said before training, with the path given (not a temporary file)
    out = io.StringIO()
    missing = tmp_path / "nodir" / "m.npz"
    argv = ["lm", "train", "--text", str(corpus), "--model", str(missing), "--epochs", "50"]
    assert main([*argv, *small[:-1]], out) == 1
    err = capsys.readouterr().err
    assert err == f"rnnkit: error: --model '{missing}' cannot be written: no directory " + (
        f"'{missing.parent}'\n"
    )
    assert out.getvalue() == "" and ".tmp" not in err
    argv = ["lm", "train", "--text", str(corpus), "--model", str(tmp_path)]
    assert main([*argv, *small], io.StringIO()) == 1
    assert "--model" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--valid-fraction", "1.5"], "--valid-fraction must be a finite number >= 0 and < 1"),
        (["--valid-fraction", "nan"], "--valid-fraction must be a finite number"),
        (["--epochs", "0"], "--epochs must be >= 1, got 0"),
        (["--max-seconds", "-1"], "--max-seconds must be a finite number > 0, got -1.0"),
        (["--max-seconds", "inf"], "--max-seconds must be a finite number > 0"),
        (["--hidden", "99999999999999999999"], "--hidden must be in [1, 2147483647], got 9999"),
        (["--embed", "0"], "--embed must be in [1, 2147483647], got 0"),
        (["--batch-size", "0"], "--batch-size must be in [1, 2147483647]"),
        (["--seq-len", "-3"], "--seq-len must be in [1, 2147483647]"),
        (["--lr", "0"], "--lr must be a finite number > 0"),
        (["--dropout", "1"], "--dropout must be a finite number >= 0 and < 1"),
        (["--seed", "-1"], "--seed must be >= 0, got -1"),
        (["--min-count", "0"], "--min-count must be >= 1"),
        (["--min-count", "1000"], "no token of the training text is seen --min-count 1000 times"),
        (["--tie", "--hidden", "8"], "--tie needs --embed == --hidden"),
        (["--kind", "window", "--context", "0"], "--context must be in [1, 2147483647]"),
        # the training text has 4 lines: 0.9 of them, rounded, is every line
        (["--valid-fraction", "0.9"], "--valid-fraction 0.9 left no training text"),
        (["--batch-size", "1000"], "--batch-size must be <= 33 for the training text's 34"),
        (
            ["--batching", "random", "--seq-len", "1000"],
            "--seq-len must be <= 33 for the training text's 34 tokens with --batching random",
        ),
        (["--layers", "2000000000"], "out of memory: a model with --embed 4, --hidden 4, --lay"),
    ],
)
def test_lm_train_option_errors_name_the_options(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The options' names, not the Python parameters' (valid, epochs, max_seconds, ...);
    "Maximum allowed dimension exceeded" for --hidden; no training over a billion layers."""
    corpus = write_corpus(tmp_path, "the cat sat\nthe dog ran\na cat ran\nthe mat was red\n")
    model = tmp_path / "m.npz"
    argv = ["lm", "train", "--text", str(corpus), "--model", str(model), "--quiet"]
    argv += ["--embed", "4", "--hidden", "4", "--layers", "1", "--batch-size", "2"]
    argv += ["--seq-len", "4", "--valid-fraction", "0.25"]
    assert main([*argv, *options], io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: ") and message in err, err
    assert err.count("\n") == 1 and not model.exists()


def test_lm_train_splits_lines_at_newlines_only(tmp_path: Path) -> None:
    """--valid-fraction counts the lines as the tokenizers read them: str.splitlines made
    "a\\x0cb" two lines, and 0.25 of 6 lines held out "e" and "f" instead of "f" alone."""
    from rnnkit.lm import load_model

    corpus = write_corpus(tmp_path, "a\x0cb\nc\u2028d\ne\nf\n")
    model = tmp_path / "m.npz"
    argv = ["lm", "train", "--text", str(corpus), "--model", str(model), "--epochs", "1"]
    argv += ["--embed", "4", "--hidden", "4", "--layers", "1", "--batch-size", "2"]
    argv += ["--seq-len", "4", "--valid-fraction", "0.25", "--no-progress"]
    assert main(argv, io.StringIO()) == 0
    vocabulary = load_model(model).vocabulary
    assert vocabulary is not None
    assert sorted(vocabulary.words[3:]) == sorted(["a", "b", "c", "d", "e", SPACE])


def test_lm_score_lines_are_the_models_sentences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule for a sentence in both branches of lm score: a line split at "\\n" only (the
    neural branch gave "a\\x0cb" an extra </s> mid-line, the n-gram branch did not)."""
    from rnnkit.lm import load_model
    from rnnkit.ngram import load_arpa

    corpus, path = _small_model(tmp_path)
    arpa = tmp_path / "m.arpa"
    argv = ["ngram", "build", "-o", "2", "--text", str(corpus), "--arpa", str(arpa)]
    assert main(argv, io.StringIO()) == 0
    lines = ["the cat\x0csat on", "the\x1cdog", "a\u2028b", "the mat."]
    model, ngram = load_model(path), load_arpa(arpa)
    for file, scores in ((path, [s for s, _ in model.score(lines)]), (arpa, lines)):
        _stdin_bytes(monkeypatch, "".join(line + "\n" for line in lines).encode())
        out = io.StringIO()
        assert main(["lm", "score", str(file)], out) == 0
        printed = out.getvalue().split("\n")
        assert len(printed) == len(lines) + 1 and printed[-1] == ""
        for line, score, row in zip(lines, scores, printed, strict=False):
            want = score if file == path else ngram.score(line)
            assert row == f"{want:.6g}\t{line}"
    # \x0c is a space inside the line, for both: one sentence, the same as with " "
    ((neural, tokens),) = model.score(["the cat\x0csat on"])
    assert neural == model.score(["the cat sat on"])[0][0] and (tokens < 0).all()
    assert ngram.score("the cat\x0csat on") == ngram.score("the cat sat on")
    _stdin_bytes(monkeypatch, b"the cat\x0csat on\n")
    out = io.StringIO()
    assert main(["lm", "score", str(path)], out) == 0
    assert out.getvalue() == f"{neural:.6g}\tthe cat\x0csat on\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-n", "-1"], "-n must be >= 0, got -1"),
        (["--temperature", "-1"], "--temperature must be a finite number >= 0"),
        (["--temperature", "nan"], "--temperature must be a finite number >= 0"),
        (["--top-k", "0"], "--top-k must be in [1, "),
        (["--top-k", "1000"], "(the model's vocabulary size), got 1000"),
        (["--seed", "-2"], "--seed must be >= 0, got -2"),
    ],
)
def test_lm_generate_option_errors_name_the_options(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = _small_model(tmp_path)
    assert main(["lm", "generate", str(path), *options], io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: ") and message in err, err


@pytest.mark.parametrize("kind", ["rnn", "window"])
def test_the_memory_check_counts_the_models_parameters(kind: str) -> None:
    """The size check before any array is made counts exactly the parameters the model has
    (with their gradients, in float32)."""
    import argparse

    from rnnkit.cli import _parameter_bytes
    from rnnkit.lm import RNNLanguageModel, WindowLanguageModel

    for cell in ("lstm", "gru", "rnn"):
        for tie, layers in ((False, 1), (False, 3), (True, 2)):
            args = argparse.Namespace(
                kind=kind, embed=6, hidden=6 if tie else 7, layers=layers, cell=cell, tie=tie
            )
            args.context = 3
            if kind == "rnn":
                m: Any = RNNLanguageModel(11, 6, args.hidden, layers, cell, 0.0, tie)
            else:
                m = WindowLanguageModel(11, 3, 6, args.hidden)
            assert _parameter_bytes(args, 11) == 2 * 4 * m.num_parameters()
