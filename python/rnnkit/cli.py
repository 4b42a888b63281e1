"""The ``rnnkit`` command line.

``rnnkit demo [--corpus FILE] [--seconds S] [--png PATH]``
    The main job: character-level language models of Python's own documentation (or FILE),
    a 5-gram modified Kneser-Ney model, a window neural model, RNN, GRU and LSTM models, each
    trained for S seconds; a table of validation perplexity, speed and size, and a sample.
``rnnkit bench [PART ...] [options]``
    The kernels' side-by-side benchmark against torch.nn and ONNX Runtime (the bench extra),
    its tables printed (and written with ``--markdown``/``--png``).
``rnnkit lm train --text FILE --model OUT.npz [options]``, ``rnnkit lm eval MODEL``,
``rnnkit lm generate MODEL``, ``rnnkit lm score MODEL``
    Neural language models from the command line (``score`` also takes n-gram models).

``rnnkit ngram build -o N [--text FILE] [--arpa OUT] [--binary OUT] [--method M] [--prune MIN ...]``
    Counts the text (a file, or standard input when no ``--text``; one sentence per line) and
    writes a model (by default modified Kneser-Ney, lmplz's estimate) as an ARPA file and/or
    in rnnkit's binary format (which loads in about the time the file takes to read).
    ``--prune`` drops the n-grams of orders 2, 3, ... seen fewer than MIN times *before*
    estimating (lmplz's ``--prune`` estimates first and prunes after: not the same model).
``rnnkit ngram query MODEL [--words]``
    Scores standard input, one sentence per line, like KenLM's ``query``: per sentence its
    log10 probability and number of unknown words (per word too with ``--words``), then the
    perplexity including and excluding unknown words. MODEL is an ARPA or binary file.

Progress bars (tqdm, ``pip install "rnnkit[progress]"``) go to standard error when it is a
terminal; ``--progress``/``--no-progress`` force them on or off.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ._checks import MAX_KERNEL_SIZE

# Text is counted in pieces of about this many bytes (whole lines), one progress step each.
_COUNT_PIECE = 32 << 20


@contextmanager
def _bar(enabled: bool, **options: Any) -> Iterator[Any]:
    """A tqdm bar on standard error, or None when disabled or tqdm is not installed."""
    bar = None
    if enabled:
        try:
            from tqdm import tqdm  # type: ignore[import-untyped]
        except ImportError:
            bar = None
        else:
            bar = tqdm(file=sys.stderr, **options)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def _pieces(text: bytes) -> Iterator[bytes]:
    """``text`` in pieces of about _COUNT_PIECE bytes that end at line ends."""
    start = 0
    while start < len(text):
        end = text.find(b"\n", min(start + _COUNT_PIECE, len(text)) - 1)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _stdin_lines() -> Iterator[str]:
    """The lines of standard input, decoded as UTF-8 strictly: a ValueError names the first
    line that is not (a text stream would let invalid bytes through as lone surrogates)."""
    binary = getattr(sys.stdin, "buffer", None)
    lines: Iterable[bytes | str] = binary if binary is not None else sys.stdin
    for number, line in enumerate(lines, start=1):
        try:
            if isinstance(line, bytes):
                text = line.decode("utf-8")
            else:
                text = line
                text.encode("utf-8")  # (a replaced stdin's str lines: no lone surrogates)
        except (UnicodeDecodeError, UnicodeEncodeError) as error:
            raise _not_utf8("standard input", number, error.start + 1) from None
        yield text


def _not_utf8(name: str, line: int, column: int) -> ValueError:
    return ValueError(f"{name} is not valid UTF-8: line {line}, column {column}")


def _prune_values(prune: list[int], order: int) -> list[int]:
    """``--prune MIN ...`` (orders 2, 3, ..., the last value repeated up to ``order``) as the
    minimum counts of every order, with errors that name --prune and count the values the
    user typed (``NgramCounts.prune``'s would count the unigrams' value, which --prune has not).
    """
    if order < 2:
        raise ValueError(
            f"--prune sets the minimum counts of orders 2 and up: -o {order} has none to prune"
        )
    if len(prune) > order - 1:
        raise ValueError(
            f"--prune takes at most one value per order from 2 to {order} ({order - 1} "
            f"value{'s' if order > 2 else ''}), got {len(prune)}: {' '.join(map(str, prune))}"
        )
    for value in prune:
        if value < 0:
            raise ValueError(f"--prune values must be >= 0, got {value}")
    for i in range(1, len(prune)):
        if prune[i] < prune[i - 1]:
            # (NgramCounts.prune's rule, lmplz's too: a kept n-gram's suffix is kept)
            raise ValueError(
                "--prune values must not decrease from one order to the next, got "
                f"{prune[i]} for order {i + 2} after {prune[i - 1]} for order {i + 1}"
            )
    # Unigrams are kept: 1 drops none of them (0, the same, where the first value is 0: a 1
    # there would read as a decrease).
    return [min(1, prune[0]), *prune] + [prune[-1]] * (order - 1 - len(prune))


def _build(args: argparse.Namespace, out: TextIO) -> int:
    from .ngram import NgramCounts, estimate

    text = Path(args.text).read_bytes() if args.text is not None else sys.stdin.buffer.read()
    start = time.perf_counter()
    counts = NgramCounts(args.order)
    line = 1
    with _bar(args.progress, total=len(text), unit="B", unit_scale=True, desc="count") as bar:
        for piece in _pieces(text):
            counts._update(piece, first_line=line)  # (lines numbered across the pieces)
            line += piece.count(b"\n")
            if bar is not None:
                bar.update(len(piece))
    if args.prune:
        counts.prune(_prune_values(args.prune, args.order))
    counted = time.perf_counter()
    outputs = [
        (path, kind) for path, kind in ((args.arpa, "arpa"), (args.binary, "binary")) if path
    ]
    with _bar(args.progress, total=1 + len(outputs), unit="step", desc="estimate, write") as bar:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            options = {name: getattr(args, name) for name in ("k", "alpha")}
            model = estimate(
                counts, args.method, **{k: v for k, v in options.items() if v is not None}
            )
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
        del counts
        estimated = time.perf_counter()
        if bar is not None:
            bar.update()
        for path, kind in outputs:
            if kind == "arpa":
                model.write_arpa(path)
            else:
                model.save(path)
            if bar is not None:
                bar.update()
    written = time.perf_counter()
    sizes = " ".join(f"{n}:{model.size(n)}" for n in range(1, args.order + 1))
    targets = " and ".join(str(path) for path, _ in outputs)
    print(
        f"n-grams {sizes}; counted in {counted - start:.2f} s, estimated in "
        f"{estimated - counted:.2f} s, written in {written - estimated:.2f} s to {targets}",
        file=out,
    )
    return 0


def _build_streamed(args: argparse.Namespace, out: TextIO) -> int:
    from .ngram import build

    # One C++ call does it all: one step of a bar.
    with (
        _bar(args.progress, total=1, unit="step", desc="count, estimate, write") as bar,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", RuntimeWarning)
        text = Path(args.text) if args.text is not None else sys.stdin.buffer.read()
        built = build(text, args.order, binary=args.binary, arpa=args.arpa, temp_dir=args.temp_dir)
        if bar is not None:
            bar.update()
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    sizes = " ".join(f"{n}:{size}" for n, size in enumerate(built.sizes, start=1))
    targets = " and ".join(str(path) for path in (args.arpa, args.binary) if path)
    counted, estimated, written = built.seconds
    print(
        f"n-grams {sizes}; counted in {counted:.2f} s, estimated in {estimated:.2f} s, written "
        f"in {written:.2f} s to {targets} (in bounded memory)",
        file=out,
    )
    return 0


def _sentence_score(log10_probs: Iterable[float]) -> float:
    """A sentence's log10 probability from its tokens' as ``NgramModel.score`` (and KenLM)
    computes it: summed in float32, one token after the other in order (a float64 sum differs
    in the last digits)."""
    values = np.fromiter(log10_probs, dtype=np.float32)
    # (accumulate adds in order, one element after the other: np.sum would add pairwise)
    return float(np.add.accumulate(values)[-1]) if values.size else 0.0


def _query(args: argparse.Namespace, out: TextIO) -> int:
    from .ngram import _split_words, load_model
    from .ngram._model import pow10

    model = load_model(args.model)
    # As KenLM's query sums: the sentences' float32 scores in float64, and apart, the unknown
    # words' values (taken out of the total for the perplexity excluding them)
    total = oov_total = 0.0
    tokens = oovs = 0
    with _bar(args.progress, unit=" sentences", desc="query") as bar:
        for line in _stdin_lines():
            words = _split_words(line)  # (as the tokenizer splits: ASCII whitespace)
            scores = model.full_scores(words)
            sentence = _sentence_score([p for p, _, _ in scores])
            oov = sum(1 for _, _, is_oov in scores if is_oov)
            if args.words:
                parts = [
                    f"{w}={model.vocabulary.lookup(w)} {n} {p:.6g}"
                    for w, (p, n, _) in zip([*words, "</s>"], scores, strict=True)
                ]
                out.write("\t".join(parts) + "\t")
            out.write(f"Total: {sentence:.6g} OOV: {oov}\n")
            total += sentence
            oov_total += sum(p for p, _, is_oov in scores if is_oov)
            tokens += len(scores)
            oovs += oov
            if bar is not None:
                bar.update()
    if tokens:
        out.write(f"Perplexity including OOVs:\t{pow10(-total / tokens):.6g}\n")
        kept = tokens - oovs
        excluded = pow10(-(total - oov_total) / kept) if kept else math.nan
        out.write(f"Perplexity excluding OOVs:\t{excluded:.6g}\n")
    out.write(f"OOVs:\t{oovs}\nTokens:\t{tokens}\n")
    return 0


def _parser() -> argparse.ArgumentParser:

    parser = argparse.ArgumentParser(prog="rnnkit", description="rnnkit's command line")
    top = parser.add_subparsers(dest="group", required=True)
    ngram = top.add_parser("ngram", help="n-gram language models")
    commands = ngram.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="text -> n-gram model (ARPA and/or binary)")
    build.add_argument("-o", "--order", type=int, required=True, help="the model's order N")
    build.add_argument("--text", help="training text, one sentence per line (default: stdin)")
    build.add_argument("--arpa", help="where to write the ARPA file")
    build.add_argument("--binary", help="where to write the model in rnnkit's binary format")
    build.add_argument(
        "--method",
        default="mkn",
        choices=[
            "mkn",
            "kn",
            "absolute",
            "witten_bell",
            "mle",
            "add_k",
            "laplace",
            "stupid_backoff",
        ],
        help="the estimator (default mkn: lmplz's modified Kneser-Ney; see rnnkit.ngram.estimate)",
    )
    build.add_argument("--k", type=float, help="add_k's k (default 0.5)")
    build.add_argument("--alpha", type=float, help="stupid_backoff's alpha (default 0.4)")
    build.add_argument(
        "--prune",
        type=int,
        nargs="+",
        metavar="MIN",
        help="drop n-grams of orders 2, 3, ... seen fewer than MIN times before estimating "
        "(the last value repeats for higher orders)",
    )
    build.add_argument(
        "--in-memory",
        action="store_true",
        help="mkn without --prune is built in bounded memory through temporary files "
        "(rnnkit.ngram.build, the same files); this holds the counts and the model instead",
    )
    build.add_argument(
        "--temp-dir",
        help="where the bounded-memory build puts its temporary files (default: "
        "the output's directory)",
    )
    query = commands.add_parser("query", help="score stdin, one sentence per line")
    query.add_argument("model", help="an ARPA file or a binary model (rnnkit ngram build --binary)")
    query.add_argument("--words", action="store_true", help="also print every word's score")
    demo = top.add_parser("demo", help="the main job: language models of Python's documentation")
    demo.add_argument(
        "--corpus", help="a UTF-8 text file instead (one sentence or paragraph per line)"
    )
    demo.add_argument(
        "--seconds", type=float, default=30.0, help="training time per neural model (default 30)"
    )
    demo.add_argument("--png", help="write the training curves here (needs matplotlib)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="print the table and sample only")
    # (listed for --help only: main() hands everything after "bench" to the benchmark)
    top.add_parser(
        "bench",
        help="the kernels' side-by-side benchmark against torch.nn and ONNX Runtime "
        "(needs the bench extra; rnnkit bench --help for its options)",
        add_help=False,
    )
    lm = top.add_parser("lm", help="neural language models")
    lm_commands = lm.add_subparsers(dest="command", required=True)
    train = lm_commands.add_parser("train", help="train a model on a text and save it")
    train.add_argument("--text", help="training text, UTF-8 (default: stdin)")
    train.add_argument("--model", required=True, help="where to save the model (.npz)")
    train.add_argument("--valid", help="validation text (default: the last lines of --text)")
    train.add_argument("--valid-fraction", type=float, default=0.05)
    train.add_argument("--tokenizer", choices=["char", "word", "whitespace"], default="char")
    train.add_argument("--min-count", type=int, default=1, help="vocabulary cut-off")
    train.add_argument("--kind", choices=["rnn", "window"], default="rnn")
    train.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    train.add_argument("--embed", type=int, default=64)
    train.add_argument("--hidden", type=int, default=256)
    train.add_argument("--layers", type=int, default=2)
    train.add_argument("--context", type=int, default=8, help="window model: tokens of context")
    train.add_argument("--dropout", type=float, default=0.0)
    train.add_argument("--tie", action="store_true", help="tie embedding and decoder weights")
    train.add_argument("--epochs", type=int, default=1)
    train.add_argument("--lr", type=float, default=2e-3)
    train.add_argument("--optimizer", choices=["sgd", "adam"], default="adam")
    train.add_argument("--clip", type=float, default=1.0, help="gradient norm bound (0: none)")
    train.add_argument("--batching", choices=["sequential", "random"], default="sequential")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--seq-len", type=int, default=64)
    train.add_argument("--max-seconds", type=float, default=None)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quiet", action="store_true", help="print only where the model went")
    evaluate = lm_commands.add_parser("eval", help="perplexity of a text (stdin or --text)")
    evaluate.add_argument("model")
    evaluate.add_argument("--text")
    generate = lm_commands.add_parser("generate", help="sample text")
    generate.add_argument("model")
    generate.add_argument("--prompt", default="")
    generate.add_argument("-n", type=int, default=200, help="tokens to generate")
    generate.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    generate.add_argument("--top-k", type=int, default=None)
    generate.add_argument("--seed", type=int, default=0)
    score = lm_commands.add_parser("score", help="log10 probability of each line of stdin")
    score.add_argument("model", help="a neural model (.npz) or an n-gram model (ARPA or binary)")
    for command in (build, query, demo, train):
        command.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="progress bars on standard error (default: when it is a terminal; needs tqdm)",
        )
    return parser


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from ._demo import run_demo

    corpus = _read_text(args.corpus) if args.corpus else None
    if not args.seconds > 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")
    _check_int_option(args.seed, "--seed", 0)
    report: TextIO = io.StringIO() if args.quiet else out
    run_demo(
        corpus=corpus,
        seconds=args.seconds,
        seed=args.seed,
        png=Path(args.png) if args.png else None,
        out=report,
        progress=args.progress and not args.quiet,
    )
    if args.quiet:
        text = report.getvalue()  # type: ignore[attr-defined]
        out.write(text[text.index("| model |") :])
    return 0


def _read_text(path: str | None) -> str:
    r"""The file at ``path``, or standard input when None, as text (its line ends as they are:
    the tokenizers split sentences at ``"\n"``, dropping a ``"\r"`` before it, and take a
    lone ``"\r"`` as whitespace, as ``rnnkit ngram`` and the library do), with a ValueError
    naming the file and line where it is not UTF-8."""
    if path is None:
        if not hasattr(sys.stdin, "buffer"):  # (an io.StringIO in its place: already text)
            return sys.stdin.read()
        data, name = sys.stdin.buffer.read(), "standard input"
    else:
        data, name = Path(path).read_bytes(), path
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - data.rfind(b"\n", 0, error.start)
        raise _not_utf8(name, line, column) from None
    return text


def _tokenizer(name: str) -> Any:
    from .text import CharTokenizer, WhitespaceTokenizer, WordTokenizer

    return {"char": CharTokenizer, "word": WordTokenizer, "whitespace": WhitespaceTokenizer}[name]()


# The largest size option (--embed, --hidden, ...) is the kernels' (far past any machine's
# memory already; a larger one failed with NumPy's "Maximum allowed dimension exceeded",
# naming no option).


def _check_int_option(
    value: int, name: str, low: int, high: int | None = None, what: str | None = None
) -> int:
    """``value`` of the option ``name`` in [low, high], else a ValueError naming the option."""
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}{f' ({what})' if what else ''}, got {value}")
    return value


def _check_float_option(
    value: float, name: str, low: float, *, above: bool = False, below: float | None = None
) -> float:
    """``value`` of the option ``name``: finite and >= low (> low when ``above``; < below)."""
    if not (
        math.isfinite(value)
        and (value > low if above else value >= low)
        and (below is None or value < below)
    ):
        wanted = f"{'>' if above else '>='} {low:g}"
        if below is not None:
            wanted += f" and < {below:g}"
        raise ValueError(f"{name} must be a finite number {wanted}, got {value}")
    return value


def _check_train_options(args: argparse.Namespace) -> None:
    """Every value of ``rnnkit lm train``'s options, with messages naming the options (the
    Python API's would name its parameters: valid, max_seconds, ...)."""
    if not args.clip >= 0 or math.isinf(args.clip):  # (NaN fails the first test)
        raise ValueError(f"--clip must be a finite number >= 0 (0: no clipping), got {args.clip}")
    _check_float_option(args.valid_fraction, "--valid-fraction", 0.0, below=1.0)
    _check_int_option(args.min_count, "--min-count", 1)
    for name in ("embed", "hidden", "layers", "context", "batch_size", "seq_len"):
        option = "--" + name.replace("_", "-")
        _check_int_option(getattr(args, name), option, 1, MAX_KERNEL_SIZE)
    _check_float_option(args.dropout, "--dropout", 0.0, below=1.0)
    if args.tie and args.kind == "rnn" and args.embed != args.hidden:
        raise ValueError(
            f"--tie needs --embed == --hidden, got --embed {args.embed} and --hidden {args.hidden}"
        )
    _check_int_option(args.epochs, "--epochs", 1)
    _check_float_option(args.lr, "--lr", 0.0, above=True)
    if args.max_seconds is not None:
        _check_float_option(args.max_seconds, "--max-seconds", 0.0, above=True)
    _check_int_option(args.seed, "--seed", 0)


