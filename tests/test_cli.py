"""The ``rnnkit`` command line: ``ngram build`` writes an ARPA file that kenlm reads with the
same scores, ``ngram query`` prints KenLM-style totals and perplexities; errors exit 1."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from kenlm_peer import kenlm, needs_kenlm
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


@needs_kenlm
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


def binary_stdin(data: bytes) -> io.TextIOWrapper:
    """A standard input whose bytes are `data` (decoded as Python decodes a terminal's)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape")


@pytest.mark.parametrize("in_memory", [[], ["--in-memory"]])
def test_one_file_for_two_arguments_is_refused(
    in_memory: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "s.txt"
    corpus.write_text(TEXT)
    same = tmp_path / "same"
    argv = ["ngram", "build", "-o", "2", "--text", str(corpus), *in_memory]
    assert main([*argv, "--arpa", str(same), "--binary", f"{tmp_path}/./same"]) == 1
    assert "--arpa and --binary must be different files" in capsys.readouterr().err
    assert main([*argv, "--arpa", str(corpus)]) == 1
    assert "--text and --arpa must be different files" in capsys.readouterr().err
    assert not same.exists() and corpus.read_text() == TEXT


@pytest.mark.parametrize("in_memory", [[], ["--in-memory"]])
@pytest.mark.parametrize("from_file", [True, False])
def test_text_that_is_not_utf8_is_one_line_error(
    in_memory: list[str],
    from_file: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = b"the cat\n" * 3 + b"a \xff b\n"
    argv = ["ngram", "build", "-o", "3", "--arpa", str(tmp_path / "x.arpa"), *in_memory]
    if from_file:
        (tmp_path / "t.txt").write_bytes(data)
        argv += ["--text", str(tmp_path / "t.txt")]
    monkeypatch.setattr(sys, "stdin", binary_stdin(data))
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: the text is not valid UTF-8: line 4 ")
    assert err.count("\n") == 1 and not (tmp_path / "x.arpa").exists()


def test_in_memory_build_numbers_lines_across_pieces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rnnkit.cli._COUNT_PIECE", 16)
    (tmp_path / "t.txt").write_bytes(b"the cat sat\n" * 10 + b"ok \xc3\n")
    argv = ["ngram", "build", "-o", "2", "--in-memory", "--text", str(tmp_path / "t.txt")]
    assert main([*argv, "--arpa", str(tmp_path / "x.arpa")]) == 1
    assert "not valid UTF-8: line 11 has the byte 0xc3" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["query", "score"])
def test_stdin_that_is_not_utf8_is_one_line_error(
    command: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "s.txt").write_text(TEXT)
    arpa = str(tmp_path / "m.arpa")
    assert (
        main(["ngram", "build", "-o", "2", "--text", str(tmp_path / "s.txt"), "--arpa", arpa]) == 0
    )
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", binary_stdin(b"the cat\nthe \xff cat\n"))
    argv = ["ngram", "query", arpa] if command == "query" else ["lm", "score", arpa]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == "rnnkit: error: standard input is not valid UTF-8: line 2, column 5\n"


@pytest.mark.parametrize("space", ["\u00a0", "\u3000", "\u2028", "\x1c", "\x1f", "\x85"])
@pytest.mark.parametrize("in_memory", [[], ["--in-memory"]])
def test_unicode_whitespace_is_part_of_a_word_in_every_command(
    space: str,
    in_memory: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    word = f"a{space}b"
    text = f"x {word} c\nx c\n{word} c x\n"
    (tmp_path / "t.txt").write_text(text)
    arpa = str(tmp_path / "m.arpa")
    argv = ["ngram", "build", "-o", "2", "--text", str(tmp_path / "t.txt"), "--arpa", arpa]
    assert main([*argv, *in_memory]) == 0
    model = load_arpa(arpa)
    query = f"x {word} c\n"
    monkeypatch.setattr(sys, "stdin", binary_stdin(query.encode()))
    out = io.StringIO()
    assert main(["ngram", "query", arpa], out) == 0
    total = out.getvalue().splitlines()[0]
    assert total == f"Total: {model.score(query):.6g} OOV: 0"
    monkeypatch.setattr(sys, "stdin", binary_stdin(query.encode()))
    out = io.StringIO()
    assert main(["lm", "score", arpa], out) == 0
    assert out.getvalue() == f"{model.score(query):.6g}\t{query}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        # (it said "min_counts must have one value per order (2), got 5": a value not typed)
        (["-o", "2", "--prune", "1", "2", "3", "4"], "at most one value per order from 2 to 2"),
        (["-o", "1", "--prune", "2"], "-o 1 has none to prune"),
        (["-o", "3", "--prune", "-1"], "--prune values must be >= 0, got -1"),
        (["-o", "3", "--prune", "3", "2"], "got 2 for order 3 after 3 for order 2"),
        (["-o", "2", "--method", "add_k", "--k", "0"], "--k must be a finite number > 0"),
        (["-o", "2", "--method", "stupid_backoff", "--alpha", "2"], "--alpha must be in (0, 1]"),
    ],
)
def test_build_option_errors_name_the_options(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t.txt").write_text(TEXT)
    argv = ["ngram", "build", "--text", str(tmp_path / "t.txt"), "--arpa", str(tmp_path / "m")]
    assert main([*argv, *options], io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnkit: error: --") and message in err and "min_counts" not in err
    if options[-1] == "4":
        assert "(1 value), got 4: 1 2 3 4" in err
    assert not (tmp_path / "m").exists()


def test_build_prune_counts_the_values_typed(tmp_path: Path) -> None:
    """--prune 0 keeps everything (it read as a decrease after the unigrams' 1); values
    repeat for the higher orders."""
    (tmp_path / "t.txt").write_text(TEXT)
    sizes = {}
    for prune in (["0"], ["1"], ["2"], ["2", "2"], ["1", "2"]):
        arpa = tmp_path / f"m{'_'.join(prune)}.arpa"
        argv = ["ngram", "build", "-o", "3", "--text", str(tmp_path / "t.txt")]
        assert main([*argv, "--arpa", str(arpa), "--prune", *prune], io.StringIO()) == 0
        sizes[tuple(prune)] = [load_arpa(arpa).size(n) for n in (1, 2, 3)]
    assert sizes[("0",)] == sizes[("1",)]
    assert sizes[("2",)] == sizes[("2", "2")] and sizes[("2",)][1] < sizes[("1",)][1]
    assert sizes[("1", "2")][1] == sizes[("1",)][1] and sizes[("1", "2")][2] < sizes[("1",)][2]


def test_query_sums_sentences_as_kenlm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each sentence's score is model.score's (its tokens summed in float32, in order: KenLM's
    sentence score), and the total is the float64 sum of those (it summed every token in
    float64, a different number in the last digits)."""
    import random

    from rnnkit.cli import _sentence_score
    from rnnkit.ngram import _model as ngram_model
    from rnnkit.ngram import _split_words

    rng = random.Random(0)
    words = [f"w{i}" for i in range(40)]
    text = "".join(
        " ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) + "\n" for _ in range(300)
    )
    (tmp_path / "t.txt").write_text(text)
    arpa = tmp_path / "m.arpa"
    argv = ["ngram", "build", "-o", "3", "--text", str(tmp_path / "t.txt"), "--arpa", str(arpa)]
    assert main(argv, io.StringIO()) == 0
    model = load_arpa(arpa)
    queries = [
        " ".join(rng.choice([*words, "zz"]) for _ in range(rng.randint(1, 40))) for _ in range(200)
    ]
    float64_sums = 0
    for q in queries:
        probs = [p for p, _, _ in model.full_scores(_split_words(q))]
        assert _sentence_score(probs) == model.score(q)
        float64_sums += float(sum(probs)) != model.score(q)
    assert float64_sums > 100  # (the test can tell the two sums apart)
    exponents: list[float] = []
    real_pow10 = ngram_model.pow10
    monkeypatch.setattr(ngram_model, "pow10", lambda x: exponents.append(x) or real_pow10(x))
    monkeypatch.setattr(sys, "stdin", binary_stdin("".join(q + "\n" for q in queries).encode()))
    out = io.StringIO()
    assert main(["ngram", "query", str(arpa)], out) == 0
    lines = out.getvalue().splitlines()
    tokens = sum(len(q.split()) + 1 for q in queries)
    total = 0.0
    for q, line in zip(queries, lines, strict=False):
        assert line.startswith(f"Total: {model.score(q):.6g} ")
        total += model.score(q)
    assert exponents[0] == -total / tokens
    # ... and the perplexity excluding OOVs as NgramModel.evaluate (and KenLM) computes it
    result = model.evaluate(queries)
    assert result.oovs > 0
    assert real_pow10(exponents[1]) == pytest.approx(result.perplexity_without_oovs, rel=1e-12)


@pytest.mark.parametrize("in_memory", [[], ["--in-memory"]])
def test_build_checks_its_files_before_counting(
    in_memory: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every file argument is checked, naming its option, before the text is read: the
    in-memory way found an output it could not write only once the model was made, and then
    named no option ("path ... cannot be written")."""
    corpus = tmp_path / "t.txt"
    corpus.write_text(TEXT)
    argv = ["ngram", "build", "-o", "3", *in_memory]
    cases = [
        (["--text", str(corpus), "--arpa", str(tmp_path / "no" / "m.arpa")], "--arpa '"),
        (["--text", str(corpus), "--binary", str(tmp_path)], "--binary '"),
        (["--text", str(tmp_path / "missing.txt"), "--arpa", str(tmp_path / "m")], "--text: no"),
        (["--text", str(tmp_path), "--arpa", str(tmp_path / "m")], f"--text {tmp_path} is a dir"),
        (["--text", "", "--arpa", str(tmp_path / "m")], "--text must be a non-empty path"),
        (["--text", str(corpus), "--arpa", str(tmp_path / "m"), "-o", "65"], "--order must be <="),
    ]
    if not in_memory:  # (the in-memory way makes no temporary files)
        missing = str(tmp_path / "missing")
        cases.append(
            (
                ["--text", str(corpus), "--arpa", str(tmp_path / "m"), "--temp-dir", missing],
                "--temp-dir must be an existing directory",
            )
        )
    for arguments, message in cases:
        assert main([*argv, *arguments], io.StringIO()) == 1, arguments
        err = capsys.readouterr().err
        assert err.startswith(f"rnnkit: error: {message}"), err  # (nothing counted: no warning)
        assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


@pytest.mark.parametrize("in_memory", [[], ["--in-memory"]])
def test_build_from_stdin_is_build_from_the_file(
    in_memory: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --text standard input's bytes are the text: CRLF, a lone CR (whitespace),
    empty lines and no final newline as NgramCounts.update takes them."""
    from rnnkit.ngram import NgramCounts, estimate

    data = TEXT.replace("sat on", "sat\ron").replace("\n", "\r\n", 3).encode() + b"\n\nthe end"
    (tmp_path / "t.txt").write_bytes(data)
    with pytest.warns(RuntimeWarning):
        estimate(NgramCounts(4).update(data)).save(tmp_path / "expected.bin")
    argv = ["ngram", "build", "-o", "4", *in_memory, "--binary"]
    assert main([*argv, str(tmp_path / "file.bin"), "--text", str(tmp_path / "t.txt")]) == 0
    monkeypatch.setattr(sys, "stdin", binary_stdin(data))
    assert main([*argv, str(tmp_path / "stdin.bin")]) == 0
    expected = (tmp_path / "expected.bin").read_bytes()
    assert (tmp_path / "file.bin").read_bytes() == expected
    assert (tmp_path / "stdin.bin").read_bytes() == expected
