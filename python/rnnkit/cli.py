"""The ``rnnkit`` command line.

``rnnkit ngram build -o N [--text FILE] --arpa OUT [--method M] [--prune MIN ...]``
    Counts the text (a file, or standard input when no ``--text``; one sentence per line) and
    writes a model (by default modified Kneser-Ney, lmplz's estimate) as an ARPA file.
    ``--prune`` drops the n-grams of orders 2, 3, ... seen fewer than MIN times *before*
    estimating (lmplz's ``--prune`` estimates first and prunes after: not the same model).
``rnnkit ngram query MODEL.arpa [--words]``
    Scores standard input, one sentence per line, like KenLM's ``query``: per sentence its
    log10 probability and number of unknown words (per word too with ``--words``), then the
    perplexity including and excluding unknown words.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO


def _build(args: argparse.Namespace, out: TextIO) -> int:
    from .ngram import NgramCounts, estimate

    text = Path(args.text).read_bytes() if args.text else sys.stdin.buffer.read()
    start = time.perf_counter()
    counts = NgramCounts(args.order).update(text)
    if args.prune:
        counts.prune([1, *args.prune] + [args.prune[-1]] * (args.order - 1 - len(args.prune)))
    counted = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        model = estimate(counts, args.method)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    estimated = time.perf_counter()
    model.write_arpa(args.arpa)
    written = time.perf_counter()
    sizes = " ".join(f"{n}:{model.size(n)}" for n in range(1, args.order + 1))
    print(
        f"n-grams {sizes}; counted in {counted - start:.2f} s, estimated in "
        f"{estimated - counted:.2f} s, written in {written - estimated:.2f} s to {args.arpa}",
        file=out,
    )
    return 0


def _query(args: argparse.Namespace, out: TextIO) -> int:
    from .ngram import load_arpa

    model = load_arpa(args.model)
    total = 0.0
    total_oov_excluded = 0.0
    tokens = oovs = 0
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
    build = commands.add_parser("build", help="text -> modified Kneser-Ney ARPA model")
    build.add_argument("-o", "--order", type=int, required=True, help="the model's order N")
    build.add_argument("--text", help="training text, one sentence per line (default: stdin)")
    build.add_argument("--arpa", required=True, help="where to write the ARPA file")
    build.add_argument(
        "--method",
        default="mkn",
        choices=["mkn", "kn", "absolute", "witten_bell"],
        help="the estimator (default mkn: lmplz's modified Kneser-Ney)",
    )
    build.add_argument(
        "--prune",
        type=int,
        nargs="+",
        metavar="MIN",
        help="drop n-grams of orders 2, 3, ... seen fewer than MIN times before estimating "
        "(the last value repeats for higher orders)",
    )
    query = commands.add_parser("query", help="score stdin, one sentence per line")
    query.add_argument("model", help="an ARPA file")
    query.add_argument("--words", action="store_true", help="also print every word's score")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Runs the command line (``argv`` without the program name); returns the exit status."""
    args = _parser().parse_args(argv)
    stream = out if out is not None else sys.stdout
    try:
        if args.command == "build":
            if args.order < 1:
                raise ValueError(f"--order must be >= 1, got {args.order}")
            return _build(args, stream)
        return _query(args, stream)
    except (ValueError, TypeError, OSError) as error:
        print(f"rnnkit: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