def _parameter_bytes(args: argparse.Namespace, vocab_size: int) -> int:
    """The bytes of the model's float32 parameters and their gradients (Python ints: no
    overflow), computed from the options before any array is made."""
    V, E, H = vocab_size, args.embed, args.hidden
    if args.kind == "window":
        count = V * E + args.context * E * H + H + H * V + V
    else:
        G = {"lstm": 4, "gru": 3, "rnn": 1}[args.cell]
        layer = G * H * (E + H) + 2 * G * H  # (w_ih, w_hh, b_ih, b_hh; then H inputs)
        count = V * E + (0 if args.tie else H * V) + V + layer
        count += (args.layers - 1) * (G * H * 2 * H + 2 * G * H)
    return 2 * 4 * count


def _check_memory(args: argparse.Namespace, vocab_size: int) -> None:
    """MemoryError, naming the size options, for a model whose weights and gradients alone
    exceed this machine's memory (NumPy would try layer after layer, or refuse a shape
    with an error that names no option)."""
    needed = _parameter_bytes(args, vocab_size)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # (not on every system)
        return
    if needed > memory:
        sizes = f"--embed {args.embed}, --hidden {args.hidden}, " + (
            f"--context {args.context}" if args.kind == "window" else f"--layers {args.layers}"
        )
        raise MemoryError(
            f"a model with {sizes} and {vocab_size} words needs {needed / 2**30:,.4g} GiB for "
            f"its weights and gradients, more than this machine's {memory / 2**30:,.4g} GiB"
        )


