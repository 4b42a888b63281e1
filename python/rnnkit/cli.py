"""The ``rnnkit`` command line.

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
import math
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

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


def _build(args: argparse.Namespace, out: TextIO) -> int:
    from .ngram import NgramCounts, estimate

    text = Path(args.text).read_bytes() if args.text else sys.stdin.buffer.read()
    start = time.perf_counter()
    counts = NgramCounts(args.order)
    with _bar(args.progress, total=len(text), unit="B", unit_scale=True, desc="count") as bar:
        for piece in _pieces(text):
            counts.update(piece)
            if bar is not None:
                bar.update(len(piece))
    if args.prune:
        counts.prune([1, *args.prune] + [args.prune[-1]] * (args.order - 1 - len(args.prune)))
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


def _query(args: argparse.Namespace, out: TextIO) -> int:
    from .ngram import load_model

    model = load_model(args.model)
    total = 0.0
    total_oov_excluded = 0.0
    tokens = oovs = 0
    with _bar(args.progress, unit=" sentences", desc="query") as bar:
        for line in sys.stdin:
            words = line.split()
            scores = model.full_scores(words)
            sentence = float(sum(p for p, _, _ in scores))
            oov = sum(1 for _, _, is_oov in scores if is_oov)
            if args.words:
                parts = [
                    f"{w}={model.vocabulary.lookup(w)} {n} {p:.6g}"
                    for w, (p, n, _) in zip([*words, "</s>"], scores, strict=True)
                ]
                out.write("\t".join(parts) + "\t")
            out.write(f"Total: {sentence:.6g} OOV: {oov}\n")
            total += sentence
            total_oov_excluded += sum(p for p, _, is_oov in scores if not is_oov)
            tokens += len(scores)
            oovs += oov
            if bar is not None:
                bar.update()
    if tokens:
        out.write(f"Perplexity including OOVs:\t{10 ** (-total / tokens):.6g}\n")
        kept = tokens - oovs
        excluded = 10 ** (-total_oov_excluded / kept) if kept else math.nan
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
    query = commands.add_parser("query", help="score stdin, one sentence per line")
    query.add_argument("model", help="an ARPA file or a binary model (rnnkit ngram build --binary)")
    query.add_argument("--words", action="store_true", help="also print every word's score")
    for command in (build, query):
        command.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="progress bars on standard error (default: when it is a terminal; needs tqdm)",
        )
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Runs the command line (``argv`` without the program name); returns the exit status."""
    args = _parser().parse_args(argv)
    stream = out if out is not None else sys.stdout
    if args.progress is None:
        args.progress = sys.stderr.isatty()
    try:
        if args.command == "build":
            if args.order < 1:
                raise ValueError(f"--order must be >= 1, got {args.order}")
            if not args.arpa and not args.binary:
                raise ValueError("give --arpa and/or --binary: where to write the model")
            return _build(args, stream)
        return _query(args, stream)
    except (ValueError, TypeError, OSError) as error:
        print(f"rnnkit: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