def _lm_train(args: argparse.Namespace, out: TextIO) -> int:
    from .data import split
    from .lm import RNNLanguageModel, WindowLanguageModel
    from .ngram._files import check_distinct_files, check_output_file
    from .text import _lines, build_vocabulary, encode

    _check_train_options(args)
    # Before training: the model file must not be an input (it would be lost), and it must be
    # writable where it goes (an error after the training would lose the training).
    for name in ("--text", "--valid"):
        if getattr(args, name[2:]):
            check_distinct_files({name: getattr(args, name[2:]), "--model": args.model})
    check_output_file(args.model, "--model")
    text = _read_text(args.text)
    tok = _tokenizer(args.tokenizer)
    held_out = ""
    if args.valid:
        train_text, valid_text = text, _read_text(args.valid)
    else:
        # (the lines as the tokenizers read them: split at "\n" only)
        lines = _lines(text)
        try:
            train_lines, valid_lines, _ = split(lines, valid=args.valid_fraction, test=0.0)
        except ValueError:  # (the options are valid: the fraction took every line)
            raise ValueError(
                f"--valid-fraction {args.valid_fraction:g} left no training text: it takes all "
                f"{len(lines)} lines of the text for validation (lower it, or give --valid)"
            ) from None
        train_text, valid_text = "\n".join(train_lines), "\n".join(valid_lines)
        if valid_lines:
            held_out = (
                f" (--valid-fraction {args.valid_fraction:g} took its last {len(valid_lines)} "
                "lines for validation)"
            )
    vocab = build_vocabulary(train_text, tok, min_count=args.min_count)
    if len(vocab) <= 3:
        if args.min_count > 1 and build_vocabulary(train_text, tok).words[3:]:
            raise ValueError(
                f"no token of the training text is seen --min-count {args.min_count} times"
            )
        raise ValueError(f"the training text is empty{held_out}")
    _check_memory(args, len(vocab))
    train_ids = encode(train_text, vocab, tok)
    valid_ids = encode(valid_text, vocab, tok) if valid_text.strip() else None
    n = int(train_ids.size)  # (>= 2: a token and </s>)
    if args.kind == "rnn" and args.batching == "sequential" and args.batch_size > n - 1:
        raise ValueError(
            f"--batch-size must be <= {n - 1} for the training text's {n} tokens (each of the "
            f"--batch-size streams needs 2 tokens at least), got {args.batch_size}"
        )
    if args.kind == "rnn" and args.batching == "random" and args.seq_len > n - 1:
        raise ValueError(
            f"--seq-len must be <= {n - 1} for the training text's {n} tokens with --batching "
            f"random (a window needs --seq-len + 1 tokens), got {args.seq_len}"
        )
    model: Any
    if args.kind == "window":
        model = WindowLanguageModel(
            len(vocab),
            args.context,
            args.embed,
            args.hidden,
            args.dropout,
            vocabulary=vocab,
            tokenizer=tok,
            seed=args.seed,
        )
    else:
        model = RNNLanguageModel(
            len(vocab),
            args.embed,
            args.hidden,
            args.layers,
            args.cell,
            args.dropout,
            args.tie,
            vocabulary=vocab,
            tokenizer=tok,
            seed=args.seed,
        )
    with _bar(args.progress, unit=" steps", desc="train") as bar:
        history = model.fit(
            train_ids,
            valid_ids,
            epochs=args.epochs,
            lr=args.lr,
            optimizer=args.optimizer,
            clip=args.clip or None,
            batching=args.batching,
            batch_size=args.batch_size,
            seq_len=args.seq_len,
            max_seconds=args.max_seconds,
            seed=args.seed,
            on_step=(lambda _: bar.update()) if bar is not None else None,
        )
    for r in [] if args.quiet else history:
        valid = f", validation perplexity {r['valid_ppl']:.4g}" if "valid_ppl" in r else ""
        out.write(
            f"epoch {r['epoch']}: training perplexity {r['train_ppl']:.4g}{valid}, "
            f"{r['tokens_per_s']:,.0f} tokens/s, lr {r['lr']:.4g}\n"
        )
    model.save(args.model)
    out.write(f"{model!r} ({model.num_parameters():,} parameters) saved to {args.model}\n")
    return 0


def _load_lm(path: str) -> Any:
    from .lm import load_model

    return load_model(path)


def _lm_eval(args: argparse.Namespace, out: TextIO) -> int:
    from .lm._base import _exp

    model = _load_lm(args.model)
    text = _read_text(args.text)
    logp = model.token_log_probs(text)
    if logp.size == 0:
        raise ValueError(f"nothing to evaluate: {args.text or 'standard input'} holds no tokens")
    # (evaluate's exp: inf for a diverged model, where math.exp raised OverflowError; NaN kept)
    out.write(f"tokens {logp.size}\tperplexity {_exp(-float(logp.mean())):.6g}\n")
    return 0


def _lm_generate(args: argparse.Namespace, out: TextIO) -> int:
    _check_int_option(args.n, "-n", 0)
    _check_float_option(args.temperature, "--temperature", 0.0)
    _check_int_option(args.seed, "--seed", 0)
    model = _load_lm(args.model)
    V = model.config["vocab_size"]
    if args.top_k is not None:
        _check_int_option(args.top_k, "--top-k", 1, V, "the model's vocabulary size")
    text = model.generate(
        args.prompt, args.n, temperature=args.temperature, top_k=args.top_k, seed=args.seed
    )
    out.write(text + "\n")
    return 0


def _lm_score(args: argparse.Namespace, out: TextIO) -> int:
    """log10 probability of each line of stdin, with the neural model or an n-gram model."""
    from .text import _lines

    with open(args.model, "rb") as f:
        head = f.read(8)
    # One sentence per line, split at "\n" only: the neural and the n-gram models' rule
    # (str.splitlines also splits at \x0c, \x1c, \u2028, ...).
    lines = _lines(_read_text(None))
    if head.startswith(b"PK"):  # an .npz: a neural model
        scores = [s for s, _ in _load_lm(args.model).score(lines)]
    else:
        from .ngram import load_model

        ngram = load_model(args.model)
        scores = [ngram.score(line) for line in lines]
    for score, line in zip(scores, lines, strict=True):
        out.write(f"{score:.6g}\t{line}\n")
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Runs the command line (``argv`` without the program name); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # Everything after "bench" is the benchmark's own (argparse's REMAINDER drops a first
        # argument that starts with "-", such as "rnnkit bench --markdown BENCH.md").
        from .bench.compare import main as bench_main

        return bench_main(argv[1:], prog="rnnkit bench")
    args = _parser().parse_args(argv)
    stream = out if out is not None else sys.stdout
    if getattr(args, "progress", None) is None:
        args.progress = sys.stderr.isatty()
    handlers = {
        ("lm", "train"): _lm_train,
        ("lm", "eval"): _lm_eval,
        ("lm", "generate"): _lm_generate,
        ("lm", "score"): _lm_score,
    }
    try:
        if args.group == "demo":
            return _demo(args, stream)
        if args.group == "lm":
            return handlers[("lm", args.command)](args, stream)
        if args.command == "build":
            if args.order < 1:
                raise ValueError(f"--order must be >= 1, got {args.order}")
            if args.prune:  # (checked before the text is read)
                _prune_values(args.prune, args.order)
            if args.k is not None:
                _check_float_option(args.k, "--k", 0.0, above=True)
            if args.alpha is not None and not 0 < args.alpha <= 1:
                raise ValueError(f"--alpha must be in (0, 1], got {args.alpha}")
            from .ngram import _MAX_ORDER

            if args.order > _MAX_ORDER:
                raise ValueError(f"--order must be <= {_MAX_ORDER}, got {args.order}")
            if not args.arpa and not args.binary:
                raise ValueError("give --arpa and/or --binary: where to write the model")
            from ._checks import check_usable_path
            from .ngram._files import check_distinct_files, check_output_file

            # Before the text is read and counted (the in-memory way would otherwise fail only
            # once the model is made, naming no option). (--text may be a pipe: /dev/stdin,
            # a shell's <(...).)
            if args.text is not None:
                check_usable_path(args.text, "--text")
                if os.path.isdir(args.text):
                    raise IsADirectoryError(f"--text {args.text} is a directory, not a text file")
                if not os.path.exists(args.text):
                    raise FileNotFoundError(f"--text: no text file at {args.text}")
            for name, path in (("--arpa", args.arpa), ("--binary", args.binary)):
                if path is not None:
                    check_output_file(path, name)
            files = {"--text": args.text, "--arpa": args.arpa, "--binary": args.binary}
            check_distinct_files({name: path for name, path in files.items() if path})
            streamable = (
                args.method == "mkn"
                and not args.prune
                and args.order >= 2
                and args.k is None
                and args.alpha is None
            )
            if streamable and not args.in_memory:
                if args.temp_dir is not None and not os.path.isdir(args.temp_dir):
                    raise FileNotFoundError(
                        f"--temp-dir must be an existing directory, got {args.temp_dir}"
                    )
                return _build_streamed(args, stream)
            return _build(args, stream)
        return _query(args, stream)
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
        print(f"rnnkit: error: {error}", file=sys.stderr)
        return 1
    except MemoryError as error:  # (e.g. sizes too large for this machine)
        print(f"rnnkit: error: out of memory: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
